"""The evaluation command and its metrics."""

import json
import math

import pytest

from service.evaluate import EvalQuery, load_queries, mrr_at, ndcg_at, recall_at, score_ranking

from fixtures import hansard_search


def test_metrics_on_known_rankings():
    relevant = {"a": 1.0, "b": 1.0}
    assert ndcg_at(["a", "b", "x"], relevant) == pytest.approx(1.0)
    assert ndcg_at(["x", "a"], {"a": 1.0}) == pytest.approx(1 / math.log2(3))
    assert ndcg_at(["x", "y"], relevant) == 0.0
    assert recall_at(["x", "a"], relevant) == 0.5
    assert mrr_at(["x", "y", "b"], relevant) == pytest.approx(1 / 3)
    assert mrr_at(["x"] * 10 + ["a"], relevant) == 0.0  # beyond the top 10


def test_excluded_ids_are_removed_before_scoring():
    query = EvalQuery("q", "text", exclude=frozenset({"question"}), relevant={"answer": 1.0})
    assert score_ranking(["question", "answer"], query)["mrr@10"] == 1.0


def test_load_queries_reads_beir_files_and_reports_bad_lines(tmp_path):
    queries = tmp_path / "queries.jsonl"
    qrels = tmp_path / "qrels.tsv"
    queries.write_text(json.dumps({"_id": "q1", "text": "t", "metadata": {"exclude_ids": ["x"]}}) + "\n"
                       + json.dumps({"_id": "q2", "text": "unjudged"}) + "\n")
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tdoc\t1\n")
    [query] = load_queries(queries, qrels)
    assert (query.id, query.exclude, query.relevant) == ("q1", frozenset({"x"}), {"doc": 1.0})
    qrels.write_text("query-id\tcorpus-id\tscore\nq1\tdoc\tmany\n")
    with pytest.raises(ValueError, match="qrels.tsv:2"):
        load_queries(queries, qrels)


def test_eval_command_scores_each_mode(small_index, store, cache_dir, tmp_path):
    from indexer.store.embedded import EmbeddedStore

    contribution = next(p.speech_id for _, p in EmbeddedStore(small_index).iter_passages() if p.speech_id.startswith("contribution/"))
    queries = tmp_path / "queries.jsonl"
    queries.write_text(
        json.dumps({"_id": "hs2", "text": "Chinese surveillance cameras bought for HS2", "metadata": {}}) + "\n"
        + json.dumps({"_id": "hs2-excluded", "text": "Hikvision cameras", "metadata": {"exclude_ids": [contribution]}}) + "\n"
    )
    qrels = tmp_path / "qrels.tsv"
    qrels.write_text(f"query-id\tcorpus-id\tscore\nhs2\t{contribution}\t1\nhs2-excluded\t{contribution}\t1\n")
    run = hansard_search("eval", *store.cli_args, "--queries", queries, "--qrels", qrels, "--json",
                         cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    report = json.loads(run.stdout)
    assert set(report["modes"]) == {"keyword", "dense", "rrf", "hybrid"}
    for mode in report["modes"]:
        assert report["per_query"][mode]["hs2"]["mrr@10"] == 1.0
        assert report["per_query"][mode]["hs2-excluded"]["ndcg@10"] == 0.0  # the answer was excluded
        assert report["modes"][mode]["mrr@10"] == 0.5
    table = hansard_search("eval", *store.cli_args, "--queries", queries, "--qrels", qrels,
                           "--mode", "dense", "--mode", "hybrid", "--level", "speech", cache_dir=cache_dir)
    assert "nDCG@10" in table.stdout and "hybrid" in table.stdout and "keyword" not in table.stdout

"""Tune and compare ways to fuse keyword and dense rankings, on the QA set.

Run by hand against an index of all of ../shared/data/hansard/xml:

    .venv/bin/python bench/fusion.py --index /path/to/full-index [--pool 200] [--limit N]

For every query it takes the dense top `pool` passages and, for each BM25
field weighting tried, the keyword top `pool`; every candidate is scored by
both. Variants fused from those (plain RRF k=60, weighted sums of min-max
normalised scores with several dense weights, ...) are scored at speech
level (a speech ranks by its best passage), nDCG@10 / Recall@100 / MRR@10,
after removing each query's `exclude_ids`.

To keep the choice honest the queries are split in two by position: the
variant is chosen on the even ones ("tune") and reported on the odd ones
("held-out") as well as on all. Results: bench/results/fusion.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.encoder import load_encoder  # noqa: E402
from service.search import parse_query  # noqa: E402
from indexer.store import Location, open_store  # noqa: E402
from indexer.store.base import FIELD_WEIGHTS as STORE_FIELD_WEIGHTS  # noqa: E402
from service.evaluate import load_queries, score_ranking  # noqa: E402
from service.search import Searcher  # noqa: E402
from service.search.ranking import keyword_query, reciprocal_rank_fusion, weighted_fusion  # noqa: E402

QA = ROOT.parent / "shared" / "data" / "hansard" / "eval" / "qa"
# BM25 column weights: text, debate title, speaker. The embedded store writes
# its weights into its index (indexer.store.base.FIELD_WEIGHTS), so only those
# are measured here now; the other weightings (text alone, title once or
# twice, without the speaker) were measured with SQLite FTS5: bench/results/fusion.json.
FIELD_WEIGHTS = {"all": STORE_FIELD_WEIGHTS}
DENSE_WEIGHTS = (0.2, 0.3, 0.4, 0.5, 0.6, 0.7, 0.8)


def speech_ranking(vecs: np.ndarray, scores: np.ndarray, speech_of: dict[int, str]) -> list[str]:
    order = np.argsort(-scores, kind="stable")
    seen: dict[str, None] = {}
    for i in order:
        seen.setdefault(speech_of[int(vecs[i])], None)
    return list(seen)


# One long function on purpose: the benchmark's steps, in the order they run and are reported.
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--pool", type=int, default=200)
    parser.add_argument("--limit", type=int)
    parser.add_argument("--every", type=int, default=1, help="Take every Nth query (a spread sample of the sources).")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "fusion.json")
    args = parser.parse_args()

    index = open_store(Location.of(args.index))
    encoder = load_encoder(index.model.name)
    searcher = Searcher(index, encoder)
    queries = load_queries(QA / "queries.jsonl", QA / "qrels.tsv")[:: args.every][: args.limit]
    speech_of = {vec: passage.speech_id for vec, passage in index.iter_passages()}
    started = time.perf_counter()
    vectors = encoder.encode([q.text for q in queries])

    per_variant: dict[str, list[dict]] = {}

    def record(name: str, ranked: list[str], query) -> None:
        per_variant.setdefault(name, []).append(score_ranking(ranked, query))

    for n, query in enumerate(queries):
        vector = vectors[n]
        fts = keyword_query(parse_query(query.text), searcher._too_common)
        d_scores, d_vecs = index.dense(vector, args.pool)
        record("dense", speech_ranking(d_vecs, d_scores, speech_of), query)
        for name, weights in FIELD_WEIGHTS.items():
            k_scores, k_vecs = index.keyword(fts, args.pool, weights=weights) if fts else (np.zeros(0), np.zeros(0, dtype=np.int64))
            record(f"keyword[{name}]", speech_ranking(k_vecs, k_scores, speech_of), query)
            r_scores, r_vecs = reciprocal_rank_fusion([d_vecs, k_vecs], 60)
            record(f"rrf60[{name}]", speech_ranking(r_vecs, r_scores, speech_of), query)
            union = np.unique(np.concatenate([d_vecs, k_vecs]))
            dense_all, union_sorted = index.dense_scores(vector, union)
            bm25_all = index.keyword_scores(fts, union_sorted, weights) if fts else np.zeros(len(union_sorted), dtype=np.float32)
            for alpha in DENSE_WEIGHTS:
                fused = weighted_fusion(dense_all, bm25_all, alpha)
                record(f"weighted[{name},a={alpha}]", speech_ranking(union_sorted, fused, speech_of), query)
        if n % 200 == 0:
            print(f"{n}/{len(queries)} queries, {time.perf_counter() - started:.0f} s", file=sys.stderr)

    def mean(rows: list[dict], part: slice) -> dict:
        chosen = rows[part]
        return {m: round(statistics.fmean(r[m] for r in chosen), 4) for m in ("ndcg@10", "recall@100", "mrr@10")}

    table = {
        name: {"tune": mean(rows, slice(0, None, 2)), "held_out": mean(rows, slice(1, None, 2)), "all": mean(rows, slice(None))}
        for name, rows in per_variant.items()
    }
    best = max((n for n in table if n.startswith("weighted")), key=lambda n: table[n]["tune"]["ndcg@10"])
    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "index": {"passages": len(index), "model": index.model.key},
        "queries": len(queries),
        "pool": args.pool,
        "best_on_tune": best,
        "variants": table,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(f"{'variant':<34} {'tune nDCG':>9} {'held nDCG':>9} {'all nDCG':>9} {'R@100':>7} {'MRR':>7}")
    for name, row in sorted(table.items(), key=lambda kv: -kv[1]["all"]["ndcg@10"]):
        print(f"{name:<34} {row['tune']['ndcg@10']:>9.4f} {row['held_out']['ndcg@10']:>9.4f} "
              f"{row['all']['ndcg@10']:>9.4f} {row['all']['recall@100']:>7.4f} {row['all']['mrr@10']:>7.4f}")
    print(f"best weighted variant on the tune half: {best}")


if __name__ == "__main__":
    main()

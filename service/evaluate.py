"""Retrieval quality on BEIR-format judgements: nDCG@10, Recall@100, MRR@10.

Queries: JSON Lines `{"_id", "text", "metadata": {"exclude_ids": [...]}}`;
ids in `exclude_ids` (e.g. the question's own record, which is in the corpus
too) are removed from that query's ranking before it is scored.
Qrels: TSV `query-id  corpus-id  score` with a header line; corpus ids are
passage ids (`--level passage`) or speech ids (`--level speech`, where a
speech ranks by its best passage).

A query can only score when at least one of its judged documents is in the
index: `evaluate` counts those (`judged_in_index`), so an index built from
other data than the judgements' (all zeros) is told apart from a bad ranking.
"""

from __future__ import annotations

import csv
import json
import math
import statistics
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Literal, Optional

from service.search import SearchRequest, Searcher

Level = Literal["passage", "speech"]
DEPTH = 100  # Recall@100 needs the top 100


@dataclass
class EvalQuery:
    id: str
    text: str
    exclude: frozenset[str] = frozenset()
    relevant: dict[str, float] = field(default_factory=dict)  # corpus id -> graded relevance


def load_queries(queries: Path, qrels: Path) -> list[EvalQuery]:
    """Queries that have at least one judged-relevant document, in file order."""
    judged: dict[str, dict[str, float]] = {}
    with qrels.open(encoding="utf-8", newline="") as f:
        rows = csv.reader(f, delimiter="\t")
        for number, row in enumerate(rows, start=1):
            if number == 1 and row and row[0].lower() in ("query-id", "query_id", "qid"):
                continue
            if not row or not "".join(row).strip():
                continue
            if len(row) < 3:
                raise ValueError(f"{qrels}:{number}: expected query-id, corpus-id and score separated by tabs")
            try:
                score = float(row[2])
            except ValueError as err:
                raise ValueError(f"{qrels}:{number}: score {row[2]!r} is not a number") from err
            if score > 0:
                judged.setdefault(row[0], {})[row[1]] = score
    out = []
    with queries.open(encoding="utf-8") as f:
        for number, line in enumerate(f, start=1):
            if not line.strip():
                continue
            try:
                record = json.loads(line)
                qid, text = str(record["_id"]), str(record["text"])
            except (ValueError, KeyError, TypeError) as err:
                raise ValueError(f"{queries}:{number}: not a BEIR query record ({err})") from err
            if qid in judged:
                exclude = frozenset((record.get("metadata") or {}).get("exclude_ids") or ())
                out.append(EvalQuery(qid, text, exclude, judged[qid]))
    return out


# ---------------------------------------------------------------- metrics (pure)


def ndcg_at(ranked: list[str], relevant: dict[str, float], k: int = 10) -> float:
    dcg = sum((2 ** relevant.get(doc, 0) - 1) / math.log2(i + 2) for i, doc in enumerate(ranked[:k]))
    ideal = sorted(relevant.values(), reverse=True)[:k]
    idcg = sum((2**g - 1) / math.log2(i + 2) for i, g in enumerate(ideal))
    return dcg / idcg if idcg else 0.0


def recall_at(ranked: list[str], relevant: dict[str, float], k: int = 100) -> float:
    return len(set(ranked[:k]) & set(relevant)) / len(relevant) if relevant else 0.0


def mrr_at(ranked: list[str], relevant: dict[str, float], k: int = 10) -> float:
    for i, doc in enumerate(ranked[:k]):
        if doc in relevant:
            return 1.0 / (i + 1)
    return 0.0


def score_ranking(ranked: list[str], query: EvalQuery) -> dict[str, float]:
    ranked = [doc for doc in ranked if doc not in query.exclude]
    return {
        "ndcg@10": ndcg_at(ranked, query.relevant),
        "recall@100": recall_at(ranked, query.relevant),
        "mrr@10": mrr_at(ranked, query.relevant),
    }


# ---------------------------------------------------------------- running


def ranking(searcher: Searcher, query: EvalQuery, mode: str, level: Level, vector=None) -> list[str]:
    """Top ids (passage or speech) for one query, deep enough to survive the exclusions."""
    request = SearchRequest(
        query.text, k=min(DEPTH + len(query.exclude), 1000), mode=mode,
        group_by="speech" if level == "speech" else "passage",
    )
    page = searcher.search(request, vector=vector)
    return [hit.passage.speech_id if level == "speech" else hit.passage.id for hit in page.hits]


def judged_in_index(searcher: Searcher, queries: list[EvalQuery], level: Level = "speech") -> int:
    """How many of the queries have at least one judged-relevant document in the index."""
    present: dict[str, bool] = {}

    def held(doc: str) -> bool:
        if doc not in present:
            present[doc] = bool(searcher.speech(doc)) if level == "speech" else searcher.passage(doc) is not None
        return present[doc]

    return sum(1 for q in queries if any(held(doc) for doc in q.relevant))


def evaluate(
    searcher: Searcher,
    queries: list[EvalQuery],
    modes: Iterable[str],
    level: Level = "speech",
    progress: Optional[Callable[[Iterable], Iterable]] = None,
) -> dict:
    """Mean metrics per mode, and each query's scores and top ids."""
    progress = progress or (lambda items: items)
    # Embed every query once, in batches, and reuse the vectors in every mode.
    vectors = searcher.encoder.encode([q.text for q in queries], progress=False) if queries else []
    report: dict = {"level": level, "queries": len(queries),
                    "judged_in_index": judged_in_index(searcher, queries, level), "modes": {}, "per_query": {}}
    for mode in modes:
        per_query = {}
        for i in progress(range(len(queries))):
            query = queries[i]
            try:
                ranked = ranking(searcher, query, mode, level, vector=vectors[i].reshape(1, -1))
            except ValueError:  # e.g. keyword search of a query made only of stop words
                ranked = []
            per_query[query.id] = {**score_ranking(ranked, query), "top10": [d for d in ranked if d not in query.exclude][:10]}
        report["per_query"][mode] = per_query
        report["modes"][mode] = {
            metric: statistics.fmean(q[metric] for q in per_query.values()) if per_query else 0.0
            for metric in ("ndcg@10", "recall@100", "mrr@10")
        }
    return report


def format_table(report: dict) -> str:
    lines = [f"{report['queries']} queries, {report['level']} level", "",
             f"{'mode':<10} {'nDCG@10':>8} {'Recall@100':>11} {'MRR@10':>8}"]
    for mode, m in report["modes"].items():
        lines.append(f"{mode:<10} {m['ndcg@10']:>8.4f} {m['recall@100']:>11.4f} {m['mrr@10']:>8.4f}")
    return "\n".join(lines)

"""Which PostgreSQL full-text score ranks best as the keyword half of search (PostgreSQL has no BM25).

Run by hand, against a PostgreSQL store holding the dev slice of
bench/model_choice.py (bench/backends.py leaves one in the database
`hansard_bench`; or index it with `hansard-search index ... --database-url`):

    .venv/bin/python bench/pg_keyword.py --database-url postgresql://.../hansard_bench

Scores keyword mode (by speech, nDCG@10) for each candidate expression on the
even and the odd dev QA questions separately: choose on one half, check on
the other. Results: bench/results/pg_keyword.json.
"""

from __future__ import annotations

import argparse
import json
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from embeddings.encoder import load_encoder  # noqa: E402
from model_choice import DATA, read_dev_queries  # noqa: E402
from service.evaluate import EvalQuery, evaluate  # noqa: E402
from indexer.store import Location  # noqa: E402
from service.search import Searcher  # noqa: E402

CANDIDATES = {
    "ts_rank, normalisation 1 (1 + log length)": "ts_rank('{weights}', p.tsv, q.t, 1)",
    "ts_rank, normalisation 0 (none)": "ts_rank('{weights}', p.tsv, q.t, 0)",
    "ts_rank, normalisation 2 (length)": "ts_rank('{weights}', p.tsv, q.t, 2)",
    "ts_rank, normalisation 8 (unique words)": "ts_rank('{weights}', p.tsv, q.t, 8)",
    "ts_rank, normalisation 16 (1 + log unique words)": "ts_rank('{weights}', p.tsv, q.t, 16)",
    "ts_rank_cd, normalisation 1": "ts_rank_cd('{weights}', p.tsv, q.t, 1)",
    "ts_rank_cd, normalisation 2": "ts_rank_cd('{weights}', p.tsv, q.t, 2)",
}


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", required=True)
    parser.add_argument("--out", type=Path, default=REPO / "bench" / "results" / "pg_keyword.json")
    args = parser.parse_args()
    searcher = Searcher.open(Location(database_url=args.database_url), load_encoder())
    held = {row[0] for row in searcher.index._rows("SELECT DISTINCT speech_id FROM hansard_passages")}
    judged = [EvalQuery(q.id, q.text, frozenset(q.exclude), {s: 1.0 for s in q.relevant})
              for q in read_dev_queries(DATA, held)]
    halves = {"even": judged[0::2], "odd": judged[1::2]}
    results = {}
    for name, expression in CANDIDATES.items():
        searcher.index.keyword_rank = expression
        results[name] = {half: round(evaluate(searcher, queries, ["keyword"], level="speech")["modes"]["keyword"]["ndcg@10"], 4)
                         for half, queries in halves.items()}
        print(f"{name:50s} even {results[name]['even']:.4f}  odd {results[name]['odd']:.4f}", flush=True)
    args.out.write_text(json.dumps({"queries": len(judged), "ndcg@10_keyword_by_half": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

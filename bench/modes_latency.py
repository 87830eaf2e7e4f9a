"""Search latency of each ranking mode over one index, measured in one run.

Run by hand against an index of all of ../shared/data/hansard/xml:

    .venv/bin/python bench/modes_latency.py --index /path/to/full-index [--queries 200]

Queries are real ones people typed (hansard/real-queries). Each query runs in
every mode in turn (so load on the shared machine touches all modes alike),
in process, one thread, the way a service request runs: query encoding,
vector and keyword search, fusion and metadata fetch for k=10. Reports the
median and p90 per mode and each median as a ratio to dense.
Results: bench/results/modes_latency.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.encoder import load_encoder  # noqa: E402
from service.search import MODES, SearchRequest, Searcher  # noqa: E402

REAL_QUERIES = ROOT.parent / "shared" / "data" / "hansard" / "real-queries" / "twfy_vector_search_suggestions.json"


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "modes_latency.json")
    args = parser.parse_args()

    import faiss

    faiss.omp_set_num_threads(1)
    searcher = Searcher.open(args.index, load_encoder(use_cache=False, threads=1))
    rows = json.loads(REAL_QUERIES.read_text())
    queries = list(dict.fromkeys(r["original_query"] for r in rows if r.get("original_query")))[: args.queries]
    for mode in MODES:  # warm up: first queries load pages and code paths
        searcher.search(SearchRequest("warm up the index", mode=mode))
    timings: dict[str, list[float]] = {mode: [] for mode in MODES}
    for query in queries:
        for mode in MODES:
            started = time.perf_counter()
            searcher.search(SearchRequest(query, k=10, mode=mode))
            timings[mode].append((time.perf_counter() - started) * 1000)
    medians = {mode: statistics.median(t) for mode, t in timings.items()}
    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "index_passages": len(searcher.index),
        "queries": len(queries),
        "median_ms": medians,
        "p90_ms": {mode: sorted(t)[int(0.9 * (len(t) - 1))] for mode, t in timings.items()},
        "median_ratio_to_dense": {mode: medians[mode] / medians["dense"] for mode in MODES},
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

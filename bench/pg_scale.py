"""The PostgreSQL store at the shared corpus size and at 1M passages: load time, size, keyword/hybrid/dense latency.

Run by hand (never in CI), against a PostgreSQL server of its own
(.ci/postgres with its own root, never the shared default one):

    export HANSARD_PG_ROOT=/tmp/hansard-pg-scale
    URL=$(.ci/postgres start)
    .venv/bin/python bench/pg_scale.py --database-url "$URL" --source /tmp/fullidx [--sizes 43461 1000000]
    .venv/bin/python bench/pg_scale.py ...   # more sizes, --merge to keep earlier ones in --out
    .ci/postgres stop

--source is an embedded index of all of ../shared/data/hansard/xml (43,461
passages). For each size N the store is dropped and loaded the project's own
way: `open_writer(Location(database_url=...), model, rebuild=True)`, one
`writer.bulk(N)` around `writer.replace(...)` batches of
`writer.batch_passages` passages (whole speeches), as indexer/build.py does.
bulk() drops the HNSW index and builds it once at the end. Passages beyond the
source are made as bench/scale.py makes them (a copy of a random real passage,
ids suffixed `~n`, its vector plus Gaussian noise sigma 0.0245 re-normalised;
seed 7). Each batch is passed with its speech ids and no sittings: the
synthetic copies share their source's sitting key, and a batch naming that
sitting would delete the copies earlier batches wrote (a real indexing run
writes each sitting once, whole).

--build-hnsw-after: then build the skipped HNSW index (the project's
schema.ensure_vector_index, as bulk() would have), time it, and measure all
three modes again.

--no-hnsw-above N: for sizes above N the HNSW build at the end of the load is
skipped (schema.ensure_vector_index stubbed out for the load), to measure
keyword search within a time budget; dense and hybrid search then run by exact
scans, so they are measured on only --exact-queries queries and labelled so.

After the load: ANALYZE (what autovacuum would soon do; timed apart), then
pg_total_relation_size of the table, its indexes one by one. Then, one thread,
the real queries (bench/load.py real_queries()[:--queries]) through
service.search.Searcher on the store: keyword, hybrid (the default) and dense
modes, interleaved per query, p50/p90 ms each; queries refused with QueryError
(keyword: stop words only) are skipped and counted. The searcher's per-word
document-frequency cache (_too_common) is filled for every query before
timing, as in a service that has been running. Keyword mode's `total` (the
passages matching, each of which ts_rank scores) is recorded too.
Results: bench/results/pg_scale.json.
"""

from __future__ import annotations

import argparse
import contextlib
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))
sys.path.insert(0, str(ROOT / "bench"))

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.store import Location, connect, open_store, open_writer  # noqa: E402
from indexer.store.postgres import schema  # noqa: E402
from indexer.store.postgres.schema import TABLE  # noqa: E402
from service.search import QueryError, SearchRequest, Searcher, parse_query  # noqa: E402
from service.search import searcher as searcher_module  # noqa: E402
from load import real_queries  # noqa: E402

NOISE_SIGMA = 0.0245
SEED = 7


def log(message: str) -> None:
    print(f"[{dt.datetime.now():%H:%M:%S}] {message}", file=sys.stderr, flush=True)


def batches(source, size: int, batch_passages: int):
    """(passages, vectors) batches of about batch_passages, whole speeches: the real passages first, then synthetic ones."""
    real = list(source.iter_passages())
    vecs = np.array([vec for vec, _ in real], dtype=np.int64)
    real_vectors = source.vectors_at(vecs)
    by_speech: dict[str, list[int]] = {}
    for i, (_, p) in enumerate(real[:size]):
        by_speech.setdefault(p.speech_id, []).append(i)
    batch: list[int] = []
    for rows in by_speech.values():
        batch.extend(rows)
        if len(batch) >= batch_passages:
            yield [real[i][1] for i in batch], real_vectors[batch]
            batch = []
    if batch:
        yield [real[i][1] for i in batch], real_vectors[batch]
    extra = size - len(real)
    if extra <= 0:
        return
    # As bench/scale.py: all picks first, then the noise from the same generator (drawn in chunks, the same stream).
    rng = np.random.default_rng(SEED)
    picks = rng.integers(0, len(real), extra)
    for start in range(0, extra, batch_passages):
        chunk = picks[start:start + batch_passages]
        noise = rng.normal(0, NOISE_SIGMA, (len(chunk), real_vectors.shape[1])).astype(np.float32)
        vectors = real_vectors[chunk] + noise
        vectors /= np.linalg.norm(vectors, axis=1, keepdims=True)
        passages = []
        for n, pick in enumerate(chunk, start):
            p = real[pick][1]
            passages.append(p.model_copy(update={"id": f"{p.id}~{n}", "speech_id": f"{p.speech_id}~{n}"}))
        yield passages, vectors


@contextlib.contextmanager
def hnsw_skipped(skip: bool):
    if not skip:
        yield
        return
    original = schema.ensure_vector_index
    schema.ensure_vector_index = lambda conn: None  # bulk_load's build at the end of the load
    try:
        yield
    finally:
        schema.ensure_vector_index = original


def load(url: str, source, size: int, skip_hnsw: bool) -> dict:
    started = time.perf_counter()
    written = 0
    insert_seconds = 0.0
    with hnsw_skipped(skip_hnsw), open_writer(Location(database_url=url), source.model, rebuild=True) as writer:
        batch_passages = writer.batch_passages
        writer.add_titles(source.title_vectors())  # the source is an embedded index: its titles' vectors
        with writer.bulk(size):
            for passages, vectors in batches(source, size, batch_passages):
                t = time.perf_counter()
                writer.replace(passages, vectors, {p.speech_id for p in passages})
                insert_seconds += time.perf_counter() - t
                written += len(passages)
                if written % 100_000 < batch_passages:
                    log(f"  {written} passages, {time.perf_counter() - started:.0f} s")
            rows_done = time.perf_counter()
        hnsw_seconds = time.perf_counter() - rows_done  # bulk()'s exit: the HNSW build
        description = writer.commit()
    total = time.perf_counter() - started
    with connect(url) as conn:
        t = time.perf_counter()
        conn.execute(f"ANALYZE {TABLE}")
        analyze = time.perf_counter() - t
    return {"passages": description.passages, "speeches": description.speeches, "batch_passages": batch_passages,
            "hnsw_index": not skip_hnsw, "load_seconds": round(total, 1), "insert_seconds": round(insert_seconds, 1),
            "hnsw_build_seconds": round(hnsw_seconds, 1) if not skip_hnsw else None,
            "analyze_seconds": round(analyze, 1)}


def sizes_on_disk(url: str) -> dict:
    with connect(url) as conn:
        total, heap, indexes = conn.execute(
            "SELECT pg_total_relation_size(%s), pg_relation_size(%s), pg_indexes_size(%s)", (TABLE, TABLE, TABLE)).fetchone()
        per_index = {name: size for name, size in conn.execute(
            "SELECT indexrelid::regclass::text, pg_relation_size(indexrelid) FROM pg_index "
            "WHERE indrelid = %s::regclass ORDER BY 2 DESC", (TABLE,))}
    return {"total_relation_bytes": total, "table_bytes": heap, "toast_and_other_bytes": total - heap - indexes,
            "indexes_bytes": indexes, "per_index_bytes": per_index}


def pct(values: list[float], p: float):
    return round(float(np.percentile(values, p)), 1) if values else None


def measure(url: str, encoder, queries: list[str], dense_queries: int) -> dict:
    searcher = Searcher.open(Location(database_url=url), encoder)
    for q in queries:  # the per-word document-frequency cache, as in a running service
        searcher_module.keyword_query(parse_query(q), searcher._too_common)
    for q in queries[:10]:  # warm-up
        for mode in ("keyword", None, "dense"):
            with contextlib.suppress(QueryError):
                searcher.search(SearchRequest(q, mode=mode) if mode else SearchRequest(q))
    times: dict[str, list[float]] = {"keyword": [], "hybrid": [], "dense": []}
    matches, refused = [], 0
    for n, q in enumerate(queries):
        t = time.perf_counter()
        try:
            page = searcher.search(SearchRequest(q, mode="keyword"))
            times["keyword"].append((time.perf_counter() - t) * 1000)
            matches.append(page.total)
        except QueryError:
            refused += 1
        if n < dense_queries:
            t = time.perf_counter(); searcher.search(SearchRequest(q)); times["hybrid"].append((time.perf_counter() - t) * 1000)
            t = time.perf_counter(); searcher.search(SearchRequest(q, mode="dense")); times["dense"].append((time.perf_counter() - t) * 1000)
        if n % 50 == 49:
            log(f"  {n + 1} queries; keyword p50 so far {pct(times['keyword'], 50)} ms")
    searcher.close()
    out = {mode: {"queries": len(xs), "p50_ms": pct(xs, 50), "p90_ms": pct(xs, 90), "max_ms": round(max(xs), 1) if xs else None}
           for mode, xs in times.items()}
    out["keyword"]["refused_query_error"] = refused
    out["keyword"]["matching_passages"] = {"p50": int(np.percentile(matches, 50)), "p90": int(np.percentile(matches, 90)),
                                           "max": int(max(matches)), "mean": round(statistics.fmean(matches))}
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--database-url", default=os.environ.get("HANSARD_DATABASE_URL"))
    parser.add_argument("--source", type=Path, required=True, help="an embedded index of the full shared corpus")
    parser.add_argument("--sizes", type=int, nargs="+", default=[43_461, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--no-hnsw-above", type=int, default=None, help="skip the HNSW build for sizes above this")
    parser.add_argument("--exact-queries", type=int, default=20, help="dense/hybrid queries where the HNSW index is skipped")
    parser.add_argument("--build-hnsw-after", action="store_true",
                        help="where the HNSW build was skipped: after measuring, build it (schema.ensure_vector_index) and measure again")
    parser.add_argument("--merge", action="store_true", help="keep the sizes already in --out")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "pg_scale.json")
    args = parser.parse_args()
    if not args.database_url:
        parser.error("--database-url (or HANSARD_DATABASE_URL) is needed")

    source = open_store(Location.of(args.source))
    queries = real_queries()[: args.queries]
    encoder = load_encoder(use_cache=False, threads=1)
    results = {"sizes": {}}
    if args.merge and args.out.is_file():
        results = json.loads(args.out.read_text(encoding="utf-8"))
    with connect(args.database_url) as conn:
        server = conn.execute("SHOW server_version").fetchone()[0]
        settings = {name: conn.execute(f"SHOW {name}").fetchone()[0]
                    for name in ("shared_buffers", "work_mem", "maintenance_work_mem", "max_parallel_maintenance_workers", "fsync")}
        pgvector = conn.execute("SELECT default_version FROM pg_available_extensions WHERE name = 'vector'").fetchone()[0]
    results.update({"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
                    "postgres": server, "pgvector": pgvector, "settings": settings, "cpus": os.cpu_count(),
                    "noise_sigma": NOISE_SIGMA, "seed": SEED, "threads": 1})
    for size in args.sizes:
        skip = args.no_hnsw_above is not None and size > args.no_hnsw_above
        log(f"[{size}] loading{' (HNSW build skipped)' if skip else ''}")
        entry = load(args.database_url, source, size, skip)
        log(f"[{size}] {entry}")
        entry["disk"] = sizes_on_disk(args.database_url)
        log(f"[{size}] {entry['disk']}; searching")
        entry["search_ms"] = measure(args.database_url, encoder, queries, args.exact_queries if skip else len(queries))
        if skip:
            entry["search_ms"]["note"] = "no HNSW index: dense and hybrid ran by exact scans of every passage"
        results["sizes"][str(size)] = entry
        args.out.parent.mkdir(parents=True, exist_ok=True)
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # after each size
        log(f"[{size}] {json.dumps(entry['search_ms'])}")
        if skip and args.build_hnsw_after:
            log(f"[{size}] building the HNSW index")
            with connect(args.database_url) as conn:
                t = time.perf_counter()
                schema.ensure_vector_index(conn)
                entry["hnsw_built_after_seconds"] = round(time.perf_counter() - t, 1)
            entry["disk_with_hnsw"] = sizes_on_disk(args.database_url)
            log(f"[{size}] built in {entry['hnsw_built_after_seconds']} s; searching again")
            entry["search_ms_with_hnsw"] = measure(args.database_url, encoder, queries, len(queries))
            args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")
            log(f"[{size}] {json.dumps(entry['search_ms_with_hnsw'])}")


if __name__ == "__main__":
    main()

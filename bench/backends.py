"""The embedded store against PostgreSQL + pgvector, on the same data, in one run.

Run by hand (never in CI), with a PostgreSQL server at hand:

    .ci/postgres run .venv/bin/python bench/backends.py
    HANSARD_DATABASE_URL=postgresql://... .venv/bin/python bench/backends.py [--seconds 30]

What it does:

1. Indexes the dev slice of bench/model_choice.py (2009-10 Commons and Lords
   written answers, 2016-2021 debates) into an embedded index and into a
   fresh PostgreSQL database (the same passages and vectors: the second load
   takes its embeddings from the cache), timing each store's write.
2. Quality on the dev QA queries (those whose answers lie in the slice), by
   speech, for each mode, on both stores: nDCG@10, Recall@100, MRR@10; and
   the overlap of the top-10 speech ids per query in dense mode.
3. Latency through HTTP: `hansard-search serve` on each store in turn, real
   queries (bench/load.py's mix: searches, filtered searches, "similar"), at
   concurrency 1 and 8, SECONDS each, alternating stores so that noise on
   this shared machine falls on both. The database server runs on the same
   two cores as the service and the clients.

Results: bench/results/backends.json and bench/results/backends.md.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import statistics
import sys
import time
from pathlib import Path
from urllib.parse import urlsplit, urlunsplit

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))
sys.path.insert(0, str(REPO / "bench"))

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.build import build_index  # noqa: E402
from indexer.sources.members import MemberDirectory  # noqa: E402
from indexer.store import Location, connect, redact  # noqa: E402
from load import drive, start_service  # noqa: E402
from model_choice import COLLECTIONS, DATA, read_dev_queries  # noqa: E402
from service.evaluate import EvalQuery, evaluate  # noqa: E402
from service.search import SearchRequest, Searcher  # noqa: E402

RESULTS = REPO / "bench" / "results"
MODES = ["dense", "hybrid", "keyword"]


def fresh_database(url: str, name: str) -> str:
    with connect(url) as conn:
        conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")
        conn.execute(f"CREATE DATABASE {name}")
    return urlunsplit(urlsplit(url)._replace(path=f"/{name}"))


# One long function on purpose: the benchmark's steps, in the order they run and are reported.
def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    # Taken out of the environment, so that the embedded store's service does not pick it up.
    parser.add_argument("--database-url", default=os.environ.pop("HANSARD_DATABASE_URL", None),
                        help="A server where this user may create a database (default: $HANSARD_DATABASE_URL).")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hansard-backends"))
    parser.add_argument("--seconds", type=float, default=30)
    parser.add_argument("--concurrency", type=int, nargs="+", default=[1, 8])
    parser.add_argument("--reuse", action="store_true", help="Reuse both stores from an earlier run.")
    args = parser.parse_args()
    if not args.database_url:
        raise SystemExit("give --database-url or set HANSARD_DATABASE_URL (or run under .ci/postgres run)")

    sources = [DATA / "xml" / c for c in COLLECTIONS]
    members = MemberDirectory.load(DATA / "members")
    encoder = load_encoder()
    index_dir = args.work / "index"
    database_url = urlunsplit(urlsplit(args.database_url)._replace(path="/hansard_bench"))
    load = {}
    previous = RESULTS / "backends.json"
    if args.reuse and previous.is_file():
        load = json.loads(previous.read_text()).get("load", {})
    if not args.reuse:
        args.work.mkdir(parents=True, exist_ok=True)
        build_index(sources, index_dir, encoder, members, rebuild=True)  # embeds (or takes from the cache) first
        for name, target in (("embedded", index_dir),
                             ("postgres", Location(database_url=fresh_database(args.database_url, "hansard_bench")))):
            started = time.perf_counter()
            summary = build_index(sources, target, encoder, members, rebuild=True)
            load[name] = {"seconds": round(time.perf_counter() - started, 1), "passages": summary.passages,
                          "store_seconds": round(summary.seconds.get("store", 0), 1)}
            print(f"{name}: {load[name]}", file=sys.stderr)

    searchers = {"embedded": Searcher.open(Location(index_dir=index_dir), encoder),
                 "postgres": Searcher.open(Location(database_url=database_url), encoder)}
    assert len(searchers["embedded"].index) == len(searchers["postgres"].index)
    speech_ids = {passage.speech_id for _, passage in searchers["embedded"].index.iter_passages()}
    dev = read_dev_queries(DATA, speech_ids)
    judged = [EvalQuery(q.id, q.text, frozenset(q.exclude), {s: 1.0 for s in q.relevant}) for q in dev]
    print(f"{len(judged)} dev queries over {len(searchers['embedded'].index)} passages", file=sys.stderr)

    quality = {name: evaluate(searcher, judged, MODES, level="speech")["modes"] for name, searcher in searchers.items()}
    overlaps = []
    for query in judged:
        tops = [[hit.passage.speech_id for hit in s.search(SearchRequest(query.text, k=10, mode="dense", group_by="speech")).hits]
                for s in searchers.values()]
        overlaps.append(len(set(tops[0]) & set(tops[1])) / max(1, len(tops[0])))
    searchers["postgres"].index.close()  # its connections: the services below open their own

    result = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "database": redact(args.database_url),
        "slice": list(COLLECTIONS), "passages": len(searchers["embedded"].index), "queries": len(judged),
        "load": load, "quality": quality,
        "dense_top10_speech_overlap": {"mean": round(statistics.mean(overlaps), 3),
                                       "min": round(min(overlaps), 3), "queries_below_0.8": sum(o < 0.8 for o in overlaps)},
        "latency": {},
    }
    save(result)  # the quality figures are kept should a latency run fail
    latency = result["latency"]
    for clients in args.concurrency:
        for name in ("embedded", "postgres"):
            extra = ["--database-url", database_url] if name == "postgres" else []
            server, base, _ = start_service(index_dir, extra_args=extra)
            try:
                latency[f"{name}_c{clients}"] = drive(base, server.pid, clients, args.seconds)
            finally:
                server.terminate()
                server.wait(timeout=30)
            print(f"{name} c{clients}: {latency[f'{name}_c{clients}']['latency_ms']}", file=sys.stderr)

    save(result)
    print(markdown(result))


def save(result: dict) -> None:
    RESULTS.mkdir(exist_ok=True)
    (RESULTS / "backends.json").write_text(json.dumps(result, indent=2) + "\n")
    (RESULTS / "backends.md").write_text(markdown(result))


def markdown(r: dict) -> str:
    lines = [f"Dev slice ({', '.join(r['slice'])}): {r['passages']} passages, {r['queries']} QA queries; {r['date']}.", "",
             "| mode | store | nDCG@10 | Recall@100 | MRR@10 |", "|---|---|---|---|---|"]
    for mode in MODES:
        for store in ("embedded", "postgres"):
            m = r["quality"][store][mode]
            lines.append(f"| {mode} | {store} | {m['ndcg@10']:.3f} | {m['recall@100']:.3f} | {m['mrr@10']:.3f} |")
    o = r["dense_top10_speech_overlap"]
    lines += ["", f"Dense top-10 speech ids, PostgreSQL against embedded: mean overlap {o['mean']:.1%} "
                  f"(lowest {o['min']:.0%}; {o['queries_below_0.8']} queries under 80%).", "",
              "| store | clients | requests/s | p50 ms | p99 ms | errors |", "|---|---|---|---|---|---|"]
    for key, run in r["latency"].items():
        store, clients = key.rsplit("_c", 1)
        lines.append(f"| {store} | {clients} | {run['requests_per_second']} | {run['latency_ms']['p50']} | "
                     f"{run['latency_ms']['p99']} | {run['errors']} |")
    if r["load"]:
        lines += ["", "Loading the slice (vectors from the embedding cache): " + "; ".join(
            f"{k} {v['seconds']} s in all, {v['store_seconds']} s writing" for k, v in r["load"].items())]
    return "\n".join(lines) + "\n"


if __name__ == "__main__":
    main()

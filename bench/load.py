"""Load test: concurrent clients against a live `hansard-search serve` on 127.0.0.1.

Run by hand (never in CI), against an index of all of ../shared/data/hansard/xml:

    .venv/bin/python bench/load.py --index /path/to/full-index [--clients 8] [--seconds 60]

Starts the service as a user would (`hansard-search serve`, its own process),
waits for /health, warms it up, then runs CLIENTS threads, each with its own
HTTP connection, sending real queries people typed (hansard/real-queries),
one after another, for SECONDS. A tenth of the requests carry a filter and a
tenth are "similar" lookups, as a portal's traffic would. Records every
request's latency and status, and samples the service's resident memory
(VmRSS of its process) every second. Reports p50/p99, throughput, errors,
and the median memory of each quarter of the run (a climb to the end = a leak).
Results: bench/results/load.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import itertools
import json
import os
import shutil
import socket
import statistics
import subprocess
import sys
import tempfile
import threading
import time
from pathlib import Path
from typing import Optional

import httpx

ROOT = Path(__file__).resolve().parents[1]
REAL_QUERIES = ROOT.parent / "shared" / "data" / "hansard" / "real-queries" / "twfy_vector_search_suggestions.json"


def real_queries() -> list[str]:
    rows = json.loads(REAL_QUERIES.read_text(encoding="utf-8"))
    return list(dict.fromkeys(row["original_query"] for row in rows))


def requests_mix(queries: list[str], speech_ids: list[str], search_params: Optional[dict] = None):
    """An endless, repeatable stream of (path, params): searches, some filtered, some "similar"."""
    extra = search_params or {}
    for n, query in enumerate(itertools.cycle(queries)):
        if n % 10 == 3 and speech_ids:
            yield "/similar", {"speech_id": speech_ids[n % len(speech_ids)], "k": 10}
        elif n % 10 == 7:
            yield "/search", {"q": query, "house": "lords" if n % 20 == 7 else "commons", **extra}
        else:
            yield "/search", {"q": query, **extra}


def rss_bytes(pid: int) -> int:
    for line in Path(f"/proc/{pid}/status").read_text().splitlines():
        if line.startswith("VmRSS:"):
            return int(line.split()[1]) * 1024
    return 0


def percentile(values: list[float], p: float) -> float:
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, int(round(p / 100 * (len(ordered) - 1))))]


def start_service(index: Path, env: Optional[dict] = None, extra_args: Optional[list[str]] = None
                  ) -> tuple[subprocess.Popen, str, float]:
    """`hansard-search serve` on a free loopback port: (process, base URL, seconds until /health said ok)."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        port = s.getsockname()[1]
    base = f"http://127.0.0.1:{port}"
    command = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    log = tempfile.TemporaryFile()
    server = subprocess.Popen([command, "serve", "--index", str(index), "--port", str(port), *(extra_args or [])],
                              stdout=subprocess.DEVNULL, stderr=log, env={**os.environ, **(env or {})})
    started = time.monotonic()
    while True:
        try:
            if httpx.get(f"{base}/health", timeout=2).status_code == 200:
                return server, base, time.monotonic() - started
        except httpx.HTTPError:
            pass
        if server.poll() is not None or time.monotonic() - started > 600:
            server.kill()
            log.seek(0)
            raise SystemExit("the service did not come up:\n" + log.read().decode(errors="replace")[-2000:])
        time.sleep(0.5)


# Long on purpose: the clients, the sampler and the summary share one run's clock and counters.
def drive(base: str, pid: int, clients: int, seconds: float, search_params: Optional[dict] = None) -> dict:
    """CLIENTS threads sending the real-query mix for SECONDS: latency, errors and the service's memory.

    search_params are added to every /search (e.g. {"mode": "dense", "highlight": "false"}).
    """
    queries = real_queries()
    warm = httpx.Client(base_url=base, timeout=60)
    speech_ids = [r["speech_id"] for q in queries[:20]
                  for r in warm.get("/search", params={"q": q, "k": 1}).json()["results"]]
    for q in queries[20:60]:  # warm-up: caches, lazy imports, allocator
        warm.get("/search", params={"q": q})

    samples: list[tuple[float, float, int, str]] = []  # (start offset, seconds, status, path)
    memory: list[tuple[float, int]] = []
    lock = threading.Lock()
    stop = threading.Event()
    t0 = time.monotonic()

    def client(number: int) -> None:
        mix = requests_mix(queries[number::clients] or queries, speech_ids, search_params)
        with httpx.Client(base_url=base, timeout=60) as http:
            for path, params in mix:
                if stop.is_set():
                    return
                sent = time.monotonic()
                try:
                    status = http.get(path, params=params).status_code
                except httpx.HTTPError:
                    status = 0
                with lock:
                    samples.append((sent - t0, time.monotonic() - sent, status, path))

    def watch_memory() -> None:
        while not stop.wait(1.0):
            memory.append((time.monotonic() - t0, rss_bytes(pid)))

    threads = [threading.Thread(target=client, args=(n,)) for n in range(clients)]
    threads.append(threading.Thread(target=watch_memory))
    memory.append((0.0, rss_bytes(pid)))
    for t in threads:
        t.start()
    time.sleep(seconds)
    stop.set()
    for t in threads:
        t.join()
    elapsed = time.monotonic() - t0

    latencies = [s[1] * 1000 for s in samples]
    errors = [s for s in samples if s[2] != 200]
    quarter = max(1, len(memory) // 4)
    quarters_mb = [round(statistics.median(m for _, m in memory[i * quarter:(i + 1) * quarter] or memory[-1:]) / 1e6, 1)
                   for i in range(4)]
    by_path = {path: [s[1] * 1000 for s in samples if s[3] == path] for path in sorted({s[3] for s in samples})}
    return {
        "clients": clients,
        "search_params": search_params or {},
        "seconds": round(elapsed, 1),
        "requests": len(samples),
        "requests_per_second": round(len(samples) / elapsed, 1),
        "errors": len(errors),
        "error_statuses": sorted({s[2] for s in errors}),
        "latency_ms": {"p50": round(percentile(latencies, 50), 1), "p90": round(percentile(latencies, 90), 1),
                       "p99": round(percentile(latencies, 99), 1), "max": round(max(latencies), 1)},
        "latency_ms_by_path": {p: {"p50": round(percentile(v, 50), 1), "p99": round(percentile(v, 99), 1), "n": len(v)}
                               for p, v in by_path.items()},
        # Median resident memory in each quarter of the run: a plateau is warm-up
        # (per-thread connections, caches); a steady climb to the end is a leak.
        "rss_mb": {"quarters_median": quarters_mb, "max": round(max(m for _, m in memory) / 1e6, 1),
                   "growth_second_to_last_quarter": round(quarters_mb[3] - quarters_mb[1], 1)},
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--clients", type=int, default=8)
    parser.add_argument("--seconds", type=float, default=60)
    parser.add_argument("--param", action="append", default=[], metavar="NAME=VALUE",
                        help="added to every /search, e.g. --param mode=dense --param highlight=false")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "load.json")
    args = parser.parse_args()
    search_params = dict(p.split("=", 1) for p in args.param)

    server, base, startup_s = start_service(args.index)
    try:
        result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "index": str(args.index),
                  "startup_seconds": round(startup_s, 1),
                  **drive(base, server.pid, args.clients, args.seconds, search_params)}
    finally:
        server.terminate()
        server.wait(timeout=30)
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

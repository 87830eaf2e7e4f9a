"""HTTP latency of two versions of the service on one index, in one run: is a change free?

Run by hand (never in CI). The baseline is another checkout of this project
(a git worktree of an older commit): its code is served by the same
installed `hansard-search` with PYTHONPATH pointing at it, so only the
project's code differs. Both versions must read the index (the index format
did not change between them).

    git worktree add /tmp/baseline <commit>
    .venv/bin/python bench/versions.py --index DIR --baseline /tmp/baseline [--seconds 20] [--rounds 2]

Each round serves the baseline, then this checkout (alternating which goes
first), with 1 and 8 clients (bench/load.py's mix: real queries, a tenth
filtered, a tenth "similar"). Reports each version's median p50/p99 over the
rounds and the ratio of this checkout to the baseline.
Results: bench/results/versions.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import statistics
import subprocess
import sys
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent))
from load import drive, start_service  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]


def commit_of(tree: Path) -> str:
    return subprocess.run(["git", "-C", str(tree), "rev-parse", "--short", "HEAD"], capture_output=True, text=True).stdout.strip()


def measure(index: Path, tree: Path, clients: int, seconds: float) -> dict:
    server, base, _ = start_service(index, env={"PYTHONPATH": str(tree)})
    try:
        return drive(base, server.pid, clients, seconds)
    finally:
        server.terminate()
        server.wait(timeout=30)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--baseline", type=Path, required=True, help="another checkout of this project")
    parser.add_argument("--seconds", type=float, default=20)
    parser.add_argument("--rounds", type=int, default=2)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "versions.json")
    args = parser.parse_args()

    trees = {"baseline": args.baseline.resolve(), "current": ROOT}
    runs: dict = {name: {1: [], 8: []} for name in trees}
    for round_ in range(args.rounds):
        order = list(trees) if round_ % 2 == 0 else list(reversed(trees))
        for name in order:
            for clients in (1, 8):
                result = measure(args.index, trees[name], clients, args.seconds)
                runs[name][clients].append(result)
                print(f"round {round_ + 1} {name} {clients} clients: p50 {result['latency_ms']['p50']} ms, "
                      f"p99 {result['latency_ms']['p99']} ms, errors {result['errors']}", file=sys.stderr)

    def median(name: str, clients: int, key: str) -> float:
        return round(statistics.median(r["latency_ms"][key] for r in runs[name][clients]), 1)

    summary = {}
    for clients in (1, 8):
        entry = {name: {key: median(name, clients, key) for key in ("p50", "p99")} for name in trees}
        entry["ratio_current_to_baseline"] = {key: round(entry["current"][key] / entry["baseline"][key], 2)
                                              for key in ("p50", "p99")}
        entry["errors"] = {name: sum(r["errors"] for r in runs[name][clients]) for name in trees}
        summary[f"clients_{clients}"] = entry
    result = {"date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
              "index": str(args.index), "baseline": commit_of(trees["baseline"]), "current": commit_of(ROOT),
              "seconds_per_run": args.seconds, "rounds": args.rounds, "summary": summary}
    args.out.write_text(json.dumps(result, indent=2) + "\n", encoding="utf-8")
    print(json.dumps(result, indent=2))


if __name__ == "__main__":
    main()

"""bench/scale.py of two checkouts in one run, on the same source, sizes and settings: both results and the ratios.

Run by hand (never in CI):

    .venv/bin/python bench/scale_compare.py --baseline /path/to/other/checkout --source /path/to/full-index \\
        [--sizes 43461 1000000] [--queries 200] [--seconds 30] [--work DIR] [--reuse] [--out FILE]

The candidate is this checkout. Each checkout runs its own bench/scale.py
with its own code, one size at a time (`--sizes N`), the baseline first and
then the candidate for each size, so the two runs of one size are close in
time. Each works under its own folder (DIR/baseline, DIR/candidate).

Its own code: the scale.py process runs with cwd = the checkout and
PYTHONPATH = the checkout (ahead of anything already there), so the
checkout's packages win over an editable install of another checkout in the
same venv. bench/load.py starts `hansard-search serve` from next to
sys.executable with the process's environment, so the service inherits that
PYTHONPATH and imports the same checkout's code: checked before the runs
(the modules the `hansard-search` script would import are recorded under
checkouts.<side>.imports; the run stops if they are not the
checkout's, and goes on if they do not import, that side's runs then
failing and listed under "failed"). The baseline's interpreter: --baseline-python, by default
<checkout>/.venv/bin/python where it exists, else this interpreter.

--candidate-source: where the candidate's store format is newer than the
baseline's and it cannot read --source, the same corpus indexed by the
candidate (each side writes its own indexes from its source either way).

bench/load.py reads the real queries from <checkout>/../shared/data, so
each checkout needs a `shared` beside it.

Output: {"baseline": {...its scale.json...}, "candidate": {...},
"ratios": {"<N>": {"hybrid_search_p50": candidate / baseline, ...}}, ...}.
A ratio is null where either side lacks the figure (an older scale.py has
no keyword_search; a reused index has no write time) or the run failed.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import os
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Any, Optional

ROOT = Path(__file__).resolve().parents[1]
REAL_QUERIES = Path("shared") / "data" / "hansard" / "real-queries" / "twfy_vector_search_suggestions.json"
SIDES = ("baseline", "candidate")

# ratio name -> path into one size's entry of scale.json
RATIOS: dict[str, tuple[str, ...]] = {
    "hybrid_search_p50": ("in_process_ms", "hybrid_search", "p50"),
    "keyword_search_p50": ("in_process_ms", "keyword_search", "p50"),
    "dense_search_p50": ("in_process_ms", "dense_search", "p50"),
    "http_clients_1_p50": ("http", "clients_1", "latency_ms", "p50"),
    "http_clients_1_p99": ("http", "clients_1", "latency_ms", "p99"),
    "http_clients_8_p50": ("http", "clients_8", "latency_ms", "p50"),
    "http_clients_8_p99": ("http", "clients_8", "latency_ms", "p99"),
    "write_seconds": ("write_seconds",),
    "bytes_on_disk": ("bytes_on_disk",),
    "service_rss_mb_max": ("service_rss_mb_max",),
}


def environment(checkout: Path) -> dict[str, str]:
    """This process's environment with the checkout first on PYTHONPATH."""
    rest = os.environ.get("PYTHONPATH")
    return {**os.environ, "PYTHONPATH": str(checkout) + (os.pathsep + rest if rest else "")}


def git(checkout: Path, *args: str) -> Optional[str]:
    """A read-only git query (commit, dirty state); None where it is not a git checkout."""
    done = subprocess.run(["git", "-C", str(checkout), *args], capture_output=True, text=True)
    return done.stdout.strip() if done.returncode == 0 else None


def imports(checkout: Path, python: Path) -> dict[str, Any]:
    """Which interpreter `hansard-search` next to `python` runs, and which files it imports service and indexer from."""
    script = shutil.which("hansard-search", path=str(python.parent)) or shutil.which("hansard-search")
    interpreter = str(python)
    if script:
        first = Path(script).read_text(encoding="utf-8", errors="replace").splitlines()[:1]
        if first and first[0].startswith("#!") and "python" in first[0]:
            interpreter = first[0][2:].strip().split()[0]
    probe = ("import json, service.cli, indexer.store, embeddings; "
             "print(json.dumps({m.__name__: m.__file__ for m in (service.cli, indexer.store, embeddings)}))")
    done = subprocess.run([interpreter, "-c", probe], capture_output=True, text=True, cwd=checkout,
                          env=environment(checkout))
    if done.returncode != 0:  # not fatal: its scale.py runs (and fails, recorded under "failed"); the other side stands
        print(f"{checkout}: its code does not import with {interpreter}:\n{done.stderr[-2000:]}", file=sys.stderr)
        return {"hansard_search": script, "interpreter": interpreter, "error": done.stderr[-2000:]}
    files = json.loads(done.stdout)
    foreign = [f for f in files.values() if not Path(f).resolve().is_relative_to(checkout)]
    if foreign:
        raise SystemExit(f"{checkout}: `hansard-search` would import other code: {foreign}")
    return {"hansard_search": script, "interpreter": interpreter, "modules": files}


def checkout_info(checkout: Path, python: Path) -> dict[str, Any]:
    if not (checkout / "bench" / "scale.py").is_file():
        raise SystemExit(f"{checkout}: no bench/scale.py")
    if not (checkout.parent / REAL_QUERIES).is_file():
        raise SystemExit(f"{checkout}: bench/load.py reads its queries from {checkout.parent / REAL_QUERIES}, "
                         "which is missing (give the checkout a `shared` beside it, e.g. a symlink)")
    status = git(checkout, "status", "--porcelain", "--untracked-files=no")
    return {"path": str(checkout), "python": str(python), "commit": git(checkout, "rev-parse", "HEAD"),
            "uncommitted_changes": None if status is None else bool(status), "imports": imports(checkout, python)}


def run_scale(checkout: Path, python: Path, size: int, args: argparse.Namespace, work: Path) -> dict[str, Any]:
    """One size through the checkout's own bench/scale.py; its scale.json, or {"error": ...} where it failed."""
    work.mkdir(parents=True, exist_ok=True)
    out = work / f"scale-{size}.json"
    out.unlink(missing_ok=True)
    source = args.candidate_source if checkout == ROOT else args.source
    command = [str(python), str(checkout / "bench" / "scale.py"), "--source", str(source),
               "--sizes", str(size), "--queries", str(args.queries), "--seconds", str(args.seconds),
               "--work", str(work), "--out", str(out), *(["--reuse"] if args.reuse else [])]
    print(f"== {checkout} [{size}]: {' '.join(command)}", file=sys.stderr, flush=True)
    done = subprocess.run(command, cwd=checkout, env=environment(checkout))
    if done.returncode != 0 or not out.is_file():
        return {"error": f"bench/scale.py exited with status {done.returncode}", "command": command}
    return json.loads(out.read_text(encoding="utf-8"))


def figure(entry: Optional[dict], path: tuple[str, ...]) -> Optional[float]:
    value: Any = entry
    for key in path:
        if not isinstance(value, dict) or key not in value:
            value = None
            break
        value = value[key]
    if value is None and entry is not None and path == ("service_rss_mb_max",):  # an older scale.py: derive it
        runs = [run for run in (entry.get("http") or {}).values() if isinstance(run, dict) and "rss_mb" in run]
        value = max((run["rss_mb"]["max"] for run in runs), default=None)
    return value if isinstance(value, (int, float)) and not isinstance(value, bool) else None


def ratios(baseline: Optional[dict], candidate: Optional[dict]) -> dict[str, Optional[float]]:
    out = {}
    for name, path in RATIOS.items():
        base, cand = figure(baseline, path), figure(candidate, path)
        out[name] = round(cand / base, 3) if base and cand is not None else None
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--baseline", type=Path, required=True, help="the other checkout")
    parser.add_argument("--baseline-python", type=Path,
                        help="its interpreter (default: <baseline>/.venv/bin/python if it exists, else this one)")
    parser.add_argument("--source", type=Path, required=True, help="an index of the full shared corpus")
    parser.add_argument("--candidate-source", type=Path,
                        help="the same corpus in an index the candidate can read, where its store format is newer "
                             "(default: --source)")
    parser.add_argument("--sizes", type=int, nargs="+", default=[43_461, 1_000_000])
    parser.add_argument("--queries", type=int, default=200)
    parser.add_argument("--seconds", type=float, default=30, help="per HTTP run")
    parser.add_argument("--work", type=Path, default=Path("/tmp/hansard-scale-compare"))
    parser.add_argument("--reuse", action="store_true", help="keep an index already written under --work for a size")
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "scale_compare.json")
    args = parser.parse_args()
    args.source = args.source.resolve()
    args.candidate_source = (args.candidate_source or args.source).resolve()
    args.work = args.work.resolve()

    baseline = args.baseline.resolve()
    own_venv = baseline / ".venv" / "bin" / "python"
    baseline_python = args.baseline_python or (own_venv if own_venv.exists() else Path(sys.executable))
    checkouts = {"baseline": (baseline, Path(os.path.abspath(baseline_python))),
                 "candidate": (ROOT, Path(sys.executable))}
    if checkouts["baseline"][0] == ROOT:
        raise SystemExit("--baseline is this checkout")

    results: dict[str, Any] = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"), "command": " ".join(sys.argv),
        "settings": {"source": str(args.source), "candidate_source": str(args.candidate_source), "sizes": args.sizes, "queries": args.queries,
                     "seconds": args.seconds, "reuse": args.reuse},
        "checkouts": {side: checkout_info(path, python) for side, (path, python) in checkouts.items()},
        "baseline": {"sizes": {}}, "candidate": {"sizes": {}}, "ratios": {}, "engines": {}, "failed": []}
    for side, info in results["checkouts"].items():
        modules = info["imports"].get("modules", {})
        print(f"{side}: {info['path']} at {info['commit']} with {info['python']}; "
              f"service from {modules.get('service.cli', 'nowhere: it does not import')}", file=sys.stderr)
    args.out.parent.mkdir(parents=True, exist_ok=True)

    for size in args.sizes:
        entries: dict[str, Optional[dict]] = {}
        for side in SIDES:
            path, python = checkouts[side]
            result = run_scale(path, python, size, args, args.work / side)
            if "error" in result:
                results["failed"].append({"side": side, "size": size, **result})
                print(f"== {side} [{size}] failed: {result['error']}", file=sys.stderr, flush=True)
                entries[side] = None
                continue
            for key, value in result.items():  # the header (date, command, noise_sigma) of the side's first run
                if key != "sizes":
                    results[side].setdefault(key, value)
            entries[side] = result["sizes"].get(str(size))
            results[side]["sizes"][str(size)] = entries[side]
        results["ratios"][str(size)] = ratios(entries["baseline"], entries["candidate"])
        results["engines"][str(size)] = {side: (entries[side] or {}).get("engine", "not reported" if entries[side] else None)
                                         for side in SIDES}
        args.out.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")  # after each size
        print(f"== [{size}] candidate / baseline: {json.dumps(results['ratios'][str(size)])}", file=sys.stderr, flush=True)

    print(json.dumps({"ratios": results["ratios"], "engines": results["engines"], "failed": results["failed"]}, indent=2))
    if results["failed"]:
        raise SystemExit(f"{len(results['failed'])} run(s) failed; see 'failed' in {args.out}")


if __name__ == "__main__":
    main()

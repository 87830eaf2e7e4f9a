"""Tuning "find similar": the speech vector, and the fusion weight of vectors and "more like this", on held-out halves.

Run by hand (never in CI) against an index of all of ../shared/data/hansard/xml:

    HANSARD_CACHE_DIR=/tmp/cache .venv/bin/python bench/similar.py --index /path/to/full-index

Two sets of seeds, each split into halves A and B by a fixed rule (natural-dev
cases by position, even/odd; QA questions by a hash of their id):

* natural-dev's 20 "similar" cases: a seed speech, its similar speeches
  judged by reading; scored by natural-dev's own tools/evaluate.py
  (`similar`, and `similar-x`: other debates only);
* the QA set's 3,242 questions, each a `text` seed, its answer the speech
  to find (nDCG@10 at speech level, the seed's own record left out).

For each variant (speech vector: the stored normalised mean of passage
vectors, or the length-weighted mean; "more like this" terms: 40, 100 or
250), the candidates are found once per seed
through the service's own code (`Searcher.seed`, `similar_candidates`) and
fused at every weight; the variant and weight are chosen on A (the mean of
both sets' A halves) and reported on B and on the whole. Results: bench/results/similar.json.
"""

from __future__ import annotations

import argparse
import hashlib
import json
import os
import statistics
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.store import Where  # noqa: E402
from indexer.store import words  # noqa: E402
from service.evaluate import load_queries, score_ranking  # noqa: E402
from service.search import Searcher  # noqa: E402
from service.search.ranking import Seed, similar_candidates  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hansard" / "eval"
NATURAL_DEV = DATA / "natural-dev"
WEIGHTS = tuple(round(w, 2) for w in np.arange(0.0, 1.01, 0.1))  # of the vector side
POOL = 100


class WeightedSpeeches:
    """A store whose speech vectors are the length-weighted mean of their passages' (the other variant measured)."""

    def __init__(self, store):
        self._store = store
        keys, rows = store.speech_key_of_row, store.speech_row_of
        vectors = store.vectors_at(np.arange(len(store)))
        lengths = np.zeros(len(store), dtype=np.float32)
        for vec, passage in store.iter_passages():
            lengths[vec] = len(passage.text)
        sums = np.zeros((len(keys), vectors.shape[1]), dtype=np.float64)
        np.add.at(sums, rows, vectors * lengths[:, None])
        self.matrix = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)
        self.row_of_key = {int(k): r for r, k in enumerate(keys.tolist())}

    def __getattr__(self, name):
        return getattr(self._store, name)

    def speech_vectors_at(self, keys):
        return self.matrix[[self.row_of_key[int(k)] for k in keys]]

    def speech_dense_scores(self, query, keys):
        return self.speech_vectors_at(keys) @ query.reshape(-1)

    def speech_dense(self, query, k, where=Where()):
        assert not where
        scores = self.matrix @ query.reshape(-1)
        top = np.argsort(-scores)[:k]
        return scores[top], self._store.speech_key_of_row[top]


def half_of_id(qid: str) -> str:
    return "A" if hashlib.sha1(qid.encode()).digest()[0] % 2 == 0 else "B"


class NaturalDev:
    """natural-dev's own scoring (tools/evaluate.py) of "similar" runs, per case, for `similar` and `similar-x`."""

    def __init__(self):
        sys.path.insert(0, str(NATURAL_DEV / "tools"))
        import evaluate as natural  # noqa: E402  (natural-dev's tools, stdlib only)
        import hcommon

        self.natural = natural
        self.qrels, self.seeds = natural.load_similar()
        speeches = hcommon.load_speeches()
        self.speech = {s["id"]: s for s in speeches}
        self.debate = hcommon.debate_keys(speeches)

    def per_case(self, run: dict[str, list[str]]) -> dict[str, dict[str, float]]:
        """{case: {"similar": nDCG@10, "similar-x": nDCG@10 over other debates (None: no judged speech there)}}."""
        _, plain = self.natural.evaluate(run, self.qrels, exclude=self.seeds)
        out = {case: {"similar": m["nDCG@10"], "similar-x": None} for case, m in plain.items()}
        for case, relevant in self.qrels.items():
            own = self.debate[self.seeds[case]]
            others = {d: g for d, g in relevant.items() if self.debate[d] != own}
            if others:
                ranked = [d for d in run.get(case, []) if d in self.speech and self.debate[d] != own]
                _, x = self.natural.evaluate({case: ranked}, {case: others}, exclude=self.seeds)
                out[case]["similar-x"] = x[case]["nDCG@10"]
        return out


def mean_of(values) -> float:
    values = [v for v in values if v is not None]
    return round(statistics.fmean(values), 4) if values else 0.0


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "similar.json")
    parser.add_argument("--qa-limit", type=int, default=None, help="only the first N QA questions (a quick look)")
    args = parser.parse_args()

    searcher = Searcher.open(args.index, load_encoder())
    store = searcher.index
    speech_of_key = {}

    def speech_ids(keys: np.ndarray) -> list[str]:
        missing = [int(k) for k in keys.tolist() if int(k) not in speech_of_key]
        for passage, key in zip(store.passages_at(missing), missing):
            speech_of_key[key] = passage.speech_id
        return [speech_of_key[int(k)] for k in keys.tolist()]

    cases = [json.loads(line) for line in (NATURAL_DEV / "similar.jsonl").read_text().splitlines() if line.strip()]
    qa = load_queries(DATA / "qa" / "queries.jsonl", DATA / "qa" / "qrels.tsv")[: args.qa_limit]
    qa_vectors = searcher.encoder.encode([q.text for q in qa])
    judge = NaturalDev()
    weighted = WeightedSpeeches(store)
    variants = {"mean, 40 terms": (store, 40), "mean, 100 terms": (store, 100), "mean, 250 terms": (store, 250),
                "length-weighted mean, 100 terms": (weighted, 100)}
    report: dict = {"index": str(args.index), "pool": POOL, "weights": WEIGHTS, "variants": {}}
    for variant, (index, terms) in variants.items():
        words.MORE_LIKE_THIS_TERMS = terms  # read at each call
        started = time.perf_counter()
        natural: dict[str, dict] = {}  # "A 0.3" -> {"similar": mean, "similar-x": mean}
        per_weight: dict[float, dict[str, list[str]]] = {w: {} for w in WEIGHTS}
        halves = {}
        for number, case in enumerate(cases):
            seed = searcher.seed(speech_ids=[case["seed"]])
            candidates = similar_candidates(index, seed, "hybrid", Where(), POOL, speeches=True)
            halves[case["_id"]] = "A" if number % 2 == 0 else "B"
            for weight in WEIGHTS:
                per_weight[weight][case["_id"]] = speech_ids(candidates.ranked("hybrid", weight).vecs[:POOL])
        for weight, run in per_weight.items():
            scores = judge.per_case(run)
            for part in ("A", "B", "all"):
                mine = [m for case, m in scores.items() if part == "all" or halves.get(case) == part]
                natural[f"{part} {weight}"] = {v: mean_of(m[v] for m in mine) for v in ("similar", "similar-x")}
        qa_scores: dict[str, list[float]] = {}
        for query, vector in zip(qa, qa_vectors):
            seed = Seed(vector.reshape(1, -1).astype(np.float32), query.text)
            candidates = similar_candidates(index, seed, "hybrid", Where(), POOL, speeches=True)
            for weight in WEIGHTS:
                ranked = speech_ids(candidates.ranked("hybrid", weight).vecs[:POOL])
                value = score_ranking(ranked, query)["ndcg@10"]
                for part in (half_of_id(query.id), "all"):
                    qa_scores.setdefault(f"{part} {weight}", []).append(value)
        qa_mean = {name: statistics.fmean(values) for name, values in qa_scores.items()}

        def objective(part: str, weight: float) -> float:  # what the weight is chosen by: both sets, equally
            return (natural[f"{part} {weight}"]["similar"] + qa_mean[f"{part} {weight}"]) / 2

        chosen = max(WEIGHTS, key=lambda w: objective("A", w))
        table = {str(w): {part: {"natural-dev similar": natural[f"{part} {w}"]["similar"],
                                 "natural-dev similar-x": natural[f"{part} {w}"]["similar-x"],
                                 "qa text seed ndcg@10": round(qa_mean[f"{part} {w}"], 4)}
                          for part in ("A", "B", "all")} for w in WEIGHTS}
        report["variants"][variant] = {"chosen_on_A": chosen, "objective_on_A": round(objective("A", chosen), 4),
                                       "at_chosen": table[str(chosen)], "by_weight": table,
                                       "seconds": round(time.perf_counter() - started, 1)}
        print(f"{variant}: weight {chosen} chosen on A; B: {table[str(chosen)]['B']}; all: {table[str(chosen)]['all']}")
        for w in WEIGHTS:
            print(f"  {w:<4} " + "  ".join(f"{part}: {table[str(w)][part]['natural-dev similar']:.3f}/"
                                           f"{table[str(w)][part]['natural-dev similar-x']:.3f}/"
                                           f"{table[str(w)][part]['qa text seed ndcg@10']:.3f}" for part in ("A", "B", "all")))
    best = max(report["variants"], key=lambda v: report["variants"][v]["objective_on_A"])
    report["chosen"] = {"variant": best, "weight": report["variants"][best]["chosen_on_A"],
                        "B": report["variants"][best]["at_chosen"]["B"], "all": report["variants"][best]["at_chosen"]["all"]}
    print("chosen on A:", json.dumps(report["chosen"]))
    args.out.write_text(json.dumps(report, indent=2) + "\n")


if __name__ == "__main__":
    os.environ.setdefault("HANSARD_MODEL_THREADS", "1")
    main()

"""Groundwork for "find similar, fused": how far the speech documents of the keyword engine go, on natural-dev.

Run by hand (never in CI) against an index of all of ../shared/data/hansard/xml:

    .venv/bin/python bench/similar_probe.py --index /path/to/full-index

For each natural-dev "similar" case it ranks speeches four ways, the seed
left out, and scores them with natural-dev's own tools/evaluate.py
(`similar` and `similar-x`, the other-debates variant):

* dense: the seed's mean passage vector against passages, a speech ranked by
  its best passage (what /similar does today);
* speech vectors: the seed's mean vector against every speech's mean vector;
* more like this: the keyword engine's speech documents, queried with the
  seed's most distinctive words (`EmbeddedStore.more_like_this`);
* fused: weighted sum of min-max normalised "more like this" and speech
  vector scores over the union of both top 100s, at several weights.

Twenty cases: choosing a weight here and reporting it is tuning on the test;
the figures say which direction is worth building, not the final number.
Results: bench/results/similar_probe.json.
"""

from __future__ import annotations

import argparse
import json
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from indexer.store import Location, open_store  # noqa: E402
from service.search.ranking import STOPWORDS, minmax  # noqa: E402

NATURAL_DEV = ROOT.parent / "shared" / "data" / "hansard" / "eval" / "natural-dev"
DEPTH = 100
WEIGHTS = (0.0, 0.2, 0.3, 0.4, 0.5, 0.6, 0.8, 1.0)  # of the speech vector in the fused score


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "similar_probe.json")
    args = parser.parse_args()

    store = open_store(Location.of(args.index))
    speech_of, first_vec = {}, {}
    for vec, passage in store.iter_passages():
        speech_of[vec] = passage.speech_id
        first_vec.setdefault(passage.speech_id, vec)
    speech_ids = sorted(first_vec)
    row_of = {sid: i for i, sid in enumerate(speech_ids)}
    vectors = store.vectors_at(np.arange(len(store)))
    sums = np.zeros((len(speech_ids), vectors.shape[1]), dtype=np.float64)
    np.add.at(sums, np.array([row_of[speech_of[v]] for v in range(len(store))]), vectors)
    speech_vectors = (sums / np.linalg.norm(sums, axis=1, keepdims=True)).astype(np.float32)

    cases = [json.loads(line) for line in (NATURAL_DEV / "similar.jsonl").read_text().splitlines() if line.strip()]
    runs: dict[str, list[tuple[str, str, float]]] = {}

    def add(name: str, qid: str, ranked: list[tuple[str, float]]) -> None:
        runs.setdefault(name, []).extend((qid, sid, score) for sid, score in ranked)

    for case in cases:
        seed = case["seed"]
        passages = store.speech(seed)
        if not passages:
            continue
        seed_vector = speech_vectors[row_of[seed]]
        # dense, as /similar ranks today
        scores, vecs = store.dense(seed_vector, 2_000)
        best: dict[str, float] = {}
        for score, vec in zip(scores.tolist(), vecs.tolist()):
            if speech_of[vec] != seed:
                best.setdefault(speech_of[vec], score)
        add("dense (today)", case["_id"], list(best.items())[:DEPTH])
        # speech vectors
        cosines = speech_vectors @ seed_vector
        order = [i for i in np.argsort(-cosines) if speech_ids[i] != seed][:DEPTH]
        vector_ranked = [(speech_ids[i], float(cosines[i])) for i in order]
        add("speech vectors", case["_id"], vector_ranked)
        # more like this over speech documents
        text = " ".join(p.text for p in passages)
        mlt_scores, mlt_vecs = store.more_like_this(text, DEPTH + 1, stopwords=STOPWORDS)
        mlt_ranked = [(speech_of[v], float(s)) for s, v in zip(mlt_scores.tolist(), mlt_vecs.tolist()) if speech_of[v] != seed][:DEPTH]
        add("more like this", case["_id"], mlt_ranked)
        # fused
        union = list(dict.fromkeys([sid for sid, _ in mlt_ranked] + [sid for sid, _ in vector_ranked]))
        mlt = dict(mlt_ranked)
        mlt_all = minmax(np.array([mlt.get(sid, 0.0) for sid in union], dtype=np.float32))
        vec_all = minmax(np.array([float(cosines[row_of[sid]]) for sid in union], dtype=np.float32))
        for weight in WEIGHTS:
            fused = weight * vec_all + (1 - weight) * mlt_all
            ranked = sorted(zip(union, fused.tolist()), key=lambda sv: -sv[1])[:DEPTH]
            add(f"fused, speech vector weight {weight}", case["_id"], ranked)

    results = {}
    with tempfile.TemporaryDirectory() as work:
        for name, rows in runs.items():
            run = Path(work) / "run.tsv"
            run.write_text("".join(f"{q}\t{d}\t{s}\n" for q, d, s in rows))
            results[name] = {}
            for variant in ("similar", "similar-x"):
                out = subprocess.run([sys.executable, str(NATURAL_DEV / "tools" / "evaluate.py"), variant, str(run)],
                                     capture_output=True, text=True, check=True).stdout.strip().splitlines()[-1]
                results[name][variant] = out
            print(f"{name:<36} {results[name]['similar']}\n{'':<36} {results[name]['similar-x']}")
    args.out.write_text(json.dumps({"index": str(args.index), "cases": len(cases), "runs": results}, indent=2) + "\n")


if __name__ == "__main__":
    main()

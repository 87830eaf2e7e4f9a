"""Fit and check the "nothing matches well" rule (service/search/confidence.py).

Run by hand against an index of all of ../shared/data/hansard/xml:

    HANSARD_CACHE_DIR=/tmp/fullcache .venv/bin/python bench/weak.py --index /tmp/fullidx5 [--scratch /tmp/weak]

For every query it measures the evidence `confidence.MatchEvidence` holds:
the best dense cosine against all passages, how many of its meaningful
words occur in some passage, and the top BM25 score. Queries:

- positives (on-topic): the QA questions (../shared/data/hansard/eval/qa;
  each question's own speech, its `exclude_ids`, is left out of the
  evidence, since it is in the corpus and would match itself), the
  natural-dev queries, and the distinct `original_query` values people typed
  into TheyWorkForYou (real-queries/twfy_vector_search_suggestions.json);
- negatives (off-topic): OFF_TOPIC below, written for this benchmark.

The queries of each group are split in two by position (even: fit, odd: held-out): a logistic
regression (class-balanced, small L2) is fitted on the "fit" half over
the candidate feature sets, the threshold chosen there so that at most
TARGET_FALSE_WEAK of on-topic queries fall below it; the figures reported
are those of the "held-out" half. Query vectors and evidence are cached
in --scratch. Results: bench/results/weak.json.
"""

from __future__ import annotations

import argparse
import datetime as dt
import json
import math
import sys
import time
from pathlib import Path

import numpy as np

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from embeddings.encoder import load_encoder  # noqa: E402
from indexer.store import Location, open_store  # noqa: E402
from indexer.store.base import fts_phrase  # noqa: E402
from service.search.confidence import meaningful_words  # noqa: E402
from service.search.ranking import BM25_WEIGHTS, keyword_query  # noqa: E402
from service.search.query import parse_query  # noqa: E402

DATA = ROOT.parent / "shared" / "data" / "hansard"
QA = DATA / "eval" / "qa"
NATURAL = DATA / "eval" / "natural-dev" / "queries.jsonl"
REAL = DATA / "real-queries" / "twfy_vector_search_suggestions.json"
TARGET_FALSE_WEAK = 0.015  # on the fit half, per on-topic group (natural-dev, real, QA); the goal is <= 2% held out

# Clearly off-topic for a corpus of UK Parliament debates: what a search box
# gets by mistake or in play. Kept deliberately far from politics.
OFF_TOPIC = [
    # recipes and food
    "chocolate brownie recipe with walnuts", "how long to boil a soft egg", "vegan lasagne with cashew bechamel",
    "sourdough starter not rising", "best marinade for chicken thighs", "gluten free pancake batter",
    "how to make ramen broth from pork bones", "lemon drizzle cake icing sugar", "homemade pesto basil pine nuts",
    "slow cooker beef stew red wine",
    # sport results
    "Arsenal vs Tottenham score last night", "who won the 1998 world cup final", "Lakers playoff schedule",
    "fantasy football captain picks gameweek 12", "Wimbledon men's singles seeding draw", "NBA three point record",
    "Formula 1 qualifying lap times Monaco", "golf swing tips for beginners slice",
    # programming
    "python list comprehension nested loop", "javascript undefined is not a function", "git rebase interactive squash",
    "segmentation fault core dumped c pointer", "how to center a div css flexbox", "kubernetes pod crashloopbackoff",
    "rust borrow checker lifetime error", "SQL left join vs inner join", "numpy reshape array dimensions",
    "react useEffect infinite loop", "docker compose port mapping", "regex match email address",
    # celebrity gossip and entertainment
    "Taylor Swift new boyfriend", "Kardashian wedding dress photos", "Brad Pitt Angelina Jolie divorce settlement",
    "best Netflix series to binge", "Marvel movie release order", "who plays the villain in the new Batman film",
    "Love Island contestants eliminated", "Beyonce tour setlist",
    # physics, maths and other jargon
    "quantum chromodynamics gluon confinement", "Schwarzschild radius of a black hole", "eigenvalues of a hermitian matrix",
    "Navier-Stokes equations turbulence", "string theory compactification Calabi-Yau", "Higgs boson decay channels",
    "Fourier transform of a Gaussian", "entropy of an ideal gas", "photosynthesis light dependent reactions",
    "mitochondria ATP synthase mechanism",
    # hobbies and miscellany
    "how to knit a cable stitch", "crochet amigurumi pattern", "best tent for wild camping", "guitar chords for wonderwall",
    "how to get rid of aphids on roses", "houseplant leaves turning yellow", "dog keeps barking at night",
    "cat litter box training kitten", "acrylic nail art designs", "how to fold a fitted sheet",
    "minecraft redstone door", "pokemon evolution levels", "chess opening sicilian dragon",
    "dream meaning of teeth falling out", "horoscope for scorpio this week",
    # gibberish
    "asdfghjkl qwerty", "xqzv plmk trbn", "lorem ipsum dolor sit amet", "zzzzzz", "blorfle snizzwump",
    "kjhgf dsaq wert", "qwpeoiruty", "flibbertigibbet wobblegong",
    # other languages
    "recette de la tarte tatin", "wie spät ist es in Berlin", "receta de paella valenciana",
    "come si dice buongiorno", "ich möchte ein Bier bestellen", "où est la bibliothèque",
    "cuál es tu color favorito", "東京の天気", "как приготовить борщ", "おいしいラーメンの作り方",
    "mein Hund frisst kein Futter", "quel temps fait-il à Lyon demain", "dónde está la playa más cercana",
    "wat is de beste fiets", "jak się masz dzisiaj", "qual é o melhor time de futebol",
    # more of each kind, some sharing words with debates
    "banana bread without eggs", "how to caramelise onions", "cocktail recipe with gin and elderflower",
    "pizza dough hydration percentage", "chicken tikka masala spice blend", "how to temper dark chocolate",
    "Liverpool transfer rumours striker", "snooker world championship final frame", "tennis racket string tension",
    "cricket batting averages Joe Root", "marathon training plan sub four hours", "darts nine dart finish",
    "java nullpointerexception stack trace", "how to install pip on windows", "typescript generic constraint extends",
    "bash for loop over files", "linux kernel panic on boot", "vim exit insert mode", "merge sort time complexity",
    "Harry Styles haircut", "Oscars red carpet dresses", "K-pop band comeback album", "royal baby name odds bookies",
    "reality tv star engagement ring", "superhero movie post credits scene",
    "neutrino oscillation mass hierarchy", "Bose-Einstein condensate temperature", "Riemann hypothesis zeros",
    "dark matter rotation curves galaxies", "CRISPR guide RNA design", "tectonic plate subduction zone",
    "how to tie a bow tie", "best way to clean suede shoes", "how to grow tomatoes in pots", "bonsai tree pruning",
    "fortnite battle pass skins", "rubik's cube algorithm beginner", "how to moonwalk",
    "my goldfish is floating upside down", "zodiac compatibility leo and aries", "hair dye for grey roots",
    "gfhdjs kdlsla", "wibble wobble jelly plate", "aaaa bbbb cccc", "12345 67890", "snorkmaiden moomin",
]




def load_sets() -> list[dict]:
    queries: list[dict] = []
    relevant: dict[str, list[str]] = {}
    with (QA / "qrels.tsv").open(encoding="utf-8") as f:
        next(f)
        for line in f:
            qid, doc, score = line.rstrip("\n").split("\t")
            if float(score) > 0:
                relevant.setdefault(qid, []).append(doc)
    with (QA / "queries.jsonl").open(encoding="utf-8") as f:
        for line in f:
            record = json.loads(line)
            if record["_id"] in relevant:
                queries.append({"group": "qa", "text": record["text"], "on_topic": True,
                                "exclude": record.get("metadata", {}).get("exclude_ids", [])})
    with NATURAL.open(encoding="utf-8") as f:
        for line in f:
            queries.append({"group": "natural-dev", "text": json.loads(line)["text"], "on_topic": True, "exclude": []})
    real = list(dict.fromkeys(r["original_query"].strip() for r in json.loads(REAL.read_text(encoding="utf-8"))))
    queries += [{"group": "real", "text": q, "on_topic": True, "exclude": []} for q in real if q]
    queries += [{"group": "off-topic", "text": q, "on_topic": False, "exclude": []} for q in OFF_TOPIC]
    position: dict[str, int] = {}
    for q in queries:  # by position within each group, alternately: fixed, and each group halved evenly
        place = position[q["group"]] = position.get(q["group"], -1) + 1
        q["half"] = "fit" if place % 2 == 0 else "held-out"
    return queries


def vectors_for(texts: list[str], scratch: Path) -> np.ndarray:
    """Query vectors, cached in scratch/vectors.npz by text."""
    path = scratch / "vectors.npz"
    cached: dict[str, np.ndarray] = {}
    if path.exists():
        with np.load(path, allow_pickle=False) as z:
            cached = dict(zip(z["texts"].tolist(), z["vectors"]))
    todo = [t for t in dict.fromkeys(texts) if t not in cached]
    if todo:
        encoder = load_encoder(use_cache=False)
        todo.sort(key=len)
        for start in range(0, len(todo), 64):
            batch = todo[start:start + 64]
            for t, v in zip(batch, encoder.embed_batch(batch)):
                cached[t] = np.asarray(v, dtype=np.float32)
            print(f"  encoded {min(start + 64, len(todo))}/{len(todo)}", file=sys.stderr, flush=True)
        keys = list(cached)
        np.savez(path, texts=np.array(keys), vectors=np.vstack([cached[k] for k in keys]))
    return np.vstack([cached[t] for t in texts])


def phrase_of(query: str) -> str:
    """The query's free-text words in order, as one phrase (confidence.phrase_of: 1 to 8 words, one or more meaningful)."""
    from service.search.confidence import phrase_of as module_phrase_of

    return module_phrase_of(query)


def evidence_for(store, queries: list[dict], vectors: np.ndarray) -> tuple[list[dict], dict]:
    """Each query's features, leaving out the passages of its `exclude` speeches; with the time each store call took."""
    doc_freq: dict[str, int] = {}
    timings = {"dense_1": [], "word_counts": [], "phrase_count": [], "bm25_top1": []}
    out = []
    for q, vector in zip(queries, vectors):
        excluded = np.concatenate([store.vecs_of_speech(s) for s in q["exclude"]]) if q["exclude"] else np.zeros(0, np.int64)
        t0 = time.perf_counter()
        scores, vecs = store.dense(vector[None, :], 1 + len(excluded))
        timings["dense_1"].append(time.perf_counter() - t0)
        keep = ~np.isin(vecs, excluded)
        best = float(scores[keep][0]) if keep.any() else 0.0

        words = meaningful_words(q["text"])
        t0 = time.perf_counter()
        dfs = []
        for w in words:
            if w not in doc_freq:
                doc_freq[w] = store.keyword_count(fts_phrase(w))
            count = doc_freq[w]
            if count and len(excluded):  # the question's own passages do not count
                count -= int((store.keyword_scores(fts_phrase(w), excluded) > 0).sum())
            dfs.append(count)
        matched = sum(1 for c in dfs if c > 0)
        timings["word_counts"].append(time.perf_counter() - t0)

        phrase = phrase_of(q["text"])
        phrase_found = False
        if phrase and matched == len(words):
            t0 = time.perf_counter()
            count = store.keyword_count(fts_phrase(phrase))
            if count and len(excluded):
                count -= int((store.keyword_scores(fts_phrase(phrase), excluded) > 0).sum())
            timings["phrase_count"].append(time.perf_counter() - t0)
            phrase_found = count > 0

        fts = keyword_query(parse_query(q["text"]))
        bm25 = 0.0
        if fts:
            t0 = time.perf_counter()
            kscores, kvecs = store.keyword(fts, 1 + len(excluded), weights=BM25_WEIGHTS)
            timings["bm25_top1"].append(time.perf_counter() - t0)
            kkeep = ~np.isin(kvecs, excluded)
            bm25 = float(kscores[kkeep][0]) if kkeep.any() else 0.0
        out.append({"best_cosine": best, "matched_words": matched, "query_words": len(words), "best_bm25": bm25,
                    "phrase_found": phrase_found, "word_df": dfs})
    return out, timings


# ---------------------------------------------------------------- fitting

FEATURE_SETS = {
    "cosine": ["best_cosine"],
    "cosine+word_share": ["best_cosine", "word_share"],
    "cosine+word_share+unmatched": ["best_cosine", "word_share", "unmatched"],
    "cosine+word_share+log_bm25": ["best_cosine", "word_share", "log_bm25"],
    "cosine+word_share+phrase": ["best_cosine", "word_share", "phrase_found"],
    "cosine+word_share+phrase+rare": ["best_cosine", "word_share", "phrase_found", "rare_share"],
}


CHOSEN = "cosine+word_share+phrase"  # service/search/confidence.py's rule
OPERATING_POINTS = (0.05, 0.1, 0.15, 0.2, 0.25, 0.3, 0.4, 0.5)


def feature(e: dict, name: str) -> float:
    if name == "best_cosine":
        return e["best_cosine"]
    if name == "word_share":
        return 1.0 if e["query_words"] == 0 else e["matched_words"] / e["query_words"]
    if name == "unmatched":
        return float(e["query_words"] - e["matched_words"])
    if name == "phrase_found":
        return 1.0 if e["phrase_found"] else 0.0
    if name == "rare_share":  # share of meaningful words in fewer than 5 passages
        return 0.0 if e["query_words"] == 0 else sum(1 for c in e["word_df"] if c < 5) / e["query_words"]
    if name == "log_bm25":
        return math.log1p(max(0.0, e["best_bm25"]))
    raise KeyError(name)


def fit_logistic(x: np.ndarray, y: np.ndarray, l2: float = 1e-3, iterations: int = 50) -> np.ndarray:
    """Class-balanced logistic regression by Newton's method; returns [intercept, coefficients...]."""
    X = np.hstack([np.ones((len(x), 1)), x])
    w_class = np.where(y == 1, 0.5 / max(1, y.sum()), 0.5 / max(1, (1 - y).sum()))
    beta = np.zeros(X.shape[1])
    reg = l2 * np.eye(X.shape[1])
    reg[0, 0] = 0
    for _ in range(iterations):
        p = 1 / (1 + np.exp(-np.clip(X @ beta, -30, 30)))
        grad = X.T @ (w_class * (p - y)) + reg @ beta
        hess = (X * (w_class * p * (1 - p))[:, None]).T @ X + reg
        step = np.linalg.solve(hess, grad)
        beta -= step
        if np.abs(step).max() < 1e-9:
            break
    return beta


def predict(beta: np.ndarray, x: np.ndarray) -> np.ndarray:
    return 1 / (1 + np.exp(-(beta[0] + x @ beta[1:])))


def choose_threshold(conf: np.ndarray, groups: np.ndarray) -> float:
    """The highest threshold under which at most TARGET_FALSE_WEAK of each on-topic group's queries fall."""
    limits = []
    for g in ("qa", "natural-dev", "real"):
        c = np.sort(conf[groups == g])
        if len(c):
            allowed = int(math.floor(TARGET_FALSE_WEAK * len(c)))  # this many may fall below
            limits.append(float(c[allowed]))  # a threshold at this value leaves `allowed` below it
    return min(limits)


def figures(conf: np.ndarray, groups: np.ndarray, threshold: float) -> dict:
    out = {}
    for g in ("qa", "natural-dev", "real", "off-topic"):
        c = conf[groups == g]
        weak = int((c < threshold).sum())
        key = "true_weak_rate" if g == "off-topic" else "false_weak_rate"
        out[g] = {"queries": int(len(c)), "weak": weak, key: round(weak / len(c), 4) if len(c) else None}
    on = np.isin(groups, ["qa", "natural-dev", "real"])
    correct = ((conf >= threshold) & on) | ((conf < threshold) & ~on)
    out["accuracy"] = round(float(correct.mean()), 4)
    # balanced: the mean of on-topic and off-topic accuracy
    out["balanced_accuracy"] = round(float(0.5 * ((conf[on] >= threshold).mean() + (conf[~on] < threshold).mean())), 4)
    return out


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--index", type=Path, required=True)
    parser.add_argument("--scratch", type=Path, default=Path("/tmp/weak"))
    parser.add_argument("--out", type=Path, default=ROOT / "bench" / "results" / "weak.json")
    parser.add_argument("--limit-qa", type=int, default=0, help="use only the first N QA questions (0: all)")
    args = parser.parse_args()
    args.scratch.mkdir(parents=True, exist_ok=True)

    queries = load_sets()
    if args.limit_qa:
        qa = [q for q in queries if q["group"] == "qa"][: args.limit_qa]
        queries = qa + [q for q in queries if q["group"] != "qa"]
    print({g: sum(q["group"] == g for q in queries) for g in ("qa", "natural-dev", "real", "off-topic")}, file=sys.stderr)
    vectors = vectors_for([q["text"] for q in queries], args.scratch)

    store = open_store(Location.of(args.index))
    ev_path = args.scratch / f"evidence3-{store.version}.json"
    cached = json.loads(ev_path.read_text()) if ev_path.exists() else {}
    todo = [i for i, q in enumerate(queries) if q["text"] not in cached]
    timings = {}
    if todo:
        started = time.perf_counter()
        found, timings = evidence_for(store, [queries[i] for i in todo], vectors[todo])
        print(f"  evidence for {len(todo)} queries in {time.perf_counter() - started:.1f} s", file=sys.stderr)
        for i, e in zip(todo, found):
            cached[queries[i]["text"]] = e
        ev_path.write_text(json.dumps(cached))
    evidence = [cached[q["text"]] for q in queries]

    groups = np.array([q["group"] for q in queries])
    y = np.array([1.0 if q["on_topic"] else 0.0 for q in queries])
    fit = np.array([q["half"] == "fit" for q in queries])

    report: dict = {
        "date": dt.date.today().isoformat(),
        "index": {"location": str(args.index), "passages": len(store), "version": store.version,
                  "model": store.model.key},
        "queries": {g: {"fit": int(((groups == g) & fit).sum()), "held_out": int(((groups == g) & ~fit).sum())}
                    for g in ("qa", "natural-dev", "real", "off-topic")},
        "target_false_weak_per_group_on_fit": TARGET_FALSE_WEAK,
        "feature_distributions": {},
        "candidates": {},
    }
    for g in ("qa", "natural-dev", "real", "off-topic"):
        sel = [e for e, gg in zip(evidence, groups) if gg == g]
        cos = np.array([e["best_cosine"] for e in sel])
        share = np.array([feature(e, "word_share") for e in sel])
        report["feature_distributions"][g] = {
            "best_cosine_p01_p10_p50_p90": [round(float(np.percentile(cos, p)), 3) for p in (1, 10, 50, 90)],
            "word_share_mean": round(float(share.mean()), 3),
            "all_words_found_share": round(float((share >= 1).mean()), 3),
        }

    for name, feats in FEATURE_SETS.items():
        x = np.array([[feature(e, f) for f in feats] for e in evidence])
        beta = fit_logistic(x[fit], y[fit])
        conf = predict(beta, x)
        threshold = choose_threshold(conf[fit], groups[fit])
        report["candidates"][name] = {
            "features": feats,
            "intercept": round(float(beta[0]), 4),
            "coefficients": {f: round(float(b), 4) for f, b in zip(feats, beta[1:])},
            "weak_below": round(threshold, 4),
            "fit": figures(conf[fit], groups[fit], threshold),
            "held_out": figures(conf[~fit], groups[~fit], threshold),
        }

    # The examples the tests pin, and the weakest on-topic / strongest off-topic held-out queries of the chosen rule.
    chosen = CHOSEN
    c = report["candidates"][chosen]
    x = np.array([[feature(e, f) for f in c["features"]] for e in evidence])
    beta = np.array([c["intercept"]] + [c["coefficients"][f] for f in c["features"]])
    conf = predict(beta, x)
    report["chosen"] = chosen
    report["chosen_operating_points_held_out"] = {
        str(t): {g: int(((conf < t) & (groups == g) & ~fit).sum()) for g in ("qa", "natural-dev", "real", "off-topic")}
        for t in OPERATING_POINTS}
    order = np.argsort(conf)
    report["held_out_false_weak_examples"] = [
        {"query": queries[i]["text"][:120], "group": queries[i]["group"], "confidence": round(float(conf[i]), 3),
         **evidence[i]} for i in order if not fit[i] and y[i] == 1 and conf[i] < c["weak_below"]][:20]
    report["held_out_missed_off_topic"] = [
        {"query": queries[i]["text"], "confidence": round(float(conf[i]), 3), **evidence[i]}
        for i in order[::-1] if not fit[i] and y[i] == 0 and conf[i] >= c["weak_below"]]
    if timings:
        report["store_call_ms_median"] = {k: round(1000 * float(np.median(v)), 3) for k, v in timings.items() if v}
        report["store_call_ms_p90"] = {k: round(1000 * float(np.percentile(v, 90)), 3) for k, v in timings.items() if v}
    args.out.write_text(json.dumps(report, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")
    print(json.dumps({k: report["candidates"][k]["held_out"] | {"weak_below": report["candidates"][k]["weak_below"]}
                      for k in report["candidates"]}, indent=1))


if __name__ == "__main__":
    main()

"""How passages are ranked: the modes, their weights, the keyword query, and fusion. One definition for every store.

Four modes:

- `dense`: cosine similarity of query and passage embeddings (meaning);
- `keyword`: BM25 over passage text, debate title and speaker (exact words,
  stemmed), with the title weighted twice;
- `hybrid` (default): both candidate lists, each candidate scored by both
  (not only by the list it came from), then a weighted sum of the two scores
  normalised per query; its dense score also reads the passage's debate
  title and neighbours (`context_scores`);
- `rrf`: plain reciprocal rank fusion (k=60), kept as the baseline hybrid beats.

The numbers were chosen by measurement (bench/fusion.py; docs/ranking.md,
"Ranking quality"). To add a mode, name it in MODES and rank it in `rank`.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Callable, Literal, Optional

import numpy as np

from indexer.sources.records import Passage
from indexer.store import Store, Where
from indexer.store.base import FIELD_WEIGHTS, fts_phrase
from service.search.query import ParsedQuery

Mode = Literal["hybrid", "dense", "keyword", "rrf"]
MODES: tuple[str, ...] = ("hybrid", "dense", "keyword", "rrf")
DEFAULT_MODE: Mode = "hybrid"
SimilarMode = Literal["hybrid", "dense", "keyword"]  # "find similar" has no rrf baseline
SIMILAR_MODES: tuple[str, ...] = ("hybrid", "dense", "keyword")

# Tuned on half of the QA set and checked on the other half (bench/fusion.py,
# bench/results/fusion.json): weight of the dense score in hybrid. The BM25
# weights of text, debate title and speaker are the stores' (FIELD_WEIGHTS).
HYBRID_DENSE_WEIGHT = 0.4
# In hybrid, a passage's dense score also reads what its own vector does not
# see: its debate's title, and its neighbours in the speech (the query's
# cosine with each, added at these weights). Tuned on half of the QA set,
# checked on the other: speech-level nDCG@10 +0.026 (bench/passage_ideas.py).
TITLE_WEIGHT = 0.4
NEIGHBOUR_WEIGHT = 0.25
BM25_WEIGHTS = FIELD_WEIGHTS
# Words in more passages than this share are left out of keyword queries.
MAX_DF_SHARE = 0.1
# Candidates taken from each ranking before fusing, grouping or date-sorting.
MIN_POOL = 100

STOPWORDS = frozenset(
    """a about above after again against all am an and any are as at be because been before being below between
    both but by can could did do does doing down during each few for from further had has have having he her here
    hers herself him himself his how i if in into is it its itself just me more most my myself no nor not now of
    off on once only or other our ours ourselves out over own same she should so some such than that the their
    theirs them themselves then there these they this those through to too under until up very was we were what
    when where which while who whom why will with would you your yours yourself yourselves""".split()
)
RRF_K = 60  # reciprocal rank fusion's constant


def weighted_fusion(dense: np.ndarray, bm25: np.ndarray, dense_weight: float) -> np.ndarray:
    """Weighted sum of the two scores, each min-max normalised over the candidates."""
    return dense_weight * minmax(dense) + (1 - dense_weight) * minmax(bm25)


def minmax(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def reciprocal_rank_fusion(rankings: list[np.ndarray], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Plain RRF: score = sum over rankings of 1 / (k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for place, vec in enumerate(ranking, start=1):
            scores[int(vec)] = scores.get(int(vec), 0.0) + 1.0 / (k + place)
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    return (
        np.array([s for _, s in ordered], dtype=np.float32),
        np.array([v for v, _ in ordered], dtype=np.int64),
    )


@dataclass
class Ranking:
    scores: np.ndarray
    vecs: np.ndarray
    exhausted: bool  # nothing beyond these could be ranked
    passages: Optional[list[Passage]] = None  # their metadata, when already fetched


def rank(store: Store, mode: Mode, vector: Optional[np.ndarray], fts: str, where: Where, pool: int) -> Ranking:
    """The top `pool` passages `where` allows, ranked by `mode`: dense, keyword, rrf or hybrid."""
    if mode == "dense" or (mode != "keyword" and not fts):
        scores, vecs = store.dense(vector, pool, where)
        return Ranking(scores, vecs, exhausted=len(vecs) < pool)
    if mode == "keyword":
        scores, vecs = store.keyword(fts, pool, where, BM25_WEIGHTS)
        return Ranking(scores, vecs, exhausted=len(vecs) < pool)
    if mode == "rrf":
        _, dense_vecs = store.dense(vector, pool, where)
        _, kw_vecs = store.keyword(fts, pool, where, BM25_WEIGHTS)
        scores, vecs = reciprocal_rank_fusion([dense_vecs, kw_vecs], RRF_K)
        return Ranking(scores, vecs, exhausted=len(dense_vecs) < pool and len(kw_vecs) < pool)
    scores, vecs, exhausted = hybrid(store, vector, fts, pool, where)
    return Ranking(scores, vecs, exhausted)


def hybrid(store: Store, query: np.ndarray, fts: str, k: int, where: Where, dense_weight: float = HYBRID_DENSE_WEIGHT,
           weights: tuple[float, float, float] = BM25_WEIGHTS) -> tuple[np.ndarray, np.ndarray, bool]:
    """Dense and keyword candidates (k of each), each scored by both, fused by a weighted sum of min-max normalised scores.

    Every candidate gets its real dense score and its real BM25 score (0
    where it holds none of the words), whichever list it came from.
    Returns (scores, vec ids, exhausted): exhausted when neither list could
    give k. A store that can do this arithmetic itself, next to its data,
    offers `hybrid_pushed_down` with the same definition (PostgreSQL, in one
    SQL statement).
    """
    pushed_down = getattr(store, "hybrid_pushed_down", None)
    if pushed_down is not None:
        return pushed_down(query, fts, k, where, dense_weight, weights, TITLE_WEIGHT, NEIGHBOUR_WEIGHT)
    dense_scores, dense_vecs = store.dense(query, k, where)
    kw_scores, kw_vecs = store.keyword(fts, k, where, weights)
    exhausted = len(dense_vecs) < k and len(kw_vecs) < k
    union = np.unique(np.concatenate([dense_vecs, kw_vecs]))
    dense_all, union_sorted = store.dense_scores(query, union)
    dense_all = dense_all + context_scores(store, query, union_sorted)
    bm25 = dict(zip(kw_vecs.tolist(), kw_scores.tolist()))
    # Dense candidates the keyword list missed: scored by the engine, given
    # just those passages (skipped when the list holds every match: they have none of the words).
    unscored = np.array([v for v in union_sorted.tolist() if v not in bm25], dtype=np.int64)
    if len(unscored) and len(kw_vecs) >= k:
        bm25.update(zip(unscored.tolist(), store.keyword_scores(fts, unscored, weights).tolist()))
    bm25_all = np.array([bm25.get(v, 0.0) for v in union_sorted.tolist()], dtype=np.float32)
    fused = weighted_fusion(dense_all, bm25_all, dense_weight)
    order = np.argsort(-fused, kind="stable")
    return fused[order], union_sorted[order], exhausted


# ---------------------------------------------------------------- speech-level ranking

# group_by=speech ranks speeches, not only their best passages: the best
# passage's score, the speech's own vector's cosine and its whole text's
# BM25, each min-max normalised over the candidate speeches, in a weighted
# sum. Tuned on half of the QA set and natural-dev, checked on the other
# halves (bench/passage_ideas.py; bench/README.md).
SPEECH_LEVEL_WEIGHTS = {"best passage": 0.6, "speech vector": 0.1, "speech keywords": 0.3}


def speech_level_scores(store: Store, mode: Mode, vector: Optional[np.ndarray], fts: str, keys: np.ndarray,
                        best: np.ndarray, weights: Optional[dict] = None) -> np.ndarray:
    """Each candidate speech's combined score (keys: the speeches; best: their best passages' scores)."""
    weights = SPEECH_LEVEL_WEIGHTS if weights is None else weights
    parts = [(weights["best passage"], np.asarray(best, dtype=np.float32))]
    if mode != "keyword" and vector is not None and weights["speech vector"]:
        parts.append((weights["speech vector"], np.asarray(store.speech_dense_scores(vector, keys), dtype=np.float32)))
    if mode != "dense" and fts and weights["speech keywords"]:
        parts.append((weights["speech keywords"], np.asarray(store.speech_keyword_scores(fts, keys), dtype=np.float32)))
    if len(parts) == 1:
        return parts[0][1]
    total = sum(weight for weight, _ in parts)
    return sum(weight * minmax(values) for weight, values in parts) / total


# ---------------------------------------------------------------- find similar

# Weight of the vector side when "find similar" fuses it with "more like
# this" (min-max normalised scores, as hybrid): tuned on the QA set's
# questions as seeds and on half of natural-dev's similar cases, checked on
# the other half (bench/similar.py, bench/results/similar.json).
SIMILAR_DENSE_WEIGHT = 0.2


@dataclass
class Seed:
    """What "find similar" looks near: a vector, the text its "more like this" query is made of, and what to leave out."""

    vector: np.ndarray
    text: str
    speeches: frozenset[str] = frozenset()  # the seeds' own speeches, never returned


@dataclass
class SimilarCandidates:
    """Speeches (keys) or passages (vecs) like a seed, each with its cosine and its "more like this" score (0: not in that list)."""

    ids: np.ndarray
    cosines: np.ndarray
    keyword: np.ndarray
    exhausted: bool  # neither list was cut short: nothing else could be found

    def ranked(self, mode: Mode, dense_weight: float = SIMILAR_DENSE_WEIGHT) -> Ranking:
        """Best first: by cosine (dense), by "more like this" (keyword), or by their weighted, normalised sum (hybrid)."""
        if mode == "dense":
            scores = self.cosines
        elif mode == "keyword" or not np.any(self.cosines):
            scores = self.keyword
        else:
            scores = weighted_fusion(self.cosines, self.keyword, dense_weight)
        order = np.argsort(-scores, kind="stable")
        return Ranking(scores[order], self.ids[order], self.exhausted)


def similar_candidates(store: Store, seed: Seed, mode: Mode, where: Where, pool: int, speeches: bool) -> SimilarCandidates:
    """The `pool` speeches (keys) or passages (vecs) most like the seed by each side that `mode` uses, its own speeches left out.

    The vector side: the seed's vector against speech vectors (or passage
    vectors); the keyword side: "more like this" over whole speeches (or
    passages). In hybrid, each candidate of either list gets its cosine; its
    "more like this" score is 0 where that list does not hold it.
    """
    own = set(_own(store, seed, speeches).tolist())
    want = pool + len(own)

    def without_own(scores: np.ndarray, ids: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        keep = np.array([int(i) not in own for i in ids], dtype=bool)
        return scores[keep], ids[keep]

    lists, exhausted = {}, True
    if mode != "keyword":
        found = store.speech_dense(seed.vector, want, where) if speeches else store.dense(seed.vector, want, where)
        exhausted = len(found[1]) < want
        lists["dense"] = without_own(*found)
    if mode != "dense":
        found = store.more_like_this(seed.text, want, where, speeches=speeches, stopwords=STOPWORDS)
        exhausted = exhausted and len(found[1]) < want
        lists["keyword"] = without_own(*found)
    ids = np.array(list(dict.fromkeys(v for _, found in lists.values() for v in found.tolist())), dtype=np.int64)
    if "dense" not in lists:
        cosines = np.zeros(len(ids), dtype=np.float32)
    elif speeches:
        cosines = np.asarray(store.speech_dense_scores(seed.vector, ids), dtype=np.float32)
    else:
        scores, vecs = store.dense_scores(seed.vector, ids)
        by_vec = dict(zip(vecs.tolist(), scores.tolist()))
        cosines = np.array([by_vec[v] for v in ids.tolist()], dtype=np.float32)
    like = dict(zip(lists["keyword"][1].tolist(), lists["keyword"][0].tolist())) if "keyword" in lists else {}
    keyword = np.array([like.get(v, 0.0) for v in ids.tolist()], dtype=np.float32)
    return SimilarCandidates(ids, cosines, keyword, exhausted)


def _own(store: Store, seed: Seed, speeches: bool) -> np.ndarray:
    """The seeds' own speeches' keys (or all their passages' vecs)."""
    vecs = [store.vecs_of_speech(speech_id) for speech_id in sorted(seed.speeches)]
    vecs = np.concatenate(vecs) if vecs else np.zeros(0, dtype=np.int64)
    return np.unique(store.speech_keys(vecs)) if speeches and len(vecs) else vecs


def context_scores(store: Store, query: np.ndarray, vecs: np.ndarray) -> np.ndarray:
    """What hybrid adds to each passage's cosine: the query's cosine with its title and with its neighbours, weighted."""
    if not len(vecs):
        return np.zeros(0, dtype=np.float32)
    titles, neighbours = store.context_vectors(vecs)
    q = query.reshape(-1).astype(np.float32)
    return (TITLE_WEIGHT * (titles @ q) + NEIGHBOUR_WEIGHT * (neighbours @ q)).astype(np.float32)


def keyword_query(parsed: ParsedQuery, too_common: Callable[[str], bool] = lambda word: False) -> str:
    """The FTS5 query that ranks a parsed query: any of its phrases or words.

    Stop words are left out, and so are words `too_common` flags (found in a
    large share of passages: they add little to BM25 and make the query slow),
    unless nothing else would be left. Phrases are required by the WHERE
    clause (exactly); here they only rank.
    """
    phrase_words = {w.lower() for p in parsed.phrases for w in p.split()}
    words = [t.lower() for t in parsed.terms]
    words = [w for w in dict.fromkeys(words) if w not in STOPWORDS and w not in phrase_words]
    kept = [w for w in words if not too_common(w)]
    if not kept and not parsed.phrases:
        kept = words
    return " OR ".join([fts_phrase(p) for p in parsed.phrases] + [fts_phrase(w) for w in kept])

"""Query -> ranked passages: the one place that turns a question (or a seed, for "similar") into a page of results.

The API, the CLI and the evaluation all call `Searcher.search`, so they rank
identically (the ranking itself is `service.search.ranking`). Filters and the
query's phrase and exclusion constraints are exact: they select the passages
that may be ranked before any ranking happens. Results are then paged,
grouped by speech or debate, sorted by date, counted by facet.
"""

from __future__ import annotations

import functools
import threading
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Literal, Optional, Sequence, Union

import numpy as np
from pydantic import ValidationError

from embeddings.encoder import Encoder
from indexer.sources.errors import validation_message
from indexer.sources.records import Passage
from indexer.store import FACET_NAMES, Location, Store, StoreDescription, Where, open_store
from indexer.store.base import Filters, check_model, fts_phrase, speech_vector
from service.search.confidence import WEAK_BELOW, confidence, measure
from service.search.highlight import Highlighter, PassageHighlight
from service.search.query import ParsedQuery, parse_query
from service.search.ranking import (BM25_WEIGHTS, DEFAULT_MODE, MAX_DF_SHARE, MIN_POOL, SIMILAR_DENSE_WEIGHT, Mode,
                                    Ranking, Seed, SimilarMode, keyword_query, rank, similar_candidates,
                                    speech_level_scores)

Sort = Literal["relevance", "date", "-date"]
GroupBy = Literal["passage", "speech", "debate"]

# How many of the most relevant passages `sort=date` orders by date, in the
# modes where every passage gets a score (dense, hybrid).
DATE_SORT_POOL = 200

# "Find similar" from a passage: its neighbours' vectors count half as much as its own.
NEIGHBOUR_WEIGHT = 0.5
MAX_SEED_TEXT = 200_000  # characters of the seeds' text "more like this" reads (ten long speeches)
MAX_SEEDS = 10  # speeches one "more like these" takes

# Facets (each store knows how to count them); counted over the top
# FACET_POOL candidates in the modes where every passage gets a score.
FACETS = FACET_NAMES
FACET_POOL = 200
FACET_VALUES = 50


class QueryError(ValueError):
    """A query or filter that cannot be run, with the parameter at fault."""

    def __init__(self, parameter: str, message: str):
        self.parameter = parameter
        super().__init__(f"{parameter}: {message}")


@dataclass
class SearchRequest:
    query: str
    k: int = 10
    offset: int = 0
    mode: Mode = DEFAULT_MODE
    filters: Filters = field(default_factory=Filters)
    sort: Sort = "relevance"
    group_by: GroupBy = "passage"


@dataclass
class Hit:
    passage: Passage
    score: float
    matches: Optional[int] = None  # passages of its group among the ranked candidates (group_by speech/debate)


@dataclass
class SearchPage:
    query: ParsedQuery
    filters: Filters  # inline filters merged with the parameters: what was applied
    mode: Mode
    total: int
    hits: list[Hit]
    candidates: np.ndarray = field(default_factory=lambda: np.zeros(0, dtype=np.int64))  # ranked vec ids
    # Where the matches are an exact set (keyword mode, filters alone): the FTS query ("" for none) and condition.
    match_set: Optional[tuple[str, Where]] = None
    vector: Optional[np.ndarray] = None  # the query's (or seed's) embedding, when one was made
    highlight_query: str = ""  # keyword query of all the query's words and phrases, for marking
    # How likely the top results answer the query (service.search.confidence); None where not measured (browsing, similar).
    confidence: Optional[float] = None
    weak: bool = False  # nothing matches well: the results are only the nearest


class Searcher:
    """A loaded index and the model that made it; shared by all requests."""

    def __init__(self, index: Store, encoder: Encoder, encode_lock: Optional[threading.Lock] = None):
        check_model(index.model, index.location, encoder.info)
        self.index = index
        self.encoder = encoder
        # A fast (Rust) tokenizer shared between threads can fail with
        # "Already borrowed"; queries take ~10 ms, so one at a time is cheap.
        # Shared by every Searcher of one service (old and new across a reload).
        self._encode_lock = encode_lock or threading.Lock()
        self._df: dict[str, int] = {}  # document frequency of words seen in queries
        # Given the locked encoder, not a method of this Searcher: a cycle
        # back to it would keep a replaced Searcher (and its store) in memory
        # until a garbage collection.
        self.highlighter = Highlighter(self.locked_encoder().encode)
        self.closed = False
        # Values a filter can usefully take here: an unknown section or party is
        # a mistake to report (422), not a question whose answer is "nothing".
        self.known_values = {
            name: {str(value).lower(): value for value, _ in index.facet_counts(name, limit=100_000) if value}
            for name in ("section", "party")
        }

    @classmethod
    def open(cls, location: Union[Location, Path], encoder: Encoder, encode_lock: Optional[threading.Lock] = None) -> "Searcher":
        """Open the store at `location` (or the index directory) for searching with `encoder`, the model that made it."""
        return cls(open_store(Location.of(location)), encoder, encode_lock)

    def locked_encoder(self) -> "LockedEncoder":
        """The model for other work (an admin write) that must take turns with the searches."""
        return LockedEncoder(self.encoder, self._encode_lock)

    @property
    def description(self) -> StoreDescription:
        """What the store holds and which model made it (for /stats and /health)."""
        return self.index.manifest

    def ping(self) -> None:
        """StoreUnavailable unless the store answers now (on PostgreSQL: is the database up?)."""
        self.index.ping()

    def close(self) -> None:
        """Close the store (its connections, files and memory maps); the Searcher is not used afterwards."""
        self.closed = True
        self.index.close()

    @functools.cached_property
    def breakdown(self) -> dict:
        """Passage counts by house and section, and the dates covered (for /stats)."""
        return self.index.breakdown()

    @property
    def total(self) -> int:
        return len(self.index)

    def _doc_freq(self, word: str) -> int:
        """How many passages hold a word (cached per word)."""
        df = self._df.get(word)
        if df is None:
            df = self.index.keyword_count(fts_phrase(word))
            if len(self._df) < 100_000:
                self._df[word] = df
        return df

    def _too_common(self, word: str) -> bool:
        """Whether a word is in more than MAX_DF_SHARE of passages."""
        return self._doc_freq(word) > MAX_DF_SHARE * len(self.index)

    def encode(self, text: str) -> np.ndarray:
        with self._encode_lock:
            return self.encoder.encode_query(text)

    def highlight(self, page: SearchPage) -> list[PassageHighlight]:
        """The sentences of each hit that best match the page's query (or seed), and its matched words."""
        return self.highlighter.page([hit.passage.text for hit in page.hits], page.highlight_query, page.vector)

    # ------------------------------------------------------------ the search

    def search(self, request: SearchRequest, vector: Optional[np.ndarray] = None) -> SearchPage:
        """One page of results. `vector` may carry the query's embedding, already computed."""
        parsed = parse_query(request.query)
        filters = self._filters(parsed, request.filters)
        where = self.index.where(filters, parsed.phrases, parsed.excluded)
        fts = keyword_query(parsed, self._too_common)
        rank_text = parsed.text or " ".join(parsed.phrases)
        if not rank_text and not fts:
            # Filters alone ("speaker:... from:..."): browse the matches by date.
            return self._browse(parsed, filters, where, request)
        if request.mode == "keyword" and not fts:
            raise QueryError("q", "keyword search needs at least one word that is not a stop word")
        if vector is None:  # (keyword mode too: whether anything matches well is measured in meaning as well)
            vector = self.encode(rank_text)
        page = self._ranked(request, parsed, filters, where, fts, vector if request.mode != "keyword" else None)
        page.vector = vector
        page.highlight_query = keyword_query(parsed)  # every word, the common ones too
        page.confidence = confidence(measure(self.index, request.query, vector, self._doc_freq, self._best_cosine(
            request, where, vector, page)))
        page.weak = page.confidence < WEAK_BELOW
        return page

    def _best_cosine(self, request: SearchRequest, where: Where, vector: np.ndarray, page: SearchPage) -> Optional[float]:
        """The query's best cosine against any passage, where the ranking already holds it (None: ask the store).

        An unfiltered dense or hybrid ranking by relevance took the dense top
        hits among its candidates: scoring those again costs less than one
        more nearest-neighbour search on the query's hot path.
        """
        if where or request.mode not in ("dense", "hybrid") or request.sort != "relevance" or not len(page.candidates):
            return None
        scores, _ = self.index.dense_scores(vector, page.candidates, 1)
        return float(scores[0]) if len(scores) else None

    def _ranked(self, request: SearchRequest, parsed: ParsedQuery, filters: Filters, where: Where, fts: str,
                vector: Optional[np.ndarray]) -> SearchPage:
        mode = request.mode
        distinct = request.group_by

        if mode == "keyword":
            total = self.index.keyword_count(fts, where, distinct)
        else:
            total = self.index.count(where, distinct)

        need = request.k + request.offset
        if mode == "keyword" and request.sort != "relevance":
            scores, vecs = self.index.keyword(fts, need * (1 if request.group_by == "passage" else 20), where,
                                              BM25_WEIGHTS, order=request.sort)
            ranking = Ranking(scores, vecs, exhausted=True)
            return self._page(parsed, filters, request, total, ranking, sort_by_date=False, match_set=(fts, where))

        pool = max(MIN_POOL, need)
        if request.sort != "relevance":
            pool = max(pool, DATE_SORT_POOL)
        ranking = self._deep_enough(lambda size: rank(self.index, mode, vector, fts, where, size), pool, need, request.group_by)
        speech_level = request.group_by == "speech" and request.sort == "relevance" and mode != "rrf"
        return self._page(parsed, filters, request, total, ranking, sort_by_date=request.sort != "relevance",
                          match_set=(fts, where) if mode == "keyword" else None,
                          rescore=(lambda hits: self._speech_level(hits, ranking, mode, vector, fts)) if speech_level else None)

    def _speech_level(self, hits: list[Hit], ranking: Ranking, mode: Mode, vector: Optional[np.ndarray], fts: str) -> list[Hit]:
        """Speeches (each shown by its best passage) ordered by their combined score: `ranking.speech_level_scores`."""
        if len(hits) < 2:
            return hits
        vec_of = {passage.id: vec for passage, vec in zip(ranking.passages, ranking.vecs.tolist())}
        keys = self.index.speech_keys(np.array([vec_of[hit.passage.id] for hit in hits], dtype=np.int64))
        scores = speech_level_scores(self.index, mode, vector, fts, keys, np.array([hit.score for hit in hits]))
        order = np.argsort(-scores, kind="stable")
        return [Hit(hits[i].passage, float(scores[i]), hits[i].matches) for i in order]

    def _deep_enough(self, rank: Callable[[int], Ranking], pool: int, need: int, group_by: GroupBy) -> Ranking:
        """Rank ever deeper (×4) until `need` results (passages or groups) are there, or nothing more is."""
        while True:
            ranking = rank(pool)
            if group_by != "passage":
                ranking.passages = self.index.passages_at(ranking.vecs)  # kept for _page: fetched once
            found = len(ranking.vecs) if group_by == "passage" else len({group_key(p, group_by) for p in ranking.passages})
            if found >= need or ranking.exhausted or pool >= len(self.index):
                return ranking
            pool *= 4

    def _filters(self, parsed: ParsedQuery, given: Filters) -> Filters:
        try:
            inline = Filters.model_validate(parsed.filters)
        except ValidationError as err:
            raise QueryError("q", "inline filter " + validation_message(err.errors(), default_field="filter")) from err
        try:
            merged = inline.merged(given)
        except ValidationError as err:  # e.g. an inline from: after the date_to parameter (no location: just the message)
            raise QueryError("date_from", validation_message(err.errors())) from err
        self.check_known(merged)
        return merged

    def check_known(self, filters: Filters) -> None:
        """Refuse a section or party this index has never seen, listing those it has."""
        for name, known in self.known_values.items():
            value = getattr(filters, name)
            if value is not None and value.lower() not in known:
                choices = sorted(known.values(), key=str.lower)
                listed = ", ".join(choices[:40]) + (f", ... ({len(choices)} in all)" if len(choices) > 40 else "")
                raise QueryError(name, f"no passage in this index has {name} {value!r}; it has: {listed or 'none'}")

    def _browse(self, parsed, filters, where, request: SearchRequest) -> SearchPage:
        distinct = request.group_by
        need = request.k + request.offset
        limit = need if request.group_by == "passage" else need * 20
        vecs = self.index.by_date(where, limit, newest_first=request.sort != "date")
        ranking = Ranking(np.zeros(len(vecs), dtype=np.float32), vecs, exhausted=True)
        total = self.index.count(where, distinct)
        return self._page(parsed, filters, request, total, ranking, sort_by_date=False, match_set=("", where))

    def _page(self, parsed, filters, request: SearchRequest, total: int, ranking: Ranking, sort_by_date: bool,
              match_set: Optional[tuple[str, Where]] = None,
              rescore: Optional[Callable[[list[Hit]], list[Hit]]] = None) -> SearchPage:
        vecs, scores = ranking.vecs, ranking.scores
        if ranking.passages is None and request.group_by == "passage" and not sort_by_date:
            # Only the page is read: a hybrid ranking holds 100-200 candidates, and
            # making each a Passage cost a sixth of a search's time (py-spy, 8 clients).
            vecs, scores = vecs[: request.offset + request.k], scores[: request.offset + request.k]
        passages = ranking.passages if ranking.passages is not None else self.index.passages_at(vecs)
        ranked = list(zip(passages, (float(s) for s in scores)))
        if sort_by_date:
            ranked = ranked[: max(DATE_SORT_POOL, request.k + request.offset)]
            dated = sorted((ps for ps in ranked if ps[0].date), key=lambda ps: ps[0].date, reverse=request.sort == "-date")
            ranked = dated + [ps for ps in ranked if not ps[0].date]  # undated last either way
        hits = _grouped(ranked, request.group_by)
        if rescore is not None:
            hits = rescore(hits)
        return SearchPage(parsed, filters, request.mode, total, hits[request.offset : request.offset + request.k],
                          candidates=ranking.vecs, match_set=match_set)

    def facets(self, page: SearchPage, fields: list[str]) -> tuple[dict[str, list[dict]], str]:
        """Counts by field over the page's matches, or over its top candidates where every passage scores.

        Returns the counts (most frequent first, FACET_VALUES at most a field)
        and what they were counted over.
        """
        if page.match_set is not None:
            fts, where = page.match_set
            over = "all matches"
            counts = {f: self.index.facet_counts(f, where=where, fts=fts or None, limit=FACET_VALUES) for f in fields}
        else:
            vecs = page.candidates[:FACET_POOL]
            over = f"top {len(vecs)} candidates"
            counts = {f: self.index.facet_counts(f, vecs=vecs, limit=FACET_VALUES) for f in fields}
        return {f: [{"value": v, "count": c} for v, c in rows] for f, rows in counts.items()}, over

    # ------------------------------------------------------------ find similar

    def seed(self, passage_id: Optional[str] = None, speech_ids: Sequence[str] = (), text: Optional[str] = None) -> Seed:
        """What to look near: one passage with its neighbours, one or more whole speeches, or a text.

        A speech is its own vector (the mean of its passages') and its whole
        text; several speeches, the mean of their vectors and all their text;
        a passage, its vector with its neighbours' at half weight, and their
        text. The debate's title leads the text, as it is part of every
        speech's keyword document (it gained 0.02 to 0.03 nDCG@10 on
        natural-dev's similar cases: bench/README.md). LookupError names an
        id the index does not hold.
        """
        if text is not None:
            return Seed(self.encode(text), text)
        if passage_id is not None:
            passage = self.index.passage(passage_id)
            if passage is None:
                raise LookupError(f"no passage with id {passage_id!r}")
            vecs = self.index.vecs_of_speech(passage.speech_id)
            at = int(np.flatnonzero(vecs == self.index.vec_of(passage_id))[0])
            around = vecs[max(at - 1, 0): at + 2]
            weights = np.where(around == vecs[at], 1.0, NEIGHBOUR_WEIGHT).astype(np.float32)
            vector = speech_vector(self.index.vectors_at(around) * weights[:, None])
            texts = [passage.debate or ""] + [p.text for p in self.index.passages_at(around)]
            return Seed(vector.reshape(1, -1), "\n\n".join(texts), frozenset([passage.speech_id]))
        keys, texts = [], []
        for speech_id in dict.fromkeys(speech_ids):
            passages = self.index.speech(speech_id)  # in speech order
            if not passages:
                raise LookupError(f"no speech with id {speech_id!r}")
            keys.append(self.index.vec_of(passages[0].id))  # a speech's key: its first passage's vec
            texts += [passages[0].debate or ""] + [p.text for p in passages]
        vector = speech_vector(self.index.speech_vectors_at(np.array(keys, dtype=np.int64)))
        return Seed(vector.reshape(1, -1), "\n\n".join(texts)[:MAX_SEED_TEXT], frozenset(speech_ids))

    def similar(self, seed: Seed, k: int = 10, offset: int = 0, filters: Optional[Filters] = None,
                group_by: GroupBy = "speech", mode: SimilarMode = DEFAULT_MODE,
                dense_weight: float = SIMILAR_DENSE_WEIGHT) -> SearchPage:
        """Speeches (each shown by its passage nearest the seed) or passages most like the seed; never the seeds' own speeches."""
        filters = filters or Filters()
        self.check_known(filters)
        where = self.index.where(filters)
        speeches = group_by == "speech"
        need = k + offset
        pool = max(MIN_POOL, need)
        while True:
            ranking = similar_candidates(self.index, seed, mode, where, pool, speeches).ranked(mode, dense_weight)
            if len(ranking.vecs) >= need or ranking.exhausted or pool >= len(self.index):
                break
            pool *= 4
        total = self.index.count(where, group_by)
        for speech_id in seed.speeches:
            total -= self.index.count(self.index.where(filters, speech_id=speech_id), group_by)
        scores, ids = ranking.scores[offset:need], ranking.vecs[offset:need]
        if speeches:
            hits = [Hit(passage, float(score), matches=None)
                    for passage, score in zip(self._nearest_passages(seed.vector, ids), scores)]
        else:
            hits = [Hit(passage, float(score)) for passage, score in zip(self.index.passages_at(ids), scores)]
        page = SearchPage(parse_query(""), filters, mode, max(total, 0), hits, candidates=ranking.vecs)
        page.vector = seed.vector
        return page

    def _nearest_passages(self, vector: np.ndarray, keys: np.ndarray) -> list[Passage]:
        """For each speech (by key), its passage nearest the vector: what a speech-level result shows."""
        best = []
        for first in self.index.passages_at(keys):
            _, vecs = self.index.dense_scores(vector, self.index.vecs_of_speech(first.speech_id), 1)
            best.append(int(vecs[0]))
        return self.index.passages_at(best)

    # ------------------------------------------------------------ records

    def passage(self, passage_id: str) -> Optional[Passage]:
        return self.index.passage(passage_id)

    def speech(self, speech_id: str) -> list[Passage]:
        return self.index.speech(speech_id)

    def debate(self, debate_id: str, limit: int) -> list[Passage]:
        return self.index.debate(debate_id, limit)

    def debates_on(self, date):
        return self.index.debates_on(date)


class LockedEncoder:
    """An Encoder whose calls take a lock, one at a time; other attributes pass through."""

    def __init__(self, encoder: Encoder, lock: threading.Lock):
        self._encoder, self._lock = encoder, lock

    def __getattr__(self, name):
        return getattr(self._encoder, name)

    def encode(self, texts, progress: bool = False) -> np.ndarray:
        with self._lock:
            return self._encoder.encode(texts, progress=progress)

    def count_tokens(self, text: str) -> int:
        with self._lock:
            return self._encoder.count_tokens(text)


# ---------------------------------------------------------------- pure helpers

def group_key(passage: Passage, group_by: GroupBy):
    if group_by == "speech":
        return passage.speech_id
    if group_by == "debate":
        return (passage.date, passage.debate)
    return passage.id


def _grouped(ranked: list[tuple[Passage, float]], group_by: GroupBy) -> list[Hit]:
    if group_by == "passage":
        return [Hit(p, s) for p, s in ranked]
    best: dict = {}
    for passage, score in ranked:
        key = group_key(passage, group_by)
        if key in best:
            best[key].matches += 1
        else:
            best[key] = Hit(passage, score, matches=1)
    return list(best.values())  # dicts keep insertion order: best first

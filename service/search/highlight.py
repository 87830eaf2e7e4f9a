"""Which sentences of a result best match the query, so a portal can show or mark them.

Two signals, the cheap one first:

1. Words. The query's words and phrases are matched against each sentence
   with the words and stems keyword search uses (`indexer.store.words`),
   so "railways" marks "railway". The sentences with the best BM25 score
   (over the page's sentences) are chosen and every matched word or phrase
   is marked.
2. Meaning. A passage found by dense search may share no word with the
   query ("high speed rail" finding a passage about "HS2"). Its sentences
   are then embedded and the nearest to the query vector is chosen. That
   costs about 20 ms a sentence on a 2-core CPU, so it is bounded per page
   (SEMANTIC_BUDGET sentences) and sentence vectors are kept in an LRU cache.

All offsets are character offsets into the passage text (Python string
indices), end exclusive.
"""

from __future__ import annotations

import math
import threading
from collections import OrderedDict
from dataclasses import dataclass, field
from typing import Callable, Optional

import numpy as np

from indexer.sources.passages import sentence_spans
from indexer.store.words import parse_keyword_query, spans, stems

SEMANTIC_BUDGET = 60  # sentences embedded per page at most
MAX_SENTENCES = 2  # sentences named per passage at most
SECOND_SHARE = 0.75  # a second sentence is named when it scores at least this share of the best
CACHE_SIZE = 20_000  # sentence vectors kept


@dataclass
class Sentence:
    start: int
    end: int
    text: str
    # BM25 over the page's sentences (by="words"), cosine similarity (by="meaning"),
    # or None where the passage is a single sentence and there was nothing to compare.
    score: Optional[float]


@dataclass
class PassageHighlight:
    sentences: list[Sentence] = field(default_factory=list)
    marks: list[tuple[int, int]] = field(default_factory=list)  # matched query words
    by: Optional[str] = None  # "words", "meaning", or None when nothing was chosen


BM25_K1, BM25_B = 1.2, 0.75


def word_matches(sentences: list[str], fts_query: str) -> dict[int, tuple[float, list[tuple[int, int]]]]:
    """For each sentence (by index) holding any of `fts_query`'s words or phrases: its BM25 score among the sentences, and the marks."""
    phrases = [terms for terms in dict.fromkeys(tuple(stems(p)) for p in parse_keyword_query(fts_query)) if terms]
    if not phrases or not sentences:
        return {}
    words = [spans(sentence) for sentence in sentences]
    found: list[dict[tuple, list[tuple[int, int]]]] = [
        {phrase: hits for phrase in phrases if (hits := _occurrences(sentence_words, phrase))} for sentence_words in words]
    holding = {phrase: sum(1 for f in found if phrase in f) for phrase in phrases}
    average = max(sum(len(w) for w in words) / len(words), 1.0)
    out = {}
    for n, matches in enumerate(found):
        if not matches:
            continue
        norm = BM25_K1 * (1 - BM25_B + BM25_B * len(words[n]) / average)
        score = sum(math.log(1 + (len(sentences) - holding[phrase] + 0.5) / (holding[phrase] + 0.5))
                    * len(hits) * (BM25_K1 + 1) / (len(hits) + norm) for phrase, hits in matches.items())
        out[n] = (score, sorted({mark for hits in matches.values() for mark in hits}))
    return out


def _occurrences(sentence_words: list[tuple[str, int, int]], phrase: tuple[str, ...]) -> list[tuple[int, int]]:
    """(start, end) of each place the phrase's terms stand in a row among the sentence's words."""
    terms = [term for term, _, _ in sentence_words]
    size = len(phrase)
    return [(sentence_words[i][1], sentence_words[i + size - 1][2])
            for i in range(len(terms) - size + 1) if tuple(terms[i: i + size]) == phrase]


def choose(scores: list[Optional[float]]) -> list[int]:
    """Indexes of the best sentence and, if close behind, the next best; in text order."""
    if not scores:
        return []
    if len(scores) == 1 or scores[0] is None:
        return [0]
    order = sorted(range(len(scores)), key=lambda i: -scores[i])
    best = scores[order[0]]
    chosen = [order[0]]
    for i in order[1:MAX_SENTENCES]:
        if best > 0 and scores[i] >= SECOND_SHARE * best:
            chosen.append(i)
    return sorted(chosen)


class Highlighter:
    """Chooses and marks sentences for a page of results. Thread-safe; one per service."""

    def __init__(self, encode_many: Callable[[list[str]], np.ndarray]):
        self._encode_many = encode_many
        self._vectors: OrderedDict[str, np.ndarray] = OrderedDict()
        self._lock = threading.Lock()

    def page(self, texts: list[str], fts_query: str, vector: Optional[np.ndarray]) -> list[PassageHighlight]:
        spans = [sentence_spans(text) for text in texts]
        flat = [(p, i) for p, passage_spans in enumerate(spans) for i in range(len(passage_spans))]
        sentence_texts = [texts[p][slice(*spans[p][i])] for p, i in flat]
        matched = word_matches(sentence_texts, fts_query)

        out = [PassageHighlight() for _ in texts]
        by_passage: dict[int, dict[int, tuple[float, list[tuple[int, int]]]]] = {}
        for n, (p, i) in enumerate(flat):
            if n in matched:
                by_passage.setdefault(p, {})[i] = matched[n]
        for p, found in by_passage.items():
            scores = [found.get(i, (0.0, []))[0] for i in range(len(spans[p]))]
            out[p].sentences = [self._sentence(texts[p], spans[p][i], scores[i]) for i in choose(scores)]
            out[p].marks = [(spans[p][i][0] + a, spans[p][i][0] + b) for i, (_, marks) in sorted(found.items()) for a, b in marks]
            out[p].by = "words"

        if vector is not None:
            budget = SEMANTIC_BUDGET
            for p, passage_spans in enumerate(spans):
                if out[p].by or not passage_spans or len(passage_spans) > budget:
                    continue
                budget -= len(passage_spans) if len(passage_spans) > 1 else 0
                scores = self._cosines([texts[p][slice(*s)] for s in passage_spans], vector)
                out[p].sentences = [self._sentence(texts[p], passage_spans[i], scores[i]) for i in choose(scores)]
                out[p].by = "meaning"
        return out

    @staticmethod
    def _sentence(text: str, span: tuple[int, int], score: Optional[float]) -> Sentence:
        return Sentence(span[0], span[1], text[span[0] : span[1]], None if score is None else round(float(score), 4))

    def _cosines(self, sentences: list[str], vector: np.ndarray) -> list[Optional[float]]:
        if len(sentences) == 1:
            return [None]  # nothing to choose between; no need to embed
        with self._lock:
            todo = [s for s in dict.fromkeys(sentences) if s not in self._vectors]
        fresh = self._encode_many(todo) if todo else np.zeros((0, vector.shape[-1]), dtype=np.float32)
        with self._lock:
            for sentence, v in zip(todo, fresh):
                self._vectors[sentence] = v
            for sentence in sentences:
                self._vectors.move_to_end(sentence)
            while len(self._vectors) > CACHE_SIZE:
                self._vectors.popitem(last=False)
            matrix = np.stack([self._vectors[s] for s in sentences])
        return [float(x) for x in matrix @ vector.reshape(-1)]

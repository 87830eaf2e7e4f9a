"""Whether a search found anything close: a calibrated confidence, and `weak` when it is low.

A query about something Parliament has not discussed still gets ten
results (the nearest passages); this module says when they are only the
nearest, not an answer. It is pure: the caller measures a `MatchEvidence`
(see "Measuring" below) and asks `confidence` / `is_weak`.

The rule (logistic regression, fitted by bench/weak.py on half of its
queries and checked on the other half; bench/results/weak.json):

    z = INTERCEPT + COSINE * best_cosine + WORD_SHARE * word_share + PHRASE * phrase_found
    confidence = 1 / (1 + exp(-z))
    weak = confidence < WEAK_BELOW

    INTERCEPT = -9.03, COSINE = 11.21, WORD_SHARE = 3.71, PHRASE = 2.09, WEAK_BELOW = 0.25

where

- `best_cosine` is the top cosine of the query's embedding against every
  passage (unit vectors; the dense ranking's best score, no filters);
- `word_share` is the share of the query's meaningful words (not stop words,
  `service.search.ranking.STOPWORDS`) that occur in at least one passage;
  a query with no meaningful word has nothing to share, and counts as 1.0
  (its confidence then rests on the cosine alone);
- `phrase_found` (0 or 1) is whether the query's words, in order, occur as
  one phrase in some passage (`phrase_of`: queries of 1 to 8 words, one or
  more of them meaningful, all found; a one-word query's phrase is its word).
  It keeps a name ("michael tomlinson"), a bill's title or a single word
  ("Chinese") from being called weak: embeddings of names and lone words
  are poor, but the exact phrase is strong evidence.

In words: weak when the best cosine is below about 0.38 and every word is
found (0.19 if the query also occurs as a phrase), and sooner when words
are missing (below 0.54 when half of them are, 0.71 when none is found).

`best_bm25` is carried for the record (and for benchmarks) but not used:
BM25 scores grow with query length and corpus statistics, so a fixed
coefficient on them does not transfer between indexes.

Positives were on-topic queries (the QA questions, the natural-dev queries,
queries people typed into TheyWorkForYou), negatives off-topic ones
(recipes, sport, code, gossip, physics, gibberish, other languages). The
threshold was chosen so that almost no on-topic query is called weak: it
is a "say so" notice, never a reason to hide results.

Measuring, inside a search (`measure` does exactly this on any Store):

- `store.dense(vector, 1)`: the best cosine (one nearest neighbour,
  unfiltered; the hybrid and dense modes already compute the query vector).
  A flat index scans every vector whatever k, so this costs what the
  ranking's own dense call does (~20 ms at 43k); unfiltered, the same
  number is the max of `store.dense_scores(vector, ranked candidates)`,
  since the hybrid and dense candidates hold the dense top passages;
- `store.keyword_count(fts_phrase(word))` for each meaningful word: the
  Searcher's `_too_common` already asks this for every query word (and
  caches it per word), so with its cache the word counts cost nothing more;
- `store.keyword_count(fts_phrase(phrase_of(query)))`, once, when every
  word was found and the query is 1 to 8 words (~0.2 ms on 43k passages).
"""

from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Callable, Optional

# Fitted by bench/weak.py (--index: the full shared corpus, 43,461 passages,
# all-MiniLM-L6-v2 onnx-int8) on the "fit" half of its queries; figures on the
# other half in bench/results/weak.json. Rerun it after changing the model.
# Candidate "cosine+word_share+phrase" there.
INTERCEPT = -9.0303
COSINE = 11.2125
WORD_SHARE = 3.7127
PHRASE = 2.0861
# Chosen on the fit half (0.254, rounded) so that at most 1.5% of each
# on-topic group falls below it; held out: 0/1,621 QA, 0/15 natural-dev,
# 3/207 real queries (1.4%) weak, 60/66 off-topic (91%) weak.
WEAK_BELOW = 0.25

_WORD = re.compile(r"\w+(?:['’]\w+)*")


@dataclass(frozen=True)
class MatchEvidence:
    """What a query's best matches look like: the features `confidence` reads."""

    best_cosine: float  # top dense cosine of the query against all passages (-1..1)
    matched_words: int  # meaningful query words found in at least one passage
    query_words: int  # meaningful query words (not stop words), counted once each
    phrase_found: bool = False  # the query, 1..8 words, occurs as a phrase somewhere (phrase_of); False if not measured
    best_bm25: Optional[float] = None  # top BM25 score of the keyword query, if measured (not used by the rule)

    @property
    def word_share(self) -> float:
        """Share of meaningful words found somewhere; 1.0 for a query without any."""
        if self.query_words <= 0:
            return 1.0
        return min(1.0, max(0.0, self.matched_words / self.query_words))


def confidence(evidence: MatchEvidence) -> float:
    """0..1 estimate that the top results hold a relevant answer (the module's rule).

    Calibrated as the probability of "on-topic" on bench/weak.py's queries,
    the two classes weighted equally (0.5: even odds); not against judged
    answers query by query.
    """
    cosine = evidence.best_cosine
    if not math.isfinite(cosine):
        cosine = 0.0
    z = (INTERCEPT + COSINE * min(1.0, max(-1.0, cosine)) + WORD_SHARE * evidence.word_share
         + PHRASE * (1.0 if evidence.phrase_found else 0.0))
    if z >= 0:
        return 1.0 / (1.0 + math.exp(-z))
    e = math.exp(z)
    return e / (1.0 + e)


def is_weak(evidence: MatchEvidence) -> bool:
    """True when nothing matches well: confidence below WEAK_BELOW."""
    return confidence(evidence) < WEAK_BELOW


def meaningful_words(query: str) -> list[str]:
    """The query's words that count: lower-cased, once each, stop words and filters (speaker:...) left out.

    Words of quoted phrases count; excluded words (-word) do not.
    """
    from service.search.query import parse_query
    from service.search.ranking import STOPWORDS

    parsed = parse_query(query)
    words = [w.lower() for w in parsed.terms] + [w.lower() for p in parsed.phrases for w in _WORD.findall(p)]
    return [w for w in dict.fromkeys(words) if w not in STOPWORDS]


def phrase_of(query: str, longest: int = 8) -> str:
    """The query's free-text words in order, as one phrase to look for ("" unless 1..longest words, 1+ meaningful).

    A query of one word is its own phrase: found when the word is.
    """
    from service.search.query import parse_query
    from service.search.ranking import STOPWORDS

    terms = parse_query(query).terms
    meaningful = {t.lower() for t in terms} - STOPWORDS
    if not 1 <= len(terms) <= longest or not meaningful:
        return ""
    return " ".join(terms)


def measure(store, query: str, vector, doc_freq: Optional[Callable[[str], int]] = None,
            best_cosine: Optional[float] = None) -> MatchEvidence:
    """The evidence for `query` (its embedding `vector`) on `store`.

    One nearest neighbour (unless `best_cosine`, already known, is given),
    one count per meaningful word, one phrase count.

    `doc_freq(word)` may supply the passages holding a word (the Searcher's
    cached counts); by default the store is asked: `keyword_count(fts_phrase(word))`.
    """
    from indexer.store.base import fts_phrase

    words = meaningful_words(query)
    if doc_freq is None:
        def doc_freq(word: str) -> int:
            return store.keyword_count(fts_phrase(word))
    matched = sum(1 for w in words if doc_freq(w) > 0)
    phrase = phrase_of(query) if words and matched == len(words) else ""
    if phrase and " " not in phrase:  # a one-word query: its phrase is its word, just found
        phrase_found = True
    else:
        phrase_found = bool(phrase) and store.keyword_count(fts_phrase(phrase)) > 0
    best = 0.0 if best_cosine is None else best_cosine
    if vector is not None and best_cosine is None:
        scores, _ = store.dense(vector, 1)
        if len(scores):
            best = float(scores[0])
    return MatchEvidence(best_cosine=best, matched_words=matched, query_words=len(words), phrase_found=phrase_found)

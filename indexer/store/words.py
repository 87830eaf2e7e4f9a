"""Words as keyword search sees them: one tokeniser and stemmer for the embedded store's engine and for highlighting.

Text is cut at letters and digits (as SQLite FTS5's unicode61 tokeniser cut
it), lower-cased, accents folded and stemmed with Snowball English (the
stemmer PostgreSQL's `english` configuration uses too), so "railways"
matches and marks "railway". A keyword query is the stores' own language:
quoted phrases joined by OR (`indexer.store.base.fts_phrase`).
"""

from __future__ import annotations

import functools
import math
import re
from typing import Callable, Iterable, Optional

import tantivy

MAX_WORD_BYTES = 40  # longer "words" (URLs, runs of digits) are not indexed
_WORD = re.compile(r"[^\W_]+")  # letters and digits: tantivy's simple tokeniser, in Python
_PHRASE = re.compile(r'"((?:[^"]|"")*)"|(\S+)')


def analyzer() -> "tantivy.TextAnalyzer":
    """The analyser the keyword index is written and searched with."""
    return (tantivy.TextAnalyzerBuilder(tantivy.Tokenizer.simple())
            .filter(tantivy.Filter.remove_long(MAX_WORD_BYTES))
            .filter(tantivy.Filter.lowercase())
            .filter(tantivy.Filter.ascii_fold())
            .filter(tantivy.Filter.stemmer("english"))
            .build())


_ANALYZER = analyzer()


def stems(text: str) -> list[str]:
    """The terms the keyword index holds for a text."""
    return _ANALYZER.analyze(text)


@functools.lru_cache(maxsize=100_000)
def stem(word: str) -> str:
    """One word's term ("" for none: too long)."""
    found = _ANALYZER.analyze(word)
    return found[0] if found else ""


def spans(text: str) -> list[tuple[str, int, int]]:
    """(term, start, end) of each word of a text: character offsets, end exclusive."""
    return [(term, m.start(), m.end()) for m in _WORD.finditer(text) if (term := stem(m.group()))]


def parse_keyword_query(keyword_query: str) -> list[str]:
    """The phrases of a keyword query (`fts_phrase`s joined by OR; a bare word is a phrase of one), unquoted."""
    phrases = []
    for quoted, bare in _PHRASE.findall(keyword_query or ""):
        if quoted or bare != "OR":
            phrases.append(quoted.replace('""', '"') if quoted else bare)
    return phrases


# "More like this" (as Lucene's MoreLikeThis): a long text becomes its most
# distinctive terms, by tf-idf against the index being searched.
# Terms kept: 250 was chosen over 40 and 100 on half of natural-dev's similar
# cases and of the QA set (bench/similar.py); a long speech has more.
MORE_LIKE_THIS_TERMS = 250
MORE_LIKE_THIS_MIN_DF = 2  # a term in fewer documents (a typo, a one-off name) says nothing about others
MORE_LIKE_THIS_MAX_DF_SHARE = 0.5  # nor does one in most of them


def candidate_terms(text: str, stopwords: Iterable[str] = ()) -> dict[str, int]:
    """{term: its count in the text} of the terms "more like this" may keep: three letters or more, not a number, not a stop word."""
    skip = {s for word in stopwords for s in stems(word)}
    counts: dict[str, int] = {}
    for term in stems(text):
        if len(term) > 2 and not term.isdigit() and term not in skip:
            counts[term] = counts.get(term, 0) + 1
    return counts


def distinctive_terms(text: str, doc_freq: Callable[[str], int], documents: int, stopwords: Iterable[str] = (),
                      terms: Optional[int] = None, min_df: int = MORE_LIKE_THIS_MIN_DF) -> list[tuple[str, float]]:
    """(term, weight) of a text's most distinctive terms, best first; weights scaled so the best is 1.

    A term's tf-idf is its count in the text times log(1 + documents / df);
    terms of fewer than three letters, numbers, stop words, and terms in
    fewer than `min_df` or more than half of the documents are left out.
    At most `terms` are kept (None: MORE_LIKE_THIS_TERMS).
    """
    terms = MORE_LIKE_THIS_TERMS if terms is None else terms
    counts = candidate_terms(text, stopwords)
    n = max(documents, 1)
    scored = []
    for term, tf in counts.items():
        df = doc_freq(term)
        if df < max(min_df, 1) or df > MORE_LIKE_THIS_MAX_DF_SHARE * n:
            continue
        scored.append((tf * math.log(1 + n / df), term))
    scored.sort(key=lambda wt: (-wt[0], wt[1]))
    top = scored[: max(terms, 0)]
    return [(term, weight / top[0][0]) for weight, term in top]

"""Words as keyword search sees them: one tokeniser and stemmer for the embedded store's engine and for highlighting.

Text is cut at letters and digits (as SQLite FTS5's unicode61 tokeniser cut
it), lower-cased, accents folded and stemmed with Snowball English (the
stemmer PostgreSQL's `english` configuration uses too), so "railways"
matches and marks "railway". A keyword query is the stores' own language:
quoted phrases joined by OR (`indexer.store.base.fts_phrase`).
"""

from __future__ import annotations

import functools
import re

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

"""The embedded store's keyword engine: BM25 over passages (and whole speeches) in tantivy.

Why tantivy (bench/keyword_engines.py, bench/README.md): SQLite FTS5 scores
every passage holding any query word and cannot stop early; tantivy (a
Lucene-style engine in Rust) prunes with block-max WAND, so a top-k query
reads a small part of the postings. At a million passages keyword search
took 122.6 ms (p50) on FTS5 and 2.8 ms on tantivy, the default hybrid search
130 ms and 9.2 ms (bench/scale_compare.py, one run).

Each index version holds two tantivy indexes, written beside its vectors
and switched with them (they are part of the version's folder):

    keywords/passages/   one document per passage
    keywords/speeches/   one document per speech: all its text (the next
                         ranking level, and "more like this" for a seed)

A document is named by `vec`: the passage's vec, or for a speech its first
passage's. Tantivy names hits by (segment, doc); `docmap.npy`, written with
the index, turns those into vecs without reading stored documents.

Scoring: BM25 (k1 1.2, b 0.75) over one field holding the passage text, the
debate title and the speaker, the title written twice: a word's frequency
is its count in the text plus twice its count in the title plus its count
in the speaker's name, as SQLite FTS5's column weights made it (1, 2, 1).
(Summing a BM25 per field instead, weighted, lost 0.18 nDCG@10 on the
natural-dev queries: a short title saturates at once and every passage of
a debate whose title matches floods the top.) One field also keeps the
query a plain union of terms, the case block-max WAND prunes best. Words
are cut and stemmed as `indexer.store.words` says. Filters are clauses that
score nothing (`const_score_query(..., 0)`), so they restrict the ranking
itself: a selective filter still fills a page.
"""

from __future__ import annotations

import ctypes
import datetime as dt
from dataclasses import dataclass, field
from pathlib import Path
from typing import Iterable, Optional, Sequence

import numpy as np
import tantivy

from indexer.store.base import FIELD_WEIGHTS, StoreError
from indexer.store.words import analyzer, distinctive_terms, parse_keyword_query, stems

PASSAGES = "passages"
SPEECHES = "speeches"
DOCMAP = "docmap.npy"
ANALYZER = "hansard_en"
RANKED = "all"  # the one ranked field: text, title, title, speaker
# Exact-value fields (raw, untokenised), for filters: the store resolves a partial or
# case-insensitive filter to the exact values it matches (indexer/store/embedded/reading.py).
VALUE_FIELDS = ("speaker_name", "debate_title", "party", "house", "section", "person_id", "speech_id")
# The writer's memory: a bigger heap writes fewer segments; a small write
# takes a small one (memory taken is not all given back to the system).
WRITER_HEAP = (16_000_000, 400_000_000)
MAX_TERMS = 64  # words and phrases a ranking query takes (a pasted page would otherwise become a huge query)


def schema() -> "tantivy.Schema":
    builder = tantivy.SchemaBuilder()
    builder.add_integer_field("vec", indexed=True, fast=True)
    builder.add_text_field(RANKED, tokenizer_name=ANALYZER, index_option="position")
    for name in VALUE_FIELDS:
        builder.add_text_field(name, tokenizer_name="raw", index_option="basic")
    builder.add_integer_field("day", indexed=True, fast=True)  # date.toordinal(): range filters
    return builder.build()


@dataclass
class KeywordDocument:
    """What the keyword engine knows of a passage or a speech."""

    vec: int
    texts: Sequence[str]  # one for a passage, each passage's for a speech
    values: dict = field(default_factory=dict)  # VALUE_FIELDS -> exact value (None: absent); the title and speaker are ranked too
    date: Optional[dt.date] = None


def write(path: Path, documents: Iterable[KeywordDocument], text_bytes: int) -> None:
    """Write a tantivy index of the documents (about `text_bytes` of text) under path, with its docmap."""
    path.mkdir(parents=True)
    index = tantivy.Index(schema(), path=str(path))
    index.register_tokenizer(ANALYZER, analyzer())
    low, high = WRITER_HEAP
    writer = index.writer(heap_size=int(min(high, max(low, 4 * text_bytes))), num_threads=1)
    vecs = []
    for document in documents:
        doc = tantivy.Document()
        doc.add_integer("vec", document.vec)
        # Each a value of its own: a phrase does not match across two of them.
        for text in document.texts:
            doc.add_text(RANKED, text)
        for _ in range(int(FIELD_WEIGHTS[1])):
            doc.add_text(RANKED, document.values.get("debate_title") or "")
        doc.add_text(RANKED, document.values.get("speaker_name") or "")
        for name in VALUE_FIELDS:
            value = document.values.get(name)
            if value:
                doc.add_text(name, value)
        if document.date is not None:
            doc.add_integer("day", document.date.toordinal())
        writer.add_document(doc)
        vecs.append(document.vec)
    writer.commit()
    writer.wait_merging_threads()
    index.reload()
    np.save(path / DOCMAP, _docmap(index.searcher(), sorted(vecs)))
    del writer, index
    give_back_memory()


def limit_malloc_arenas(arenas: int = 2) -> None:
    """Let glibc keep at most a few heaps (a long-running process that writes versions: the service).

    Each write runs tantivy's writer and merge threads, new threads each
    time; glibc gives threads heaps of their own (up to 8 a core) and keeps
    what each once held, so without a limit a service taking admin writes
    swings by tens of MB. Python runs one thread at a time: a few heaps cost
    it nothing measurable.
    """
    try:
        ctypes.CDLL("libc.so.6").mallopt(-8, arenas)  # M_ARENA_MAX
    except (OSError, AttributeError):
        pass  # not glibc


def give_back_memory() -> None:
    """Return the writer's freed heap to the system (glibc keeps it otherwise: a service writing
    through the admin API would grow by megabytes a write)."""
    try:
        ctypes.CDLL("libc.so.6").malloc_trim(0)
    except (OSError, AttributeError):
        pass  # not glibc: nothing to do


def _docmap(searcher, vecs: list[int]) -> np.ndarray:
    """Rows (segment, doc, vec) of every document, in vec order: read once, at write time."""
    if not vecs:
        return np.zeros((0, 3), dtype=np.int64)
    hits = searcher.search(tantivy.Query.all_query(), len(vecs), count=False, order_by_field="vec",
                           order=tantivy.Order.Asc).hits
    return np.array([(address.segment_ord, address.doc, vec) for (_, address), vec in zip(hits, vecs)], dtype=np.int64)


class KeywordIndex:
    """One tantivy index of a version, opened for searching. Safe to share between threads."""

    def __init__(self, path: Path, documents: int):
        """`documents`: how many the version says this index holds (its passages, or its speeches)."""
        self.path = path
        try:
            self.index = tantivy.Index.open(str(path))
            # A version never changes: no thread watching for commits (one each, never ended, otherwise).
            self.index.config_reader(reload_policy="Manual", num_warmers=0)
            self.index.register_tokenizer(ANALYZER, analyzer())
            self.searcher = self.index.searcher()
            rows = np.load(path / DOCMAP, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise StoreError(f"cannot read the keyword index {path.name}: {err}") from err
        if rows.ndim != 2 or rows.shape[1] != 3 or len(rows) != documents or self.searcher.num_docs != documents:
            raise StoreError(f"the keyword index {path.name} holds {self.searcher.num_docs} documents "
                             f"({len(rows)} mapped), the version {documents}")
        # Numbers from a file are bounded before they size anything: no segment
        # beyond the index's, no document number or vec beyond the documents.
        if len(rows) and (rows.dtype.kind not in "iu" or rows.min() < 0 or rows[:, 0].max() >= self.searcher.num_segments
                          or rows[:, 1].max() >= documents or rows[:, 2].max() >= max(documents, 1) * 1_000):
            raise StoreError(f"the keyword index {path.name} has a damaged {DOCMAP}")
        self.schema = self.index.schema
        # vec of (segment, doc): a table per segment, indexed by doc.
        self._by_segment: list[np.ndarray] = []
        for segment in range(int(rows[:, 0].max()) + 1 if len(rows) else 0):
            mine = rows[rows[:, 0] == segment]
            table = np.full(int(mine[:, 1].max()) + 1 if len(mine) else 0, -1, dtype=np.int64)
            table[mine[:, 1]] = mine[:, 2]
            self._by_segment.append(table)
        # The map was made by the writer's searcher: check that this one numbers segments alike.
        for segment, doc, vec in (rows[:1].tolist() + rows[-1:].tolist()):
            hits = self.searcher.search(self.vec_set(np.array([vec])), 1, count=False).hits
            if not hits or (hits[0][1].segment_ord, hits[0][1].doc) != (segment, doc):
                raise StoreError(f"the keyword index {path.name} does not match its {DOCMAP}")

    def vecs_of(self, hits) -> np.ndarray:
        return np.fromiter((self._by_segment[a.segment_ord][a.doc] for _, a in hits), dtype=np.int64, count=len(hits))

    # ------------------------------------------------------------ queries

    def words(self, text: str) -> list[str]:
        """The terms the index holds for a text (its stemmed words)."""
        return stems(text)

    def ranking(self, keyword_query: str) -> "tantivy.Query":
        """Any of the query's phrases or words (a Store's keyword query: quoted phrases joined by OR)."""
        matches = [m for m in (self.match(RANKED, phrase) for phrase in parse_keyword_query(keyword_query)[:MAX_TERMS])
                   if m is not None]
        if not matches:
            return tantivy.Query.empty_query()
        return tantivy.Query.boolean_query([(tantivy.Occur.Should, m) for m in matches])

    def match(self, name: str, phrase: str) -> Optional["tantivy.Query"]:
        """Documents whose field holds the phrase's words in order (stemmed), or its one word; None for no words."""
        words = self.words(phrase)
        if not words:
            return None
        if len(words) == 1:
            return tantivy.Query.term_query(self.schema, name, words[0])
        return tantivy.Query.phrase_query(self.schema, name, words)

    def anywhere(self, phrase: str) -> "tantivy.Query":
        """Documents holding the phrase in their text, debate title or speaker."""
        return self.match(RANKED, phrase) or tantivy.Query.empty_query()

    def values(self, name: str, values: Iterable[str]) -> "tantivy.Query":
        values = list(values)
        if not values:
            return tantivy.Query.empty_query()
        if len(values) == 1:
            return tantivy.Query.term_query(self.schema, name, values[0])
        return tantivy.Query.term_set_query(self.schema, name, values)

    def vec_set(self, vecs: np.ndarray) -> "tantivy.Query":
        if not len(vecs):
            return tantivy.Query.empty_query()
        return tantivy.Query.term_set_query(self.schema, "vec", [int(v) for v in vecs])

    def days(self, first: Optional[dt.date], last: Optional[dt.date]) -> "tantivy.Query":
        low = first.toordinal() if first else 0
        high = last.toordinal() if last else dt.date.max.toordinal()
        return tantivy.Query.range_query(self.schema, "day", tantivy.FieldType.Integer, low, high)

    @staticmethod
    def restricted(query: Optional["tantivy.Query"], musts: Sequence["tantivy.Query"],
                   must_nots: Sequence["tantivy.Query"] = ()) -> "tantivy.Query":
        """`query` (scored; None: every document, unscored) where every `musts` holds and no `must_nots` does."""
        clauses = [(tantivy.Occur.Must, tantivy.Query.const_score_query(m, 0.0)) for m in musts]
        clauses += [(tantivy.Occur.MustNot, m) for m in must_nots]
        if query is not None:
            if not clauses:
                return query
            clauses.append((tantivy.Occur.Must, query))
        elif not musts:
            clauses.append((tantivy.Occur.Must, tantivy.Query.const_score_query(tantivy.Query.all_query(), 0.0)))
        return tantivy.Query.boolean_query(clauses)

    # ------------------------------------------------------------ running them

    def top(self, query, k: int, offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, vecs) of the k best documents after `offset`, best first."""
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        hits = self.searcher.search(query, k, count=False, offset=offset).hits
        return np.array([s for s, _ in hits], dtype=np.float32), self.vecs_of(hits)

    def count(self, query) -> int:
        return self.searcher.search(query, 1, count=True).count

    def all(self, query) -> np.ndarray:
        """Vecs of every matching document, ascending (unscored: cheaper than ranking them)."""
        total = self.count(query)
        if not total:
            return np.zeros(0, dtype=np.int64)
        hits = self.searcher.search(query, total, count=False, order_by_field="vec", order=tantivy.Order.Asc).hits
        return np.sort(self.vecs_of(hits))

    def scored(self, query) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, vecs) of every matching document, best first."""
        return self.top(query, self.count(query))

    def more_like_this(self, text: str, terms: Optional[int] = None, stopwords: frozenset = frozenset()) -> "tantivy.Query":
        """A query of the text's most distinctive words (`words.distinctive_terms` against this index), each boosted by its weight.

        For a seed speech or a pasted text: thousands of words become a few
        dozen, so the query is as fast as a typed one.
        """
        top = distinctive_terms(text, lambda term: self.searcher.doc_freq(RANKED, term), self.searcher.num_docs,
                                stopwords, terms)
        if not top:
            return tantivy.Query.empty_query()
        return tantivy.Query.boolean_query([
            (tantivy.Occur.Should, tantivy.Query.boost_query(tantivy.Query.term_query(self.schema, RANKED, term), weight))
            for term, weight in top])

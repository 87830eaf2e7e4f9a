"""Searching the embedded store: one live version opened read-only (FAISS memory-mapped, SQLite per thread)."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import sqlite3
import threading
import time
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import faiss
import numpy as np

from embeddings.encoder import ModelInfo
from indexer.sources.records import Passage
from indexer.store.base import (FIELD_WEIGHTS, MAX_DAY_SPEECHES, MAX_DEBATE_PASSAGES, Conditions, DebateHeading, day_debates, Dialect, QueryTimeout, StoreError, Where, column_clause, debate_order,
                                exact_scores, like_escape)
from indexer.store.columns import passage_of
from indexer.store.embedded import keywords
from indexer.store.embedded.keywords import KeywordIndex
from indexer.store.embedded.layout import (KEYWORDS, METADATA, REBUILD, SPEECH_KEYS, SPEECH_OF, SPEECH_VECTORS, TITLE_OF,
                                           TITLE_VECTORS, VECTORS, live_version, open_version)

HNSW_EF_SEARCH = 512
# A filter allowing at most this many passages is searched exactly (its
# vectors scored directly); a broader one through the index, restricted to
# the allowed passages by a FAISS ID selector.
EXACT_FILTER_LIMIT = 50_000
# With a flat (exact) index the selector search is exact too, and reads the
# vectors in place: it wins over copying them out above a few thousand
# (a filter allowing 20,000 of 43,000: 18 -> 11 ms a search).
FLAT_SELECTOR_FROM = 5_000
SELECTOR_CACHE = 32  # filters whose allowed passages are kept, per open index


# SQLite's LIKE ignores the case of ASCII letters; dates are ISO text. Phrases
# and excluded words are not SQL here: the keyword engine applies them.
SQLITE = Dialect(
    param="?", contains="{column} LIKE ? ESCAPE '\\'", date=dt.date.isoformat, phrase=None, excluded=None,
    facets={"speaker": "p.speaker_name", "party": "p.party", "house": "p.house", "section": "p.section",
            "month": "substr(p.date, 1, 7)", "year": "substr(p.date, 1, 4)", "debate": "p.debate"},
    groups={"passage": "p.vec", "speech": "p.speech_id", "debate": "coalesce(p.date, '') || '|' || coalesce(p.debate, '')"},
)
RESTRICTION_CACHE = 64  # filters translated for the keyword engine, kept per open version
MATCH_SET_CACHE = 4  # keyword match sets kept (for a page's total and facets)


def _check_weights(weights: Optional[tuple]) -> None:
    """ValueError unless the field weights asked for are the index's own (written into it: FIELD_WEIGHTS)."""
    if weights is not None and tuple(float(w) for w in weights) != FIELD_WEIGHTS:
        raise ValueError(f"this index weights text, debate title and speaker {FIELD_WEIGHTS} (set when it is written), "
                         f"not {tuple(weights)}")


def _search_in(index, query: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
    """(scores, ids) of the k nearest in a FAISS index (flat or HNSW), restricted to a selector's ids if one is given."""
    query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
    hnsw = isinstance(index, faiss.IndexHNSWFlat)
    if hnsw:
        params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), sel=selector)
    else:
        params = faiss.SearchParameters(sel=selector)
    scores, ids = index.search(query, k, params=params)
    keep = ids[0] >= 0
    if selector is not None and hnsw and keep.sum() < k:
        # HNSW's walk can run out of allowed neighbours before it has k:
        # scan its flat storage instead, exact and restricted alike (~80 ms at 1M).
        scores, ids = faiss.downcast_index(index.storage).search(query, k, params=faiss.SearchParameters(sel=selector))
        keep = ids[0] >= 0
    return scores[0][keep], ids[0][keep]


def _selector(index, allowed: np.ndarray):
    """A FAISS ID selector of the allowed ids for a broad filter; None for a narrow one (its vectors are scored directly)."""
    flat = not isinstance(index, faiss.IndexHNSWFlat)
    if len(allowed) <= (FLAT_SELECTOR_FROM if flat else EXACT_FILTER_LIMIT):
        return None
    mask = np.zeros(index.ntotal, dtype=bool)
    mask[allowed] = True
    bits = np.packbits(mask, bitorder="little")
    selector = faiss.IDSelectorBitmap(index.ntotal, faiss.swig_ptr(bits))
    selector.bits_owner = bits  # the selector reads this buffer: keep it alive with it
    return selector


class EmbeddedStore:
    """A live index version, opened read-only. Safe to share between threads."""

    def __init__(self, index_dir: Path):
        index_dir = Path(index_dir)
        self.dir = index_dir
        self.path, self.manifest = open_version(index_dir)
        try:
            # Memory-mapped: pages come from the file as searches touch them,
            # shared between processes serving the same version.
            self.vectors = faiss.read_index(str(self.path / VECTORS), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
            reason = reason.split("failed: ", 1)[-1]  # FAISS says where in its C++ it failed first
            raise StoreError(f"index {index_dir}: cannot read {VECTORS} ({reason}); {REBUILD}") from err
        if self.vectors.ntotal != self.manifest.passages or self.vectors.d != self.manifest.dimension:
            raise StoreError(
                f"index {index_dir} is inconsistent: manifest says {self.manifest.passages} passages of "
                f"dimension {self.manifest.dimension}, {VECTORS} holds {self.vectors.ntotal} of dimension {self.vectors.d}"
            )
        self._local = threading.local()
        self._connections: list[sqlite3.Connection] = []  # every thread's, for close()
        self._connections_lock = threading.Lock()
        self._closed = False
        self._selectors: dict = {}  # Where -> (allowed vec ids, selector or None)
        self._selectors_lock = threading.Lock()
        self._building: dict = {}  # Where -> lock held while one request works it out
        self._debate_ids: Optional[bool] = None  # whether the passages carry debate_id (`_has_debate_ids`)
        try:
            count = self._db().execute("SELECT count(*) FROM passages").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise StoreError(f"index {index_dir}: cannot read {METADATA}: {err}; {REBUILD}") from err
        if count != self.manifest.passages:
            raise StoreError(f"index {index_dir} is inconsistent: {METADATA} holds {count} passages, manifest says {self.manifest.passages}")
        try:
            self.passage_keywords = KeywordIndex(self.path / KEYWORDS / keywords.PASSAGES, self.manifest.passages)
            self.speech_keywords = KeywordIndex(self.path / KEYWORDS / keywords.SPEECHES, self.manifest.speeches)
        except StoreError as err:
            raise StoreError(f"index {index_dir}: {err}; {REBUILD}") from err
        self._open_speeches(index_dir)
        self._restrictions: dict = {}  # (Where, level) -> the keyword engine's clauses for it
        self._match_sets: dict = {}  # (Where, keyword query) -> vecs of every match
        self._columns: dict = {}  # SQL expression -> (code of each vec, values)
        self._columns_lock = threading.Lock()

    keyword_engine = "tantivy"  # bench/scale.py reports it

    def _open_speeches(self, index_dir: Path) -> None:
        """The speech vectors, their keys and each passage's speech row, checked against each other before use."""
        try:
            self.speech_vectors = faiss.read_index(str(self.path / SPEECH_VECTORS), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
            self.speech_key_of_row = np.load(self.path / SPEECH_KEYS, allow_pickle=False)
            self.speech_row_of = np.load(self.path / SPEECH_OF, allow_pickle=False)
        except (RuntimeError, ValueError, OSError) as err:
            raise StoreError(f"index {index_dir}: cannot read its speeches ({str(err).strip().splitlines()[-1:]}); {REBUILD}") from err
        keys, rows, n = self.speech_key_of_row, self.speech_row_of, self.manifest.speeches
        # Numbers from files, bounded before they index anything: keys ascending
        # passage vecs, one per speech; each passage's row a speech, whose key it may be.
        sound = (
            self.speech_vectors.ntotal == n and self.speech_vectors.d == self.manifest.dimension
            and keys.ndim == 1 and len(keys) == n and keys.dtype.kind in "iu"
            and rows.ndim == 1 and len(rows) == self.manifest.passages and rows.dtype.kind in "iu"
            and (n == 0 or (int(keys.min()) >= 0 and int(keys.max()) < self.manifest.passages
                            and bool(np.all(np.diff(keys) > 0))))
            and (len(rows) == 0 or (int(rows.min()) >= 0 and int(rows.max()) < n))
        )
        if not sound or (n and not np.array_equal(rows[keys], np.arange(n))):
            raise StoreError(f"index {index_dir} is damaged: its speech vectors, {SPEECH_KEYS} and {SPEECH_OF} "
                             f"do not describe its {n} speeches; {REBUILD}")
        self.speech_key_of_row = keys.astype(np.int64)
        self.speech_row_of = rows.astype(np.int64)
        self._speech_allowed: dict = {}  # Where -> (allowed speech rows, selector or None)
        try:
            self.title_matrix = np.load(self.path / TITLE_VECTORS, allow_pickle=False)
            self.title_row_of = np.load(self.path / TITLE_OF, allow_pickle=False)
        except (ValueError, OSError) as err:
            raise StoreError(f"index {index_dir}: cannot read its debate titles' vectors ({err}); {REBUILD}") from err
        titles, rows = self.title_matrix, self.title_row_of
        if not (titles.ndim == 2 and titles.shape[1] == self.manifest.dimension and titles.dtype == np.float32
                and rows.ndim == 1 and len(rows) == self.manifest.passages and rows.dtype.kind in "iu"
                and (len(rows) == 0 or (int(rows.min()) >= -1 and int(rows.max()) < len(titles)))):
            raise StoreError(f"index {index_dir} is damaged: {TITLE_VECTORS} and {TITLE_OF} do not describe "
                             f"its passages' titles; {REBUILD}")
        self.title_row_of = rows.astype(np.int64)

    @property
    def location(self) -> str:
        return f"index {self.dir}"

    @property
    def version(self) -> str:
        return self.path.name

    where = SQLITE.where  # conditions in this store's SQL

    def live_version(self) -> Optional[str]:
        return live_version(self.dir)

    def ping(self) -> None:
        pass  # files already open: nothing to lose contact with

    def close(self) -> None:
        """Close every thread's SQLite connection and unmap the vectors: the version's files are let go now.

        Not left to the garbage collector: a replaced version's files are
        deleted by a later build, and held open they would keep their disk
        space and memory until a collection happened to run.
        """
        with self._connections_lock:
            self._closed = True
            connections, self._connections = self._connections, []
        for db in connections:
            db.close()
        with self._selectors_lock:
            self._selectors.clear()
        self._restrictions.clear()
        self._match_sets.clear()
        self._columns.clear()
        self.passage_keywords = self.speech_keywords = None  # tantivy's files are let go with its searcher
        self.vectors = self.speech_vectors = None  # FAISS unmaps a file when its index is freed, which this does (the only reference)
        keywords.give_back_memory()

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Stop this thread's work after `seconds` (QueryTimeout).

        SQLite's queries are interrupted where they are; the keyword engine's
        and FAISS's searches (milliseconds each) are not started once it has passed.
        """
        db = self._db()
        ends = time.monotonic() + seconds
        db.set_progress_handler(lambda: 1 if time.monotonic() > ends else 0, 1_000)
        self._local.ends = ends
        try:
            yield
        except sqlite3.OperationalError as err:
            if "interrupted" not in str(err):
                raise
            raise QueryTimeout(str(err)) from err
        finally:
            db.set_progress_handler(None, 0)
            self._local.ends = None

    def _in_time(self) -> None:
        """QueryTimeout if this thread's deadline has passed."""
        ends = getattr(self._local, "ends", None)
        if ends is not None and time.monotonic() > ends:
            raise QueryTimeout("interrupted: past the query's time limit")

    def _db(self) -> sqlite3.Connection:
        # One read-only connection per thread: SQLite connections are not shared.
        db = getattr(self._local, "db", None)
        if db is None or self._closed:
            uri = f"file:{self.path / METADATA}?mode=ro"
            with self._connections_lock:
                if self._closed:
                    raise StoreError(f"index {self.dir}: version {self.version} has been closed")
                db = None
                try:
                    db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                    db.row_factory = sqlite3.Row
                    db.execute("SELECT 1 FROM passages LIMIT 1")
                except sqlite3.DatabaseError as err:
                    if db is not None:
                        db.close()
                    raise StoreError(f"index {self.dir}: cannot read {METADATA}: {err}") from err
                self._connections.append(db)
            self._local.db = db
        return db

    @property
    def model(self) -> ModelInfo:
        return self.manifest.model_info

    def __len__(self) -> int:
        return self.manifest.passages

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of the k nearest passages, best first."""
        self._in_time()
        k = min(k, self.vectors.ntotal)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        return self._search(query, k, None)

    def _search(self, query: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        return _search_in(self.vectors, query, k, selector)

    def passages_at(self, vecs: Iterable[int]) -> list[Passage]:
        """Passages for vec ids, in the order given."""
        vecs = [int(v) for v in vecs]
        if not vecs:
            return []
        rows = self._db().execute(
            f"SELECT * FROM passages WHERE vec IN ({','.join('?' * len(vecs))})", vecs
        ).fetchall()
        by_vec = {row["vec"]: passage_of(row) for row in rows}
        return [by_vec[v] for v in vecs if v in by_vec]

    def passage(self, passage_id: str) -> Optional[Passage]:
        row = self._db().execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return passage_of(row) if row else None

    def speech(self, speech_id: str) -> list[Passage]:
        rows = self._db().execute("SELECT * FROM passages WHERE speech_id = ? ORDER BY position", (speech_id,))
        return [passage_of(row) for row in rows]

    def _has_debate_ids(self) -> bool:
        # An index written before passages carried debate_id (same format version) has none to look up.
        if self._debate_ids is None:
            self._debate_ids = any(row[1] == "debate_id" for row in self._db().execute("PRAGMA table_info(passages)"))
        return self._debate_ids

    def debate(self, debate_id: str, limit: int = MAX_DEBATE_PASSAGES) -> list[Passage]:
        if not self._has_debate_ids():
            return []
        rows = self._db().execute("SELECT * FROM passages WHERE debate_id = ? ORDER BY vec LIMIT ?", (debate_id, limit))
        return debate_order(passage_of(row) for row in rows)

    def debates_on(self, date: dt.date) -> list[DebateHeading]:
        if not self._has_debate_ids():
            return []
        rows = self._db().execute(
            "SELECT debate_id, debate, house, section, speech_id FROM passages "
            "WHERE date = ? AND position = 0 AND debate_id IS NOT NULL LIMIT ?", (date.isoformat(), MAX_DAY_SPEECHES))
        return day_debates(tuple(row) for row in rows)

    def vec_of(self, passage_id: str) -> Optional[int]:
        row = self._db().execute("SELECT vec FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return row[0] if row else None

    def vecs_of_speech(self, speech_id: str) -> np.ndarray:
        rows = self._db().execute("SELECT vec FROM passages WHERE speech_id = ? ORDER BY position", (speech_id,))
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        for row in self._db().execute("SELECT * FROM passages ORDER BY vec"):
            yield row["vec"], passage_of(row)

    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray:
        vecs = np.asarray(vecs, dtype=np.int64)
        if not len(vecs):
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        return self.vectors.reconstruct_batch(vecs)

    # ------------------------------------------------------------ search

    def matching(self, where: Where) -> np.ndarray:
        """Vec ids of the passages that satisfy `where`, ascending."""
        if where.conditions.textual:  # phrases or excluded words: the keyword engine knows the text
            return self.passage_keywords.all(self._restricted(where, None))
        rows = self._db().execute(f"SELECT p.vec FROM passages p WHERE {where.sql or 1}", where.params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray:
        """Vec ids of passages `where` allows, in date order (undated first oldest-first, last newest-first, as SQL sorts NULL)."""
        if where.conditions.textual:
            vecs = self.matching(where)
            return vecs[self._date_order(vecs, np.zeros(len(vecs)), newest_first)][:limit]
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT p.vec FROM passages p WHERE {where.sql or 1} ORDER BY p.date {order}, p.vec LIMIT ?"
        return np.fromiter((row[0] for row in self._db().execute(sql, (*where.params, limit))), dtype=np.int64)

    def by_column(self, house: Optional[str], suffix: Optional[str], volume: Optional[int], date: Optional[dt.date],
                  start: int, end: int, limit: int, session: Optional[str] = None) -> np.ndarray:
        """base.Store.by_column: fixed SQL text, every value a parameter."""
        condition, params = column_clause(SQLITE, house, suffix, volume, date, start, end, session)
        sql = (f"SELECT p.vec FROM passages p WHERE {condition} ORDER BY p.column_start = ? DESC, "
               "min(coalesce(p.column_end, p.column_start), ?) - max(p.column_start, ?) DESC, p.date, p.vec LIMIT ?")
        rows = self._db().execute(sql, (*params, start, end, start, limit))
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def count(self, where: Where, group: str = "passage") -> int:
        # Unfiltered, the manifest knows (counting 1M rows takes ~40 ms).
        if not where and group == "passage":
            return self.manifest.passages
        if not where and group == "speech":
            return self.manifest.speeches
        if group == "passage":
            with self._selectors_lock:
                cached = self._selectors.get(where)
            if cached is not None:
                return len(cached[0])
        if where.conditions.textual:
            return self._distinct(self.matching(where), group)
        sql = f"SELECT count(DISTINCT {SQLITE.groups[group]}) FROM passages p WHERE {where.sql or 1}"
        return self._db().execute(sql, where.params).fetchone()[0]

    def dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of the k passages nearest the query among those `where` allows.

        Exact whatever the filter: a filtered search scores every allowed
        passage rather than filtering a fixed number of nearest ones, so a
        filter matching 0.1% of the index still fills the page.
        """
        self._in_time()
        if not where:
            return self.search(query, k)
        allowed, selector = self._allowed(where)
        if selector is None:
            return self.dense_scores(query, allowed, k)
        # Broad filter: search the index itself, told which ids it may return.
        return self._search(query, min(k, len(allowed)), selector)

    def _allowed(self, where: Where):
        """The passages a filter allows, and for a broad one a FAISS selector of them.

        Kept for the last few filters: at 1M passages, listing the half that
        `house=commons` allows takes ~100 ms, and portals ask the same filters
        again and again. (The index version never changes under an Index.)
        """
        with self._selectors_lock:  # a Where (SQL and parameters) is its own key
            cached = self._selectors.get(where)
            building = self._building.setdefault(where, threading.Lock()) if cached is None else None
        if cached is not None:
            return cached
        # One request works a filter out; the others asking for it meanwhile wait for its answer.
        with building:
            with self._selectors_lock:
                cached = self._selectors.get(where)
            if cached is not None:
                return cached
            return self._build_allowed(where)

    def _build_allowed(self, where: Where):
        allowed = self.matching(where)
        selector = _selector(self.vectors, allowed)
        with self._selectors_lock:
            self._selectors[where] = (allowed, selector)
            self._building.pop(where, None)
            while len(self._selectors) > SELECTOR_CACHE:
                self._selectors.pop(next(iter(self._selectors)))
        return allowed, selector

    def dense_scores(self, query: np.ndarray, vecs: np.ndarray, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        return exact_scores(self.vectors_at, query, vecs, k)

    # ------------------------------------------------------------ speeches

    def speech_keys(self, vecs: np.ndarray) -> np.ndarray:
        return self.speech_key_of_row[self.speech_row_of[np.asarray(vecs, dtype=np.int64)]]

    def _speech_rows(self, keys: np.ndarray) -> np.ndarray:
        """The rows of the speeches keyed `keys` (KeyError for a key that names no speech)."""
        keys = np.asarray(keys, dtype=np.int64)
        rows = np.searchsorted(self.speech_key_of_row, keys)
        if len(keys) and (rows.max() >= len(self.speech_key_of_row) or not np.array_equal(self.speech_key_of_row[rows], keys)):
            raise KeyError("not a speech's key")
        return rows

    def speech_vectors_at(self, keys: np.ndarray) -> np.ndarray:
        rows = self._speech_rows(keys)
        if not len(rows):
            return np.zeros((0, self.speech_vectors.d), dtype=np.float32)
        return self.speech_vectors.reconstruct_batch(rows)

    def speech_dense_scores(self, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return self.speech_vectors_at(keys) @ query.reshape(-1).astype(np.float32)

    def speech_dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        self._in_time()
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        k = min(k, self.speech_vectors.ntotal)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        selector = None
        if where:
            allowed, selector = self._allowed_speeches(where)
            if selector is None:
                scores, rows = exact_scores(self.speech_vectors.reconstruct_batch, query, allowed, k)
                return scores, self.speech_key_of_row[rows]
            k = min(k, len(allowed))
        scores, rows = _search_in(self.speech_vectors, query, k, selector)
        return scores, self.speech_key_of_row[rows]

    def _allowed_speeches(self, where: Where):
        """The speech rows a filter allows (those of any passage it allows), and for a broad one a FAISS selector of them."""
        cached = self._speech_allowed.get(where)
        if cached is None:
            allowed = np.unique(self.speech_row_of[self._allowed(where)[0]])
            cached = (allowed, _selector(self.speech_vectors, allowed))
            self._speech_allowed[where] = cached
            while len(self._speech_allowed) > SELECTOR_CACHE:
                self._speech_allowed.pop(next(iter(self._speech_allowed)), None)
        return cached

    def speech_keyword_scores(self, fts_query: str, keys: np.ndarray) -> np.ndarray:
        self._in_time()
        keys = np.asarray(keys, dtype=np.int64)
        index = self.speech_keywords
        scores, found = index.scored(index.restricted(index.ranking(fts_query), [index.vec_set(keys)]))
        by_key = dict(zip(found.tolist(), scores.tolist()))
        return np.array([by_key.get(int(key), 0.0) for key in keys], dtype=np.float32)

    # ------------------------------------------------------------ what a passage's vector does not see

    def title_rows(self) -> dict[str, int]:
        """Debate title -> its row in the title vectors (read from the metadata when asked: a writer's question)."""
        return {title: row for row, title in self._db().execute("SELECT row, title FROM titles")}

    def title_vectors(self) -> dict[str, np.ndarray]:
        """Debate title -> its embedding, for a writer carrying them into the next version."""
        return {title: self.title_matrix[row] for title, row in self.title_rows().items()}

    def context_vectors(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        vecs = np.asarray(vecs, dtype=np.int64)
        titles = np.zeros((len(vecs), self.manifest.dimension), dtype=np.float32)
        rows = self.title_row_of[vecs]
        titled = rows >= 0
        titles[titled] = self.title_matrix[rows[titled]]
        # A speech's passages sit at consecutive vecs in speech order (each
        # version is written so); a neighbour is one of the same speech, a place away.
        positions = self._positions()
        speech = self.speech_row_of
        total = np.zeros((len(vecs), self.manifest.dimension), dtype=np.float32)
        count = np.zeros(len(vecs), dtype=np.float32)
        for step in (-1, 1):
            other = vecs + step
            ok = (other >= 0) & (other < len(self))
            ok[ok] = (speech[other[ok]] == speech[vecs[ok]]) & (positions[other[ok]] == positions[vecs[ok]] + step)
            if ok.any():
                total[ok] += self.vectors_at(other[ok])
                count[ok] += 1
        alone = count == 0
        if alone.any():
            total[alone] = self.vectors_at(vecs[alone])
            count[alone] = 1
        return titles, total / count[:, None]

    def _positions(self) -> np.ndarray:
        """Each passage's position in its speech, by vec: read once."""
        positions = self._columns.get("positions")
        if positions is None:
            codes, values = self._column("p.position")
            positions = np.array(values, dtype=np.int64)[codes] if len(values) else np.zeros(0, dtype=np.int64)
            self._columns["positions"] = positions
        return positions

    # ------------------------------------------------------------ keyword search (tantivy)

    def keyword(
        self, fts_query: str, k: int, where: Where = Where(), weights: Optional[tuple[float, float, float]] = None,
        order: str = "relevance", offset: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, vec ids) of passages matching a keyword query among those `where` allows; higher is better.

        `order` date / -date sorts every match by date (ties: best first), then pages.
        """
        self._in_time()
        _check_weights(weights)
        index = self.passage_keywords
        query = self._restricted(where, index.ranking(fts_query))
        if order == "relevance":
            return index.top(query, k, offset)
        scores, vecs = index.scored(query)
        ordered = self._date_order(vecs, scores, newest_first=order == "-date")[offset: offset + k]
        return scores[ordered], vecs[ordered]

    def keyword_count(self, fts_query: str, where: Where = Where(), group: str = "passage") -> int:
        self._in_time()
        if group == "passage":
            return self.passage_keywords.count(self._restricted(where, self.passage_keywords.ranking(fts_query)))
        return self._distinct(self._matches(where, fts_query), group)

    def keyword_scores(self, fts_query: str, vecs: np.ndarray,
                       weights: Optional[tuple[float, float, float]] = None) -> np.ndarray:
        """The BM25 score of each given passage for the keyword query (0 where it matches none of it), in the order given."""
        self._in_time()
        _check_weights(weights)
        vecs = np.asarray(vecs, dtype=np.int64)
        index = self.passage_keywords
        scores, found = index.scored(index.restricted(index.ranking(fts_query), [index.vec_set(vecs)]))
        by_vec = dict(zip(found.tolist(), scores.tolist()))
        return np.array([by_vec.get(int(v), 0.0) for v in vecs], dtype=np.float32)

    def speech_keyword(self, fts_query: str, k: int, where: Where = Where(),
                       weights: Optional[tuple[float, float, float]] = None) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, first passage's vec) of the k speeches whose whole text best matches the keyword query."""
        self._in_time()
        _check_weights(weights)
        index = self.speech_keywords
        return index.top(self._restricted(where, index.ranking(fts_query), speeches=True), k)

    def more_like_this(self, text: str, k: int, where: Where = Where(), speeches: bool = True,
                       stopwords: frozenset = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, keys) of the k speeches (or vecs of passages) most like a long text, by its distinctive words."""
        self._in_time()
        index = self.speech_keywords if speeches else self.passage_keywords
        query = index.more_like_this(text, stopwords=stopwords)
        return index.top(self._restricted(where, query, speeches=speeches), k)

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        """(value, count) of a facet over given passages, or over those `where` (and `fts`) match."""
        expression = SQLITE.facets[facet]
        if vecs is not None:
            ids = [int(v) for v in vecs]
            sql = (f"SELECT {expression} AS value, count(*) AS n FROM passages p WHERE p.vec IN ({','.join('?' * len(ids))}) "
                   f"GROUP BY value ORDER BY n DESC, value LIMIT ?")
            return [tuple(r) for r in self._db().execute(sql, (*ids, limit))] if ids else []
        if fts or where.conditions.textual:
            matches = self._matches(where, fts)
            codes, values = self._column(expression)
            counts = np.bincount(codes[matches], minlength=len(values))
            rows = [(values[c], int(counts[c])) for c in np.flatnonzero(counts)]
            rows.sort(key=lambda vn: (-vn[1], vn[0] is not None, vn[0] if vn[0] is not None else ""))  # as SQL: NULL first
            return rows[:limit]
        sql = f"SELECT {expression} AS value, count(*) AS n FROM passages p WHERE {where.sql or 1} GROUP BY value ORDER BY n DESC, value LIMIT ?"
        return [tuple(r) for r in self._db().execute(sql, (*where.params, limit))]

    def _matches(self, where: Where, fts: Optional[str]) -> np.ndarray:
        """Vecs of every passage matching the keyword query (None or "": any) that `where` allows.

        Kept for the last few: a page's total and each of its facets ask for
        the same set (at a million passages, hundreds of thousands of vecs).
        """
        key = (where, fts or "")
        found = self._match_sets.get(key)
        if found is None:
            index = self.passage_keywords
            found = index.all(self._restricted(where, index.ranking(fts) if fts else None))
            self._match_sets[key] = found
            while len(self._match_sets) > MATCH_SET_CACHE:
                self._match_sets.pop(next(iter(self._match_sets)), None)
        return found

    def _restricted(self, where: Where, query, speeches: bool = False):
        """`query` (None: every passage) restricted inside the engine to what `where` allows."""
        index = self.speech_keywords if speeches else self.passage_keywords
        if not where:
            return query if query is not None else index.restricted(None, [])
        key = (where, speeches)
        clauses = self._restrictions.get(key)
        if clauses is None:
            clauses = self._clauses(where.conditions, index, speeches)
            self._restrictions[key] = clauses
            while len(self._restrictions) > RESTRICTION_CACHE:
                self._restrictions.pop(next(iter(self._restrictions)), None)
        musts, must_nots = clauses
        return index.restricted(query, musts, must_nots)

    def _clauses(self, c: Conditions, index: KeywordIndex, speeches: bool) -> tuple[list, list]:
        """The keyword engine's (must, must not) clauses for a Where's conditions: each filter exactly as the SQL means it."""
        db = self._db()

        def like(table: str, column: str, text: str) -> list[str]:
            return [r[0] for r in db.execute(f"SELECT {column} FROM {table} WHERE {column} LIKE ? ESCAPE '\\'",
                                             (f"%{like_escape(text)}%",))]

        musts = []
        if c.speech_id is not None:
            musts.append(index.values("speech_id", [c.speech_id]))
        if c.speaker:
            musts.append(index.values("speaker_name", like("speakers", "name", c.speaker)))
        if c.person_id:
            musts.append(index.values("person_id", [c.person_id]))
        if c.party:
            parties = [r[0] for r in db.execute("SELECT name FROM parties WHERE lower(name) = lower(?)", (c.party,))]
            musts.append(index.values("party", parties))
        if c.house:
            musts.append(index.values("house", [c.house]))
        if c.section:
            musts.append(index.values("section", [c.section]))
        if c.date_from or c.date_to:
            musts.append(index.days(c.date_from, c.date_to))
        if c.debate_words:
            titles = set(like("debates", "title", c.debate_words[0]))
            for word in c.debate_words[1:]:
                titles &= set(like("debates", "title", word))
            musts.append(index.values("debate_title", sorted(titles)))
        for phrase in c.phrases:
            if speeches:  # a speech holds the phrase's words in order (stemmed)
                musts.append(index.anywhere(phrase))
            else:
                musts.append(index.vec_set(self._phrase_vecs(phrase)))
        must_nots = [index.anywhere(word) for word in c.excluded]
        return musts, must_nots

    def _phrase_vecs(self, phrase: str) -> np.ndarray:
        """Passages holding a phrase exactly (case aside): the engine's stemmed phrase matches, checked in the text itself."""
        candidates = self.passage_keywords.all(self.passage_keywords.anywhere(phrase))
        found = []
        for start in range(0, len(candidates), 50_000):
            chunk = json.dumps(candidates[start: start + 50_000].tolist())
            found.extend(r[0] for r in self._db().execute(
                "SELECT vec FROM passages WHERE vec IN (SELECT value FROM json_each(?)) AND instr(lower(text), lower(?)) > 0",
                (chunk, phrase)))
        return np.array(sorted(found), dtype=np.int64)

    def _column(self, expression: str) -> tuple[np.ndarray, list]:
        """(code of each passage's value, the values) for an SQL expression on `passages p`: read once, kept."""
        cached = self._columns.get(expression)
        if cached is not None:
            return cached
        with self._columns_lock:
            cached = self._columns.get(expression)
            if cached is None:
                codes_of: dict = {}
                rows = self._db().execute(f"SELECT {expression} FROM passages p ORDER BY p.vec")
                codes = np.fromiter((codes_of.setdefault(row[0], len(codes_of)) for row in rows), dtype=np.int32,
                                    count=len(self))
                cached = (codes, list(codes_of))
                self._columns[expression] = cached
        return cached

    def _distinct(self, vecs: np.ndarray, group: str) -> int:
        """How many speeches (or debates, or passages) the given passages belong to."""
        if group == "passage":
            return len(vecs)
        codes, _ = self._column(SQLITE.groups[group])
        return int(len(np.unique(codes[vecs])))

    def _date_order(self, vecs: np.ndarray, scores: np.ndarray, newest_first: bool) -> np.ndarray:
        """Positions of the passages by date (undated first oldest-first, last newest-first), then best score, then vec."""
        days = self._days()[vecs]
        return np.lexsort((vecs, -np.asarray(scores, dtype=np.float64), -days if newest_first else days))

    def _days(self) -> np.ndarray:
        """Each passage's date as a day number (-1: undated, which SQL sorts first), worked out once."""
        days = self._columns.get("days")
        if days is None:
            codes, values = self._column("p.date")
            ordinals = np.array([dt.date.fromisoformat(v).toordinal() if v else -1 for v in values], dtype=np.int64)
            days = ordinals[codes] if len(values) else np.zeros(0, dtype=np.int64)
            self._columns["days"] = days
        return days

    def breakdown(self) -> dict:
        """Passage counts by house and section, and the dates covered."""
        db = self._db()
        by_house = {row[0] or "unknown": row[1] for row in db.execute("SELECT house, count(*) FROM passages GROUP BY house")}
        by_section = {
            row[0] or "unknown": row[1] for row in db.execute("SELECT section, count(*) FROM passages GROUP BY section")
        }
        first, last = db.execute("SELECT min(date), max(date) FROM passages").fetchone()
        return {"houses": by_house, "sections": by_section, "date_from": first, "date_to": last}

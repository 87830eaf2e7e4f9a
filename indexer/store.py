"""The index directory: a FAISS index, a SQLite metadata store and a manifest.

Layout:

    DIR/CURRENT            names the live version (replaced atomically)
    DIR/v-<stamp>/manifest.json
    DIR/v-<stamp>/vectors.faiss      row i is the vector of passage `vec = i`
    DIR/v-<stamp>/passages.sqlite

A build writes a complete new version beside the live one and then swaps
CURRENT with one atomic rename, so a reader never sees half an index and a
build that dies part-way (even killed outright) leaves the previous version
serving. What a dead build leaves behind (`.building-*` folders, a version
never made current, `.CURRENT.*.tmp`) is removed by the next build that
completes. One build at a time holds DIR/.lock (an advisory lock the system
drops when its process ends, however it ends).
"""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import re
import shutil
import sqlite3
import threading
import time
import uuid
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Iterable, Iterator, Optional, Sequence

import faiss
import numpy as np

try:
    import fcntl
except ImportError:  # not on Windows: builds there are not locked against each other
    fcntl = None

from embeddings.encoder import ModelInfo
from indexer.backend import Dialect, QueryTimeout, Where, where_clause as conditions
from indexer.fusion import fill_missing, weighted_fusion
from indexer.query import Filters, ParsedQuery, fts_phrase
from indexer.sources.records import Passage, Speaker
from indexer.sources.references import Column

FORMAT_VERSION = 2  # 2: full-text (FTS5) table and filter indexes
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
METADATA = "passages.sqlite"
LOCK = ".lock"

# Vector index by size: exact (flat) while small; HNSW above ANN_THRESHOLD
# passages, where flat search costs ~140 ms a query at 1M (bench/scale.py).
# At 1M clustered vectors (bench/scale.py), M=32 gave recall@10 against exact
# of 0.88 at efSearch 128, 0.92 at 256, 0.96 at 512 (1.2 ms a query), 0.99 at 1024.
ANN_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80
HNSW_EF_SEARCH = 512
# A filter allowing at most this many passages is searched exactly (its
# vectors scored directly); a broader one through the index, restricted to
# the allowed passages by a FAISS ID selector.
EXACT_FILTER_LIMIT = 50_000
SELECTOR_CACHE = 32  # filters whose allowed passages are kept, per open index
_VERSION_NAME = re.compile(r"^v-[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # a name in DIR, never a path

# Passage fields stored as columns: flat, so later filters can use them.
_COLUMNS = [
    ("id", "TEXT NOT NULL UNIQUE"),
    ("speech_id", "TEXT NOT NULL"),
    ("position", "INTEGER NOT NULL"),
    ("text", "TEXT NOT NULL"),
    ("speaker_name", "TEXT"),
    ("person_id", "TEXT"),
    ("party", "TEXT"),
    ("house", "TEXT"),
    ("section", "TEXT"),
    ("date", "TEXT"),
    ("time", "TEXT"),
    ("debate", "TEXT"),
    ("major_heading", "TEXT"),
    ("minor_heading", "TEXT"),
    ("volume", "INTEGER"),
    ("column_start", "INTEGER"),
    ("column_end", "INTEGER"),
    ("column_suffix", "TEXT"),
    ("reference", "TEXT"),
    ("citation", "TEXT"),
    ("session", "TEXT"),
    ("chamber", "TEXT"),
    ("procedural", "INTEGER NOT NULL"),
    ("url", "TEXT"),
]
_NAMES = [name for name, _ in _COLUMNS]


class IndexError_(Exception):
    """An index directory that cannot be used, with the reason why."""


class IndexLocked(Exception):
    """Another build holds the index directory."""


@dataclass
class Manifest:
    format_version: int
    model: dict
    dimension: int
    passages: int
    speeches: int
    index_type: str
    built_at: str
    files: Optional[dict] = None  # name -> size in bytes of each file of the version, as written

    @property
    def model_info(self) -> ModelInfo:
        return ModelInfo(name=self.model["name"], version=self.model["version"], dimension=self.dimension)


def _row(passage: Passage) -> tuple:
    c = passage.column
    return (
        passage.id, passage.speech_id, passage.position, passage.text,
        passage.speaker.name, passage.speaker.person_id, passage.speaker.party,
        passage.house, passage.section, passage.date.isoformat() if passage.date else None, passage.time,
        passage.debate, passage.major_heading, passage.minor_heading,
        c.volume, c.start, c.end, c.suffix, passage.reference, passage.citation,
        passage.session, passage.chamber, int(passage.procedural), passage.url,
    )


def _passage(row: sqlite3.Row) -> Passage:
    return Passage(
        id=row["id"], speech_id=row["speech_id"], position=row["position"], text=row["text"],
        speaker=Speaker(name=row["speaker_name"], person_id=row["person_id"], party=row["party"]),
        house=row["house"], section=row["section"],
        date=dt.date.fromisoformat(row["date"]) if row["date"] else None, time=row["time"],
        debate=row["debate"], major_heading=row["major_heading"], minor_heading=row["minor_heading"],
        column=Column(volume=row["volume"], start=row["column_start"], end=row["column_end"], suffix=row["column_suffix"]),
        reference=row["reference"], citation=row["citation"], session=row["session"], chamber=row["chamber"],
        procedural=bool(row["procedural"]), url=row["url"],
    )


# ---------------------------------------------------------------- writing


@contextlib.contextmanager
def lock_index(index_dir: Path) -> Iterator[None]:
    """Hold index_dir for one build; IndexLocked if another build holds it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+", encoding="utf-8") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip()
                raise IndexLocked(
                    f"another indexing run{f' (process {holder})' if holder.isdigit() else ''} is updating "
                    f"{index_dir}: wait for it to finish"
                ) from None
            except OSError:
                pass  # a file system without locks (some network mounts): go on unlocked, as before
            else:
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
        yield  # the lock goes with the file: closed here, or by the system when the process dies


def write_index(index_dir: Path, passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
                ann_threshold: Optional[int] = ANN_THRESHOLD) -> Manifest:
    """Write a complete new version and make it the live one."""
    if len(passages) != len(vectors):
        raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    version = f"v-{stamp}-{uuid.uuid4().hex[:8]}"
    building = index_dir / f".building-{version}"
    building.mkdir()
    try:
        manifest = _write_version(building, passages, vectors, model, ann_threshold)
    except BaseException:
        shutil.rmtree(building, ignore_errors=True)  # (and if the process dies here, the next build removes it)
        raise
    previous = live_version(index_dir)
    os.replace(building, index_dir / version)
    _write_atomic(index_dir / CURRENT, version + "\n")
    _fsync(index_dir)
    # The version just replaced stays one build longer: a service still
    # serving it (until it notices the new one, within seconds) may open
    # new connections to it meanwhile.
    _remove_stale_versions(index_dir, keep={version, previous})
    return manifest


def live_version(index_dir: Path) -> Optional[str]:
    """The version directory CURRENT names (None when there is none or it is unreadable)."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def vector_index(vectors: np.ndarray, dimension: int, ann_threshold: Optional[int] = ANN_THRESHOLD):
    """(FAISS index holding the vectors, its type name): exact inner product (= cosine on unit vectors), or HNSW."""
    if ann_threshold is not None and len(vectors) > ann_threshold:
        index = faiss.IndexHNSWFlat(dimension, HNSW_M, faiss.METRIC_INNER_PRODUCT)
        index.hnsw.efConstruction = HNSW_EF_CONSTRUCTION
        kind = "hnsw-ip"
    else:
        index = faiss.IndexFlatIP(dimension)
        kind = "flat-ip"
    if len(vectors):
        index.add(vectors)
    return index, kind


def _write_version(building: Path, passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
                   ann_threshold: Optional[int]) -> Manifest:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(passages), model.dimension)
    index, index_type = vector_index(vectors, model.dimension, ann_threshold)
    faiss.write_index(index, str(building / VECTORS))

    db = sqlite3.connect(str(building / METADATA))
    with db:
        db.execute(f"CREATE TABLE passages (vec INTEGER PRIMARY KEY, {', '.join(f'{n} {t}' for n, t in _COLUMNS)})")
        db.executemany(
            f"INSERT INTO passages (vec, {', '.join(_NAMES)}) VALUES (?, {', '.join('?' * len(_NAMES))})",
            ((i, *_row(p)) for i, p in enumerate(passages)),
        )
        db.execute("CREATE INDEX passages_speech ON passages (speech_id, position)")
        for column in ("date", "house", "section", "person_id", "party"):
            db.execute(f"CREATE INDEX passages_{column} ON passages ({column})")
        # Keyword search: BM25 over text, debate title and speaker, with
        # Porter stemming. External content: the text is stored once.
        db.execute(
            "CREATE VIRTUAL TABLE passages_fts USING fts5(text, debate, speaker_name, "
            "content='passages', content_rowid='vec', tokenize='porter unicode61 remove_diacritics 2')"
        )
        db.execute("INSERT INTO passages_fts (passages_fts) VALUES ('rebuild')")
    db.close()
    # On disk before the manifest that vouches for them (a power cut, not just a kill).
    for name in (VECTORS, METADATA):
        _fsync(building / name)

    manifest = Manifest(
        format_version=FORMAT_VERSION,
        model={"name": model.name, "version": model.version},
        dimension=model.dimension,
        passages=len(passages),
        speeches=len({p.speech_id for p in passages}),
        index_type=index_type,
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        files={name: (building / name).stat().st_size for name in (VECTORS, METADATA)},
    )
    # The manifest is written last: a version without one was never finished.
    _write_atomic(building / MANIFEST, json.dumps(asdict(manifest), indent=2))
    _fsync(building)
    return manifest


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_versions(index_dir: Path, keep: set) -> None:
    """Remove what earlier builds left: old versions, and the debris of builds that died."""
    # A server holding an old version keeps its open files; unlinking is safe.
    for child in index_dir.iterdir():
        if child.name in keep or child.name in (CURRENT, LOCK):
            continue
        if child.is_dir() and child.name.startswith(("v-", ".building-")):
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_file() and child.name.startswith(f".{CURRENT}.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


# ---------------------------------------------------------------- which passages may match


# Facets and groups (indexer.backend's names) as SQLite expressions.
FACET_SQL = {"speaker": "p.speaker_name", "party": "p.party", "house": "p.house", "section": "p.section",
             "month": "substr(p.date, 1, 7)", "year": "substr(p.date, 1, 4)", "debate": "p.debate"}
GROUP_SQL = {"passage": "p.vec", "speech": "p.speech_id", "debate": "coalesce(p.date, '') || '|' || coalesce(p.debate, '')"}


def _phrase(phrase: str) -> tuple[str, tuple]:
    # The full-text index finds candidates fast; the substring test makes
    # the match exact (the index stems: "forced labour" ~ "forcing labours").
    return ("p.vec IN (SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?) AND instr(lower(p.text), lower(?)) > 0",
            (fts_phrase(phrase), phrase))


def _excluded(words: list[str]) -> tuple[str, tuple]:
    return ("p.vec NOT IN (SELECT rowid FROM passages_fts WHERE passages_fts MATCH ?)",
            (" OR ".join(fts_phrase(word) for word in words),))


# SQLite's LIKE ignores the case of ASCII letters; dates are ISO text.
SQLITE = Dialect(param="?", contains="{column} LIKE ? ESCAPE '\\'", date=dt.date.isoformat, phrase=_phrase,
                 excluded=_excluded)


def where_clause(filters: Filters, query: Optional[ParsedQuery] = None, speech_id: Optional[str] = None) -> Where:
    """Exact filters and the query's phrase and exclusion constraints, as SQLite's SQL."""
    return conditions(SQLITE, filters, query, speech_id)


# ---------------------------------------------------------------- reading


def _manifest_problem(manifest: Manifest) -> Optional[str]:
    """What is wrong with the manifest's fields, if anything (they come from a file)."""
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(manifest.model, dict) or not all(isinstance(manifest.model.get(k), str) for k in ("name", "version")):
        return "model must name the model and its version"
    for name in ("format_version", "dimension", "passages", "speeches"):
        if not whole(getattr(manifest, name)):
            return f"{name} must be a whole number, not {getattr(manifest, name)!r}"
    if manifest.files is not None and not (
        isinstance(manifest.files, dict) and all(whole(size) for size in manifest.files.values())
    ):
        return "files must give each file's size"
    return None


def _sqlite_truncation(path: Path) -> Optional[str]:
    """Why a SQLite file is shorter than its own header says, or None (a cheap check: no page is read)."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as err:
        return f"cannot be read: {err}"
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return "is not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when written by the same change as the header's counter.
    if header[24:28] == header[92:96] and pages and path.stat().st_size < pages * page_size:
        return f"is truncated: {path.stat().st_size:,} bytes of {pages * page_size:,}"
    return None


def is_index(index_dir: Path) -> bool:
    return (Path(index_dir) / CURRENT).is_file()


class Index:
    """A live index version, opened read-only. Safe to share between threads."""

    def __init__(self, index_dir: Path):
        index_dir = Path(index_dir)
        self.dir = index_dir
        current = index_dir / CURRENT
        if not index_dir.is_dir():
            raise IndexError_(f"index directory {index_dir} does not exist; build one with `hansard-search index`")
        if not current.is_file():
            raise IndexError_(f"{index_dir} is not a hansard-search index (no {CURRENT} file); build one with `hansard-search index`")
        rebuild = "rebuild it with `hansard-search index --rebuild`"
        try:
            with open(current, "rb") as f:
                version = f.read(200).decode("ascii").strip()
        except UnicodeDecodeError:
            version = None
        except OSError as err:
            raise IndexError_(f"index {index_dir}: cannot read {CURRENT}: {err}") from err
        if not version or not _VERSION_NAME.match(version):
            shown = "nothing" if version == "" else repr(version) if version else "unreadable bytes"
            raise IndexError_(f"index {index_dir} is damaged: {CURRENT} names {shown}, not an index version; {rebuild}")
        self.path = index_dir / version
        if not self.path.is_dir():
            raise IndexError_(f"index {index_dir} is incomplete: {CURRENT} names version {version}, which is missing; {rebuild}")
        manifest_path = self.path / MANIFEST
        if not manifest_path.is_file():
            raise IndexError_(f"index {index_dir} is incomplete: version {version!r} has no {MANIFEST}; {rebuild}")
        try:
            fields = json.loads(manifest_path.read_text(encoding="utf-8"))
            self.manifest = Manifest(**fields)
        except (ValueError, TypeError) as err:
            raise IndexError_(f"index {index_dir} has an unreadable manifest: {err}; {rebuild}") from err
        problem = _manifest_problem(self.manifest)
        if problem:
            raise IndexError_(f"index {index_dir} has an unreadable manifest: {problem}; {rebuild}")
        if self.manifest.format_version != FORMAT_VERSION:
            raise IndexError_(
                f"index {index_dir} has format version {self.manifest.format_version}; this program reads "
                f"version {FORMAT_VERSION}: {rebuild}"
            )
        for name in (VECTORS, METADATA):
            if not (self.path / name).is_file():
                raise IndexError_(f"index {index_dir} is incomplete: version {version!r} has no {name}; {rebuild}")
            expected = (self.manifest.files or {}).get(name)
            size = (self.path / name).stat().st_size
            if expected is not None and size != expected:
                raise IndexError_(
                    f"index {index_dir} is damaged: {name} is {size:,} bytes, the manifest says {expected:,} "
                    f"(truncated or overwritten); {rebuild}"
                )
        truncated = _sqlite_truncation(self.path / METADATA)
        if truncated:
            raise IndexError_(f"index {index_dir} is damaged: {METADATA} {truncated}; {rebuild}")
        try:
            # Memory-mapped: pages come from the file as searches touch them,
            # shared between processes serving the same version.
            self.vectors = faiss.read_index(str(self.path / VECTORS), faiss.IO_FLAG_MMAP | faiss.IO_FLAG_READ_ONLY)
        except RuntimeError as err:
            reason = str(err).strip().splitlines()[-1] if str(err).strip() else "unreadable"
            reason = reason.split("failed: ", 1)[-1]  # FAISS says where in its C++ it failed first
            raise IndexError_(f"index {index_dir}: cannot read {VECTORS} ({reason}); {rebuild}") from err
        if self.vectors.ntotal != self.manifest.passages or self.vectors.d != self.manifest.dimension:
            raise IndexError_(
                f"index {index_dir} is inconsistent: manifest says {self.manifest.passages} passages of "
                f"dimension {self.manifest.dimension}, {VECTORS} holds {self.vectors.ntotal} of dimension {self.vectors.d}"
            )
        self._local = threading.local()
        self._selectors: dict = {}  # Where -> (allowed vec ids, selector or None)
        self._selectors_lock = threading.Lock()
        self._building: dict = {}  # Where -> lock held while one request works it out
        try:
            count = self._db().execute("SELECT count(*) FROM passages").fetchone()[0]
        except sqlite3.DatabaseError as err:
            raise IndexError_(f"index {index_dir}: cannot read {METADATA}: {err}; {rebuild}") from err
        if count != self.manifest.passages:
            raise IndexError_(f"index {index_dir} is inconsistent: {METADATA} holds {count} passages, manifest says {self.manifest.passages}")

    @property
    def location(self) -> str:
        return str(self.dir)

    @property
    def version(self) -> str:
        return self.path.name

    where = staticmethod(where_clause)

    def live_version(self) -> Optional[str]:
        return live_version(self.dir)

    def ping(self) -> None:
        pass  # files already open: nothing to lose contact with

    def close(self) -> None:
        pass  # its per-thread SQLite connections and the memory map go when it is freed

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Stop this thread's SQLite queries after `seconds` (QueryTimeout)."""
        db = self._db()
        ends = time.monotonic() + seconds
        db.set_progress_handler(lambda: 1 if time.monotonic() > ends else 0, 1_000)
        try:
            yield
        except sqlite3.OperationalError as err:
            if "interrupted" not in str(err):
                raise
            raise QueryTimeout(str(err)) from err
        finally:
            db.set_progress_handler(None, 0)

    def _db(self) -> sqlite3.Connection:
        # One read-only connection per thread: SQLite connections are not shared.
        db = getattr(self._local, "db", None)
        if db is None:
            uri = f"file:{self.path / METADATA}?mode=ro"
            try:
                db = sqlite3.connect(uri, uri=True, check_same_thread=False)
                db.row_factory = sqlite3.Row
                db.execute("SELECT 1 FROM passages LIMIT 1")
            except sqlite3.DatabaseError as err:
                raise IndexError_(f"index {self.dir}: cannot read {METADATA}: {err}") from err
            self._local.db = db
        return db

    @property
    def model(self) -> ModelInfo:
        return self.manifest.model_info

    def __len__(self) -> int:
        return self.manifest.passages

    def search(self, query: np.ndarray, k: int) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of the k nearest passages, best first."""
        k = min(k, self.vectors.ntotal)
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        return self._search(query, k, None)

    def _search(self, query: np.ndarray, k: int, selector) -> tuple[np.ndarray, np.ndarray]:
        query = np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32)
        if isinstance(self.vectors, faiss.IndexHNSWFlat):
            params = faiss.SearchParametersHNSW(efSearch=max(HNSW_EF_SEARCH, k), sel=selector)
        else:
            params = faiss.SearchParameters(sel=selector)
        scores, ids = self.vectors.search(query, k, params=params)
        keep = ids[0] >= 0
        return scores[0][keep], ids[0][keep]

    def passages_at(self, vecs: Iterable[int]) -> list[Passage]:
        """Passages for vec ids, in the order given."""
        vecs = [int(v) for v in vecs]
        if not vecs:
            return []
        rows = self._db().execute(
            f"SELECT * FROM passages WHERE vec IN ({','.join('?' * len(vecs))})", vecs
        ).fetchall()
        by_vec = {row["vec"]: _passage(row) for row in rows}
        return [by_vec[v] for v in vecs if v in by_vec]

    def passage(self, passage_id: str) -> Optional[Passage]:
        row = self._db().execute("SELECT * FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return _passage(row) if row else None

    def speech(self, speech_id: str) -> list[Passage]:
        rows = self._db().execute("SELECT * FROM passages WHERE speech_id = ? ORDER BY position", (speech_id,))
        return [_passage(row) for row in rows]

    def vec_of(self, passage_id: str) -> Optional[int]:
        row = self._db().execute("SELECT vec FROM passages WHERE id = ?", (passage_id,)).fetchone()
        return row[0] if row else None

    def vecs_of_speech(self, speech_id: str) -> np.ndarray:
        rows = self._db().execute("SELECT vec FROM passages WHERE speech_id = ? ORDER BY position", (speech_id,))
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def speech_count(self) -> int:
        return self.manifest.speeches

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        for row in self._db().execute("SELECT * FROM passages ORDER BY vec"):
            yield row["vec"], _passage(row)

    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray:
        vecs = np.asarray(vecs, dtype=np.int64)
        if not len(vecs):
            return np.zeros((0, self.vectors.d), dtype=np.float32)
        return self.vectors.reconstruct_batch(vecs)

    # ------------------------------------------------------------ search

    def matching(self, where: Where) -> np.ndarray:
        """Vec ids of the passages that satisfy `where`, ascending."""
        rows = self._db().execute(f"SELECT p.vec FROM passages p WHERE {where.sql or 1}", where.params)
        return np.fromiter((row[0] for row in rows), dtype=np.int64)

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray:
        """Vec ids of passages `where` allows, in date order."""
        order = "DESC" if newest_first else "ASC"
        sql = f"SELECT p.vec FROM passages p WHERE {where.sql or 1} ORDER BY p.date {order}, p.vec LIMIT ?"
        return np.fromiter((row[0] for row in self._db().execute(sql, (*where.params, limit))), dtype=np.int64)

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
        sql = f"SELECT count(DISTINCT {GROUP_SQL[group]}) FROM passages p WHERE {where.sql or 1}"
        return self._db().execute(sql, where.params).fetchone()[0]

    def dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """(scores, vec ids) of the k passages nearest the query among those `where` allows.

        Exact whatever the filter: a filtered search scores every allowed
        passage rather than filtering a fixed number of nearest ones, so a
        filter matching 0.1% of the index still fills the page.
        """
        if not where:
            return self.search(query, k)
        allowed, selector = self._allowed(where)
        if selector is None:
            return self.dense_scores(query, allowed, k)
        # Broad filter: search the index itself, told which ids it may return.
        want = min(k, len(allowed))
        scores, vecs = self._search(query, want, selector)
        if len(vecs) < want and isinstance(self.vectors, faiss.IndexHNSWFlat):
            # HNSW's walk can run out of allowed neighbours before it has k:
            # scan its flat storage instead, exact and restricted alike (~80 ms at 1M).
            storage = faiss.downcast_index(self.vectors.storage)
            found, ids = storage.search(np.ascontiguousarray(query.reshape(1, -1), dtype=np.float32), want,
                                        params=faiss.SearchParameters(sel=selector))
            keep = ids[0] >= 0
            return found[0][keep], ids[0][keep]
        return scores, vecs

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
        selector = None
        if len(allowed) > EXACT_FILTER_LIMIT:
            mask = np.zeros(self.vectors.ntotal, dtype=bool)
            mask[allowed] = True
            bits = np.packbits(mask, bitorder="little")
            selector = faiss.IDSelectorBitmap(self.vectors.ntotal, faiss.swig_ptr(bits))
            selector.bits_owner = bits  # the selector reads this buffer: keep it alive with it
        with self._selectors_lock:
            self._selectors[where] = (allowed, selector)
            self._building.pop(where, None)
            while len(self._selectors) > SELECTOR_CACHE:
                self._selectors.pop(next(iter(self._selectors)))
        return allowed, selector

    def dense_scores(self, query: np.ndarray, vecs: np.ndarray, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        """Cosine scores of the query against the given passages, best first (top k if given)."""
        vecs = np.asarray(vecs, dtype=np.int64)
        if not len(vecs):
            return np.zeros(0, dtype=np.float32), vecs
        scores = self.vectors_at(vecs) @ query.reshape(-1).astype(np.float32)
        if k is not None and k < len(vecs):
            top = np.argpartition(-scores, k - 1)[:k]
        else:
            top = np.arange(len(vecs))
        order = top[np.argsort(-scores[top], kind="stable")]
        return scores[order], vecs[order]

    def keyword(
        self, fts_query: str, k: int, where: Where = Where(), weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
        order: str = "relevance", offset: int = 0,
    ) -> tuple[np.ndarray, np.ndarray]:
        """(BM25 scores, vec ids) of passages matching an FTS5 query; higher is better."""
        rank = f"bm25(passages_fts, {', '.join(str(float(w)) for w in weights)})"
        order_by = {"relevance": "score DESC", "date": "p.date ASC, score DESC", "-date": "p.date DESC, score DESC"}[order]
        sql = (
            f"SELECT p.vec, -{rank} AS score FROM passages_fts JOIN passages p ON p.vec = passages_fts.rowid "
            f"WHERE passages_fts MATCH ?{where.and_()} ORDER BY {order_by}, p.vec LIMIT ? OFFSET ?"
        )
        rows = self._fts(sql, (fts_query, *where.params, k, offset))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def keyword_count(self, fts_query: str, where: Where = Where(), group: str = "passage") -> int:
        sql = (
            f"SELECT count(DISTINCT {GROUP_SQL[group]}) FROM passages_fts JOIN passages p ON p.vec = passages_fts.rowid "
            f"WHERE passages_fts MATCH ?{where.and_()}"
        )
        return self._fts(sql, (fts_query, *where.params))[0][0]

    def hybrid(self, query: np.ndarray, fts_query: str, k: int, where: Where, dense_weight: float,
               weights: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, bool]:
        """Dense and keyword candidates (k of each), fused by a weighted sum of min-max normalised scores."""
        dense_scores, dense_vecs = self.dense(query, k, where)
        kw_scores, kw_vecs = self.keyword(fts_query, k, where, weights)
        exhausted = len(dense_vecs) < k and len(kw_vecs) < k
        # Every candidate gets its exact dense score (cheap). A dense candidate
        # missing from the keyword list scores at most what the list's last
        # one did (or nothing, when the list holds every keyword match):
        # asking FTS5 for the BM25 of given rows costs as much as a search.
        union = np.unique(np.concatenate([dense_vecs, kw_vecs]))
        dense_all, union_sorted = self.dense_scores(query, union)
        floor = float(kw_scores.min()) if len(kw_vecs) >= k else 0.0
        bm25_all = fill_missing(dict(zip(kw_vecs.tolist(), kw_scores.tolist())), union_sorted, floor)
        fused = weighted_fusion(dense_all, bm25_all, dense_weight)
        order = np.argsort(-fused, kind="stable")
        return fused[order], union_sorted[order], exhausted

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        """(value, count) of a facet over given passages, or over those `where` (and `fts`) match."""
        expression = FACET_SQL[facet]
        if vecs is not None:
            ids = [int(v) for v in vecs]
            sql = (f"SELECT {expression} AS value, count(*) AS n FROM passages p WHERE p.vec IN ({','.join('?' * len(ids))}) "
                   f"GROUP BY value ORDER BY n DESC, value LIMIT ?")
            return [tuple(r) for r in self._db().execute(sql, (*ids, limit))] if ids else []
        if fts:
            sql = (f"SELECT {expression} AS value, count(*) AS n FROM passages_fts JOIN passages p ON p.vec = passages_fts.rowid "
                   f"WHERE passages_fts MATCH ?{where.and_()} GROUP BY value ORDER BY n DESC, value LIMIT ?")
            return [tuple(r) for r in self._fts(sql, (fts, *where.params, limit))]
        sql = f"SELECT {expression} AS value, count(*) AS n FROM passages p WHERE {where.sql or 1} GROUP BY value ORDER BY n DESC, value LIMIT ?"
        return [tuple(r) for r in self._db().execute(sql, (*where.params, limit))]

    def _fts(self, sql: str, params: tuple) -> list:
        try:
            return self._db().execute(sql, params).fetchall()
        except sqlite3.OperationalError as err:
            if "fts5" in str(err) or "syntax" in str(err):
                raise ValueError(f"cannot run this keyword query: {err}") from err
            raise

    def breakdown(self) -> dict:
        """Passage counts by house and section, and the dates covered."""
        db = self._db()
        by_house = {row[0] or "unknown": row[1] for row in db.execute("SELECT house, count(*) FROM passages GROUP BY house")}
        by_section = {
            row[0] or "unknown": row[1] for row in db.execute("SELECT section, count(*) FROM passages GROUP BY section")
        }
        first, last = db.execute("SELECT min(date), max(date) FROM passages").fetchone()
        return {"houses": by_house, "sections": by_section, "date_from": first, "date_to": last}

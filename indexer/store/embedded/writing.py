"""Writing the embedded store: a complete new version beside the live one, then CURRENT switched to it."""

from __future__ import annotations

import contextlib
import datetime as dt
import json
import os
import shutil
import sqlite3
import uuid
from dataclasses import asdict
from pathlib import Path
from typing import Iterable, Optional, Sequence

import faiss
import numpy as np

from embeddings.encoder import ModelInfo
from indexer.sources.records import Passage
from indexer.sources.vocabulary import sitting_key
from indexer.store.base import Replaced, StoreDescription, StoreError, check_model, speech_vector
from indexer.store.columns import FIELDS, NAMES, passage_values
from indexer.store.embedded import keywords
from indexer.store.embedded.layout import (CURRENT, FORMAT_VERSION, KEYWORDS, MANIFEST, METADATA, SPEECH_KEYS, SPEECH_OF,
                                           SPEECH_VECTORS, TITLE_OF, TITLE_VECTORS, VECTORS, _fsync, _remove_stale_versions,
                                           _write_atomic, is_index, live_version, lock_index)
from indexer.store.embedded.reading import EmbeddedStore

# Vector index by size: exact (flat) while small; HNSW above ANN_THRESHOLD
# passages, where flat search costs ~140 ms a query at 1M (bench/scale.py).
# At 1M clustered vectors (bench/scale.py), M=32 gave recall@10 against exact
# of 0.88 at efSearch 128, 0.92 at 256, 0.96 at 512 (1.2 ms a query), 0.99 at 1024.
ANN_THRESHOLD = 200_000
HNSW_M = 32
HNSW_EF_CONSTRUCTION = 80


def write_index(index_dir: Path, passages: Sequence[Passage], vectors: np.ndarray, model: ModelInfo,
                titles: dict[str, np.ndarray], ann_threshold: Optional[int] = ANN_THRESHOLD) -> StoreDescription:
    """Write a complete new version and make it the live one (`titles`: the embedding of every debate title)."""
    if len(passages) != len(vectors):
        raise ValueError(f"{len(passages)} passages but {len(vectors)} vectors")
    untitled = next((p.debate for p in passages if p.debate and p.debate not in titles), None)
    if untitled is not None:
        raise StoreError(f"no embedding was given for the debate title {untitled!r}")
    index_dir.mkdir(parents=True, exist_ok=True)
    stamp = dt.datetime.now(dt.timezone.utc).strftime("%Y%m%dT%H%M%S")
    version = f"v-{stamp}-{uuid.uuid4().hex[:8]}"
    building = index_dir / f".building-{version}"
    building.mkdir()
    try:
        manifest = _write_version(building, passages, vectors, model, titles, ann_threshold)
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
                   titles: dict[str, np.ndarray], ann_threshold: Optional[int]) -> StoreDescription:
    vectors = np.ascontiguousarray(vectors, dtype=np.float32).reshape(len(passages), model.dimension)
    index, index_type = vector_index(vectors, model.dimension, ann_threshold)
    faiss.write_index(index, str(building / VECTORS))

    db = sqlite3.connect(str(building / METADATA))
    with db:
        db.execute(f"CREATE TABLE passages (vec INTEGER PRIMARY KEY, {', '.join(f'{n} {t}' for n, t, _ in FIELDS)})")
        db.executemany(
            f"INSERT INTO passages (vec, {', '.join(NAMES)}) VALUES (?, {', '.join('?' * len(NAMES))})",
            ((i, *_sqlite_values(p)) for i, p in enumerate(passages)),
        )
        db.execute("CREATE INDEX passages_speech ON passages (speech_id, position)")
        db.execute("CREATE INDEX passages_column ON passages (column_suffix, column_start)")  # citation lookup
        db.execute("CREATE INDEX passages_debate ON passages (debate_id)")  # a debate's passages (/debates/<id>)
        for column in ("date", "house", "section", "person_id", "party"):
            db.execute(f"CREATE INDEX passages_{column} ON passages ({column})")
        # The values partial filters match against (a speaker's name, a debate's
        # title, a party): the keyword engine is told the matching values.
        for table, column, source in (("speakers", "name", "speaker_name"), ("debates", "title", "debate"),
                                      ("parties", "name", "party")):
            db.execute(f"CREATE TABLE {table} ({column} TEXT PRIMARY KEY) WITHOUT ROWID")
            db.execute(f"INSERT INTO {table} SELECT DISTINCT {source} FROM passages WHERE {source} IS NOT NULL")
        _write_titles(building, db, passages, titles, model.dimension)
    db.close()
    speeches = speeches_by_key(passages)
    _write_speech_vectors(building, speeches, vectors, len(passages), model.dimension, ann_threshold)
    _write_keywords(building / KEYWORDS, passages, speeches)
    # On disk before the manifest that vouches for them (a power cut, not just a kill).
    files = [VECTORS, METADATA, SPEECH_VECTORS, SPEECH_KEYS, SPEECH_OF, TITLE_VECTORS, TITLE_OF] + sorted(str(f.relative_to(building)) for f in (building / KEYWORDS).rglob("*") if f.is_file())
    for name in files:
        _fsync(building / name)
    for folder in sorted({(building / name).parent for name in files}):
        _fsync(folder)

    manifest = StoreDescription(
        format_version=FORMAT_VERSION,
        model={"name": model.name, "version": model.version},
        dimension=model.dimension,
        passages=len(passages),
        speeches=len(speeches),
        index_type=index_type,
        built_at=dt.datetime.now(dt.timezone.utc).isoformat(timespec="seconds"),
        files={name: (building / name).stat().st_size for name in files},
    )
    # The manifest is written last: a version without one was never finished.
    _write_atomic(building / MANIFEST, json.dumps(asdict(manifest), indent=2))
    _fsync(building)
    return manifest




_DATE = NAMES.index("date")


def _write_titles(building: Path, db: sqlite3.Connection, passages: Sequence[Passage], titles: dict[str, np.ndarray],
                  dimension: int) -> None:
    """The debate titles' vectors (row t: the title of row t in table `titles`) and each passage's title row (-1: none)."""
    used = sorted({p.debate for p in passages if p.debate})
    row_of = {title: row for row, title in enumerate(used)}
    db.execute("CREATE TABLE titles (row INTEGER PRIMARY KEY, title TEXT NOT NULL UNIQUE)")
    db.executemany("INSERT INTO titles (row, title) VALUES (?, ?)", ((row, title) for title, row in row_of.items()))
    matrix = np.zeros((len(used), dimension), dtype=np.float32)
    for title, row in row_of.items():
        matrix[row] = np.asarray(titles[title], dtype=np.float32).reshape(dimension)
    np.save(building / TITLE_VECTORS, matrix, allow_pickle=False)
    np.save(building / TITLE_OF, np.array([row_of.get(p.debate, -1) for p in passages], dtype=np.int64), allow_pickle=False)


def speeches_by_key(passages: Sequence[Passage]) -> list[list[int]]:
    """The vecs of each speech's passages in speech order, speeches in the order of their keys (first passage's vec)."""
    speeches: dict[str, list[int]] = {}
    for vec, passage in enumerate(passages):
        speeches.setdefault(passage.speech_id, []).append(vec)
    ordered = [sorted(vecs, key=lambda v: (passages[v].position, v)) for vecs in speeches.values()]
    return sorted(ordered, key=lambda vecs: vecs[0])


def _write_speech_vectors(building: Path, speeches: list[list[int]], vectors: np.ndarray, passages: int,
                          dimension: int, ann_threshold: Optional[int]) -> None:
    """Each speech's own vector (row r: the speech keyed keys[r]), the keys, and each passage's speech row."""
    keys = np.array([vecs[0] for vecs in speeches], dtype=np.int64)
    speech_of = np.zeros(passages, dtype=np.int64)
    own = np.zeros((len(speeches), dimension), dtype=np.float32)
    for row, vecs in enumerate(speeches):
        speech_of[vecs] = row
        own[row] = speech_vector(vectors[vecs])
    index, _ = vector_index(own, dimension, ann_threshold)
    faiss.write_index(index, str(building / SPEECH_VECTORS))
    np.save(building / SPEECH_KEYS, keys, allow_pickle=False)
    np.save(building / SPEECH_OF, speech_of, allow_pickle=False)


def _write_keywords(folder: Path, passages: Sequence[Passage], speeches: list[list[int]]) -> None:
    """The keyword engine's two indexes: one document a passage, one a speech (named by its key)."""
    folder.mkdir()
    text_bytes = sum(len(p.text) for p in passages)
    keywords.write(folder / keywords.PASSAGES, (_keyword_document(passages, [vec]) for vec in range(len(passages))), text_bytes)
    keywords.write(folder / keywords.SPEECHES, (_keyword_document(passages, vecs) for vecs in speeches), text_bytes)


def _keyword_document(passages: Sequence[Passage], vecs: Sequence[int]) -> keywords.KeywordDocument:
    """The document of these passages (one, or a speech's in order), named by the first one's vec."""
    first = passages[vecs[0]]
    return keywords.KeywordDocument(
        vec=vecs[0], texts=[passages[v].text for v in vecs],
        values={"speaker_name": first.speaker.name, "debate_title": first.debate, "party": first.speaker.party,
                "house": first.house, "section": first.section, "person_id": first.speaker.person_id,
                "speech_id": first.speech_id},
        date=first.date)


def _sqlite_values(passage: Passage) -> tuple:
    values = list(passage_values(passage))
    values[_DATE] = values[_DATE].isoformat() if values[_DATE] else None  # ISO text: sorts and compares as dates
    return tuple(values)


class EmbeddedWriter:
    """One run's writes to an index directory: it holds the directory's lock, and writes one new version at commit.

    The version written is the previous one's passages, less those of the
    speeches (and sittings) replaced or removed, plus the new passages: a
    passage kept keeps its stored vector. Until commit, readers see only
    the previous version; a run that dies leaves it live.
    """

    batch_passages: Optional[int] = None  # everything in one version

    def __init__(self, index_dir: Path, model: ModelInfo, rebuild: bool = False,
                 ann_threshold: Optional[int] = ANN_THRESHOLD):
        self.dir = Path(index_dir)
        self.model = model
        self.rebuild = rebuild
        self.ann_threshold = ann_threshold
        self._lock = None
        self.previous: Optional[EmbeddedStore] = None
        self._gone_speeches: set[str] = set()
        self._gone_sittings: set[str] = set()
        self._removing = False
        self._new: list[tuple[Sequence[Passage], np.ndarray]] = []
        self._split_for: Optional[tuple] = None
        self._split: tuple[list[int], list[Passage], dict[str, tuple[str, int]]] = ([], [], {})
        self._titles: dict[str, np.ndarray] = {}  # debate title -> embedding, given by add_titles

    def __enter__(self) -> "EmbeddedWriter":
        self._lock = lock_index(self.dir)
        self._lock.__enter__()
        try:
            if not self.rebuild and is_index(self.dir):
                try:
                    self.previous = EmbeddedStore(self.dir)
                except StoreError as err:
                    advice = "" if "--rebuild" in str(err) else "; to start afresh, run again with --rebuild"
                    raise StoreError(f"{err}{advice}") from err
                check_model(self.previous.model, f"index {self.dir}", self.model)
        except BaseException:
            self.__exit__(None, None, None)
            raise
        return self

    def __exit__(self, *exc) -> None:
        # Closed, not left to be freed: an SQLite connection is freed only by a
        # garbage collection, and a service writing through the admin API would
        # keep every replaced version's deleted file open until one ran.
        if self.previous is not None:
            self.previous.close()
        self._lock.__exit__(*exc)

    def _superseded(self, speech_ids: set[str], sittings: set[str]) -> tuple[list[int], list[Passage], dict]:
        """The previous version's (kept vecs, kept passages, {dropped passage id: (text, vec)}), one pass over it."""
        key = (frozenset(speech_ids), frozenset(sittings))
        if self._split_for != key:
            kept_vecs, kept, dropped = [], [], {}
            if self.previous is not None:
                for vec, passage in self.previous.iter_passages():
                    if passage.speech_id in speech_ids or sitting_key(passage.house, passage.speech_id) in sittings:
                        dropped[passage.id] = (passage.text, vec)
                    else:
                        kept_vecs.append(vec)
                        kept.append(passage)
            self._split_for, self._split = key, (kept_vecs, kept, dropped)
        return self._split

    def bulk(self, passages: int) -> contextlib.AbstractContextManager:
        return contextlib.nullcontext()  # one version is written at commit, however large

    def held(self, speech_ids: Iterable[str], sittings: Iterable[str]) -> dict[str, tuple[str, int]]:
        return self._superseded(self._gone_speeches | set(speech_ids), self._gone_sittings | set(sittings))[2]

    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray:
        return self.previous.vectors_at(vecs)

    def missing_titles(self, titles: Iterable[str]) -> set[str]:
        held = self.previous.title_rows() if self.previous is not None else {}
        return {t for t in titles if t and t not in self._titles and t not in held}

    def add_titles(self, vectors: dict[str, np.ndarray]) -> None:
        for title, vector in vectors.items():
            vector = np.asarray(vector, dtype=np.float32).reshape(-1)
            if len(vector) != self.model.dimension:
                raise StoreError(f"the embedding of debate title {title!r} has {len(vector)} dimensions, "
                                 f"not the model's {self.model.dimension}")
            self._titles[title] = vector

    def replace(self, passages: Sequence[Passage], vectors: np.ndarray, speech_ids: Iterable[str],
                sittings: Iterable[str] = ()) -> Replaced:
        missing = self.missing_titles({p.debate for p in passages if p.debate})
        if missing:
            raise StoreError(f"no embedding was given for the debate title {sorted(missing)[0]!r} (add_titles first)")
        incoming = set(speech_ids)
        self._gone_speeches |= incoming
        self._gone_sittings |= set(sittings)
        self._new.append((list(passages), np.asarray(vectors, dtype=np.float32)))
        dropped = self._superseded(self._gone_speeches, self._gone_sittings)[2]
        dropped_speeches = {passage_id.rsplit("#", 1)[0] for passage_id in dropped}
        return Replaced(speeches_removed=sorted(dropped_speeches - incoming),
                        speeches_replaced=len(dropped_speeches & incoming))

    def remove(self, speech_ids: Iterable[str]) -> int:
        self._removing = True
        self._gone_speeches |= set(speech_ids)
        dropped = self._superseded(self._gone_speeches, self._gone_sittings)[2]
        return len({passage_id.rsplit("#", 1)[0] for passage_id in dropped})

    def commit(self) -> StoreDescription:
        if self.previous is not None and not (self._new or self._gone_speeches or self._gone_sittings):
            return self.previous.manifest  # nothing was read: the live version stays, not even re-read
        kept_vecs, kept, dropped = self._superseded(self._gone_speeches, self._gone_sittings)
        new = [p for passages, _ in self._new for p in passages]
        if self.previous is not None and not dropped and not new:
            return self.previous.manifest  # nothing held is replaced or removed: the live version stays
        if not kept and not new:
            raise StoreError("removing these speeches would leave the index empty" if self._removing
                             else "nothing to index: no speeches were read from the sources given")
        parts = ([self.previous.vectors_at(kept_vecs)] if kept else []) + [vectors for _, vectors in self._new]
        vectors = np.vstack(parts) if parts else np.zeros((0, self.model.dimension), dtype=np.float32)
        titles = self.previous.title_vectors() if self.previous is not None else {}
        return write_index(self.dir, kept + new, vectors, self.model, {**titles, **self._titles}, self.ann_threshold)

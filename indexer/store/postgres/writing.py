"""Writing PostgreSQL: each batch of whole sittings replaced in one transaction, under advisory locks."""

from __future__ import annotations

import contextlib
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from embeddings.encoder import ModelInfo
from indexer.sources.records import Passage
from indexer.sources.vocabulary import sitting_key
from indexer.store.base import Replaced, StoreDescription, StoreError
from indexer.store.columns import NAMES, passage_values
from indexer.store.postgres.schema import (COLUMNS, SPEECHES, TABLE, TITLES, DatabaseError, bulk_load, connect,
                                           drop_store, migrate, speech_rows_sql)
from indexer.store.postgres.reading import PostgresStore, _array

# Passages embedded and written per transaction (whole sittings: a batch may run over to finish its last sitting).
DEFAULT_BATCH_PASSAGES = 2_000



def existing_vectors(conn, speech_ids: Iterable[str], sittings: Iterable[str]) -> dict[str, tuple[str, np.ndarray]]:
    """{passage id: (text, vector)} the store holds for these speeches or sittings: unchanged ones are not re-embedded."""
    rows = conn.execute(
        f"SELECT id, text, embedding FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
        (list(speech_ids), list(sittings)),
    )
    return {row[0]: (row[1], _array(row[2])) for row in rows}


# How far a title's vector may be from unit length (float32 rounding, another library's normalisation).
UNIT_TOLERANCE = 1e-3


def _titled(titles: Iterable[Optional[str]]) -> list[str]:
    """The distinct non-empty titles, sorted: a passage without a title needs no embedding."""
    return sorted({title for title in titles if title})


def missing_titles(conn, titles: Iterable[Optional[str]]) -> set[str]:
    """Those of these (non-empty) debate titles that have no row in the titles table, in one statement."""
    wanted = _titled(titles)
    if not wanted:
        return set()
    rows = conn.execute(f"SELECT t.title FROM unnest(%s::text[]) AS t(title) "
                        f"WHERE NOT EXISTS (SELECT 1 FROM {TITLES} h WHERE h.title = t.title)", (wanted,))
    return {row[0] for row in rows}


def write_titles(conn, vectors: dict[str, np.ndarray], dimension: int) -> int:
    """Upsert these titles' embeddings in one transaction; StoreError (nothing written) unless each is a finite unit vector of `dimension`."""
    from pgvector import Vector

    rows = []
    for title, vector in sorted(vectors.items()):
        if not isinstance(title, str) or not title:
            raise StoreError(f"a debate title to embed must be non-empty text, not {title!r}")
        array = np.asarray(vector, dtype=np.float32)
        if array.shape != (dimension,):
            raise StoreError(f"the embedding of the debate title {title!r} has shape {array.shape}; "
                             f"this store's vectors have {dimension} dimensions")
        norm = float(np.linalg.norm(array))
        if not np.all(np.isfinite(array)) or abs(norm - 1.0) > UNIT_TOLERANCE:
            raise StoreError(f"the embedding of the debate title {title!r} is not a unit vector (length {norm:.4g})")
        rows.append((title, Vector(array)))
    if not rows:
        return 0
    with conn.transaction(), conn.cursor() as cur:
        cur.executemany(f"INSERT INTO {TITLES} (title, embedding) VALUES (%s, %s) "
                        f"ON CONFLICT (title) DO UPDATE SET embedding = EXCLUDED.embedding", rows)
    return len(rows)


def write_passages(url_or_conn, passages: Sequence[Passage], vectors: np.ndarray, speech_ids: Iterable[str],
                   sittings: Iterable[str] = (), remove_only: bool = False) -> Replaced:
    """Replace these speeches (and every speech of these sittings) by the given passages, in one transaction.

    Idempotent: writing the same input twice leaves the same rows. With
    remove_only, the speeches are deleted and nothing written.

    Every debate title of the passages must have its row in the titles
    table (StoreError naming those that have none, and nothing written).
    Titles are never deleted, so one checked here stays.
    """
    speech_ids, sittings = sorted(set(speech_ids)), sorted(set(sittings))
    owns = isinstance(url_or_conn, str)
    conn = connect(url_or_conn, autocommit=False) if owns else url_or_conn
    try:
        with conn.transaction():
            untitled = [] if remove_only else sorted(missing_titles(conn, (p.debate for p in passages)))
            if untitled:
                raise StoreError(f"no embedding held for the debate title{'s' if len(untitled) > 1 else ''} "
                                 f"{', '.join(repr(t) for t in untitled[:5])}{' ...' if len(untitled) > 5 else ''}: "
                                 f"give it by add_titles before replace; nothing of this batch was written")
            for key in [f"sitting:{s}" for s in sittings] + [f"speech:{s}" for s in speech_ids]:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            before = [row[0] for row in conn.execute(
                f"SELECT DISTINCT speech_id FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
                (speech_ids, sittings))]
            deleted = conn.execute(f"DELETE FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
                                   (speech_ids, sittings)).rowcount
            written = 0 if remove_only else _insert(conn, passages, vectors)
            incoming = {p.speech_id for p in passages}
            _renew_speeches(conn, sorted(set(before) | incoming))
            gone = sorted(set(before) - incoming)
            speeches_delta = len(incoming - set(before)) - len(gone)
            conn.execute("UPDATE hansard_store SET passages = passages + %s, speeches = speeches + %s, "
                         "generation = generation + 1, written_at = now()",
                         (written - deleted, speeches_delta))
    finally:
        if owns:
            conn.close()
    return Replaced(speeches_removed=gone, speeches_replaced=len(set(before) & incoming))


def _insert(conn, passages: Sequence[Passage], vectors: np.ndarray) -> int:
    if not len(passages):
        return 0
    from pgvector import Vector

    columns = [name for name, _ in COLUMNS] + ["embedding"]
    sql = (f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT (speech_id, id) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in ("speech_id", "id")))
    rows = []
    for passage, vector in zip(passages, np.asarray(vectors, dtype=np.float32)):
        rows.append((*_values(passage), sitting_key(passage.house, passage.speech_id), Vector(vector)))
    with conn.cursor() as cur:
        cur.executemany(sql, rows)
    return len(rows)




def _renew_speeches(conn, speech_ids: list[str]) -> None:
    """These speeches' rows made again from their passages as they now stand, in the writing transaction: none for a speech gone.

    From the rows rather than from the batch in hand, so a speech's row is
    right whatever mix of kept and new passages it has.
    """
    if not speech_ids:
        return
    conn.execute(f"DELETE FROM {SPEECHES} WHERE speech_id = ANY(%s)", (speech_ids,))
    conn.execute(speech_rows_sql("p.speech_id = ANY(%s)"), (speech_ids,))


_ORDER = [NAMES.index(name) for name, _ in COLUMNS[:-1]]  # the passage's values in this table's column order


def _values(passage: Passage) -> tuple:
    values = passage_values(passage)
    return tuple(values[i] for i in _ORDER)


class PostgresWriter:
    """One run's writes to PostgreSQL: the schema brought up to date at the start, each `replace` its own transaction.

    Many writers may run at once: each batch takes advisory locks on its
    speeches and sittings, so writers of the same speeches queue, and a run
    that stops part-way leaves every sitting either old or new, never half.
    """

    def __init__(self, url: str, model: ModelInfo, rebuild: bool = False, batch_passages: int = DEFAULT_BATCH_PASSAGES):
        self.url = url
        self.model = model
        self.rebuild = rebuild
        self.batch_passages: Optional[int] = batch_passages
        self.conn = None
        self._held: list[np.ndarray] = []

    def __enter__(self) -> "PostgresWriter":
        if self.rebuild:
            drop_store(self.url)
        migrate(self.url, self.model)  # creates the store on first use; refuses one made by another model
        self.conn = connect(self.url)
        return self

    def __exit__(self, *exc) -> None:
        if self.conn is not None:
            self.conn.close()

    @contextlib.contextmanager
    def bulk(self, passages: int) -> Iterator[None]:
        with _failing_as_store_error(), bulk_load(self.conn, passages):
            yield

    def held(self, speech_ids: Iterable[str], sittings: Iterable[str]) -> dict[str, tuple[str, int]]:
        out = {}
        with _failing_as_store_error():
            for passage_id, (text, vector) in existing_vectors(self.conn, speech_ids, sittings).items():
                out[passage_id] = (text, len(self._held))
                self._held.append(vector)
        return out

    def vectors_at(self, keys: Sequence[int]) -> np.ndarray:
        return np.stack([self._held[key] for key in keys])

    def missing_titles(self, titles: Iterable[str]) -> set[str]:
        """Those of these debate titles the store holds no embedding for (blank ones need none): one statement."""
        with _failing_as_store_error():
            return missing_titles(self.conn, titles)

    def add_titles(self, vectors: dict[str, np.ndarray]) -> None:
        """Upsert these debate titles' embeddings (unit vectors of the store's dimension), committed at once, in one transaction.

        Kept even when no passage uses a title any more (one small row each):
        a title added here cannot be pruned by another writer before this
        one's `replace`.
        """
        with _failing_as_store_error():
            write_titles(self.conn, vectors, int(self.model.dimension))

    def replace(self, passages: Sequence[Passage], vectors: np.ndarray, speech_ids: Iterable[str],
                sittings: Iterable[str] = ()) -> Replaced:
        with _failing_as_store_error():
            replaced = write_passages(self.conn, passages, vectors, speech_ids, sittings)
        self._held.clear()
        return replaced

    def remove(self, speech_ids: Iterable[str]) -> int:
        with _failing_as_store_error():
            return len(write_passages(self.conn, [], np.zeros((0, 1)), speech_ids, remove_only=True).speeches_removed)

    def commit(self) -> StoreDescription:
        store = PostgresStore(self.url)  # every replace is committed already: describe what is there now
        store.close()
        return store.manifest


@contextlib.contextmanager
def _failing_as_store_error() -> Iterator[None]:
    import psycopg

    try:
        yield
    except psycopg.Error as err:
        raise DatabaseError(f"writing to the database failed: {str(err).strip()}; batches already written "
                            f"stay (each is whole); run the same command again to finish") from err

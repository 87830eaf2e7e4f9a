"""Where passages and their vectors are kept, behind one interface (`base.Store` to search, `base.StoreWriter` to write).

- `base.py`: the interfaces, the filter conditions both stores build (`Where`,
  `Dialect`, `where_clause`), and what a store is (`StoreDescription`);
- `columns.py`: the passage columns both stores keep, and the one mapping
  between a row and a `Passage`;
- `embedded/`: an index directory (FAISS + SQLite), the default;
- `postgres/`: PostgreSQL with pgvector.

This module is the only one that names both stores: `open_store` and
`open_writer` choose by `Location`. To add a store, write a package beside
the two with a reader and a writer that implement `base.Store` and
`base.StoreWriter`, and choose it here.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Optional, Union

from embeddings.encoder import ModelInfo
from indexer.store.base import (FACET_NAMES, GROUPS, Filters, ModelMismatch, QueryTimeout, Replaced, Store, StoreDescription, StoreError,
                                StoreLocked, StoreUnavailable, StoreWriter, Where)
from indexer.store.embedded.writing import ANN_THRESHOLD
from indexer.store.postgres.schema import MIGRATIONS, SCHEMA_VERSION, connect, database_url, migrate, redact

__all__ = ["ANN_THRESHOLD", "FACET_NAMES", "Filters", "GROUPS", "MIGRATIONS", "SCHEMA_VERSION", "Location", "ModelMismatch", "QueryTimeout", "Replaced", "Store",
           "StoreDescription", "StoreError", "StoreLocked", "StoreUnavailable", "StoreWriter", "Where", "connect",
           "database_url", "migrate", "open_store", "open_writer", "redact"]


@dataclass(frozen=True)
class Location:
    """Where a store is: an index directory, or a PostgreSQL database (and, for queries, a read replica)."""

    index_dir: Optional[Path] = None
    database_url: Optional[str] = None
    read_url: Optional[str] = None

    @classmethod
    def of(cls, where: Union["Location", Path, str, None]) -> "Location":
        """A Location as given, or the embedded store in a directory."""
        return where if isinstance(where, Location) else cls(index_dir=Path(where) if where is not None else None)

    @property
    def is_database(self) -> bool:
        return bool(self.database_url)

    def __str__(self) -> str:
        """For messages and logs: "index DIR", or "database URL" without its password."""
        return f"database {redact(self.database_url)}" if self.database_url else f"index {self.index_dir}"


def open_store(location: Location) -> Store:
    """The store at `location`, opened for searching; StoreError when it cannot be used."""
    if location.database_url:
        from indexer.store.postgres.reading import PostgresStore

        return PostgresStore(location.database_url, read_url=location.read_url)
    if location.index_dir is None:
        raise StoreError("no index directory and no database URL given")
    from indexer.store.embedded.reading import EmbeddedStore

    return EmbeddedStore(location.index_dir)


def open_writer(location: Location, model: ModelInfo, rebuild: bool = False,
                ann_threshold: Optional[int] = ANN_THRESHOLD, batch_passages: Optional[int] = None) -> StoreWriter:
    """A writer for the store at `location` (a context manager), for vectors of `model`; with rebuild, the store starts empty.

    `ann_threshold` (embedded: above it, an approximate vector index; None:
    never) and `batch_passages` (PostgreSQL: passages a transaction) are
    each one store's tuning.
    """
    if location.database_url:
        from indexer.store.postgres.writing import DEFAULT_BATCH_PASSAGES, PostgresWriter

        return PostgresWriter(location.database_url, model, rebuild, batch_passages or DEFAULT_BATCH_PASSAGES)
    if location.index_dir is None:
        raise StoreError("no index directory and no database URL given")
    from indexer.store.embedded.writing import EmbeddedWriter

    return EmbeddedWriter(location.index_dir, model, rebuild, ann_threshold)

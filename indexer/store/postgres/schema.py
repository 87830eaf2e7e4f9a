"""The PostgreSQL store: passages, their vectors (pgvector) and full-text vectors in one table, speeches in another.

Selected by a database URL (`HANSARD_DATABASE_URL`, `--database-url`); the
embedded store (`indexer.store`) is the default. Both implement
`indexer.store.base.Store`, so the search above cannot tell them apart.

Schema (see MIGRATIONS; `hansard-search migrate` applies them, and so does
every indexing run):

- `hansard_passages`: one row per passage, with its metadata, its embedding
  (`vector(dim)`, HNSW index, inner product: the vectors are unit length, so
  this is cosine) and a weighted `tsvector` (debate title A, speaker B, text
  C; GIN index). Primary key (speech_id, id).
- `hansard_speeches` (migration 2): one row per speech, kept in step with
  its passages in the same transaction: `key` (the vec of its first
  passage, which names the speech), its own vector (the normalised mean of
  its passages', `base.speech_vector`; HNSW index as the passages') and a
  `tsvector` of the whole speech (title A, speaker B, every passage's text
  C, in speech order; GIN index). Primary key speech_id.
- `hansard_titles` (migration 3): one row per distinct debate title, with
  the title's own embedding (`vector(dim)`); passages refer to it by their
  `debate` column. Read as context (`context_vectors`, and the contextual
  dense score of the pushed-down hybrid), beside the passages before and
  after (by `(speech_id, position)`, indexed). A store migrated from
  version 2 holds no title embeddings yet: they read as zeros until the
  next `hansard-search index` run gives them (`missing_titles`). Titles no
  passage uses any more are kept (one small row each): never deleting one
  means a title a writer has added cannot vanish before its `replace`.
- `hansard_store`: one row: the model that made the vectors, counts, and a
  generation number every write bumps (services poll it to notice writes).
- `hansard_migrations`: which schema versions are applied.

Scaling out: the distribution column for Citus is `speech_id`. Every
passage of a speech, and its speech row, live on one shard (the speeches
table co-located with the passages), so the writes (upsert and delete by
speech, in one transaction) and "similar to this speech" touch one shard;
searches fan out to all shards, each answering from its own HNSW and GIN
indexes. `hansard_store` and `hansard_titles` become reference tables
(small; a copy on every node, so the join by title stays on each shard). The primary key
includes `speech_id` for that reason; `vec` (the number the search passes
around) comes from a sequence and is unique without a constraint.
Read replicas: give `database_read_url` and every query goes there, while
writes (indexing, the admin API) go to `database_url`.

Writes take a transaction-scoped advisory lock per speech (and per sitting,
when a newer version of a ParlParse sitting replaces an older one), in sorted
order, so concurrent writers of the same speeches queue instead of
interleaving, and a rerun of the same input leaves the same rows.
"""

from __future__ import annotations

import contextlib
import re
from typing import Iterator, Optional
from urllib.parse import urlsplit, urlunsplit

from embeddings.encoder import ModelInfo
from indexer.store.base import StoreError, check_model
from indexer.store.columns import FIELDS

SCHEMA_VERSION = 3
MIN_PGVECTOR = "0.8"  # hnsw.iterative_scan
TABLE = "hansard_passages"
SPEECHES = "hansard_speeches"  # one row per speech (migration 2)
TITLES = "hansard_titles"  # one row per debate title, with its embedding (migration 3)
TEXT_CONFIG = "english"  # Snowball English stemming, as the embedded store's Porter stemmer

# HNSW build and search parameters. ef_search 200 keeps recall of the top 100
# (the search's candidate pool) close to exact at 10^5 passages; iterative
# scans (pgvector >= 0.8) carry on past it when filters reject candidates.
HNSW_M = 16
HNSW_EF_CONSTRUCTION = 64
HNSW_EF_SEARCH = 200
HNSW_MAX_EF_SEARCH = 1000  # pgvector's limit
DEADLINE_SLACK_MS = 1_000  # how far past a request's deadline a statement may run before its timeout is reset
MAX_SCAN_TUPLES = 50_000  # how far an iterative scan goes before the exact fallback takes over
# Keyword score: ts_rank with normalisation 1 (divided by 1 + log of the
# passage's length), chosen on half of the dev QA questions among ts_rank
# 0/1/2/8/16 and ts_rank_cd 1/2 (bench/pg_keyword.py).
KEYWORD_RANK = "ts_rank('{weights}', p.tsv, q.t, 1)"

# The passage columns (indexer.store.columns) with speech_id first, as the
# primary key and the Citus distribution column; then the sitting.
COLUMNS = [(name, kind) for name, _, kind in sorted(FIELDS, key=lambda field: field[0] != "speech_id")]
COLUMNS.append(("sitting", "text"))  # sitting_key: a newer version of a ParlParse sitting replaces all of it
PASSAGE_NAMES = [name for name, _ in COLUMNS[:-1]]
# Columns a later migration adds (ALTER TABLE): migration 1 creates the table as it was released, without them.
ADDED_COLUMNS = {"debate_id": 3}
MIGRATION_1_COLUMNS = [(name, kind) for name, kind in COLUMNS if name not in ADDED_COLUMNS]
SELECT = ", ".join(f"p.{name}" for name in PASSAGE_NAMES)

# The HNSW index. A load into an empty store drops it and builds it once at
# the end (bulk_load): maintaining it row by row made loading 7,275 passages
# 9.0 s of writing, against 1.5 s plus 1.2 s to build it afterwards.
def _vector_index_sql(table: str) -> str:
    return (f"CREATE INDEX IF NOT EXISTS {table}_embedding ON {table} USING hnsw (embedding vector_ip_ops) "
            f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")


VECTOR_INDEX_SQL = _vector_index_sql(TABLE)
SPEECH_VECTOR_INDEX_SQL = _vector_index_sql(SPEECHES)
VECTOR_INDEXES = {TABLE: VECTOR_INDEX_SQL, SPEECHES: SPEECH_VECTOR_INDEX_SQL}  # table -> its HNSW index
BULK_LOAD_MIN = 5_000  # passages: below this, a load into an empty store keeps the index as it goes



def speech_rows_sql(condition: str) -> str:
    """An INSERT of the speech rows of the speeches whose passages `condition` (on `passages p`) selects, made from those passages.

    One definition for the migration that fills the table and for every
    write after it, so the two cannot drift apart. The key and the speaker
    and title come from the first passage (by position, then vec, as the
    embedded store orders a speech); the vector is `base.speech_vector` in
    SQL (pgvector's avg accumulates in double precision); the text is
    parsed whole, in speech order, with the weights of the passages' tsv.
    """
    first = "(array_agg(p.{column} ORDER BY p.position, p.vec))[1]"
    return f"""INSERT INTO {SPEECHES} (speech_id, key, embedding, tsv)
SELECT p.speech_id, {first.format(column="vec")}, l2_normalize(avg(p.embedding)),
    setweight(to_tsvector('{TEXT_CONFIG}', coalesce({first.format(column="debate")}, '')), 'A') ||
    setweight(to_tsvector('{TEXT_CONFIG}', coalesce({first.format(column="speaker_name")}, '')), 'B') ||
    setweight(to_tsvector('{TEXT_CONFIG}', string_agg(p.text, ' ' ORDER BY p.position, p.vec)), 'C')
FROM {TABLE} p WHERE {condition} GROUP BY p.speech_id"""


# Versioned schema changes, applied in order, each once (hansard_migrations
# records them). {dim} is the model's dimension, fixed by the first run.
MIGRATIONS: list[tuple[int, str, str]] = [
    (1, "passages, vectors, full text", f"""
CREATE EXTENSION IF NOT EXISTS vector;
CREATE TABLE hansard_store (
    singleton boolean PRIMARY KEY DEFAULT true CHECK (singleton),
    model_name text NOT NULL,
    model_version text NOT NULL,
    dimension integer NOT NULL,
    passages bigint NOT NULL DEFAULT 0,
    speeches bigint NOT NULL DEFAULT 0,
    generation bigint NOT NULL DEFAULT 0,
    written_at timestamptz NOT NULL DEFAULT now()
);
CREATE SEQUENCE {TABLE}_vec_seq;
CREATE TABLE {TABLE} (
    {', '.join(f'{name} {kind}' for name, kind in MIGRATION_1_COLUMNS)},
    vec bigint NOT NULL DEFAULT nextval('{TABLE}_vec_seq'),
    embedding vector({{dim}}) NOT NULL,
    tsv tsvector GENERATED ALWAYS AS (
        setweight(to_tsvector('{TEXT_CONFIG}', coalesce(debate, '')), 'A') ||
        setweight(to_tsvector('{TEXT_CONFIG}', coalesce(speaker_name, '')), 'B') ||
        setweight(to_tsvector('{TEXT_CONFIG}', text), 'C')
    ) STORED,
    PRIMARY KEY (speech_id, id)
);
CREATE INDEX {TABLE}_vec ON {TABLE} (vec);
CREATE INDEX {TABLE}_id ON {TABLE} (id);
CREATE INDEX {TABLE}_sitting ON {TABLE} (sitting);
CREATE INDEX {TABLE}_date ON {TABLE} (date);
CREATE INDEX {TABLE}_house_section ON {TABLE} (house, section);
CREATE INDEX {TABLE}_person ON {TABLE} (person_id);
CREATE INDEX {TABLE}_party ON {TABLE} (lower(party));
CREATE INDEX {TABLE}_tsv ON {TABLE} USING gin (tsv);
{VECTOR_INDEX_SQL};
"""),
    # Filled from the passages a store already holds; the indexes are built
    # after the rows (faster than maintaining them row by row).
    (2, "speeches: own vectors, whole-speech full text", f"""
CREATE TABLE {SPEECHES} (
    speech_id text PRIMARY KEY,
    key bigint NOT NULL,
    embedding vector({{dim}}) NOT NULL,
    tsv tsvector NOT NULL
);
{speech_rows_sql("true")};
CREATE INDEX {SPEECHES}_key ON {SPEECHES} (key);
CREATE INDEX {SPEECHES}_tsv ON {SPEECHES} USING gin (tsv);
{SPEECH_VECTOR_INDEX_SQL};
"""),
    # Empty at first: a store migrated from version 2 gets its titles'
    # embeddings from the next indexing run (missing_titles / add_titles);
    # until then they read as zeros. The name says so, as `migrate` prints it.
    # The (speech_id, position) index finds a passage's neighbours.
    # debate_id: null on the passages written before it until they are indexed again.
    (3, "debate title embeddings (filled by the next `hansard-search index` run), passages by column and by debate", f"""
CREATE TABLE {TITLES} (
    title text PRIMARY KEY,
    embedding vector({{dim}}) NOT NULL
);
CREATE INDEX {TABLE}_speech_position ON {TABLE} (speech_id, position);
CREATE INDEX IF NOT EXISTS {TABLE}_column ON {TABLE} (column_suffix, column_start);
ALTER TABLE {TABLE} ADD COLUMN IF NOT EXISTS debate_id text;
CREATE INDEX IF NOT EXISTS {TABLE}_debate ON {TABLE} (debate_id);
"""),
]

class DatabaseError(StoreError):
    """The database cannot be reached or does not hold a usable store."""


def database_url(value) -> Optional[str]:
    """A database URL as given (None when blank); ValueError when it is not a PostgreSQL one."""
    if value is None or not str(value).strip():
        return None
    value = str(value).strip()
    if not value.startswith(("postgresql://", "postgres://")):
        raise ValueError("a database URL starts with postgresql:// (e.g. postgresql://user@host:5432/hansard)")
    return value


def redact(url: str) -> str:
    """A database URL without its password, for messages and logs."""
    try:
        parts = urlsplit(url)
    except ValueError:
        return "postgresql://..."
    if parts.password is None:
        return url
    netloc = parts.netloc.rsplit("@", 1)
    return urlunsplit(parts._replace(netloc=f"{parts.username}:***@{netloc[-1]}"))


# pgvector's types as registered on an earlier connection to the same
# database: {url: (the vector type's oid, adapters)}. register_vector makes
# new (anonymous) adapter classes on every call, and psycopg keeps every
# adapter class it has seen in a class-wide cache: registering afresh on
# each connection grew a service by ~100 kB a write, for ever.
_VECTOR_ADAPTERS: dict = {}
_VECTOR_OID = "SELECT to_regtype('vector')::oid"


def connect(url: str, autocommit: bool = True, read_only: bool = False):
    """A psycopg connection with pgvector's types registered; DatabaseError when it cannot be made."""
    import psycopg
    from pgvector.psycopg import register_vector

    def opened(context=None):
        try:
            return psycopg.connect(url, autocommit=autocommit, connect_timeout=10, application_name="hansard-search",
                                   context=context)
        except psycopg.Error as err:
            raise DatabaseError(f"cannot connect to {redact(url)}: {str(err).strip()}") from err

    oid, adapters = _VECTOR_ADAPTERS.get(url, (None, None))
    conn = opened(adapters)
    if adapters is None or conn.execute(_VECTOR_OID).fetchone()[0] != oid:  # first, or the extension made anew
        if adapters is not None:
            conn.close()
            conn = opened()
        try:
            register_vector(conn)
        except psycopg.ProgrammingError:
            pass  # the extension is not there yet: migrate creates it, then reconnects
        else:
            if not autocommit:
                conn.rollback()
            _VECTOR_ADAPTERS[url] = (conn.execute(_VECTOR_OID).fetchone()[0], conn.adapters)
    if not autocommit:
        conn.rollback()  # the checks above opened a transaction: the caller starts from none
    if read_only:
        conn.execute("SET default_transaction_read_only = on")
    return conn


# ---------------------------------------------------------------- schema


def applied_migrations(conn) -> list[int]:
    exists = conn.execute("SELECT to_regclass('hansard_migrations') IS NOT NULL").fetchone()[0]
    if not exists:
        return []
    return [row[0] for row in conn.execute("SELECT version FROM hansard_migrations ORDER BY version")]


def migrate(url: str, model: ModelInfo) -> list[int]:
    """Apply the migrations not yet applied, in one transaction each; returns those applied now.

    The first one fixes the store's model and dimension. Migrating a store
    made with another model is refused (its vectors would not compare).
    """
    applied_now = []
    with connect(url, autocommit=False) as conn:
        # One migrating process at a time (two services starting together).
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('hansard-search migrate'))")
        conn.execute("CREATE TABLE IF NOT EXISTS hansard_migrations (version integer PRIMARY KEY, name text NOT NULL, "
                     "applied_at timestamptz NOT NULL DEFAULT now())")
        done = set(applied_migrations(conn))
        for version, name, sql in MIGRATIONS:
            if version in done:
                continue
            conn.execute(sql.format(dim=int(model.dimension)))
            if version == 1:
                conn.execute("INSERT INTO hansard_store (model_name, model_version, dimension) VALUES (%s, %s, %s)",
                             (model.name, model.version, model.dimension))
            conn.execute("INSERT INTO hansard_migrations (version, name) VALUES (%s, %s)", (version, name))
            applied_now.append(version)
        installed = conn.execute("SELECT extversion FROM pg_extension WHERE extname = 'vector'").fetchone()
        if installed is None or pgvector_too_old(installed[0]):
            conn.rollback()
            raise DatabaseError(
                f"the database {redact(url)} has pgvector {installed[0] if installed else '(none)'}; hansard-search "
                f"needs {MIN_PGVECTOR} or newer (iterative index scans): ALTER EXTENSION vector UPDATE, or install it")
        conn.commit()
        ensure_vector_index(conn)  # should a bulk load have died before rebuilding it
        conn.commit()
        stored = stored_model(conn)
    if stored is not None:
        check_model(stored, f"the database {redact(url)}", model)
    return applied_now


def ensure_vector_index(conn) -> None:
    """Build the HNSW indexes (passages', speeches') that are missing (after a bulk load, or one that died half-way)."""
    for table, sql in VECTOR_INDEXES.items():
        exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{table}_embedding",)).fetchone()[0]
        if not exists and conn.execute("SELECT to_regclass(%s) IS NOT NULL", (table,)).fetchone()[0]:
            conn.execute("SET maintenance_work_mem = '512MB'")
            conn.execute(sql)
            conn.execute("RESET maintenance_work_mem")


@contextlib.contextmanager
def bulk_load(conn, passages: int) -> Iterator[bool]:
    """Within it, an empty store loads without its HNSW indexes, built once at the end (whatever happens).

    Yields whether it did so: only when the store holds nothing yet and the
    load is large (BULK_LOAD_MIN passages). Searches meanwhile still work,
    by exact scans.
    """
    empty = conn.execute("SELECT passages = 0 FROM hansard_store").fetchone()[0]
    if not (empty and passages >= BULK_LOAD_MIN):
        yield False
        return
    for table in VECTOR_INDEXES:
        conn.execute(f"DROP INDEX IF EXISTS {table}_embedding")
    try:
        yield True
    finally:
        ensure_vector_index(conn)


def pgvector_too_old(version: str) -> bool:
    numbers = [int(part) for part in re.findall(r"\d+", version)[:2]]
    return tuple(numbers) < tuple(int(part) for part in MIN_PGVECTOR.split("."))


def drop_store(url: str) -> None:
    """Remove every table of the store (for --rebuild); the pgvector extension stays."""
    with connect(url, autocommit=False) as conn:
        conn.execute("SELECT pg_advisory_xact_lock(hashtext('hansard-search migrate'))")
        conn.execute(f"DROP TABLE IF EXISTS {TITLES}, {SPEECHES}, {TABLE}, hansard_store, hansard_migrations; DROP SEQUENCE IF EXISTS {TABLE}_vec_seq")
        conn.commit()


def stored_model(conn) -> Optional[ModelInfo]:
    if conn.execute("SELECT to_regclass('hansard_store') IS NULL").fetchone()[0]:
        return None
    row = conn.execute("SELECT model_name, model_version, dimension FROM hansard_store").fetchone()
    return ModelInfo(name=row[0], version=row[1], dimension=row[2]) if row else None



"""The PostgreSQL store: passages, their vectors (pgvector) and full-text vectors in one table.

Selected by a database URL (`HANSARD_DATABASE_URL`, `--database-url`); the
embedded store (`indexer.store`) is the default. Both implement
`indexer.backend.Store`, so the search above cannot tell them apart.

Schema (see MIGRATIONS; `hansard-search migrate` applies them, and so does
every indexing run):

- `hansard_passages`: one row per passage, with its metadata, its embedding
  (`vector(dim)`, HNSW index, inner product: the vectors are unit length, so
  this is cosine) and a weighted `tsvector` (debate title A, speaker B, text
  C; GIN index). Primary key (speech_id, id).
- `hansard_store`: one row: the model that made the vectors, counts, and a
  generation number every write bumps (services poll it to notice writes).
- `hansard_migrations`: which schema versions are applied.

Scaling out: the distribution column for Citus is `speech_id`. Every
passage of a speech lives on one shard, so the writes (upsert and delete by
speech, in one transaction) and "similar to this speech" touch one shard;
searches fan out to all shards, each answering from its own HNSW and GIN
indexes. `hansard_store` becomes a reference table. The primary key
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
import datetime as dt
import re
import threading
import time
from dataclasses import dataclass
from typing import Iterable, Iterator, Optional, Sequence
from urllib.parse import urlsplit, urlunsplit

import numpy as np

from embeddings.encoder import ModelInfo
from indexer.backend import Dialect, QueryTimeout, StoreUnavailable, Where, where_clause as conditions
from indexer.query import Filters, ParsedQuery
from indexer.sources.vocabulary import sitting_key
from indexer.sources.records import Passage, Speaker
from indexer.sources.references import Column
from indexer.store import IndexError_, Manifest

SCHEMA_VERSION = 1
MIN_PGVECTOR = "0.8"  # hnsw.iterative_scan
TABLE = "hansard_passages"
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

_COLUMNS = [
    ("speech_id", "text NOT NULL"),
    ("id", "text NOT NULL"),
    ("position", "integer NOT NULL"),
    ("text", "text NOT NULL"),
    ("speaker_name", "text"),
    ("person_id", "text"),
    ("party", "text"),
    ("house", "text"),
    ("section", "text"),
    ("date", "date"),
    ("time", "text"),
    ("debate", "text"),
    ("major_heading", "text"),
    ("minor_heading", "text"),
    ("volume", "integer"),
    ("column_start", "integer"),
    ("column_end", "integer"),
    ("column_suffix", "text"),
    ("reference", "text"),
    ("citation", "text"),
    ("session", "text"),
    ("chamber", "text"),
    ("procedural", "boolean NOT NULL"),
    ("url", "text"),
    ("sitting", "text"),  # sitting_key: a newer version of a ParlParse sitting replaces all of it
]
_NAMES = [name for name, _ in _COLUMNS]
_SELECT = ", ".join(f"p.{name}" for name in _NAMES[:-1])

# The HNSW index. A load into an empty store drops it and builds it once at
# the end (bulk_load): maintaining it row by row made loading 7,275 passages
# 9.0 s of writing, against 1.5 s plus 1.2 s to build it afterwards.
VECTOR_INDEX_SQL = (f"CREATE INDEX IF NOT EXISTS {TABLE}_embedding ON {TABLE} USING hnsw (embedding vector_ip_ops) "
                    f"WITH (m = {HNSW_M}, ef_construction = {HNSW_EF_CONSTRUCTION})")
BULK_LOAD_MIN = 5_000  # passages: below this, a load into an empty store keeps the index as it goes

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
    {', '.join(f'{name} {kind}' for name, kind in _COLUMNS)},
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
]

FACET_SQL = {"speaker": "p.speaker_name", "party": "p.party", "house": "p.house", "section": "p.section",
             "month": "to_char(p.date, 'YYYY-MM')", "year": "to_char(p.date, 'YYYY')", "debate": "p.debate"}
GROUP_SQL = {"passage": "p.vec", "speech": "p.speech_id", "debate": "coalesce(p.date::text, '') || '|' || coalesce(p.debate, '')"}


class DatabaseError(IndexError_):
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


def connect(url: str, autocommit: bool = True, read_only: bool = False):
    """A psycopg connection with pgvector's types registered; DatabaseError when it cannot be made."""
    import psycopg
    from pgvector.psycopg import register_vector

    try:
        conn = psycopg.connect(url, autocommit=autocommit, connect_timeout=10, application_name="hansard-search")
    except psycopg.Error as err:
        raise DatabaseError(f"cannot connect to {redact(url)}: {str(err).strip()}") from err
    try:
        register_vector(conn)
    except psycopg.ProgrammingError:
        pass  # the extension is not there yet: migrate creates it, then reconnects
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
    if stored is not None and stored != model:
        raise DatabaseError(
            f"the database {redact(url)} holds vectors of {stored.key} ({stored.dimension}-d), not {model.key}: "
            f"index with --model {stored.name}, or start afresh with --rebuild"
        )
    return applied_now


def ensure_vector_index(conn) -> None:
    """Build the HNSW index if it is missing (after a bulk load, or one that died half-way)."""
    exists = conn.execute("SELECT to_regclass(%s) IS NOT NULL", (f"{TABLE}_embedding",)).fetchone()[0]
    if not exists and conn.execute("SELECT to_regclass(%s) IS NOT NULL", (TABLE,)).fetchone()[0]:
        conn.execute("SET maintenance_work_mem = '512MB'")
        conn.execute(VECTOR_INDEX_SQL)
        conn.execute("RESET maintenance_work_mem")


@contextlib.contextmanager
def bulk_load(conn, passages: int) -> Iterator[bool]:
    """Within it, an empty store loads without its HNSW index, built once at the end (whatever happens).

    Yields whether it did so: only when the store holds nothing yet and the
    load is large (BULK_LOAD_MIN passages). Searches meanwhile still work,
    by exact scans.
    """
    empty = conn.execute("SELECT passages = 0 FROM hansard_store").fetchone()[0]
    if not (empty and passages >= BULK_LOAD_MIN):
        yield False
        return
    conn.execute(f"DROP INDEX IF EXISTS {TABLE}_embedding")
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
        conn.execute(f"DROP TABLE IF EXISTS {TABLE}, hansard_store, hansard_migrations; DROP SEQUENCE IF EXISTS {TABLE}_vec_seq")
        conn.commit()


def stored_model(conn) -> Optional[ModelInfo]:
    if conn.execute("SELECT to_regclass('hansard_store') IS NULL").fetchone()[0]:
        return None
    row = conn.execute("SELECT model_name, model_version, dimension FROM hansard_store").fetchone()
    return ModelInfo(name=row[0], version=row[1], dimension=row[2]) if row else None


# ---------------------------------------------------------------- writing


@dataclass
class WriteResult:
    speeches_removed: list[str]  # speech ids that are gone (not written again)
    speeches_replaced: int


def existing_vectors(conn, speech_ids: Iterable[str], sittings: Iterable[str]) -> dict[str, tuple[str, np.ndarray]]:
    """{passage id: (text, vector)} the store holds for these speeches or sittings: unchanged ones are not re-embedded."""
    rows = conn.execute(
        f"SELECT id, text, embedding FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
        (list(speech_ids), list(sittings)),
    )
    return {row[0]: (row[1], _array(row[2])) for row in rows}


def write_passages(url_or_conn, passages: Sequence[Passage], vectors: np.ndarray, speech_ids: Iterable[str],
                   sittings: Iterable[str] = (), remove_only: bool = False) -> WriteResult:
    """Replace these speeches (and every speech of these sittings) by the given passages, in one transaction.

    Idempotent: writing the same input twice leaves the same rows. With
    remove_only, the speeches are deleted and nothing written.
    """
    speech_ids, sittings = sorted(set(speech_ids)), sorted(set(sittings))
    owns = isinstance(url_or_conn, str)
    conn = connect(url_or_conn, autocommit=False) if owns else url_or_conn
    try:
        with conn.transaction():
            for key in [f"sitting:{s}" for s in sittings] + [f"speech:{s}" for s in speech_ids]:
                conn.execute("SELECT pg_advisory_xact_lock(hashtext(%s))", (key,))
            before = [row[0] for row in conn.execute(
                f"SELECT DISTINCT speech_id FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
                (speech_ids, sittings))]
            deleted = conn.execute(f"DELETE FROM {TABLE} WHERE speech_id = ANY(%s) OR sitting = ANY(%s)",
                                   (speech_ids, sittings)).rowcount
            written = 0 if remove_only else _insert(conn, passages, vectors)
            incoming = {p.speech_id for p in passages}
            gone = sorted(set(before) - incoming)
            speeches_delta = len(incoming - set(before)) - len(gone)
            conn.execute("UPDATE hansard_store SET passages = passages + %s, speeches = speeches + %s, "
                         "generation = generation + 1, written_at = now()",
                         (written - deleted, speeches_delta))
    finally:
        if owns:
            conn.close()
    return WriteResult(speeches_removed=gone, speeches_replaced=len(set(before) & incoming))


def _insert(conn, passages: Sequence[Passage], vectors: np.ndarray) -> int:
    if not len(passages):
        return 0
    from pgvector import Vector

    columns = [*_NAMES, "embedding"]
    sql = (f"INSERT INTO {TABLE} ({', '.join(columns)}) VALUES ({', '.join(['%s'] * len(columns))}) "
           f"ON CONFLICT (speech_id, id) DO UPDATE SET "
           + ", ".join(f"{c} = EXCLUDED.{c}" for c in columns if c not in ("speech_id", "id")))
    rows = []
    for passage, vector in zip(passages, np.asarray(vectors, dtype=np.float32)):
        rows.append((*_row(passage), sitting_key(passage.house, passage.speech_id), Vector(vector)))
    with conn.cursor() as cur:
        cur.executemany(sql, rows)
    return len(rows)


def _without_nul(value):
    """A query parameter PostgreSQL can take: its text cannot hold NUL, which no stored text has either.

    NUL becomes U+FFFE, a noncharacter no Hansard text holds (XML forbids it),
    so a lookup or filter with one finds nothing, as it does in SQLite.
    """
    if isinstance(value, str):
        return value.replace("\x00", "\ufffe")
    if isinstance(value, list):
        return [_without_nul(item) for item in value]
    return value


def _version_name(generation: int) -> str:
    return f"generation-{generation}"


def _array(value) -> np.ndarray:
    """A stored vector as float32 (pgvector's loader gives numpy arrays or, in binary results, Vector objects)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


def _row(p: Passage) -> tuple:
    c = p.column
    return (
        p.speech_id, p.id, p.position, p.text, p.speaker.name, p.speaker.person_id, p.speaker.party,
        p.house, p.section, p.date, p.time, p.debate, p.major_heading, p.minor_heading,
        c.volume, c.start, c.end, c.suffix, p.reference, p.citation, p.session, p.chamber, bool(p.procedural), p.url,
    )


def _passage(row) -> Passage:
    (speech_id, pid, position, text, name, person_id, party, house, section, date, time, debate, major, minor,
     volume, start, end, suffix, reference, citation, session, chamber, procedural, url) = row[:24]
    return Passage(
        id=pid, speech_id=speech_id, position=position, text=text,
        speaker=Speaker(name=name, person_id=person_id, party=party), house=house, section=section,
        date=date, time=time, debate=debate, major_heading=major, minor_heading=minor,
        column=Column(volume=volume, start=start, end=end, suffix=suffix), reference=reference, citation=citation,
        session=session, chamber=chamber, procedural=procedural, url=url,
    )


# ---------------------------------------------------------------- conditions


def _phrase(phrase: str) -> tuple[str, tuple]:
    # The GIN index finds candidates; the substring test makes the match exact.
    return f"p.tsv @@ phraseto_tsquery('{TEXT_CONFIG}', %s) AND strpos(lower(p.text), lower(%s)) > 0", (phrase, phrase)


def _excluded(words: list[str]) -> tuple[str, tuple]:
    any_of = " || ".join([f"plainto_tsquery('{TEXT_CONFIG}', %s)"] * len(words))
    return f"NOT (p.tsv @@ ({any_of}))", tuple(words)


# ILIKE: PostgreSQL's LIKE minds case, SQLite's does not. Dates are `date`s.
POSTGRESQL = Dialect(param="%s", contains="{column} ILIKE %s", date=lambda day: day, phrase=_phrase, excluded=_excluded)


def where_clause(filters: Filters, query: Optional[ParsedQuery] = None, speech_id: Optional[str] = None) -> Where:
    """Exact filters and the query's phrase and exclusion constraints, as PostgreSQL's SQL."""
    return conditions(POSTGRESQL, filters, query, speech_id)


_FTS_PHRASE = re.compile(r'"((?:[^"]|"")*)"')


def tsquery_sql(fts_query: str) -> tuple[str, tuple]:
    """A keyword query (`fts_phrase`s joined by OR, as the search writes them) as a tsquery expression."""
    phrases = [m.replace('""', '"') for m in _FTS_PHRASE.findall(fts_query)]
    if not phrases:  # not in that form: read it as a web search would
        return f"websearch_to_tsquery('{TEXT_CONFIG}', %s)", (fts_query,)
    return "(" + " || ".join([f"phraseto_tsquery('{TEXT_CONFIG}', %s)"] * len(phrases)) + ")", tuple(phrases)


def rank_weights(weights: tuple[float, float, float]) -> str:
    """ts_rank's weight array {D, C, B, A} for (text, debate title, speaker) weights: text C, title A, speaker B."""
    text, debate, speaker = (float(w) for w in weights)
    top = max(text, debate, speaker, 1e-9)
    return "{" + ", ".join(f"{w / top:.4f}" for w in (0.0, text, speaker, debate)) + "}"


# ---------------------------------------------------------------- reading


class PgIndex:
    """A PostgreSQL store, opened for searching. Safe to share between threads (one connection each)."""

    def __init__(self, database_url: str, read_url: Optional[str] = None):
        self.url = database_url
        self.read_url = read_url or database_url
        self._local = threading.local()
        self._connections: list = []
        self._connections_lock = threading.Lock()
        conn = self._db()
        try:
            applied = applied_migrations(conn)
        except Exception as err:  # noqa: BLE001
            raise DatabaseError(f"cannot read the store in {redact(self.read_url)}: {err}") from err
        if not applied:
            raise DatabaseError(f"the database {redact(self.read_url)} holds no hansard-search store: "
                                f"run `hansard-search migrate` or `hansard-search index --database-url ...`")
        if max(applied) > SCHEMA_VERSION:
            raise DatabaseError(f"the store in {redact(self.read_url)} has schema version {max(applied)}; "
                                f"this program knows up to {SCHEMA_VERSION}: upgrade hansard-search")
        if max(applied) < SCHEMA_VERSION:
            raise DatabaseError(f"the store in {redact(self.read_url)} has schema version {max(applied)}; "
                                f"run `hansard-search migrate` to bring it to {SCHEMA_VERSION}")
        row = conn.execute("SELECT model_name, model_version, dimension, passages, speeches, generation, written_at "
                           "FROM hansard_store").fetchone()
        if row is None:
            raise DatabaseError(f"the store in {redact(self.read_url)} is damaged: hansard_store is empty")
        name, version, dimension, passages, speeches, generation, written_at = row
        self.generation = generation
        self.manifest = Manifest(
            format_version=SCHEMA_VERSION, model={"name": name, "version": version}, dimension=dimension,
            passages=passages, speeches=speeches, index_type="pgvector-hnsw-ip",
            built_at=written_at.astimezone(dt.timezone.utc).isoformat(timespec="seconds"),
        )

    # ------------------------------------------------------------ connections

    def _db(self):
        conn = getattr(self._local, "conn", None)
        if conn is None or conn.closed:
            import psycopg

            conn = connect(self.read_url, read_only=True)
            try:
                conn.execute(f"SET hnsw.ef_search = {HNSW_EF_SEARCH}")
                conn.execute("SET hnsw.iterative_scan = strict_order")
                conn.execute(f"SET hnsw.max_scan_tuples = {MAX_SCAN_TUPLES}")
            except psycopg.Error as err:
                conn.close()
                raise DatabaseError(f"cannot prepare a connection to {redact(self.read_url)}: {str(err).strip()}") from err
            self._local.conn = conn
            self._local.walk_the_index = False
            self._local.ef_search = HNSW_EF_SEARCH
            self._local.timeout_ms = 0
            with self._connections_lock:
                self._connections = [c for c in self._connections if not c.closed] + [conn]
        return conn

    def _rows(self, sql: str, params: Sequence = (), walk_the_index: bool = False) -> list:
        """Run a query on this thread's connection, within the request's deadline if one is set.

        walk_the_index: plan a nearest-neighbour query through the HNSW
        index. Left to itself, the planner scans and sorts every row of a
        table this small (10^4 passages): 22 ms a hybrid query against 6 ms
        through the index (bench/backends.py's slice).

        A connection the server has closed (a restart, a failover) is
        replaced once; a database that cannot be reached is StoreUnavailable.
        """
        import psycopg

        for attempt in (1, 2):
            try:
                conn = self._db()
            except DatabaseError as err:
                raise StoreUnavailable(str(err)) from err
            try:
                self._apply_deadline(conn)
                if walk_the_index != getattr(self._local, "walk_the_index", False):
                    conn.execute(f"SET enable_seqscan = {'off' if walk_the_index else 'on'}")
                    self._local.walk_the_index = walk_the_index
                cursor = conn.execute(sql, [_without_nul(value) for value in params])
                return cursor.fetchall() if cursor.description else []
            except psycopg.errors.QueryCanceled as err:
                raise QueryTimeout(str(err)) from err
            except psycopg.OperationalError as err:
                self._local.conn = None
                if attempt == 2 or not conn.closed:
                    raise StoreUnavailable(f"the database {redact(self.read_url)} failed: {str(err).strip()}") from err
        raise AssertionError("unreachable")

    def _apply_deadline(self, conn) -> None:
        """Cap this statement at what is left of the request's time (none outside a request).

        The connection's statement_timeout is set again only when it would
        let the statement run more than DEADLINE_SLACK_MS past the deadline,
        not before every statement: a request's queries, and the next
        request's on this thread, mostly go without a SET round trip.
        """
        ends = getattr(self._local, "deadline", None)
        current = self._local.timeout_ms
        if ends is None:
            timeout = 0
        else:
            left = int((ends - time.monotonic()) * 1000)
            if left <= 0:
                raise QueryTimeout("the request's time ran out before this query")
            timeout = current if 0 < current <= left + DEADLINE_SLACK_MS else left
        if timeout != current:
            conn.execute(f"SET statement_timeout = {timeout}")
            self._local.timeout_ms = timeout

    def live_version(self) -> Optional[str]:
        try:
            rows = self._rows("SELECT generation FROM hansard_store")
        except Exception:  # noqa: BLE001 - unreachable now: "unknown", as for an unreadable CURRENT
            return None
        return _version_name(rows[0][0]) if rows else None

    def ping(self) -> None:
        self._rows("SELECT 1")

    def close(self) -> None:
        with self._connections_lock:
            for conn in self._connections:
                conn.close()
            self._connections.clear()

    @contextlib.contextmanager
    def deadline(self, seconds: float) -> Iterator[None]:
        """Stop this thread's queries once `seconds` have passed (PostgreSQL's statement_timeout; QueryTimeout)."""
        self._local.deadline = time.monotonic() + seconds
        try:
            yield
        finally:
            self._local.deadline = None

    # ------------------------------------------------------------ what it is

    @property
    def location(self) -> str:
        return redact(self.read_url)

    @property
    def version(self) -> str:
        return _version_name(self.generation)

    @property
    def model(self) -> ModelInfo:
        return self.manifest.model_info

    def __len__(self) -> int:
        return self.manifest.passages

    where = staticmethod(where_clause)

    # ------------------------------------------------------------ records

    def passages_at(self, vecs: Iterable[int]) -> list[Passage]:
        vecs = [int(v) for v in vecs]
        if not vecs:
            return []
        rows = self._rows(f"SELECT {_SELECT}, p.vec FROM {TABLE} p WHERE p.vec = ANY(%s)", (vecs,))
        by_vec = {row[-1]: _passage(row) for row in rows}
        return [by_vec[v] for v in vecs if v in by_vec]

    def passage(self, passage_id: str) -> Optional[Passage]:
        rows = self._rows(f"SELECT {_SELECT} FROM {TABLE} p WHERE p.id = %s", (passage_id,))
        return _passage(rows[0]) if rows else None

    def speech(self, speech_id: str) -> list[Passage]:
        rows = self._rows(f"SELECT {_SELECT} FROM {TABLE} p WHERE p.speech_id = %s ORDER BY p.position", (speech_id,))
        return [_passage(row) for row in rows]

    def vec_of(self, passage_id: str) -> Optional[int]:
        rows = self._rows(f"SELECT vec FROM {TABLE} WHERE id = %s", (passage_id,))
        return rows[0][0] if rows else None

    def vecs_of_speech(self, speech_id: str) -> np.ndarray:
        rows = self._rows(f"SELECT vec FROM {TABLE} WHERE speech_id = %s ORDER BY position", (speech_id,))
        return np.array([row[0] for row in rows], dtype=np.int64)

    def vectors_at(self, vecs: Sequence[int]) -> np.ndarray:
        vecs = [int(v) for v in vecs]
        if not vecs:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        rows = self._rows(f"SELECT vec, embedding FROM {TABLE} WHERE vec = ANY(%s)", (vecs,))
        by_vec = {row[0]: _array(row[1]) for row in rows}
        return np.stack([by_vec[v] for v in vecs])

    def breakdown(self) -> dict:
        by_house = {row[0] or "unknown": row[1] for row in self._rows(f"SELECT house, count(*) FROM {TABLE} GROUP BY house")}
        by_section = {row[0] or "unknown": row[1] for row in self._rows(f"SELECT section, count(*) FROM {TABLE} GROUP BY section")}
        first, last = self._rows(f"SELECT min(date), max(date) FROM {TABLE}")[0]
        return {"houses": by_house, "sections": by_section,
                "date_from": first.isoformat() if first else None, "date_to": last.isoformat() if last else None}

    # ------------------------------------------------------------ search

    def count(self, where: Where, group: str = "passage") -> int:
        if not where and group == "passage":
            return self.manifest.passages
        if not where and group == "speech":
            return self.manifest.speeches
        return self._rows(f"SELECT count(DISTINCT {GROUP_SQL[group]}) FROM {TABLE} p WHERE {where.sql or 'true'}",
                          where.params)[0][0]

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray:
        order = "DESC NULLS LAST" if newest_first else "ASC NULLS FIRST"
        rows = self._rows(f"SELECT p.vec FROM {TABLE} p WHERE {where.sql or 'true'} ORDER BY p.date {order}, p.vec LIMIT %s",
                          (*where.params, limit))
        return np.array([row[0] for row in rows], dtype=np.int64)

    def _ef_search(self, k: int) -> None:
        ef = max(HNSW_EF_SEARCH, min(HNSW_MAX_EF_SEARCH, k))
        if ef != getattr(self._local, "ef_search", None):
            self._rows(f"SET hnsw.ef_search = {ef}")
            self._local.ef_search = ef

    def dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """Nearest passages through the HNSW index, filtered during the walk (iterative scan).

        Should the walk give up before k (a very selective filter), the
        allowed passages are scored exactly instead: the page is filled
        whenever k passages are allowed.
        """
        from pgvector import Vector

        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        vector = Vector(np.asarray(query, dtype=np.float32).reshape(-1))
        self._ef_search(k)
        rows = self._rows(
            f"SELECT p.vec, -(p.embedding <#> %s) FROM {TABLE} p WHERE {where.sql or 'true'} "
            f"ORDER BY p.embedding <#> %s LIMIT %s", (vector, *where.params, vector, k), walk_the_index=True)
        if len(rows) < k and len(rows) < self.count(where):
            rows = self._rows(
                f"SELECT vec, score FROM (SELECT p.vec, -(p.embedding <#> %s) AS score FROM {TABLE} p "
                f"WHERE {where.sql or 'true'} OFFSET 0) allowed ORDER BY score DESC, vec LIMIT %s", (vector, *where.params, k))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    keyword_rank = KEYWORD_RANK  # an expression of p.tsv and q.t; a benchmark may try others

    def _rank(self, weights: tuple[float, float, float]) -> str:
        return self.keyword_rank.replace("{weights}", rank_weights(weights))

    def keyword(self, fts_query: str, k: int, where: Where = Where(), weights: tuple[float, float, float] = (1.0, 1.0, 1.0),
                order: str = "relevance", offset: int = 0) -> tuple[np.ndarray, np.ndarray]:
        """(ts_rank scores, vec ids) of passages matching the keyword query; higher is better."""
        tsquery, tsparams = tsquery_sql(fts_query)
        order_by = {"relevance": "score DESC", "date": "p.date ASC NULLS FIRST, score DESC",
                    "-date": "p.date DESC NULLS LAST, score DESC"}[order]
        rows = self._rows(
            f"WITH q AS (SELECT {tsquery} AS t) SELECT p.vec, {self._rank(weights)} AS score "
            f"FROM {TABLE} p, q WHERE p.tsv @@ q.t{where.and_()} ORDER BY {order_by}, p.vec LIMIT %s OFFSET %s",
            (*tsparams, *where.params, k, offset))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def keyword_count(self, fts_query: str, where: Where = Where(), group: str = "passage") -> int:
        tsquery, tsparams = tsquery_sql(fts_query)
        return self._rows(f"SELECT count(DISTINCT {GROUP_SQL[group]}) FROM {TABLE} p WHERE p.tsv @@ {tsquery}{where.and_()}",
                          (*tsparams, *where.params))[0][0]

    def hybrid(self, query: np.ndarray, fts_query: str, k: int, where: Where, dense_weight: float,
               weights: tuple[float, float, float]) -> tuple[np.ndarray, np.ndarray, bool]:
        """Dense and keyword candidates fused in one SQL statement.

        Every candidate gets both scores (unlike the embedded store, where
        a candidate missing from the keyword list gets a floor: here its
        ts_rank costs nothing extra), each min-max normalised over the
        candidates, then summed with dense_weight.
        """
        from pgvector import Vector

        vector = Vector(np.asarray(query, dtype=np.float32).reshape(-1))
        tsquery, tsparams = tsquery_sql(fts_query)
        self._ef_search(k)
        rank = self._rank(weights)

        def statement(exact_dense: bool) -> tuple[str, tuple]:
            if exact_dense:  # score every allowed passage (the fallback when the index walk gives up)
                dense = (f"SELECT vec FROM (SELECT p.vec, p.embedding <#> %s AS distance FROM {TABLE} p "
                         f"WHERE {where.sql or 'true'} OFFSET 0) allowed ORDER BY distance, vec LIMIT %s")
            else:
                dense = f"SELECT p.vec FROM {TABLE} p WHERE {where.sql or 'true'} ORDER BY p.embedding <#> %s LIMIT %s"
            params = (vector, *tsparams) + ((vector, *where.params) if exact_dense else (*where.params, vector))
            sql = f"""
            WITH q AS (SELECT %s::vector AS v, {tsquery} AS t),
            dense AS MATERIALIZED ({dense}),
            keyword AS MATERIALIZED (
                SELECT p.vec FROM {TABLE} p, q WHERE p.tsv @@ q.t{where.and_()} ORDER BY {rank} DESC, p.vec LIMIT %s),
            candidates AS (SELECT vec FROM dense UNION SELECT vec FROM keyword),
            scored AS (
                SELECT p.vec, -(p.embedding <#> q.v) AS d, CASE WHEN p.tsv @@ q.t THEN {rank} ELSE 0 END AS b
                FROM {TABLE} p JOIN candidates c ON c.vec = p.vec, q),
            normalised AS (
                SELECT vec,
                       coalesce((d - min(d) OVER ()) / nullif(max(d) OVER () - min(d) OVER (), 0), 0) AS dn,
                       coalesce((b - min(b) OVER ()) / nullif(max(b) OVER () - min(b) OVER (), 0), 0) AS bn
                FROM scored)
            SELECT vec, %s * dn + (1 - %s) * bn AS score,
                   (SELECT count(*) FROM dense), (SELECT count(*) FROM keyword)
            FROM normalised ORDER BY score DESC, vec"""
            return sql, (*params, k, *where.params, k, dense_weight, dense_weight)

        rows = self._rows(*statement(exact_dense=False), walk_the_index=True)
        n_dense = rows[0][2] if rows else 0
        if n_dense < k and n_dense < self.count(where):
            rows = self._rows(*statement(exact_dense=True))
        n_dense, n_keyword = (rows[0][2], rows[0][3]) if rows else (0, 0)
        return (np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64),
                n_dense < k and n_keyword < k)

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        expression = FACET_SQL[facet]
        if vecs is not None:
            ids = [int(v) for v in vecs]
            if not ids:
                return []
            sql = (f"SELECT {expression} AS value, count(*) AS n FROM {TABLE} p WHERE p.vec = ANY(%s) "
                   f"GROUP BY value ORDER BY n DESC, value LIMIT %s")
            return [tuple(r) for r in self._rows(sql, (ids, limit))]
        if fts:
            tsquery, tsparams = tsquery_sql(fts)
            sql = (f"SELECT {expression} AS value, count(*) AS n FROM {TABLE} p WHERE p.tsv @@ {tsquery}{where.and_()} "
                   f"GROUP BY value ORDER BY n DESC, value LIMIT %s")
            return [tuple(r) for r in self._rows(sql, (*tsparams, *where.params, limit))]
        sql = (f"SELECT {expression} AS value, count(*) AS n FROM {TABLE} p WHERE {where.sql or 'true'} "
               f"GROUP BY value ORDER BY n DESC, value LIMIT %s")
        return [tuple(r) for r in self._rows(sql, (*where.params, limit))]

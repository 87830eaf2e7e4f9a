"""Searching PostgreSQL: dense through the HNSW index (iterative scans, an exact fallback), keyword by ts_rank, hybrid fused in SQL."""

from __future__ import annotations

import contextlib
import datetime as dt
import re
import threading
import time
from typing import Iterable, Iterator, Optional, Sequence

import numpy as np

from embeddings.encoder import ModelInfo
from indexer.sources.records import Passage
from indexer.store.base import (FIELD_WEIGHTS, MAX_DAY_SPEECHES, MAX_DEBATE_PASSAGES, DebateHeading, Dialect, day_debates, QueryTimeout, StoreDescription, StoreUnavailable, Where, debate_order,
                                column_clause, exact_scores)
from indexer.store.columns import passage_of
from indexer.store.postgres.schema import (HNSW_EF_SEARCH, HNSW_MAX_EF_SEARCH, KEYWORD_RANK, MAX_SCAN_TUPLES,
                                           DEADLINE_SLACK_MS, PASSAGE_NAMES, SCHEMA_VERSION, SELECT, SPEECHES, TABLE,
                                           TEXT_CONFIG, TITLES, DatabaseError, applied_migrations, connect, redact)
from indexer.store.words import MORE_LIKE_THIS_MAX_DF_SHARE, candidate_terms, distinctive_terms

# "More like this" looks up the document frequency of at most this many of a
# text's terms (its most frequent, longest first), in one statement: a
# 20,000-character text has ~1,500 distinct terms, and each lookup is an
# index probe.
MORE_LIKE_THIS_LOOKUPS = 400

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


def _passage(row: Sequence) -> Passage:
    return passage_of(dict(zip(PASSAGE_NAMES, row)))


def _version_name(generation: int) -> str:
    return f"generation-{generation}"


def _array(value) -> np.ndarray:
    """A stored vector as float32 (pgvector's loader gives numpy arrays or, in binary results, Vector objects)."""
    return np.asarray(value.to_numpy() if hasattr(value, "to_numpy") else value, dtype=np.float32)


# ---------------------------------------------------------------- conditions


def _phrase(phrase: str) -> tuple[str, tuple]:
    # The GIN index finds candidates; the substring test makes the match exact.
    return f"p.tsv @@ phraseto_tsquery('{TEXT_CONFIG}', %s) AND strpos(lower(p.text), lower(%s)) > 0", (phrase, phrase)


def _excluded(words: list[str]) -> tuple[str, tuple]:
    any_of = " || ".join([f"plainto_tsquery('{TEXT_CONFIG}', %s)"] * len(words))
    return f"NOT (p.tsv @@ ({any_of}))", tuple(words)


# ILIKE: PostgreSQL's LIKE minds case, SQLite's does not. Dates are `date`s.
POSTGRESQL = Dialect(
    param="%s", contains="{column} ILIKE %s", date=lambda day: day, phrase=_phrase, excluded=_excluded,
    facets={"speaker": "p.speaker_name", "party": "p.party", "house": "p.house", "section": "p.section",
            "month": "to_char(p.date, 'YYYY-MM')", "year": "to_char(p.date, 'YYYY')", "debate": "p.debate"},
    groups={"passage": "p.vec", "speech": "p.speech_id", "debate": "coalesce(p.date::text, '') || '|' || coalesce(p.debate, '')"},
)


_FTS_PHRASE = re.compile(r'"((?:[^"]|"")*)"')


def tsquery_sql(fts_query: str) -> tuple[str, tuple]:
    """A keyword query (`fts_phrase`s joined by OR, as the search writes them) as a tsquery expression."""
    phrases = [m.replace('""', '"') for m in _FTS_PHRASE.findall(fts_query)]
    if not phrases:  # not in that form: read it as a web search would
        return f"websearch_to_tsquery('{TEXT_CONFIG}', %s)", (fts_query,)
    return "(" + " || ".join([f"phraseto_tsquery('{TEXT_CONFIG}', %s)"] * len(phrases)) + ")", tuple(phrases)


def _speech_allowed(where: Where) -> str:
    """`where` (on `passages p`) as a condition on a speech `s`: any of its passages satisfies it, as the embedded store allows a speech.

    Exact for every filter, phrases included, where joining the first
    passage alone is not; correlated on speech_id, the distribution column,
    so on Citus it stays on the speech's own shard.
    """
    if not where.sql:
        return ""
    return f" AND EXISTS (SELECT 1 FROM {TABLE} p WHERE p.speech_id = s.speech_id AND ({where.sql}))"


def _lookup_terms(text: str, stopwords: frozenset) -> list[str]:
    """The terms of a text whose document frequency "more like this" looks up: at most MORE_LIKE_THIS_LOOKUPS.

    Those `distinctive_terms` could keep (`words.candidate_terms`), most
    frequent first, then longest (a longer word tends to be a rarer one, so a
    higher tf-idf among equals).
    """
    counts = candidate_terms(text, stopwords)
    return sorted(counts, key=lambda term: (-counts[term], -len(term), term))[:MORE_LIKE_THIS_LOOKUPS]


def _in_order(found: dict, wanted: list[int], what: str, dtype=None) -> np.ndarray:
    """found[w] for each wanted w, in order (numbers of `dtype`, or rows of vectors); KeyError naming what is missing."""
    missing = [w for w in wanted if w not in found]
    if missing:
        raise KeyError(f"not {what}: {missing[:5]}")
    values = [found[w] for w in wanted]
    return np.array(values, dtype=dtype) if dtype is not None else np.stack(values)


def rank_weights(weights: tuple[float, float, float]) -> str:
    """ts_rank's weight array {D, C, B, A} for (text, debate title, speaker) weights: text C, title A, speaker B."""
    text, debate, speaker = (float(w) for w in weights)
    top = max(text, debate, speaker, 1e-9)
    return "{" + ", ".join(f"{w / top:.4f}" for w in (0.0, text, speaker, debate)) + "}"


class PostgresStore:
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
        self.manifest = StoreDescription(
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
        return f"database {redact(self.read_url)}"

    @property
    def version(self) -> str:
        return _version_name(self.generation)

    @property
    def model(self) -> ModelInfo:
        return self.manifest.model_info

    def __len__(self) -> int:
        return self.manifest.passages

    where = POSTGRESQL.where  # conditions in this store's SQL

    # ------------------------------------------------------------ records

    def passages_at(self, vecs: Iterable[int]) -> list[Passage]:
        vecs = [int(v) for v in vecs]
        if not vecs:
            return []
        rows = self._rows(f"SELECT {SELECT}, p.vec FROM {TABLE} p WHERE p.vec = ANY(%s)", (vecs,))
        by_vec = {row[-1]: _passage(row) for row in rows}
        return [by_vec[v] for v in vecs if v in by_vec]

    def passage(self, passage_id: str) -> Optional[Passage]:
        rows = self._rows(f"SELECT {SELECT} FROM {TABLE} p WHERE p.id = %s", (passage_id,))
        return _passage(rows[0]) if rows else None

    def speech(self, speech_id: str) -> list[Passage]:
        rows = self._rows(f"SELECT {SELECT} FROM {TABLE} p WHERE p.speech_id = %s ORDER BY p.position", (speech_id,))
        return [_passage(row) for row in rows]

    def debate(self, debate_id: str, limit: int = MAX_DEBATE_PASSAGES) -> list[Passage]:
        rows = self._rows(f"SELECT {SELECT} FROM {TABLE} p WHERE p.debate_id = %s ORDER BY p.vec LIMIT %s", (debate_id, limit))
        return debate_order(_passage(row) for row in rows)

    def debates_on(self, date: dt.date) -> list[DebateHeading]:
        rows = self._rows(f"SELECT debate_id, debate, house, section, speech_id FROM {TABLE} "
                          f"WHERE date = %s AND position = 0 AND debate_id IS NOT NULL LIMIT %s", (date, MAX_DAY_SPEECHES))
        return day_debates(tuple(row) for row in rows)

    def iter_passages(self) -> Iterator[tuple[int, Passage]]:
        last = -1
        while rows := self._rows(f"SELECT {SELECT}, p.vec FROM {TABLE} p WHERE p.vec > %s ORDER BY p.vec LIMIT 5000", (last,)):
            for row in rows:
                yield row[-1], _passage(row)
            last = rows[-1][-1]

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

    def dense_scores(self, query: np.ndarray, vecs: np.ndarray, k: Optional[int] = None) -> tuple[np.ndarray, np.ndarray]:
        return exact_scores(self.vectors_at, query, vecs, k)

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
        return self._rows(f"SELECT count(DISTINCT {POSTGRESQL.groups[group]}) FROM {TABLE} p WHERE {where.sql or 'true'}",
                          where.params)[0][0]

    def by_date(self, where: Where, limit: int, newest_first: bool = True) -> np.ndarray:
        order = "DESC NULLS LAST" if newest_first else "ASC NULLS FIRST"
        rows = self._rows(f"SELECT p.vec FROM {TABLE} p WHERE {where.sql or 'true'} ORDER BY p.date {order}, p.vec LIMIT %s",
                          (*where.params, limit))
        return np.array([row[0] for row in rows], dtype=np.int64)

    def by_column(self, house: Optional[str], suffix: Optional[str], volume: Optional[int], date: Optional[dt.date],
                  start: int, end: int, limit: int, session: Optional[str] = None) -> np.ndarray:
        """base.Store.by_column: fixed SQL text, every value a parameter."""
        condition, params = column_clause(POSTGRESQL, house, suffix, volume, date, start, end, session)
        rows = self._rows(
            f"SELECT p.vec FROM {TABLE} p WHERE {condition} ORDER BY p.column_start = %s DESC, "
            "least(coalesce(p.column_end, p.column_start), %s) - greatest(p.column_start, %s) DESC, p.date, p.vec LIMIT %s",
            (*params, start, end, start, limit))
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

    def _rank(self, weights: Optional[tuple[float, float, float]], tsv: str = "p.tsv", query: str = "q.t") -> str:
        """The rank expression with these weights, of another tsvector or tsquery when given (a speech's: s.tsv)."""
        return (self.keyword_rank.replace("{weights}", rank_weights(weights or FIELD_WEIGHTS))
                .replace("p.tsv", tsv).replace("q.t", query))

    def keyword(self, fts_query: str, k: int, where: Where = Where(), weights: Optional[tuple[float, float, float]] = None,
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
        return self._rows(f"SELECT count(DISTINCT {POSTGRESQL.groups[group]}) FROM {TABLE} p WHERE p.tsv @@ {tsquery}{where.and_()}",
                          (*tsparams, *where.params))[0][0]

    def keyword_scores(self, fts_query: str, vecs: np.ndarray,
                       weights: Optional[tuple[float, float, float]] = None) -> np.ndarray:
        """ts_rank of each given passage for the keyword query (0 where it matches none of it), in the order given."""
        return self._scores_of(fts_query, vecs, f"{TABLE} p", "p.vec", self._rank(weights))

    def _scores_of(self, fts_query: str, ids: np.ndarray, table: str, id_column: str, rank: str) -> np.ndarray:
        """The rank of each given row (passage vec or speech key) for the keyword query (0: no match), in the order given."""
        ids = [int(i) for i in np.asarray(ids, dtype=np.int64)]
        if not ids:
            return np.zeros(0, dtype=np.float32)
        tsquery, tsparams = tsquery_sql(fts_query)
        tsv = id_column.split(".")[0] + ".tsv"
        rows = self._rows(f"WITH q AS (SELECT {tsquery} AS t) SELECT {id_column}, {rank} FROM {table}, q "
                          f"WHERE {id_column} = ANY(%s) AND {tsv} @@ q.t", (*tsparams, ids))
        found = {row[0]: float(row[1]) for row in rows}
        return np.array([found.get(i, 0.0) for i in ids], dtype=np.float32)

    def context_vectors(self, vecs: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
        """(title, neighbours) rows of the given passages, in the order given, in one statement.

        title: the embedding of the passage's debate title (hansard_titles),
        zeros when it has no title or the title no embedding yet (a store
        migrated from version 2 until the next indexing run). neighbours:
        the mean (pgvector's avg) of the vectors of the passages at
        position - 1 and + 1 in its speech, its own vector when it has
        neither. KeyError for a vec the store does not hold.
        """
        vecs = [int(v) for v in np.asarray(vecs, dtype=np.int64).reshape(-1)]
        dimension = self.manifest.dimension
        if not vecs:
            return np.zeros((0, dimension), dtype=np.float32), np.zeros((0, dimension), dtype=np.float32)
        rows = self._rows(
            f"SELECT g.n, t.embedding, coalesce((SELECT avg(o.embedding) FROM {TABLE} o WHERE o.speech_id = p.speech_id "
            f"AND o.position IN (p.position - 1, p.position + 1)), p.embedding) "
            f"FROM unnest(%s::bigint[]) WITH ORDINALITY AS g(vec, n) JOIN {TABLE} p ON p.vec = g.vec "
            f"LEFT JOIN {TITLES} t ON t.title = p.debate", (vecs,))
        if len(rows) < len(vecs):
            found = {n - 1 for n, _, _ in rows}
            raise KeyError(f"not a passage's vec: {[v for i, v in enumerate(vecs) if i not in found][:5]}")
        titles = np.zeros((len(vecs), dimension), dtype=np.float32)
        neighbours = np.zeros((len(vecs), dimension), dtype=np.float32)
        for n, title, around in rows:
            if title is not None:
                titles[n - 1] = _array(title)
            neighbours[n - 1] = _array(around)
        return titles, neighbours

    def hybrid_pushed_down(self, query: np.ndarray, fts_query: str, k: int, where: Where, dense_weight: float,
                           weights: tuple[float, float, float], title_weight: float,
                           neighbour_weight: float) -> tuple[np.ndarray, np.ndarray, bool]:
        """`service.search.ranking.hybrid`, pushed down: dense and keyword candidates fused in one SQL statement.

        The candidates: the k passages nearest the query by their own
        vectors (the HNSW index), and the k best by ts_rank. Every candidate
        gets both scores: its contextual dense score, cos(q, p) +
        title_weight * (q . its title's embedding, 0 for none) +
        neighbour_weight * (q . the mean of its neighbours' vectors: the
        mean of their cosines, its own cosine when it has none), as
        `context_vectors` defines them; and its ts_rank (0 where it holds
        none of the words). Each is min-max normalised over the candidates,
        then summed with dense_weight.
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
                SELECT p.vec,
                       -(p.embedding <#> q.v)
                       + %s::float8 * coalesce(-(t.embedding <#> q.v), 0)
                       + %s::float8 * coalesce(
                           (SELECT avg(-(o.embedding <#> q.v)) FROM {TABLE} o
                            WHERE o.speech_id = p.speech_id AND o.position IN (p.position - 1, p.position + 1)),
                           -(p.embedding <#> q.v)) AS d,
                       CASE WHEN p.tsv @@ q.t THEN {rank} ELSE 0 END AS b
                FROM q, {TABLE} p JOIN candidates c ON c.vec = p.vec LEFT JOIN {TITLES} t ON t.title = p.debate),
            normalised AS (
                SELECT vec,
                       coalesce((d - min(d) OVER ()) / nullif(max(d) OVER () - min(d) OVER (), 0), 0) AS dn,
                       coalesce((b - min(b) OVER ()) / nullif(max(b) OVER () - min(b) OVER (), 0), 0) AS bn
                FROM scored)
            SELECT vec, %s * dn + (1 - %s) * bn AS score,
                   (SELECT count(*) FROM dense), (SELECT count(*) FROM keyword)
            FROM normalised ORDER BY score DESC, vec"""
            return sql, (*params, k, *where.params, k, float(title_weight), float(neighbour_weight),
                         dense_weight, dense_weight)

        rows = self._rows(*statement(exact_dense=False), walk_the_index=True)
        n_dense = rows[0][2] if rows else 0
        if n_dense < k and n_dense < self.count(where):
            rows = self._rows(*statement(exact_dense=True))
        n_dense, n_keyword = (rows[0][2], rows[0][3]) if rows else (0, 0)
        return (np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64),
                n_dense < k and n_keyword < k)

    # ------------------------------------------------------------ speeches

    def speech_keys(self, vecs: np.ndarray) -> np.ndarray:
        vecs = [int(v) for v in np.asarray(vecs, dtype=np.int64)]
        if not vecs:
            return np.zeros(0, dtype=np.int64)
        rows = self._rows(f"SELECT p.vec, s.key FROM {TABLE} p JOIN {SPEECHES} s ON s.speech_id = p.speech_id "
                          f"WHERE p.vec = ANY(%s)", (vecs,))
        return _in_order(dict(rows), vecs, "a passage's vec", np.int64)

    def speech_vectors_at(self, keys: np.ndarray) -> np.ndarray:
        keys = [int(k) for k in np.asarray(keys, dtype=np.int64)]
        if not keys:
            return np.zeros((0, self.manifest.dimension), dtype=np.float32)
        rows = self._rows(f"SELECT key, embedding FROM {SPEECHES} WHERE key = ANY(%s)", (keys,))
        by_key = {row[0]: _array(row[1]) for row in rows}
        return _in_order(by_key, keys, "a speech's key")

    def speech_dense_scores(self, query: np.ndarray, keys: np.ndarray) -> np.ndarray:
        return self.speech_vectors_at(keys) @ np.asarray(query, dtype=np.float32).reshape(-1)

    def speech_dense(self, query: np.ndarray, k: int, where: Where = Where()) -> tuple[np.ndarray, np.ndarray]:
        """Nearest speeches through their own HNSW index, filtered during the walk; exact should the walk give up before k (as `dense`)."""
        from pgvector import Vector

        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        vector = Vector(np.asarray(query, dtype=np.float32).reshape(-1))
        allowed = _speech_allowed(where)
        self._ef_search(k)
        rows = self._rows(
            f"SELECT s.key, -(s.embedding <#> %s) FROM {SPEECHES} s WHERE true{allowed} "
            f"ORDER BY s.embedding <#> %s LIMIT %s", (vector, *where.params, vector, k), walk_the_index=True)
        if len(rows) < k and len(rows) < self.count(where, group="speech"):
            rows = self._rows(
                f"SELECT key, score FROM (SELECT s.key, -(s.embedding <#> %s) AS score FROM {SPEECHES} s "
                f"WHERE true{allowed} OFFSET 0) allowed ORDER BY score DESC, key LIMIT %s", (vector, *where.params, k))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def speech_keyword(self, fts_query: str, k: int, where: Where = Where(),
                       weights: Optional[tuple[float, float, float]] = None) -> tuple[np.ndarray, np.ndarray]:
        """(ts_rank scores, keys) of the k speeches whose whole text best matches the keyword query."""
        tsquery, tsparams = tsquery_sql(fts_query)
        rows = self._rows(
            f"WITH q AS (SELECT {tsquery} AS t) SELECT s.key, {self._rank(weights, 's.tsv')} AS score "
            f"FROM {SPEECHES} s, q WHERE s.tsv @@ q.t{_speech_allowed(where)} ORDER BY score DESC, s.key LIMIT %s",
            (*tsparams, *where.params, k))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def speech_keyword_scores(self, fts_query: str, keys: np.ndarray) -> np.ndarray:
        return self._scores_of(fts_query, keys, f"{SPEECHES} s", "s.key", self._rank(None, "s.tsv"))

    def more_like_this(self, text: str, k: int, where: Where = Where(), speeches: bool = True,
                       stopwords: frozenset = frozenset()) -> tuple[np.ndarray, np.ndarray]:
        """(scores, keys) of the k speeches (or vecs of passages) most like a long text, by its distinctive terms.

        A document's score is the sum, over the terms it holds, of the
        term's weight times its ts_rank: ts_rank of one OR query cannot
        weight its terms (bench figures in docs/postgresql.md).
        """
        if k <= 0:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        table, name, allowed = (SPEECHES, "s.key", _speech_allowed(where)) if speeches else (TABLE, "p.vec", where.and_())
        alias = name.split(".")[0]
        documents = self.manifest.speeches if speeches else self.manifest.passages
        found = self._doc_freqs(table, _lookup_terms(text, stopwords), documents)
        top = distinctive_terms(text, lambda term: found.get(term, 0), documents, stopwords)
        if not top:
            return np.zeros(0, dtype=np.float32), np.zeros(0, dtype=np.int64)
        terms, weights = [t for t, _ in top], [w for _, w in top]
        rank = self._rank(None, f"{alias}.tsv", "terms.q")
        rows = self._rows(
            f"WITH terms AS MATERIALIZED (SELECT plainto_tsquery('simple', t.term) AS q, t.weight "
            f"FROM unnest(%s::text[], %s::float8[]) AS t(term, weight)) "
            f"SELECT {name}, sum(terms.weight * {rank}) AS score FROM terms JOIN {table} {alias} ON {alias}.tsv @@ terms.q "
            f"WHERE true{allowed} GROUP BY {name} ORDER BY score DESC, {name} LIMIT %s",
            (terms, weights, *where.params, k))
        return np.array([r[1] for r in rows], dtype=np.float32), np.array([r[0] for r in rows], dtype=np.int64)

    def _doc_freqs(self, table: str, terms: list[str], documents: int) -> dict[str, int]:
        """{term: how many documents of the table hold it} for these stems, in one statement.

        The terms are stems already (Snowball English, as the `english`
        config indexes them), so they are looked up with `simple`, which
        only lower-cases. A count stops past the share of documents that
        rules a term out anyway: a common word is not counted to the end.
        """
        if not terms:
            return {}
        enough = int(MORE_LIKE_THIS_MAX_DF_SHARE * max(documents, 1)) + 1
        rows = self._rows(
            f"SELECT t.term, (SELECT count(*) FROM (SELECT 1 FROM {table} d WHERE d.tsv @@ plainto_tsquery('simple', t.term) "
            f"LIMIT %s) hits) FROM unnest(%s::text[]) AS t(term)", (enough, terms))
        return {term: n for term, n in rows}

    def facet_counts(self, facet: str, vecs: Optional[np.ndarray] = None, where: Where = Where(),
                     fts: Optional[str] = None, limit: int = 50) -> list[tuple]:
        expression = POSTGRESQL.facets[facet]
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

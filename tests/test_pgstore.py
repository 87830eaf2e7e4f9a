"""The PostgreSQL store itself: the plans it relies on, its writes, migrations and replicas.

(The API and CLI suites already run against it through the parametrised
`store` fixture; these are what only PostgreSQL has.)
"""

from __future__ import annotations

import contextlib
import threading

import numpy as np
import pytest
from pgvector import Vector

from fixtures import COMMONS_WMS, LORDS_WMS, revised_sitting, write_day
from indexer.build import build_index, index_speeches, remove_speeches
from indexer.store import Location, connect, migrate, redact
from indexer.store.postgres.reading import PostgresStore, tsquery_sql
from indexer.store import Filters
from indexer.sources.records import Speech

LIGHTHOUSE = {
    "id": "test/pg/lighthouses/1", "house": "commons", "section": "debates", "date": "2009-11-02",
    "major_heading": "Lighthouses", "speaker": {"name": "Test Member", "party": "Labour"},
    "paragraphs": [{"text": "The lighthouse keepers of the Farne Islands deserve a pay rise."},
                   {"text": "Automation has not removed the need for people who know the rocks."}],
}


@pytest.fixture
def pg(databases, small_database):
    store = PostgresStore(databases.create(template=small_database))
    yield store
    store.close()


def exact_top(store: PostgresStore, query: np.ndarray, where, k: int) -> list[int]:
    """The k best allowed passages by brute force in numpy: what any plan must return."""
    allowed = [row[0] for row in store._rows(f"SELECT p.vec FROM hansard_passages p WHERE {where.sql or 'true'}", where.params)]
    scores = store.vectors_at(allowed) @ query.reshape(-1)
    order = np.argsort(-scores, kind="stable")[:k]
    return [allowed[i] for i in order]


def test_a_selective_filter_fills_the_page_through_the_hnsw_index(pg, encoder):
    query = encoder.encode_query("biofuels and deforestation")
    where = pg.where(Filters(speaker="Ian Lucas"))
    conn = pg._db()
    # Force the HNSW index scan (the planner would scan 543 rows instead), with
    # a walk too short to find 10 of Ian Lucas's passages by itself.
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET hnsw.max_scan_tuples = 20")
    plan = "\n".join(r[0] for r in conn.execute(
        f"EXPLAIN SELECT p.vec FROM hansard_passages p WHERE {where.sql} ORDER BY p.embedding <#> %s LIMIT 10",
        (*where.params, Vector(query.reshape(-1)))).fetchall())
    assert "hansard_passages_embedding" in plan  # the HNSW index is the plan being tested
    scores, vecs = pg.dense(query, 10, where)
    assert len(vecs) == 10 == pg.count(where)
    assert set(vecs.tolist()) == set(exact_top(pg, query, where, 10))
    assert np.all(np.diff(scores) <= 1e-6)  # best first
    # With the walk allowed to go on (iterative scan), the index alone finds them too, in order.
    conn.execute("SET hnsw.max_scan_tuples = 20000")
    scores, vecs = pg.dense(query, 5, where)
    assert vecs.tolist() == exact_top(pg, query, where, 5)


def test_hybrid_is_fused_in_sql_and_every_candidate_scored_by_both(pg, encoder):
    query = encoder.encode_query("palm oil plantations")
    tsquery = '"palm" OR "oil" OR "plantations"'
    scores, vecs, exhausted = pg.hybrid_pushed_down(query, tsquery, 20, pg.where(Filters()), 0.4, (1.0, 2.0, 1.0))
    assert len(vecs) >= 20 and not exhausted and len(set(vecs.tolist())) == len(vecs)
    assert scores[0] <= 1.0 + 1e-6 and np.all(np.diff(scores) <= 1e-6)
    dense_best = pg.dense(query, 1)[1][0]
    keyword_best = pg.keyword(tsquery, 1, weights=(1.0, 2.0, 1.0))[1][0]
    assert dense_best in vecs and keyword_best in vecs


def test_keyword_queries_become_tsqueries_with_phrases_kept():
    sql, params = tsquery_sql('"forced labour" OR "Hikvision" OR "say ""no"""')
    assert sql.count("phraseto_tsquery") == 3 and params == ("forced labour", "Hikvision", 'say "no"')
    sql, params = tsquery_sql("plain words")
    assert "websearch_to_tsquery" in sql and params == ("plain words",)


def test_writes_are_idempotent_and_replace_by_speech(pg, encoder):
    speech = Speech.model_validate(LIGHTHOUSE)
    before = PostgresStore(pg.url).manifest
    first = index_speeches([speech], Location(database_url=pg.url), encoder)
    again = index_speeches([speech], Location(database_url=pg.url), encoder)
    assert first.passages == again.passages == before.passages + 2
    assert again.passages_reused == 2  # unchanged passages keep their stored vectors
    store = PostgresStore(pg.url)
    assert store.manifest.speeches == before.speeches + 1 and store.generation == pg.generation + 2
    shorter = Speech.model_validate({**LIGHTHOUSE, "paragraphs": LIGHTHOUSE["paragraphs"][:1]})
    index_speeches([shorter], Location(database_url=pg.url), encoder)
    assert [p.text for p in PostgresStore(pg.url).speech(speech.id)] == [LIGHTHOUSE["paragraphs"][0]["text"]]
    removed = remove_speeches(Location(database_url=pg.url), [speech.id], encoder.info)
    assert removed.speeches_removed == 1 and removed.passages == before.passages
    assert remove_speeches(Location(database_url=pg.url), [speech.id], encoder.info).speeches_removed == 0
    with connect(pg.url) as conn:  # the counts kept in hansard_store agree with the rows
        counted = conn.execute("SELECT count(*), count(DISTINCT speech_id) FROM hansard_passages").fetchone()
        stored = conn.execute("SELECT passages, speeches FROM hansard_store").fetchone()
    assert counted == stored == (before.passages, before.speeches)


def test_concurrent_writers_of_the_same_speeches_queue_not_fail(pg, encoder):
    speeches = [Speech.model_validate({**LIGHTHOUSE, "id": f"test/pg/lighthouses/{n}"}) for n in range(5)]
    errors: list = []

    def write():
        try:
            index_speeches(speeches, Location(database_url=pg.url), encoder)
        except Exception as err:  # noqa: BLE001 - collected and asserted below
            errors.append(err)

    writers = [threading.Thread(target=write) for _ in range(4)]
    for w in writers:
        w.start()
    for w in writers:
        w.join()
    assert not errors, errors
    store = PostgresStore(pg.url)
    assert store.manifest.speeches == pg.manifest.speeches + 5
    assert store.manifest.passages == pg.manifest.passages + 10
    assert all(len(store.speech(s.id)) == 2 for s in speeches)


def test_a_newer_version_of_a_sitting_replaces_all_of_it(databases, encoder, members, tmp_path):
    url = databases.create()
    build_index([COMMONS_WMS, LORDS_WMS], Location(database_url=url), encoder, members)
    old = PostgresStore(url)
    old_ids = {row[0]: row[1] for row in old._rows("SELECT DISTINCT speech_id, house FROM hansard_passages")}
    revised, ids = revised_sitting(COMMONS_WMS.read_bytes().decode("iso-8859-1"))
    newer = revised.replace("uk.org.publicwhip/wms/2009-10-26c.", "uk.org.publicwhip/wms/2009-10-26d.")
    summary = build_index([write_day(tmp_path, "ministerial2009-10-26d.xml", newer)], Location(database_url=url), encoder, members)
    new = PostgresStore(url)
    held = {row[0]: row[1] for row in new._rows("SELECT DISTINCT speech_id, house FROM hansard_passages")}
    old_commons = {s for s, house in old_ids.items() if house == "commons"}
    assert not set(held) & old_commons  # every speech of version c went: renamed (d) or dropped
    assert summary.speeches_removed == len(old_commons)
    assert new.speech(ids["added"].replace("26c.", "26d."))
    # The Lords statements share the gid prefix and the day, but not the house: untouched.
    assert {s for s, house in held.items() if house == "lords"} == {s for s, house in old_ids.items() if house == "lords"}
    assert new.manifest.speeches == len(held)


def test_queries_go_to_the_read_replica_when_one_is_given(databases, small_database, encoder):
    primary = databases.create(template=small_database)
    replica = databases.create(template=small_database)  # stands in for a streaming replica
    index_speeches([Speech.model_validate(LIGHTHOUSE)], Location(database_url=primary), encoder)
    on_primary = PostgresStore(primary)
    through_replica = PostgresStore(primary, read_url=replica)
    assert on_primary.passage(f"{LIGHTHOUSE['id']}#0") is not None
    assert through_replica.passage(f"{LIGHTHOUSE['id']}#0") is None  # read from the replica, not the primary
    assert through_replica.manifest.passages == on_primary.manifest.passages - 2
    with pytest.raises(Exception, match="read-only"):
        through_replica._db().execute("CREATE TABLE sneaky (x int)")


def test_migrations_are_versioned_and_a_newer_schema_is_refused(databases, encoder):
    url = databases.create()
    assert migrate(url, encoder.info) == [1]
    assert migrate(url, encoder.info) == []
    with connect(url) as conn:
        conn.execute("INSERT INTO hansard_migrations (version, name) VALUES (99, 'from the future')")
    with pytest.raises(Exception, match="schema version 99.*upgrade hansard-search"):
        PostgresStore(url)


def test_passwords_never_reach_messages():
    assert redact("postgresql://hansard:s3cret@db.example:5432/hansard") == "postgresql://hansard:***@db.example:5432/hansard"
    assert redact("postgresql://db.example/hansard") == "postgresql://db.example/hansard"


def test_a_database_that_goes_away_is_a_503_and_health_says_so(databases, small_database, encoder):
    from fastapi.testclient import TestClient

    from fixtures import StoreUnderTest
    from service.app import create_app

    target = StoreUnderTest("postgres", database_url=databases.create(template=small_database))
    with TestClient(create_app(target.settings(reload_interval=0), encoder=encoder)) as client:
        assert client.get("/search", params={"q": "palm oil"}).status_code == 200
        assert client.get("/health").json()["status"] == "ok"
        name = target.database_url.rsplit("/", 1)[1]
        with connect(databases.url) as admin:  # the database goes (and every connection to it with it)
            admin.execute(f"DROP DATABASE {name} WITH (FORCE)")
        gone = client.get("/search", params={"q": "palm oil"})
        assert gone.status_code == 503 and gone.headers["retry-after"]
        assert "cannot be reached" in gone.json()["message"] and "does not exist" in gone.json()["message"]
        health = client.get("/health")
        assert health.status_code == 503 and health.json()["status"] == "unavailable"
        assert 'reason="store"' in client.get("/metrics").text


def test_a_large_load_into_an_empty_store_builds_the_vector_index_once_at_the_end(databases, encoder, members,
                                                                               monkeypatch):
    import indexer.store.postgres.schema as schema
    import indexer.store.postgres.writing as writing

    url = databases.create()
    dropped: list = []
    real_bulk_load = schema.bulk_load

    def watching(conn, passages):
        with real_bulk_load(conn, passages) as bulk:
            present = conn.execute("SELECT to_regclass('hansard_passages_embedding') IS NOT NULL").fetchone()[0]
            dropped.append((bulk, present))
            yield bulk

    monkeypatch.setattr(schema, "BULK_LOAD_MIN", 1)
    monkeypatch.setattr(writing, "bulk_load", contextlib.contextmanager(watching))
    build_index([COMMONS_WMS], Location(database_url=url), encoder, members)
    assert dropped == [(True, False)]  # loaded without the index...
    store = PostgresStore(url)
    with connect(url) as conn:  # ...which is there again afterwards
        assert conn.execute("SELECT to_regclass('hansard_passages_embedding') IS NOT NULL").fetchone()[0]
    query = encoder.encode_query("public protection")
    assert store.dense(query, 3)[1].tolist() == exact_top(store, query, store.where(Filters()), 3)
    # Into a store that holds passages already, the index is kept and maintained as rows arrive.
    build_index([LORDS_WMS], Location(database_url=url), encoder, members)
    assert dropped[-1] == (False, True)


def test_migrate_rebuilds_a_vector_index_a_dead_bulk_load_left_missing(databases, encoder, small_database):
    url = databases.create(template=small_database)
    with connect(url) as conn:
        conn.execute("DROP INDEX hansard_passages_embedding")
    assert migrate(url, encoder.info) == []
    with connect(url) as conn:
        assert conn.execute("SELECT to_regclass('hansard_passages_embedding') IS NOT NULL").fetchone()[0]


def test_a_reload_closes_the_replaced_stores_connections_once_requests_are_done(databases, small_database, encoder,
                                                                                 monkeypatch):
    import time

    from fastapi.testclient import TestClient

    from fixtures import StoreUnderTest
    from service import runtime
    from service.app import create_app

    monkeypatch.setattr(runtime, "RETIRE_AFTER", 0.2)
    target = StoreUnderTest("postgres", database_url=databases.create(template=small_database))
    token = "a-token-of-sixteen-or-more"
    with TestClient(create_app(target.settings(reload_interval=0, admin_token=token), encoder=encoder)) as client:
        old = client.app.state.service.searcher.index
        assert client.get("/search", params={"q": "palm oil"}).status_code == 200
        assert old._connections and not any(c.closed for c in old._connections)
        added = client.post("/admin/speeches", json={"speeches": [LIGHTHOUSE]}, headers={"Authorization": f"Bearer {token}"})
        assert added.status_code == 200, added.text
        assert client.app.state.service.searcher.index is not old
        time.sleep(1.0)
        assert all(c.closed for c in old._connections)
        assert client.get("/search", params={"q": "lighthouse keepers", "k": 1}).json()["results"][0]["speech_id"] == LIGHTHOUSE["id"]


def test_loading_reports_progress_as_it_embeds_up_to_the_end(databases, encoder, members, monkeypatch):
    import indexer.build as build

    monkeypatch.setattr(build, "EMBED_CHUNK", 4)
    reports: list[tuple[int, int]] = []
    summary = build_index([COMMONS_WMS], Location(database_url=databases.create()), encoder, members,
                          batch_passages=10, report=lambda done, total: reports.append((done, total)))
    assert summary.passages > 10 and len(reports) > 3
    done = [d for d, _ in reports]
    assert done == sorted(done) and reports[-1][0] == reports[-1][1] == reports[0][1]


def test_pgvector_older_than_0_8_is_named_as_the_problem():
    from indexer.store.postgres.schema import pgvector_too_old

    assert pgvector_too_old("0.7.4") and pgvector_too_old("0.5.1")
    assert not pgvector_too_old("0.8.0") and not pgvector_too_old("0.8.5") and not pgvector_too_old("1.0.0")

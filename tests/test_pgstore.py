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
from indexer.store.base import fts_phrase, speech_vector
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
    from service.search.ranking import NEIGHBOUR_WEIGHT, TITLE_WEIGHT

    query = encoder.encode_query("palm oil plantations")
    tsquery = '"palm" OR "oil" OR "plantations"'
    scores, vecs, exhausted = pg.hybrid_pushed_down(query, tsquery, 20, pg.where(Filters()), 0.4, (1.0, 2.0, 1.0),
                                                    TITLE_WEIGHT, NEIGHBOUR_WEIGHT)
    assert len(vecs) >= 20 and not exhausted and len(set(vecs.tolist())) == len(vecs)
    assert scores[0] <= 1.0 + 1e-6 and np.all(np.diff(scores) <= 1e-6)
    dense_best = pg.dense(query, 1)[1][0]
    keyword_best = pg.keyword(tsquery, 1, weights=(1.0, 2.0, 1.0))[1][0]
    assert dense_best in vecs and keyword_best in vecs


class _WithoutPushDown:
    """The store as one without `hybrid_pushed_down`: ranking.hybrid then takes its generic Python path."""

    def __init__(self, store):
        self._store = store

    def __getattr__(self, name):
        if name == "hybrid_pushed_down":
            raise AttributeError(name)
        return getattr(self._store, name)


def python_hybrid(store: PostgresStore, query: np.ndarray, fts: str, k: int, where, dense_weight: float,
                  weights, title_weight: float, neighbour_weight: float) -> dict[int, float]:
    """The contextual hybrid worked out in numpy from the store's parts: {vec: fused score}."""
    from service.search.ranking import weighted_fusion

    _, dense_vecs = store.dense(query, k, where)
    _, kw_vecs = store.keyword(fts, k, where, weights)
    union = np.unique(np.concatenate([dense_vecs, kw_vecs]))
    q = query.reshape(-1)
    titles, neighbours = store.context_vectors(union)
    dense = store.vectors_at(union) @ q + title_weight * (titles @ q) + neighbour_weight * (neighbours @ q)
    bm25 = store.keyword_scores(fts, union, weights)
    return dict(zip(union.tolist(), weighted_fusion(dense, bm25, dense_weight).tolist()))


def test_pushed_down_hybrid_scores_context_as_the_python_path_does(pg, encoder):
    from service.search import ranking

    # Candidates from several debates (most of the slice is one debate, on biofuels: there a
    # title shifts every candidate alike, which min-max normalisation cancels).
    fts = '"prisoners" OR "protection"'
    query = encoder.encode_query("prisoners and public protection")
    _, candidates = pg.dense(query, 20)
    titles, neighbours = pg.context_vectors(candidates)
    assert np.ptp(titles @ query.reshape(-1)) > 0.3 and np.ptp(neighbours @ query.reshape(-1)) > 0.1
    for where in (pg.where(Filters()), pg.where(Filters(house="commons"))):
        # The generic path of service.search.ranking.hybrid, with its own weights, on the same store.
        scores, vecs, exhausted = pg.hybrid_pushed_down(query, fts, 20, where, ranking.HYBRID_DENSE_WEIGHT,
                                                        ranking.BM25_WEIGHTS, ranking.TITLE_WEIGHT,
                                                        ranking.NEIGHBOUR_WEIGHT)
        generic_scores, generic_vecs, generic_exhausted = ranking.hybrid(_WithoutPushDown(pg), query, fts, 20, where)
        assert exhausted == generic_exhausted
        pushed = dict(zip(vecs.tolist(), scores.tolist()))
        generic = dict(zip(generic_vecs.tolist(), generic_scores.tolist()))
        assert set(pushed) == set(generic)
        assert max(abs(pushed[v] - generic[v]) for v in pushed) < 1e-4
        # Other weights, against the definition worked out here: the weights passed in are the ones used.
        for title_weight, neighbour_weight in ((1.0, 0.0), (0.0, 1.0), (0.7, 0.3)):
            scores, vecs, _ = pg.hybrid_pushed_down(query, fts, 20, where, 0.5, (1.0, 2.0, 1.0),
                                                    title_weight, neighbour_weight)
            expected = python_hybrid(pg, query, fts, 20, where, 0.5, (1.0, 2.0, 1.0), title_weight, neighbour_weight)
            assert set(vecs.tolist()) == set(expected)
            assert max(abs(float(s) - expected[v]) for s, v in zip(scores, vecs.tolist())) < 1e-4, (title_weight, neighbour_weight)
    # The context moves the ranking: without it the fused scores differ.
    plain, plain_vecs, _ = pg.hybrid_pushed_down(query, fts, 20, pg.where(Filters()), 0.5, (1.0, 2.0, 1.0), 0.0, 0.0)
    context, context_vecs, _ = pg.hybrid_pushed_down(query, fts, 20, pg.where(Filters()), 0.5, (1.0, 2.0, 1.0), 1.0, 1.0)
    plain_by_vec = dict(zip(plain_vecs.tolist(), plain.tolist()))
    assert max(abs(plain_by_vec[v] - float(s)) for s, v in zip(context, context_vecs.tolist())) > 0.01


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
    assert_speech_rows_match_passages(new)


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
    assert migrate(url, encoder.info) == [1, 2, 3]
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


# ---------------------------------------------------------------- speeches


def assert_speech_rows_match_passages(store: PostgresStore) -> None:
    """Every speech held has one row, keyed by its first passage's vec, with `speech_vector` of its passages' vectors; no other rows."""
    rows = {row[0]: (row[1], np.asarray(row[2].to_numpy())) for row in
            store._rows("SELECT speech_id, key, embedding FROM hansard_speeches")}
    held = {row[0] for row in store._rows("SELECT DISTINCT speech_id FROM hansard_passages")}
    assert set(rows) == held
    for speech_id, (key, vector) in rows.items():
        vecs = store.vecs_of_speech(speech_id)
        assert key == vecs[0]
        assert np.abs(vector - speech_vector(store.vectors_at(vecs))).max() < 1e-5, speech_id
    keys = np.array([key for key, _ in rows.values()][:20], dtype=np.int64)[::-1]  # read back in the order asked
    assert np.array_equal(store.speech_keys(keys), keys)
    assert np.allclose(store.speech_vectors_at(keys), np.stack([rows[p.speech_id][1] for p in store.passages_at(keys)]))


def test_speech_rows_follow_their_passages_through_writes_replaces_and_removes(pg, encoder):
    assert_speech_rows_match_passages(pg)
    speech = Speech.model_validate(LIGHTHOUSE)
    index_speeches([speech], Location(database_url=pg.url), encoder)
    store = PostgresStore(pg.url)
    assert_speech_rows_match_passages(store)
    vecs = store.vecs_of_speech(speech.id)
    assert store.speech_keys(vecs).tolist() == [vecs[0], vecs[0]]  # each passage names its speech's key
    two_passages = store.speech_vectors_at(vecs[:1])[0]
    shorter = Speech.model_validate({**LIGHTHOUSE, "paragraphs": LIGHTHOUSE["paragraphs"][1:]})
    index_speeches([shorter], Location(database_url=pg.url), encoder)
    store = PostgresStore(pg.url)
    assert_speech_rows_match_passages(store)  # recomputed from the one passage left, under its new key
    assert not np.allclose(store.speech_vectors_at(store.vecs_of_speech(speech.id)[:1])[0], two_passages)
    remove_speeches(Location(database_url=pg.url), [speech.id], encoder.info)
    store = PostgresStore(pg.url)
    assert_speech_rows_match_passages(store)
    assert not store._rows("SELECT 1 FROM hansard_speeches WHERE speech_id = %s", (speech.id,))


def test_speech_dense_keeps_to_the_filter_and_fills_k_under_a_selective_one(pg, encoder):
    query = encoder.encode_query("biofuels and deforestation")
    where = pg.where(Filters(speaker="David Kidney"))
    allowed = {p.speech_id for _, p in pg.iter_passages() if "david kidney" in (p.speaker.name or "").lower()}
    assert 10 < len(allowed) < pg.manifest.speeches / 4  # selective, and more than a page
    keys = np.array([pg.vecs_of_speech(s)[0] for s in allowed])
    scores = pg.speech_vectors_at(keys) @ query.reshape(-1)
    exact = set(keys[np.argsort(-scores)[:10]].tolist())
    conn = pg._db()
    # The HNSW walk (not the planner's other choice, sorting his speeches: exact by itself), made to
    # stop after 10 speeches of any speaker (a graph this small is otherwise walked whole): the
    # exact fallback must fill the page.
    conn.execute("SET enable_seqscan = off")
    conn.execute("SET enable_sort = off")
    conn.execute("SET hnsw.iterative_scan = off")
    conn.execute("SET hnsw.ef_search = 10")
    plan = "\n".join(r[0] for r in conn.execute(
        f"EXPLAIN SELECT s.key FROM hansard_speeches s WHERE EXISTS (SELECT 1 FROM hansard_passages p "
        f"WHERE p.speech_id = s.speech_id AND {where.sql}) ORDER BY s.embedding <#> %s LIMIT 10",
        (*where.params, Vector(query.reshape(-1)))).fetchall())
    assert "hansard_speeches_embedding" in plan  # the index walk is the plan being tested
    found_scores, found = pg.speech_dense(query, 10, where)
    assert len(found) == 10 and set(found.tolist()) == exact
    assert {p.speech_id for p in pg.passages_at(found)} <= allowed  # none the filter excludes
    assert np.all(np.diff(found_scores) <= 1e-6)
    assert np.allclose(pg.speech_dense_scores(query, found), found_scores, atol=1e-5)
    conn.execute("SET hnsw.iterative_scan = strict_order")
    conn.execute("SET hnsw.ef_search = 200")
    conn.execute("SET enable_sort = on")
    _, unfiltered = pg.speech_dense(query, 5)
    every = np.array([pg.vecs_of_speech(s)[0] for s in {p.speech_id for _, p in pg.iter_passages()}])
    assert unfiltered.tolist() == every[np.argsort(-(pg.speech_vectors_at(every) @ query.reshape(-1)))[:5]].tolist()


def test_a_speech_keyword_score_is_of_its_whole_text(pg, encoder):
    index_speeches([Speech.model_validate(LIGHTHOUSE)], Location(database_url=pg.url), encoder)
    store = PostgresStore(pg.url)
    lighthouse = store.vecs_of_speech(LIGHTHOUSE["id"])[0]
    other = store.speech_keys(store.keyword('"biofuels"', 1)[1])[0]
    # One word of each paragraph: the speech holds both (no passage does).
    fts = f"{fts_phrase('Farne')} OR {fts_phrase('rocks')}"
    both, none = store.speech_keyword_scores(fts, np.array([lighthouse, other]))
    assert both > 0 and none == 0
    rocks = fts_phrase("rocks")  # in the second paragraph only, not in the one whose vec names the speech
    assert store.keyword_scores(rocks, np.array([lighthouse]))[0] == 0
    assert store.speech_keyword_scores(rocks, np.array([lighthouse]))[0] > 0
    scores, keys = store.speech_keyword(fts, 5)
    assert keys[0] == lighthouse and np.isclose(scores[0], both)
    assert not len(store.speech_keyword(fts, 5, store.where(Filters(house="lords")))[1])


def test_more_like_this_of_a_speech_finds_that_speech_first(pg, monkeypatch):
    import indexer.store.postgres.reading as reading

    speeches: dict[str, list] = {}
    for _, p in pg.iter_passages():
        speeches.setdefault(p.speech_id, []).append(p)
    long_ones = sorted((s for s, parts in speeches.items() if len(parts) >= 3), key=lambda s: -len(speeches[s]))[:10]
    assert len(long_ones) == 10
    for speech_id in long_ones:
        parts = sorted(speeches[speech_id], key=lambda p: p.position)
        text = " ".join(p.text for p in parts)
        scores, keys = pg.more_like_this(text, 5)
        assert keys[0] == pg.vecs_of_speech(speech_id)[0] and np.all(np.diff(scores) <= 1e-6), speech_id
        _, vecs = pg.more_like_this(text, 5, speeches=False)
        assert pg.passages_at(vecs[:1])[0].speech_id == speech_id
    _, lords = pg.more_like_this(text, 50, pg.where(Filters(house="lords")))
    assert all(p.house == "lords" for p in pg.passages_at(lords))
    # A very long text: a bounded number of terms looked up, in one statement; hostile characters are only text.
    looked_up: list = []
    real = reading.PostgresStore._doc_freqs
    monkeypatch.setattr(reading.PostgresStore, "_doc_freqs",
                        lambda self, table, terms, documents: looked_up.append(terms) or real(self, table, terms, documents))
    pasted = " ".join(p.text for _, p in pg.iter_passages())[:20_000] + " ') | !x:* & (' \\ \x00 ; DROP TABLE hansard_speeches; --"
    scores, keys = pg.more_like_this(pasted, 10)
    assert len(keys) == 10 and len(looked_up) == 1 and len(looked_up[0]) == reading.MORE_LIKE_THIS_LOOKUPS
    assert not len(pg.more_like_this("the of and", 10)[1])  # no distinctive term: nothing, not everything


def test_migration_2_fills_the_speeches_of_a_store_written_before_it(databases, small_database, encoder):
    url = databases.create(template=small_database)
    with connect(url) as conn:  # back to schema 1: the passages, no speeches table (nor titles)
        conn.execute("DROP TABLE hansard_speeches, hansard_titles")
        conn.execute("DROP INDEX hansard_passages_speech_position")
        conn.execute("DELETE FROM hansard_migrations WHERE version >= 2")
    with pytest.raises(Exception, match="schema version 1.*hansard-search migrate"):
        PostgresStore(url)
    assert migrate(url, encoder.info) == [2, 3]
    store = PostgresStore(url)
    assert_speech_rows_match_passages(store)
    fts = fts_phrase("biofuels")
    keys = store.speech_keys(store.keyword(fts, 3)[1])
    assert np.all(store.speech_keyword_scores(fts, keys) > 0)  # the whole-speech text is there too
    with connect(url) as conn:
        for index in ("hansard_speeches_embedding", "hansard_speeches_tsv", "hansard_speeches_key"):
            assert conn.execute("SELECT to_regclass(%s) IS NOT NULL", (index,)).fetchone()[0], index


# ---------------------------------------------------------------- debate titles and neighbours


def _unit(rng: np.random.Generator, dimension: int) -> np.ndarray:
    vector = rng.standard_normal(dimension).astype(np.float32)
    return vector / np.linalg.norm(vector)


def _passages(speech_id: str, debate, count: int) -> list:
    from indexer.sources.records import Passage, Speaker
    from indexer.sources.references import Column

    return [Passage(id=f"{speech_id}#{n}", speech_id=speech_id, position=n, text=f"Passage {n} of {speech_id}.",
                    speaker=Speaker(name="Test Member"), house="commons", section="debates", debate=debate,
                    column=Column()) for n in range(count)]


def test_titles_are_added_and_reported_missing_and_replace_refuses_a_title_without_one(databases, encoder):
    from indexer.store.base import StoreError
    from indexer.store.postgres.writing import PostgresWriter

    url = databases.create()
    rng = np.random.default_rng(7)
    dim = encoder.info.dimension
    pay, farne = "Lighthouses: Pay", "Lighthouses: Farne Islands"
    with PostgresWriter(url, encoder.info) as writer:
        assert writer.missing_titles([pay, farne, pay, "", None]) == {pay, farne}  # blank: no title, none needed
        assert writer.missing_titles([]) == set()
        first = _unit(rng, dim)
        writer.add_titles({pay: first})
        assert writer.missing_titles([pay, farne]) == {farne}
        # Refused, and nothing of the call written: a vector of another dimension, one not of unit length.
        with pytest.raises(StoreError, match=f"{farne}.*{dim} dimensions"):
            writer.add_titles({farne: _unit(rng, dim)[: dim - 1], "Another": _unit(rng, dim)})
        with pytest.raises(StoreError, match="not a unit vector"):
            writer.add_titles({farne: 2 * _unit(rng, dim)})
        assert writer.missing_titles([pay, farne, "Another"]) == {farne, "Another"}
        second = _unit(rng, dim)
        writer.add_titles({pay: second})  # an upsert: the newer embedding wins
        with connect(url) as conn:
            held = conn.execute("SELECT title, embedding FROM hansard_titles").fetchall()
        assert [title for title, _ in held] == [pay] and np.allclose(held[0][1].to_numpy(), second)
        # A passage whose title has no embedding: refused, naming the title, and nothing written.
        passages = _passages("test/pg/titles/1", pay, 2) + _passages("test/pg/titles/2", farne, 1)
        vectors = np.stack([_unit(rng, dim) for _ in passages])
        with pytest.raises(StoreError, match=f"'{farne}'.*add_titles"):
            writer.replace(passages, vectors, {p.speech_id for p in passages})
        with connect(url) as conn:
            assert conn.execute("SELECT count(*) FROM hansard_passages").fetchone()[0] == 0
        writer.add_titles({farne: _unit(rng, dim)})
        untitled = _passages("test/pg/titles/3", None, 1)
        writer.replace(passages + untitled, np.vstack([vectors, _unit(rng, dim)[None]]),
                       {p.speech_id for p in passages + untitled})
        writer.commit()
    assert PostgresStore(url).manifest.passages == 4


def test_context_vectors_are_the_title_and_the_mean_of_the_neighbours(databases, encoder):
    from indexer.store.postgres.writing import PostgresWriter

    url = databases.create()
    rng = np.random.default_rng(11)
    dim = encoder.info.dimension
    titles = {"Fisheries": _unit(rng, dim), "Lighthouses": _unit(rng, dim)}
    speeches = {"test/pg/context/long": ("Fisheries", 4), "test/pg/context/alone": ("Lighthouses", 1),
                "test/pg/context/untitled": (None, 2), "test/pg/context/other": ("Fisheries", 3)}
    passages = [p for speech_id, (debate, count) in speeches.items() for p in _passages(speech_id, debate, count)]
    own = {p.id: _unit(rng, dim) for p in passages}
    with PostgresWriter(url, encoder.info) as writer:
        writer.add_titles(titles)
        writer.replace(passages, np.stack([own[p.id] for p in passages]), set(speeches))
    store = PostgresStore(url)
    vec_of = {p.id: store.vec_of(p.id) for p in passages}
    by_vec = {vec: passage_id for passage_id, vec in vec_of.items()}
    assert np.allclose(store.vectors_at(list(vec_of.values())), np.stack(list(own.values())))

    def expected(passage_id: str) -> tuple[np.ndarray, np.ndarray]:
        speech_id, position = passage_id.split("#")
        debate = speeches[speech_id][0]
        around = [own[f"{speech_id}#{n}"] for n in (int(position) - 1, int(position) + 1) if f"{speech_id}#{n}" in own]
        return (titles[debate] if debate else np.zeros(dim, dtype=np.float32),
                np.mean(around, axis=0) if around else own[passage_id])

    asked = np.array(list(vec_of.values()), dtype=np.int64)
    for order in (asked, asked[::-1], rng.permutation(asked), np.concatenate([asked[:3], asked[:1]])):
        got_titles, got_neighbours = store.context_vectors(order)
        assert got_titles.shape == got_neighbours.shape == (len(order), dim)
        assert got_titles.dtype == got_neighbours.dtype == np.float32
        for row, vec in enumerate(order.tolist()):
            title, neighbours = expected(by_vec[vec])
            assert np.allclose(got_titles[row], title, atol=1e-6), by_vec[vec]
            assert np.allclose(got_neighbours[row], neighbours, atol=1e-6), by_vec[vec]
    # The cases by name: an untitled passage reads zeros; the first and last of a speech have one
    # neighbour, a middle one two, a speech of one passage its own vector.
    titles_of, neighbours_of = store.context_vectors(np.array(
        [vec_of["test/pg/context/untitled#0"], vec_of["test/pg/context/long#0"], vec_of["test/pg/context/long#3"],
         vec_of["test/pg/context/long#1"], vec_of["test/pg/context/alone#0"]]))
    assert not titles_of[0].any() and np.allclose(titles_of[1], titles["Fisheries"])
    assert np.allclose(neighbours_of[0], own["test/pg/context/untitled#1"])
    assert np.allclose(neighbours_of[1], own["test/pg/context/long#1"])
    assert np.allclose(neighbours_of[2], own["test/pg/context/long#2"])
    assert np.allclose(neighbours_of[3], (own["test/pg/context/long#0"] + own["test/pg/context/long#2"]) / 2)
    assert np.allclose(neighbours_of[4], own["test/pg/context/alone#0"])
    empty_titles, empty_neighbours = store.context_vectors(np.zeros(0, dtype=np.int64))
    assert empty_titles.shape == empty_neighbours.shape == (0, dim)
    with pytest.raises(KeyError):
        store.context_vectors(np.array([max(vec_of.values()) + 1000]))


def test_migration_3_leaves_a_version_2_store_searchable_with_its_titles_to_fill(databases, small_database, encoder):
    from indexer.store.postgres.writing import PostgresWriter

    url = databases.create(template=small_database)
    with connect(url) as conn:  # back to schema 2: passages and speeches, no title embeddings
        conn.execute("DROP TABLE hansard_titles")
        conn.execute("DROP INDEX hansard_passages_speech_position")
        conn.execute("DELETE FROM hansard_migrations WHERE version = 3")
    with pytest.raises(Exception, match="schema version 2.*hansard-search migrate"):
        PostgresStore(url)
    assert migrate(url, encoder.info) == [3]
    store = PostgresStore(url)
    vecs = np.array(sorted(v for v, _ in store.iter_passages())[:50], dtype=np.int64)
    titles, neighbours = store.context_vectors(vecs)
    assert titles.shape == (50, store.manifest.dimension) and not titles.any()  # zeros until the titles are given
    assert np.all(np.linalg.norm(neighbours, axis=1) > 0.1)
    query = encoder.encode_query("palm oil plantations")
    scores, found, _ = store.hybrid_pushed_down(query, '"palm" OR "oil"', 20, store.where(Filters()), 0.4,
                                                (1.0, 2.0, 1.0), 0.4, 0.25)
    assert len(found) >= 20
    debates = {p.debate for _, p in store.iter_passages() if p.debate}
    assert len(debates) > 5
    with PostgresWriter(url, encoder.info) as writer:
        assert writer.missing_titles(debates) == debates  # what the next indexing run fills
    # The next run gives the titles of what it writes.
    speech = Speech.model_validate(LIGHTHOUSE)
    index_speeches([speech], Location(database_url=url), encoder)
    with PostgresWriter(url, encoder.info) as writer:
        assert writer.missing_titles(debates | {"Lighthouses"}) == debates - {"Lighthouses"}
    store = PostgresStore(url)
    lighthouse = store.vecs_of_speech(speech.id)
    titles, _ = store.context_vectors(lighthouse)
    assert np.allclose(titles, encoder.encode(["Lighthouses"])[0], atol=1e-5)
    with connect(url) as conn:
        assert conn.execute("SELECT to_regclass('hansard_passages_speech_position') IS NOT NULL").fetchone()[0]

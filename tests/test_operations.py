"""Running the service: health, metrics, request ids and logs, load limits, reload while serving."""

from __future__ import annotations

import json
import logging
import threading
import time

import pytest
from fastapi.testclient import TestClient

from indexer.build import build_index
from service import runtime
from service.app import create_app
from service.observability import JsonFormatter
from fixtures import StoreUnderTest


def _metric(text: str, name: str, **labels) -> float:
    """The value of one sample in Prometheus text format."""
    wanted = ",".join(f'{k}="{v}"' for k, v in labels.items())
    for line in text.splitlines():
        if line.startswith("#"):
            continue
        key, _, value = line.rpartition(" ")
        if key == (f"{name}{{{wanted}}}" if labels else name):
            return float(value)
    raise AssertionError(f"no sample {name}{{{wanted}}} in /metrics")


def test_health_says_searchable_with_the_version_served(client, store):
    from indexer.store import open_store

    response = client.get("/health")
    assert response.status_code == 200
    body = response.json()
    assert body["status"] == "ok" and body["up"] and body["searchable"]
    assert body["passages"] == client.get("/stats").json()["passages"]
    assert body["index_version"] == open_store(store.location).live_version()
    assert body["index_version"].startswith("v-" if store.kind == "embedded" else "generation-")


def test_metrics_count_requests_by_route_and_report_the_index(client):
    before = client.get("/metrics").text
    client.get("/search", params={"q": "palm oil"})
    client.get("/search", params={"q": "palm oil", "k": 0})
    client.get("/speeches/no%2Fsuch%2Fspeech")
    text = client.get("/metrics").text
    assert client.get("/metrics").headers["content-type"].startswith("text/plain")

    def count(**labels):
        try:
            return _metric(before, "hansard_requests_total", **labels)
        except AssertionError:
            return 0.0

    for labels in ({"method": "GET", "route": "/search", "status": "200"},
                   {"method": "GET", "route": "/search", "status": "422"},
                   {"method": "GET", "route": "/speeches/{speech_id:path}", "status": "404"}):
        assert _metric(text, "hansard_requests_total", **labels) == count(**labels) + 1
    assert _metric(text, "hansard_index_passages") == client.get("/stats").json()["passages"]
    assert _metric(text, "hansard_index_searchable") == 1
    assert _metric(text, "hansard_request_duration_seconds_count", route="/search") >= 2
    assert _metric(text, "process_resident_memory_bytes") > 50e6


def test_every_answer_carries_a_request_id_and_is_logged_as_json(client, caplog):
    with caplog.at_level(logging.INFO, logger="hansard.access"):
        given = client.get("/search", params={"q": "palm oil", "k": 1}, headers={"X-Request-ID": "portal-42.a"})
        fresh = client.get("/health")
        bad = client.get("/search", params={"q": "palm oil"}, headers={"X-Request-ID": "bad id\nwith newline"})
    assert given.headers["x-request-id"] == "portal-42.a"
    assert len(fresh.headers["x-request-id"]) == 16
    assert bad.headers["x-request-id"] != "bad id\nwith newline"  # not echoed into logs and headers

    records = {r.fields["request_id"]: r for r in caplog.records if r.name == "hansard.access"}
    line = json.loads(JsonFormatter().format(records["portal-42.a"]))
    assert line["status"] == 200 and line["path"] == "/search" and line["route"] == "/search"
    assert "q=palm+oil" in line["query"] and line["ms"] > 0 and line["level"] == "info"
    assert records[fresh.headers["x-request-id"]].fields["path"] == "/health"


@pytest.fixture
def make_client(store, encoder):
    clients = []

    def make(target=None, load_in_background=False, **settings):
        app = create_app((target or store).settings(reload_interval=0, **settings), encoder=encoder,
                         load_in_background=load_in_background)
        client = TestClient(app)
        client.__enter__()
        clients.append(client)
        return client

    yield make
    for client in clients:
        client.__exit__(None, None, None)


def test_health_tells_loading_from_searchable_from_failed(make_client, store, monkeypatch, tmp_path, request):
    release = threading.Event()
    real_open = runtime.Searcher.open
    monkeypatch.setattr(runtime.Searcher, "open", classmethod(lambda cls, *a: (release.wait(30), real_open(*a))[1]))
    client = make_client(load_in_background=True)
    loading = client.get("/health")
    assert loading.status_code == 503 and loading.json()["status"] == "loading"
    assert loading.json()["up"] is True and loading.json()["searchable"] is False
    refused = client.get("/search", params={"q": "palm oil"})
    assert refused.status_code == 503 and "loading" in refused.json()["message"] and refused.headers["retry-after"]
    release.set()
    deadline = time.monotonic() + 30
    while client.get("/health").status_code != 200:
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert client.get("/search", params={"q": "palm oil"}).status_code == 200

    if store.kind == "embedded":
        missing = StoreUnderTest("embedded", index_dir=tmp_path / "nothing-here")
    else:
        missing = StoreUnderTest("postgres", database_url=request.getfixturevalue("databases").url_of("nothing_here"))
    broken = make_client(missing, load_in_background=True)
    deadline = time.monotonic() + 30
    while (health := broken.get("/health").json())["status"] == "loading":
        assert time.monotonic() < deadline
        time.sleep(0.05)
    assert health["status"] == "unavailable" and "does not exist" in health["message"]
    assert broken.get("/search", params={"q": "x"}).status_code == 503


def test_searches_beyond_the_cap_are_refused_fast_not_queued_for_ever(make_client):
    client = make_client(max_concurrent_searches=1, queue_timeout=0.05)
    state = client.app.state.service
    with state.heavy_slot():  # a long search holds the only slot
        started = time.monotonic()
        busy = client.get("/search", params={"q": "palm oil"})
        assert time.monotonic() - started < 5
        assert busy.status_code == 503 and busy.json()["message"].startswith("busy")
        assert busy.headers["retry-after"] == "2"
        assert client.get("/health").status_code == 200  # cheap routes still answer
    assert client.get("/search", params={"q": "palm oil"}).status_code == 200
    assert _metric(client.get("/metrics").text, "hansard_requests_refused_total", reason="busy") == 1


def test_a_query_past_its_time_limit_is_stopped(make_client):
    client = make_client(query_timeout=1e-6)
    slow = client.get("/search", params={"q": "palm oil biofuels", "mode": "keyword"})
    assert slow.status_code == 503 and "longer than" in slow.json()["message"]
    assert _metric(client.get("/metrics").text, "hansard_requests_refused_total", reason="timeout") >= 1
    # The connection is left usable: a fresh app with a sane limit is not needed for the next request.
    client.app.state.service.settings.query_timeout = 10
    assert client.get("/search", params={"q": "palm oil", "mode": "keyword"}).status_code == 200


def test_a_new_index_version_is_picked_up_while_serving_without_failing_a_request(
        writable_store, encoder, members, tmp_path):
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({
        "id": "test/reload/1", "house": "commons", "date": "2009-11-02", "major_heading": "Lighthouses",
        "speaker": {"name": "Test Member"},
        "paragraphs": [{"text": "The lighthouse keepers of the Farne Islands deserve a pay rise this winter."}],
    }) + "\n", encoding="utf-8")

    app = create_app(writable_store.settings(reload_interval=0.05), encoder=encoder)
    statuses: list[int] = []
    stop = threading.Event()
    with TestClient(app) as client:
        first_version = client.get("/health").json()["index_version"]

        def keep_searching():
            while not stop.is_set():
                statuses.append(client.get("/search", params={"q": "palm oil", "k": 3}).status_code)

        workers = [threading.Thread(target=keep_searching) for _ in range(4)]
        for w in workers:
            w.start()
        try:
            time.sleep(0.3)
            summary = build_index([extra], writable_store.location, encoder, members)
            assert not summary.problems and summary.speeches_read == 1
            deadline = time.monotonic() + 30
            while client.get("/health").json()["index_version"] == first_version:
                assert time.monotonic() < deadline, "the new version was not picked up"
                time.sleep(0.05)
            time.sleep(0.3)
        finally:
            stop.set()
            for w in workers:
                w.join()
        found = client.get("/search", params={"q": "lighthouse keepers Farne Islands", "k": 1}).json()["results"]
        assert found[0]["speech_id"] == "test/reload/1"
        assert _metric(client.get("/metrics").text, "hansard_index_reloads_total", outcome="loaded") == 2
    assert len(statuses) > 10 and set(statuses) == {200}, f"{len(statuses)} requests: {sorted(set(statuses))}"

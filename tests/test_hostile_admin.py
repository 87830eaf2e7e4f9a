"""Hostile input to the admin API: no token, a wrong one, bodies too large, writes over and over.

The token is checked, and a body's size, before the app reads a byte of the
body: these tests drive the app at the ASGI level, where they can count what
it asked to receive. A live server's part (a chunked body refused while it
streams) is in test_hostile_http.py.
"""

from __future__ import annotations

import asyncio
import gc
import itertools
import os
import tracemalloc
from urllib.parse import quote

import httpx
import pytest
from fastapi.testclient import TestClient

from service.app import create_app
from service.settings import Settings

from fixtures import ADMIN_AUTH as AUTH, ADMIN_TOKEN as TOKEN, NEW_SPEECH, serving, start_serve

MB = 1024 * 1024
CHUNK = 64 * 1024


@pytest.fixture
def limited(writable_store, encoder):
    """The admin endpoints on, with a body limit of 1 MB: (the app, once started, and its TestClient)."""
    app = create_app(writable_store.settings(admin_token=TOKEN, reload_interval=0, max_body_mb=1), encoder=encoder)
    with TestClient(app) as client:
        yield app, client


def asgi_request(app, method: str, path: str, headers: dict, chunks) -> tuple[int, dict, bytes, int]:
    """One request straight into the ASGI app: (status, headers, body, how many body messages the app received).

    `chunks` are the body's pieces, sent as http.request messages with
    more_body until they run out.
    """
    pieces = iter(chunks)
    received = 0
    answer: dict = {"body": b""}

    async def receive():
        nonlocal received
        received += 1
        piece = next(pieces, None)
        return {"type": "http.request", "body": piece or b"", "more_body": piece is not None}

    async def send(message):
        if message["type"] == "http.response.start":
            answer["status"] = message["status"]
            answer["headers"] = {k.decode().lower(): v.decode() for k, v in message.get("headers", [])}
        elif message["type"] == "http.response.body":
            answer["body"] += message.get("body", b"")

    scope = {
        "type": "http", "asgi": {"version": "3.0", "spec_version": "2.3"}, "http_version": "1.1", "scheme": "http",
        "method": method, "path": path, "raw_path": path.encode(), "root_path": "", "query_string": b"",
        "headers": [(k.lower().encode("latin-1"), v.encode("latin-1")) for k, v in headers.items()],
        "client": ("127.0.0.1", 50000), "server": ("testserver", 80), "state": {},
    }
    asyncio.run(app(scope, receive, send))
    return answer["status"], answer["headers"], answer["body"], received


# ---------------------------------------------------------------- the token


@pytest.mark.parametrize("method, path, body", [
    ("POST", "/admin/speeches", {"speeches": [NEW_SPEECH]}),
    ("DELETE", "/admin/speeches/" + quote("uk.org.publicwhip/westminhall/2009-10-27a.1.2", safe=""), None),
    ("POST", "/admin/reload", None),
])
def test_admin_endpoints_refuse_without_the_right_token(admin, method, path, body):
    client, _ = admin
    before = client.get("/stats").json()["passages"]
    missing = client.request(method, path, json=body)
    assert missing.status_code == 401 and missing.headers["www-authenticate"].startswith("Bearer")
    assert "Bearer" in missing.json()["message"]
    wrong = client.request(method, path, json=body, headers={"Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403 and "not valid" in wrong.json()["message"]
    basic = client.request(method, path, json=body, headers={"Authorization": f"Basic {TOKEN}"})
    assert basic.status_code == 401
    assert client.get("/stats").json()["passages"] == before  # nothing changed


@pytest.mark.parametrize("authorization, status", [(None, 401), ("Bearer not-the-token", 403), (f"Bearer {TOKEN}x", 403),
                                                   ("Bearer", 401), (f"bearer  {TOKEN[:-1]}", 403)])
def test_a_body_is_not_read_before_the_token_is_checked(limited, authorization, status):
    app, _ = limited
    headers = {"content-type": "application/json", "content-length": str(100 * MB)}
    if authorization is not None:
        headers["authorization"] = authorization
    answer, response_headers, body, received = asgi_request(
        app, "POST", "/admin/speeches", headers, itertools.repeat(b"{" * CHUNK, 100 * MB // CHUNK))
    assert (answer, received) == (status, 0), body
    assert response_headers["content-type"] == "application/json"
    if status == 401:
        assert response_headers["www-authenticate"].startswith("Bearer")


def test_a_malformed_body_without_the_token_is_401_not_422(admin):
    client, _ = admin
    garbage = client.post("/admin/speeches", content=b'{"speeches": [', headers={"Content-Type": "application/json"})
    assert garbage.status_code == 401, garbage.text
    wrong = client.post("/admin/speeches", content=b"\xff\xfe not json",
                        headers={"Content-Type": "application/json", "Authorization": "Bearer not-the-token"})
    assert wrong.status_code == 403, wrong.text
    with_token = client.post("/admin/speeches", content=b'{"speeches": [', headers={"Content-Type": "application/json", **AUTH})
    assert with_token.status_code == 422  # the token is right: now the body is read, and is wrong


# ---------------------------------------------------------------- what a written speech may hold


@pytest.mark.parametrize("fields, said", [
    ({"column": {"volume": 3616655366409402449920}}, "body.speeches.0.column.volume: "),  # too large for SQLite: was a 500
    ({"column": {"start": 557, "end": 554}}, "body.speeches.0.column: "),
    ({"reference": "99999999999 cc1-2"}, "body.speeches.0: reference '99999999999 cc1-2' is not"),
    ({"id": ""}, "body.speeches.0.id: "),
    ({"id": "   "}, "body.speeches.0.id: "),
    ({"procedural": "yes"}, "body.speeches.0.procedural: "),
    ({"procedural": 0}, "body.speeches.0.procedural: "),
])
def test_a_speech_out_of_range_is_a_422_naming_the_field_and_nothing_is_written(admin, fields, said):
    client, _ = admin
    before = client.get("/stats").json()["passages"]
    bad = client.post("/admin/speeches", json={"speeches": [{**NEW_SPEECH, **fields}]}, headers=AUTH)
    assert bad.status_code == 422, bad.text
    assert bad.json()["message"].startswith(said), bad.json()["message"]
    assert client.get("/stats").json()["passages"] == before


def test_a_written_speech_keeps_no_link_but_http_and_https(admin):
    client, _ = admin
    speech = {**NEW_SPEECH, "url": "javascript:alert(document.cookie)"}
    assert client.post("/admin/speeches", json={"speeches": [speech]}, headers=AUTH).status_code == 200
    passages = client.get(f"/speeches/{quote(NEW_SPEECH['id'], safe='')}").json()["passages"]
    assert passages and all(p["url"] is None for p in passages)
    found = client.get("/search", params={"q": "lighthouse keepers Farne Islands", "k": 1}).json()["results"][0]
    assert found["speech_id"] == NEW_SPEECH["id"] and found["url"] is None


# ---------------------------------------------------------------- the body's size


def test_a_body_over_the_limit_is_413_from_its_content_length_before_it_is_read(limited):
    app, client = limited
    headers = {"content-type": "application/json", "content-length": str(MB + 1), "authorization": f"Bearer {TOKEN}"}
    answer, response_headers, body, received = asgi_request(
        app, "POST", "/admin/speeches", headers, itertools.repeat(b" " * CHUNK, MB // CHUNK + 1))
    assert (answer, received) == (413, 0)
    assert "1 MB" in httpx.Response(413, content=body).json()["message"]
    # The same through a client: a real body just over the limit, and one just under it (read, then judged).
    over = client.post("/admin/speeches", content=b" " * (MB + 1), headers={"Content-Type": "application/json", **AUTH})
    assert over.status_code == 413 and "HANSARD_MAX_BODY_MB" in over.json()["message"]
    under = client.post("/admin/speeches", content=b" " * (MB - 100) + b"{}", headers={"Content-Type": "application/json", **AUTH})
    assert under.status_code == 422 and "speeches" in under.json()["message"]


def test_a_streamed_body_without_a_length_is_cut_off_at_the_limit(limited):
    app, client = limited
    headers = {"content-type": "application/json", "transfer-encoding": "chunked", "authorization": f"Bearer {TOKEN}"}
    answer, _, body, received = asgi_request(app, "POST", "/admin/speeches", headers,
                                             itertools.repeat(b" " * CHUNK, 20 * MB // CHUNK))
    assert answer == 413, body
    assert received <= MB // CHUNK + 2  # read up to the limit, and no further
    assert "1 MB" in httpx.Response(413, content=body).json()["message"]
    assert client.get("/health").status_code == 200
    # A GET carrying a body is held to the same limit.
    answer, _, _, received = asgi_request(app, "GET", "/health", {"content-length": str(2 * MB)}, [b" " * 2 * MB])
    assert (answer, received) == (413, 0)


def test_the_body_limit_is_a_setting(monkeypatch):
    assert Settings().max_body_mb == 8
    monkeypatch.setenv("HANSARD_MAX_BODY_MB", "0.5")
    assert Settings().max_body_mb == 0.5
    with pytest.raises(ValueError):
        Settings(max_body_mb=0)


# ---------------------------------------------------------------- the token's setting


def test_a_short_admin_token_is_refused_in_characters():
    with pytest.raises(ValueError, match="at least 16 characters") as refused:
        Settings(admin_token="short")
    assert "items" not in str(refused.value)


def test_an_empty_admin_token_means_read_only(monkeypatch):
    assert Settings(admin_token="").admin_token is None
    monkeypatch.setenv("HANSARD_ADMIN_TOKEN", "")
    assert Settings().admin_token is None
    monkeypatch.setenv("HANSARD_ADMIN_TOKEN", "   ")
    with pytest.raises(ValueError, match="at least 16 characters"):
        Settings()


def test_serve_names_a_short_admin_token_in_characters(small_index, cache_dir, tmp_path):
    server, _ = start_serve(small_index, cache_dir, tmp_path / "serve.log", HANSARD_ADMIN_TOKEN="short")
    assert server.wait(timeout=120) == 2
    message = (tmp_path / "serve.log").read_text()
    assert "HANSARD_ADMIN_TOKEN" in message and "16 characters" in message and "items" not in message
    assert "short" not in message.replace("characters", "")  # the token itself is never printed


def test_serve_with_an_empty_admin_token_serves_read_only(small_index, cache_dir, tmp_path):
    with serving(small_index, cache_dir, tmp_path / "serve.log", searchable=False, HANSARD_ADMIN_TOKEN="") as (host, port):
        assert httpx.get(f"http://{host}:{port}/health", timeout=10).status_code in (200, 503)  # up (loading, maybe)
        assert httpx.post(f"http://{host}:{port}/admin/reload").status_code == 404  # no admin routes at all


# ---------------------------------------------------------------- many writes


def _resident_kb() -> int:
    with open("/proc/self/status") as status:
        return next(int(line.split()[1]) for line in status if line.startswith("VmRSS:"))


def _open_files() -> list[str]:
    """Where this process's file descriptors and memory maps point."""
    links = []
    for fd in os.listdir("/proc/self/fd"):
        try:
            links.append(os.readlink(f"/proc/self/fd/{fd}"))
        except OSError:  # closed meanwhile (the listing's own descriptor)
            pass
    with open("/proc/self/maps") as maps:
        links += [line.split(None, 5)[5].strip() for line in maps if len(line.split(None, 5)) == 6]
    return links


def test_fifty_admin_writes_leave_memory_and_open_files_flat(admin):
    """Each write serves a new version; the replaced one is closed once its requests are done, not when GC runs."""
    client, target = admin

    def write_and_search(n: int) -> None:
        speech = {**NEW_SPEECH, "id": f"test/admin/flat/{n}",
                  "paragraphs": [{"text": f"Lighthouse keeper number {n} of the Farne Islands asks for a pay rise."}]}
        written = client.post("/admin/speeches", json={"speeches": [speech]}, headers=AUTH)
        assert written.status_code == 200, written.text
        for q in ("palm oil biofuels", f"lighthouse keeper number {n}"):
            assert client.get("/search", params={"q": q, "k": 5}).status_code == 200
        assert client.get("/stats").status_code == 200

    # Python's own allocations are traced (exact: what a kept Searcher,
    # store or result would hold). Resident memory is only bounded loosely:
    # glibc keeps a heap for each thread that ever wrote (tantivy's writer
    # threads are new each write), so it swings by tens of MB with no trend
    # (330-410 MB over 100 writes, back to 340 by the last). A version kept
    # alive would climb with every write; its files are checked below.
    for n in range(10):
        write_and_search(n)
    descriptors = len(os.listdir("/proc/self/fd"))
    tracemalloc.start()
    try:
        memory, traced = _resident_kb(), tracemalloc.get_traced_memory()[0]
        for n in range(10, 50):
            write_and_search(n)
        gc.collect()
        traced_grown = tracemalloc.get_traced_memory()[0] - traced
    finally:
        tracemalloc.stop()
    grown_kb = _resident_kb() - memory
    opened = len(os.listdir("/proc/self/fd")) - descriptors
    assert opened <= 3, f"{opened} more open file descriptors after 40 more writes"
    assert traced_grown < 2 * 1024 * 1024, f"Python's allocations grew by {traced_grown / 1e6:.1f} MB over 40 writes"
    assert grown_kb < 120 * 1024, f"resident memory grew by {grown_kb / 1024:.0f} MB over 40 writes"
    if target.kind == "embedded":
        index = str(target.index_dir.resolve())
        stale = {link for link in _open_files() if link.startswith(index) and not os.path.exists(link.removesuffix(" (deleted)"))}
        assert not stale, f"files of removed versions still open: {sorted(stale)[:5]}"

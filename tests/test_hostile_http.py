"""Hostile input to the public HTTP API and to the server under it.

Two kinds of test. Over TestClient, on both stores: the query syntax of FTS5
and tsquery, SQL in filter values, markup in indexed text, HEAD, and /docs.
Over a live `hansard-search serve` (a subprocess, as a user runs it, with
short timeouts): connections that never finish their headers, idle
keep-alive, over-long request lines and headers, bodies over the limit.
"""

from __future__ import annotations

import re
import socket
import time
from typing import Optional
from urllib.parse import quote

import httpx
import pytest

from service.search import MODES

from fixtures import ADMIN_AUTH as AUTH, ADMIN_TOKEN as TOKEN, HOSTILE_SPEECH, MARKUP, serving

HEADER_TIMEOUT = 3  # seconds, for the live server
KEEP_ALIVE = 1
MAX_BODY_MB = 1


# ---------------------------------------------------------------- a live server


@pytest.fixture(scope="module")
def live(small_index, cache_dir, tmp_path_factory):
    """`hansard-search serve` on the small index with short limits: (host, port)."""
    with serving(small_index, cache_dir, tmp_path_factory.mktemp("serve") / "serve.log", HANSARD_ADMIN_TOKEN=TOKEN,
                 HANSARD_HEADER_TIMEOUT=str(HEADER_TIMEOUT), HANSARD_KEEP_ALIVE=str(KEEP_ALIVE),
                 HANSARD_MAX_BODY_MB=str(MAX_BODY_MB), HANSARD_RELOAD_INTERVAL="0") as address:
        yield address


def _connect(live) -> socket.socket:
    return socket.create_connection(live, timeout=10)


def _seconds_until_closed(sock: socket.socket, until: float) -> Optional[float]:
    """Seconds until the server closes the connection (EOF or reset), reading whatever it sends; None if open at `until`."""
    started = time.monotonic()
    try:
        while True:
            sock.settimeout(max(0.01, until - time.monotonic()))
            if not sock.recv(65536):
                return time.monotonic() - started
    except (ConnectionResetError, BrokenPipeError):
        return time.monotonic() - started
    except socket.timeout:
        return None


def _read_all(sock: socket.socket, seconds: float = 10) -> bytes:
    """Everything the server sends until it closes the connection (a reset fails the test)."""
    sock.settimeout(seconds)
    data = b""
    while chunk := sock.recv(65536):
        data += chunk
    return data


def _response(sock: socket.socket) -> bytes:
    """The head of one whole response with a Content-Length, read from a connection left open."""
    def more() -> bytes:
        chunk = sock.recv(65536)
        assert chunk, "the server closed the connection mid-answer"
        return chunk

    data = b""
    while b"\r\n\r\n" not in data:
        data += more()
    head, _, body = data.partition(b"\r\n\r\n")
    length = int(re.search(rb"(?i)\r\ncontent-length: *(\d+)", head).group(1))
    while len(body) < length:
        body += more()
    return head


def test_connections_that_never_finish_their_headers_are_closed(live):
    sockets = [_connect(live) for _ in range(40)]
    for n, sock in enumerate(sockets):
        if n % 4:  # and every fourth sends nothing at all
            sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + b"X-Slow: ." * (n % 3))
    deadline = time.monotonic() + HEADER_TIMEOUT + 5
    closed = [_seconds_until_closed(sock, deadline) for sock in sockets]
    for sock in sockets:
        sock.close()
    assert all(seconds is not None for seconds in closed), f"{closed.count(None)} of 40 connections left open"
    # And the server still answers.
    assert httpx.get(f"http://{live[0]}:{live[1]}/health", timeout=10).status_code == 200


def test_headers_sent_a_byte_at_a_time_do_not_keep_a_connection_open(live):
    request = b"GET /health HTTP/1.1\r\nHost: localhost\r\n" + b"X-Trickle: " + b"a" * 1000
    with _connect(live) as sock:
        started = time.monotonic()
        closed_after = None
        for byte in request:
            try:
                sock.sendall(bytes([byte]))
                sock.settimeout(0.2)
                if not sock.recv(65536):
                    closed_after = time.monotonic() - started
                    break
            except socket.timeout:
                pass
            except (ConnectionResetError, BrokenPipeError):
                closed_after = time.monotonic() - started
                break
            if time.monotonic() - started > HEADER_TIMEOUT + 5:
                break
    assert closed_after is not None and HEADER_TIMEOUT * 0.8 <= closed_after < HEADER_TIMEOUT + 3, closed_after


def test_after_a_response_the_next_requests_headers_have_the_same_time_limit(live):
    with _connect(live) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 200")
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: local")  # and nothing more: the keep-alive timer is off now
        closed = _seconds_until_closed(sock, time.monotonic() + HEADER_TIMEOUT + 5)
    assert closed is not None and HEADER_TIMEOUT * 0.8 <= closed < HEADER_TIMEOUT + 3, closed


def test_an_idle_keep_alive_connection_is_closed_after_the_keep_alive_setting(live):
    with _connect(live) as sock:
        sock.sendall(b"GET /health HTTP/1.1\r\nHost: localhost\r\n\r\n")
        assert _response(sock).startswith(b"HTTP/1.1 200")
        closed = _seconds_until_closed(sock, time.monotonic() + 6)
    assert closed is not None and KEEP_ALIVE * 0.8 <= closed < HEADER_TIMEOUT, closed


def _send(sock: socket.socket, data: bytes, in_pieces: bool) -> None:
    """All at once (the server reads a whole head), or 8 KB at a time (it reads an incomplete one first)."""
    step = 8192 if in_pieces else len(data)
    for start in range(0, len(data), step):
        sock.sendall(data[start:start + step])
        if in_pieces:
            time.sleep(0.005)


@pytest.mark.parametrize("in_pieces", [False, True], ids=["whole", "in-pieces"])
@pytest.mark.parametrize("attempt", range(3))
def test_a_very_long_url_is_answered_414_not_reset(live, attempt, in_pieces):
    with _connect(live) as sock:
        _send(sock, b"GET /search?q=" + b"a" * 100_000 + b" HTTP/1.1\r\nHost: localhost\r\n\r\n", in_pieces)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 414 "), answer[:200]


@pytest.mark.parametrize("in_pieces", [False, True], ids=["whole", "in-pieces"])
def test_very_long_headers_are_answered_431_not_reset(live, in_pieces):
    with _connect(live) as sock:
        _send(sock, b"GET /health HTTP/1.1\r\nHost: localhost\r\nX-Big: " + b"b" * 100_000 + b"\r\n\r\n", in_pieces)
        answer = _read_all(sock)
    assert answer.startswith(b"HTTP/1.1 431 "), answer[:200]


def test_a_long_text_for_similar_is_within_the_limits(live):
    text = ("Lighthouse keepers of the Farne Islands deserve a pay rise. " * 400)[:20_000]  # the most /similar takes
    response = httpx.get(f"http://{live[0]}:{live[1]}/similar", params={"text": text, "k": 1}, timeout=60)
    assert response.status_code == 200, response.text[:300]


def test_a_body_over_the_limit_is_refused_from_its_length_without_being_sent(live):
    with _connect(live) as sock:
        sock.sendall(b"POST /admin/speeches HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n"
                     b"Authorization: Bearer " + TOKEN.encode() + b"\r\nContent-Length: 1000000000\r\n\r\n{\"speeches\"")
        sock.settimeout(10)
        head = sock.recv(65536)
    assert head.startswith(b"HTTP/1.1 413 "), head[:200]


def test_a_chunked_body_over_the_limit_is_refused_while_it_streams(live):
    def body():
        for _ in range(5 * MAX_BODY_MB * 16):  # 5 times the limit, in 64 KB chunks, with no Content-Length
            yield b" " * 65536

    response = httpx.post(f"http://{live[0]}:{live[1]}/admin/speeches", content=body(), timeout=30,
                          headers={"Content-Type": "application/json", **AUTH})
    assert response.status_code == 413, response.text
    assert "HANSARD_MAX_BODY_MB" in response.json()["message"]
    assert httpx.get(f"http://{live[0]}:{live[1]}/health", timeout=10).status_code == 200


# ---------------------------------------------------------------- HEAD, and the API docs


@pytest.mark.parametrize("path", ["/", "/health", "/embed", "/embed?q=rail", "/embed.js", "/stats", "/metrics",
                                  "/search?q=palm+oil", "/docs", "/openapi.json", "/static/app.js",
                                  "/speeches/" + quote("uk.org.publicwhip/westminhall/2009-10-27a.1.2", safe="")])
def test_head_answers_as_get_does_without_a_body(client, path):
    got, head = client.get(path), client.head(path)
    assert head.status_code == got.status_code == 200
    assert head.content == b""
    assert head.headers["content-type"] == got.headers["content-type"]
    if path != "/metrics":  # (its counters move between the two requests)
        assert head.headers.get("content-length") == got.headers.get("content-length")
    assert head.headers.get("content-security-policy") == got.headers.get("content-security-policy")


def test_head_of_a_path_without_get_is_refused_as_get_is(client):
    assert client.head("/no/such/page").status_code == client.get("/no/such/page").status_code == 404
    assert client.head("/admin/reload").status_code == 404  # read-only: no admin routes


def test_api_docs_come_from_the_service_itself_under_the_page_policy(client):
    docs = client.get("/docs")
    assert docs.status_code == 200 and docs.headers["content-type"].startswith("text/html")
    assert docs.headers["content-security-policy"] == client.get("/").headers["content-security-policy"]
    assert "unsafe-inline" not in docs.headers["content-security-policy"]
    assert not re.search(r"(?i)https?://|//cdn", docs.text), "the docs page names another site"
    assert not re.search(r"<script[^>]*>\s*[^<\s]", docs.text), "an inline script (the policy would block it)"
    scripts = re.findall(r'<script[^>]* src="([^"]+)"', docs.text)
    styles = re.findall(r'<link[^>]* href="([^"]+)"', docs.text)
    assert scripts and styles
    for url in scripts:
        asset = client.get(url)
        assert asset.status_code == 200 and "javascript" in asset.headers["content-type"], url
        assert len(asset.content) > 100
    for url in styles:
        if url.endswith(".css"):
            asset = client.get(url)
            assert asset.status_code == 200 and asset.headers["content-type"].startswith("text/css"), url
    assert any(len(client.get(url).content) > 100_000 for url in scripts)  # Swagger UI itself
    # ReDoc would load from a CDN too; it is not served.
    assert client.get("/redoc").status_code == 404


# ---------------------------------------------------------------- query syntax and SQL


HOSTILE_QUERIES = ['"unbalanced', "NEAR(a b", "a OR", "OR", "*", "palm*", "col:text", "text:palm", "^", "^palm",
                   "AND NOT", "NOT palm", "&|!():*", "!!palm", "a & b | !c", "(palm", "palm)", "\\", "palm\\oil",
                   "\\\"", "'", "''", "a' OR '1'='1", "-", "--", "- -palm", '""', '" "', "+", "{col}: x", "[a]",
                   "palm <-> oil", "a:* & b", "speaker:", 'speaker:"', "from:", "NEAR/2", "%", "_", "\u00a0"]


@pytest.mark.parametrize("mode", MODES)
def test_query_syntax_of_fts5_and_tsquery_is_only_text(client, mode):
    for q in HOSTILE_QUERIES:
        for params in ({"q": q, "mode": mode}, {"q": q, "mode": mode, "facets": "party,month", "group_by": "speech"}):
            response = client.get("/search", params=params)
            assert response.status_code in (200, 422), f"{params}: {response.status_code} {response.text[:300]}"
            if response.status_code == 422:
                assert response.json()["message"].startswith(("q:", "speaker:", "date_from:", "date_to:")), response.text


@pytest.mark.parametrize("params", [
    {"speaker": "x' OR '1'='1"}, {"speaker": "%"}, {"speaker": "_"}, {"speaker": "\\"}, {"speaker": "' OR ''='"},
    {"debate": "%' --"}, {"debate": "%"}, {"debate": "_%_"},
    {"person_id": "x' OR 1=1 --"}, {"person_id": "%"},
    {"q": "palm oil speaker:\"x' OR '1'='1\""},
    {"q": "palm oil debate:\"%' --\""},
])
def test_sql_in_a_filter_value_matches_nothing_and_changes_nothing(client, params):
    before = client.get("/stats").json()
    for mode in MODES:
        response = client.get("/search", params={"q": "palm oil", "mode": mode, **params})
        assert response.status_code == 200, response.text
        assert response.json()["total"] == 0 and response.json()["results"] == []
    assert client.get("/stats").json() == before


@pytest.mark.parametrize("party", ["Labour'); DROP TABLE hansard_passages;--", "Labour'); DROP TABLE passages;--",
                                   "' OR 1=1 --", "%"])
def test_sql_in_a_party_or_section_is_refused_and_the_tables_stay(client, party):
    for params in ({"party": party}, {"section": party}, {"q": f"palm party:\"{party}\""}):
        response = client.get("/search", params={"q": "palm oil", **params})
        assert response.status_code == 422 and response.json()["message"].startswith(("party:", "section:")), response.text
    # The tables are still there, whole: a search that reads them finds what it found before.
    found = client.get("/search", params={"q": "palm oil", "mode": "keyword"}).json()
    assert found["total"] > 0 and client.get("/stats").json()["passages"] > found["total"]


# ---------------------------------------------------------------- markup in what is indexed


def test_markup_in_every_field_comes_back_as_the_same_text(hostile):
    results = hostile.get("/search", params={"q": "lighthouse keepers Farne Islands", "k": 2}).json()["results"]
    top = results[0]
    assert top["speech_id"] == HOSTILE_SPEECH["id"]
    assert top["text"] == HOSTILE_SPEECH["paragraphs"][0]["text"]
    assert top["speaker"]["name"] == HOSTILE_SPEECH["speaker"]["name"]
    assert top["debate"].endswith(MARKUP) and top["major_heading"] == HOSTILE_SPEECH["major_heading"]
    assert top["minor_heading"] == HOSTILE_SPEECH["minor_heading"]
    assert top["url"] == HOSTILE_SPEECH["url"]
    speech = hostile.get("/speeches/" + quote(HOSTILE_SPEECH["id"], safe=""))
    assert speech.status_code == 200 and speech.headers["content-type"] == "application/json"
    assert [p["text"] for p in speech.json()["passages"]] == [p["text"] for p in HOSTILE_SPEECH["paragraphs"]]
    # Searching for the markup itself is plain words too.
    assert hostile.get("/search", params={"q": MARKUP}).status_code == 200
    assert hostile.get("/search", params={"q": "x", "speaker": "<script>"}).json()["total"] == 2

"""Test data and helpers shared by test modules: real files of ../shared/data and the commands run on them.

Importable (`from fixtures import ...`), as datasette's tests/fixtures.py is:
fixtures proper (pytest's) stay in conftest.py.
"""

import os
import re
import shutil
import socket
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Iterator, Optional
from urllib.parse import unquote, urlsplit

import httpx
import uvicorn

from indexer.store.embedded import LOCK, EmbeddedStore

ROOT = Path(__file__).resolve().parents[1]
DATA = Path(os.environ.get("HANSARD_TEST_DATA", ROOT.parent / "shared" / "data")).resolve()
HANSARD = DATA / "hansard"
XML = HANSARD / "xml"
MEMBERS = HANSARD / "members"
CONTRIBUTION_PAGE = DATA / "contribution-pages" / "procurement-bill-hl-823-cc554-7GC.txt"
# The small slice most tests index: the contribution page plus two days of
# other business (a Westminster Hall sitting and two days of Commons
# written statements).
SMALL_SLICE = [CONTRIBUTION_PAGE, XML / "2009-10_westminhall", XML / "2009-10_wms"]

STORE_KINDS = ["embedded", "postgres"]  # the stores the API and CLI tests run on


def free_port() -> int:
    """A loopback port nothing listens on now, for a live server in a test."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class StoreUnderTest:
    """One of the two stores, holding SMALL_SLICE: what to tell the service and the CLI to use it."""

    kind: str  # embedded or postgres
    index_dir: Optional[Path] = None
    database_url: Optional[str] = None

    def settings(self, **settings):
        from service.settings import Settings

        return Settings(index=self.index_dir or Path("no-index-directory"), database_url=self.database_url, **settings)

    @property
    def cli_args(self) -> list[str]:
        return ["--database-url", self.database_url] if self.database_url else ["--index", str(self.index_dir)]

    @property
    def env(self) -> dict:
        """The environment that points the CLI at this store."""
        return {"HANSARD_DATABASE_URL": self.database_url} if self.database_url else {"HANSARD_INDEX": str(self.index_dir)}

    @property
    def location(self):
        """Where this store is, for indexer.build's functions and indexer.store.open_store."""
        from indexer.store import Location

        return Location(index_dir=self.index_dir, database_url=self.database_url)


WMS_FIRST = XML / "2009-10_wms" / "ministerial2009-10-26c.xml"  # indexed first; its truncated copy comes later
WMS_SECOND = XML / "2009-10_wms" / "ministerial2009-10-27a.xml"  # a good file among the bad ones
LORDS_WMS = XML / "2009-10_lordswms" / "lordswms2009-10-26a.xml"  # ISO-8859-1: "Umeå" is one raw byte
LORDS_WRANS = XML / "2009-10_lordswrans" / "lordswrans2009-10-26a.xml"
WESTMINSTER_HALL = XML / "2009-10_westminhall" / "westminster2009-10-27a.xml"
KILLED_INPUT = XML / "2009-10_lordswms" / "lordswms2009-10-27a.xml"  # 52 passages: seconds of embedding

KNOWN_SPEECH = "uk.org.publicwhip/wms/2009-10-26c.1WS.2"  # in WMS_FIRST
UMEA_SPEECH = "uk.org.publicwhip/wms/2009-10-26a.88.3"  # "...Competitiveness Council, which took place in Umeå"
WATCHKEEPER_REPLY = "uk.org.publicwhip/wrans/2009-10-26a.101.2"
BYELAWS_SPEECH = "uk.org.publicwhip/wms/2009-10-27a.7WS.2"  # in WMS_SECOND
KILLED_INPUT_SPEECH = "uk.org.publicwhip/wms/2009-10-27a.93.1"
MAX_MB = 100  # the default of --max-file-mb


def hansard_search(*args, cache_dir, env: Optional[dict] = None, timeout: float = 300, **kwargs):
    """The `hansard-search` command, run to its end with a private embedding cache (and `env` added): its result."""
    return subprocess.run(command(*args), capture_output=True, text=True, env={**cli_env(cache_dir), **(env or {})},
                          timeout=timeout, **kwargs)


def command(*args) -> list[str]:
    program = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    return [program, *map(str, args)]


def cli_env(cache_dir) -> dict:
    return {**os.environ, "HANSARD_CACHE_DIR": str(cache_dir), "COLUMNS": "250"}


def first_speeches(path: Path, n: int) -> str:
    """A real day's XML up to the end of its nth speech, closed: a small file of the same form."""
    text = path.read_bytes().decode("latin-1")
    ends = [m.end() for m in re.finditer(r"</(?:speech|ques|reply)>", text)]
    return text[: ends[n - 1]] + "\n</publicwhip>\n"


def copy_index(index_dir: Path, to: Path) -> Path:
    shutil.copytree(index_dir, to, ignore=shutil.ignore_patterns(LOCK))
    return to


def speech_texts(index: EmbeddedStore, speech_id: str) -> list[str]:
    return [p.text for p in index.speech(speech_id)]


def dense_top(index: EmbeddedStore, encoder, query: str, k: int = 3) -> list[str]:
    """Speech ids of the nearest passages: a real search over the stored vectors."""
    _, vecs = index.search(encoder.encode_query(query), k)
    return [p.speech_id for p in index.passages_at(vecs)]


# The admin token of the tests' services, and the header that carries it.
ADMIN_TOKEN = "s3cret-token-for-tests-0123456789"
ADMIN_AUTH = {"Authorization": f"Bearer {ADMIN_TOKEN}"}
# A speech to write through the admin API.
NEW_SPEECH = {
    "id": "test/admin/lighthouses/1",
    "house": "commons",
    "section": "debates",
    "date": "2009-11-02",
    "major_heading": "Lighthouses",
    "speaker": {"name": "Test Member", "party": "Labour"},
    "reference": "c101",
    "paragraphs": [
        {"text": "The lighthouse keepers of the Farne Islands deserve a pay rise before the winter storms."},
        {"text": "Automation has not removed the need for people who know the rocks and the tides."},
    ],
}

# Markup in every field of a speech: it must come back as text, and never run in a page.
MARKUP = '<script>window.pwned=1</script><img src=x onerror="window.pwned=2"><b>bold</b>'
HOSTILE_SPEECH = {
    "id": "test/hostile/<script>alert(1)</script>",
    "house": "commons",
    "section": "debates",
    "date": "2009-11-02",
    "major_heading": f"Lighthouses {MARKUP}",
    "minor_heading": f"Keepers {MARKUP}",
    "speaker": {"name": f"Mr Keeper {MARKUP}", "party": "Labour"},
    "reference": "c101",
    "url": 'https://example.org/record?a="><svg/onload=alert(1)>',
    "paragraphs": [{"text": f"The lighthouse keepers of the Farne Islands {MARKUP} deserve a pay rise."},
                   {"text": f"Automation has not removed the need for them. {MARKUP}"}],
}


# ---------------------------------------------------------------- a live server


def start_serve(index: Path, cache_dir: Path, log: Path, **settings: str) -> tuple[subprocess.Popen, int]:
    """`hansard-search serve` on an index, with HANSARD_* `settings`: (the process, its port); its output goes to `log`."""
    port = free_port()
    command = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    env = {**os.environ, "HANSARD_CACHE_DIR": str(cache_dir), **settings}
    with open(log, "wb") as out:  # a file, not a pipe: a full pipe would stall the server's logging
        server = subprocess.Popen([command, "serve", "--index", str(index), "--port", str(port)],
                                  env=env, stdout=out, stderr=subprocess.STDOUT)
    return server, port


@contextmanager
def serving(index: Path, cache_dir: Path, log: Path, searchable: bool = True, **settings: str) -> Iterator[tuple[str, int]]:
    """(host, port) of `hansard-search serve` once /health answers (200, unless not `searchable`: any answer); stopped after."""
    server, port = start_serve(index, cache_dir, log, **settings)
    try:
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"http://127.0.0.1:{port}/health", timeout=5).status_code == 200 or not searchable:
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, log.read_text()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.3)
        yield "127.0.0.1", port
    finally:
        server.terminate()
        server.wait(timeout=30)


# ---------------------------------------------------------------- a browser

CHROMIUM = shutil.which("chromium") or "/usr/bin/chromium"
# Chromium's own calls home are refused by a closed network; these keep it quiet and fast.
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run", "--disable-background-networking",
                 "--disable-component-update", "--disable-sync"]


@contextmanager
def uvicorn_app(app):
    """The app under uvicorn on 127.0.0.1, in a thread: its base URL."""
    port = free_port()
    server = uvicorn.Server(uvicorn.Config(app, host="127.0.0.1", port=port, log_level="warning"))
    thread = threading.Thread(target=server.run, daemon=True)
    thread.start()
    deadline = time.monotonic() + 60
    while not server.started:
        assert thread.is_alive() and time.monotonic() < deadline, "uvicorn did not start"
        time.sleep(0.05)
    yield f"http://127.0.0.1:{port}"
    server.should_exit = True
    thread.join(timeout=10)


# ---------------------------------------------------------------- a fake TheyWorkForYou (for `download`)
# A real HTTP server laid out like https://www.theyworkforyou.com/pwdata/scrapedxml/, serving the shared
# data's folders under the site's folder names; tests/test_download.py makes it misbehave.

# Shared data folder -> the site's folder it is a slice of.
SITE_FOLDERS = {
    "2009-10_debates": "debates",
    "2016-2021_debates": "debates",
    "2009-10_lordspages": "lordspages",
    "2022-2023_lordspages": "lordspages",
    "2009-10_westminhall": "westminhall",
    "2009-10_wms": "wms",
    "2009-10_lordswms": "lordswms",
    "2009-10_wrans": "wrans",
    "2009-10_lordswrans": "lordswrans",
    "2009-10_standing": "standing",
}
PREFIX = "/pwdata/scrapedxml/"


@dataclass
class Request:
    method: str
    path: str
    range: Optional[str]
    user_agent: Optional[str]


@dataclass
class FakeTheyWorkForYou:
    """What the server holds and how it misbehaves; tests change it between runs."""

    files: dict[str, Path | bytes] = field(default_factory=dict)  # "/pwdata/scrapedxml/debates/x.xml" -> content
    listed_only: set[str] = field(default_factory=set)  # in the listing, but 404 when asked for
    statuses: dict[str, list[int]] = field(default_factory=dict)  # answer these first, one per request
    cut_after: dict[str, int] = field(default_factory=dict)  # next answer stops after this many bytes
    ranges: bool = True
    requests: list[Request] = field(default_factory=list)
    base_url: str = ""

    def add(self, site_path: str, content: Path | bytes) -> None:
        self.files[PREFIX + site_path] = content

    def content(self, site_path: str) -> bytes:
        content = self.files[PREFIX + site_path]
        return content.read_bytes() if isinstance(content, Path) else content

    def gets(self, site_path: str) -> list[Request]:
        return [r for r in self.requests if r.method == "GET" and r.path == PREFIX + site_path]

    def file_gets(self) -> list[str]:
        return [r.path.removeprefix(PREFIX) for r in self.requests if r.method == "GET" and not r.path.endswith("/")]


def _handler(site: FakeTheyWorkForYou, lock: threading.Lock) -> type[BaseHTTPRequestHandler]:
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"

        def log_message(self, *args) -> None:
            pass

        def do_GET(self) -> None:
            path = unquote(urlsplit(self.path).path)
            with lock:
                site.requests.append(Request("GET", path, self.headers.get("Range"), self.headers.get("User-Agent")))
                queued = site.statuses.get(path)
                status = queued.pop(0) if queued else None
                cut = site.cut_after.pop(path, None)
            if status is not None:
                return self._send(status, b"try again later\n", {"Retry-After": "0"} if status in (429, 503) else {})
            if path.endswith("/"):
                return self._listing(path)
            if path not in site.files or path in site.listed_only:
                return self._send(404, b"not found\n")
            content = site.files[path]
            data = content.read_bytes() if isinstance(content, Path) else content
            start, headers, status = 0, {"Accept-Ranges": "bytes"} if site.ranges else {}, 200
            asked = self.headers.get("Range", "")
            if site.ranges and asked.startswith("bytes=") and asked.endswith("-"):
                start = int(asked[len("bytes="):-1])
                if start >= len(data):
                    return self._send(416, b"", {"Content-Range": f"bytes */{len(data)}"})
                status, headers["Content-Range"] = 206, f"bytes {start}-{len(data) - 1}/{len(data)}"
            self._send(status, data[start:], headers, cut=cut)

        def _listing(self, path: str) -> None:
            names = sorted({p[len(path):] for p in site.files if p.startswith(path) and "/" not in p[len(path):]})
            if not names:
                return self._send(404, b"not found\n")
            rows = "\n".join(
                f'<tr><td valign="top"><img src="/icons/text.gif" alt="[TXT]"></td><td><a href="{name}">{name}</a></td>'
                f'<td align="right">2009-10-28 08:00  </td><td align="right">613K</td><td>&nbsp;</td></tr>'
                for name in names
            )
            html = (
                '<!DOCTYPE HTML PUBLIC "-//W3C//DTD HTML 3.2 Final//EN">\n<html>\n <head>\n'
                f"  <title>Index of {path}</title>\n </head>\n <body>\n<h1>Index of {path}</h1>\n<table>\n"
                '<tr><th></th><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=M;O=A">Last modified</a></th>'
                '<th><a href="?C=S;O=A">Size</a></th><th><a href="?C=D;O=A">Description</a></th></tr>\n'
                f'<tr><td></td><td><a href="{PREFIX}">Parent Directory</a></td><td>&nbsp;</td><td align="right">  - </td></tr>\n'
                f"{rows}\n</table>\n<address>Apache Server at 127.0.0.1</address>\n</body></html>\n"
            )
            self._send(200, html.encode(), {"Content-Type": "text/html;charset=UTF-8"})

        def _send(self, status: int, body: bytes, headers: Optional[dict] = None, cut: Optional[int] = None) -> None:
            self.send_response(status)
            for name, value in (headers or {}).items():
                self.send_header(name, value)
            self.send_header("Content-Length", str(len(body)))
            self.end_headers()
            if cut is None:
                self.wfile.write(body)
                return
            # The connection drops mid-body: the client sees fewer bytes than Content-Length.
            self.wfile.write(body[:cut])
            self.wfile.flush()
            self.connection.shutdown(socket.SHUT_RDWR)
            self.close_connection = True

    return Handler


@contextmanager
def fake_theyworkforyou() -> Iterator["FakeTheyWorkForYou"]:
    """The shared data under the site's layout, plus a stray text file, served on 127.0.0.1 (base_url set)."""
    fake = FakeTheyWorkForYou()
    for shared, folder in SITE_FOLDERS.items():
        for path in sorted((XML / shared).glob("*.xml")):
            fake.add(f"{folder}/{path.name}", path)
    fake.add("debates/changedates.txt", b"not a sitting day\n")
    server = ThreadingHTTPServer(("127.0.0.1", 0), _handler(fake, threading.Lock()))
    thread = threading.Thread(target=server.serve_forever, kwargs={"poll_interval": 0.05}, daemon=True)
    thread.start()
    fake.base_url = f"http://127.0.0.1:{server.server_address[1]}{PREFIX}"
    try:
        yield fake
    finally:
        server.shutdown()
        server.server_close()


def settled(page) -> None:
    """Wait until the search page's last request has been answered and drawn (its script marks <body> busy till then).

    (Not page.wait_for_function: the page's CSP rightly forbids the eval it needs.)"""
    page.wait_for_selector("body:not(.busy)")


# ---------------------------------------------------------------- a sitting re-released

COMMONS_WMS = XML / "2009-10_wms" / "ministerial2009-10-26c.xml"  # gids uk.org.publicwhip/wms/2009-10-26c...
LORDS_WMS = XML / "2009-10_lordswms" / "lordswms2009-10-26a.xml"  # gids uk.org.publicwhip/wms/2009-10-26a...: same prefix, other house
_SPEECH = re.compile(r'<speech id="([^"]+)".*?</speech>', re.S)


def speeches_in(xml: str) -> list[re.Match]:
    return list(_SPEECH.finditer(xml))


def revised_sitting(original: str) -> tuple[str, dict]:
    """A re-release of the sitting: one speech reworded, one dropped, one added; the rest as they were."""
    found = speeches_in(original)
    reworded, dropped = found[1], found[-1]
    changed = reworded.group(0).replace("<p", "<p>Revised: the figures have been corrected.</p><p", 1)
    opening = re.match(r"<speech[^>]*>", found[2].group(0)).group(0)
    added = (re.sub(r'id="[^"]+"', 'id="uk.org.publicwhip/wms/2009-10-26c.999WS.0"', opening, count=1)
             + "<p>A new written statement on lighthouses, their keepers and the cost of automating them.</p></speech>")
    text = (original[: reworded.start()] + changed + original[reworded.end() : dropped.start()] + added
            + original[dropped.end() :])
    return text, {"reworded": reworded.group(1), "dropped": dropped.group(1),
                  "added": "uk.org.publicwhip/wms/2009-10-26c.999WS.0"}


def write_day(folder: Path, name: str, text: str) -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / name
    path.write_bytes(text.encode("iso-8859-1", errors="xmlcharrefreplace"))
    return path

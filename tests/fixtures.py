"""Test data and helpers shared by test modules: real files of ../shared/data and the commands run on them.

Importable (`from fixtures import ...`), as datasette's tests/fixtures.py is:
fixtures proper (pytest's) stay in conftest.py.
"""

import os
import re
import shutil
import subprocess
import sys
import threading
import time
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Iterator, Optional

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


def hansard_search(*args, cache_dir, **kwargs):
    return subprocess.run(command(*args), capture_output=True, text=True, env=cli_env(cache_dir), **kwargs)


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

"""Shared fixtures: one loaded model, small real indexes of the real data, both stores (the data and helpers are in fixtures.py).

Tests read real Hansard from ../shared/data (or $HANSARD_TEST_DATA) and index
small slices of it (a day or two), so the suite stays fast but honest.

The API and CLI tests run against both stores (the `store` fixture is
parametrised): the embedded index directory, and PostgreSQL at
$HANSARD_DATABASE_URL, which `.ci/postgres run` starts (the README's test
command does). Without that URL the PostgreSQL half fails, never skips.
Tests that index or write get databases of their own on that server.
"""

from __future__ import annotations

import itertools
import threading
from functools import partial
from http.server import SimpleHTTPRequestHandler, ThreadingHTTPServer
import os
import shutil
import uuid
from pathlib import Path
from typing import Optional
from urllib.parse import urlsplit, urlunsplit

import pytest

from fixtures import (ADMIN_AUTH, ADMIN_TOKEN, CHROMIUM, CHROMIUM_ARGS, DATA, HOSTILE_SPEECH, MEMBERS, SMALL_SLICE, STORE_KINDS,
                      XML, StoreUnderTest,
                      free_port, uvicorn_app)

# Taken out of the environment: nothing in the tests (an embedded-store
# service, a CLI subprocess) may pick it up unless given it on purpose.
TEST_DATABASE_URL = os.environ.pop("HANSARD_DATABASE_URL", None)


def pytest_configure(config):
    if not XML.is_dir():
        raise pytest.UsageError(f"test data not found at {DATA}: set HANSARD_TEST_DATA to the shared data folder")


# Fixtures whose use means a test needs PostgreSQL, or drives Chromium.
POSTGRES_FIXTURES = {"databases", "small_database"}
BROWSER_FIXTURES = {"browser"}


def pytest_collection_modifyitems(config, items):
    """Mark each test by what it needs, from the fixtures it uses: `-m "not postgres and not browser"` is the fast half."""
    for item in items:
        params = getattr(item, "callspec", None)
        on_postgres = "postgres" in (params.params.values() if params else ()) or POSTGRES_FIXTURES & set(item.fixturenames)
        if on_postgres:
            item.add_marker(pytest.mark.postgres)
        if BROWSER_FIXTURES & set(item.fixturenames):
            item.add_marker(pytest.mark.browser)


@pytest.fixture(scope="session")
def members():
    from indexer.sources.members import MemberDirectory

    return MemberDirectory.load(MEMBERS)


@pytest.fixture(scope="session")
def cache_dir(tmp_path_factory) -> Path:
    """A fresh embedding cache for this test run (the real model, a private cache)."""
    return tmp_path_factory.mktemp("cache")


@pytest.fixture(scope="session")
def encoder(cache_dir):
    from embeddings.encoder import load_encoder

    return load_encoder(cache_dir=cache_dir)


@pytest.fixture(scope="session")
def small_index(tmp_path_factory, encoder, members) -> Path:
    """A real index of SMALL_SLICE, built once for the session; tests must not change it."""
    from indexer.build import build_index

    index_dir = tmp_path_factory.mktemp("small") / "index"
    summary = build_index(SMALL_SLICE, index_dir, encoder, members)
    assert not summary.problems, summary.problems
    return index_dir


@pytest.fixture(scope="session")
def previous_index(tmp_path_factory, encoder, members) -> Path:
    """An index of one day of written statements, made before any bad input comes near it; tests copy it to change it."""
    from indexer.build import build_index
    from fixtures import WMS_FIRST

    index_dir = tmp_path_factory.mktemp("previous") / "index"
    summary = build_index([WMS_FIRST], index_dir, encoder, members)
    assert not summary.problems and summary.speeches == 8
    return index_dir


@pytest.fixture(scope="session")
def client(store, encoder):
    """The HTTP API over the small index in each store, through FastAPI's TestClient (model loaded once)."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    with TestClient(create_app(store.settings(), encoder=encoder)) as client:
        yield client


# ---------------------------------------------------------------- both stores


class Databases:
    """Databases of their own for tests, on the test server; dropped at the end of the session."""

    def __init__(self, url: str):
        self.url = url
        self.created: list[str] = []
        self._names = itertools.count()
        self._session = uuid.uuid4().hex[:6]

    def _admin(self):
        from indexer.store import connect

        return connect(self.url)

    def url_of(self, name: str) -> str:
        return urlunsplit(urlsplit(self.url)._replace(path=f"/{name}"))

    def create(self, template: Optional[str] = None) -> str:
        """A new empty database (or a copy of the database at `template`, which nobody may be connected to)."""
        name = f"hansard_test_{self._session}_{next(self._names)}"
        with self._admin() as conn:
            source = f" TEMPLATE {urlsplit(template).path.lstrip('/')}" if template else ""
            conn.execute(f"CREATE DATABASE {name}{source}")
        self.created.append(name)
        return self.url_of(name)

    def drop_all(self) -> None:
        with self._admin() as conn:
            for name in self.created:
                conn.execute(f"DROP DATABASE IF EXISTS {name} WITH (FORCE)")


@pytest.fixture(scope="session")
def databases():
    if not TEST_DATABASE_URL:
        pytest.fail("the PostgreSQL half of the tests needs a server: run them as `.ci/postgres run python -m pytest`, "
                    "or set HANSARD_DATABASE_URL to a server where this user may create databases")
    databases = Databases(TEST_DATABASE_URL)
    yield databases
    databases.drop_all()


@pytest.fixture(scope="session")
def small_database(databases, encoder, members) -> str:
    """SMALL_SLICE loaded into PostgreSQL, kept as a template: copies are made of it, nobody connects to it."""
    from indexer.build import build_index
    from indexer.store import Location

    url = databases.create()
    summary = build_index(SMALL_SLICE, Location(database_url=url), encoder, members)
    assert not summary.problems, summary.problems
    return url


@pytest.fixture(scope="session", params=STORE_KINDS)
def store(request, small_index) -> StoreUnderTest:
    """SMALL_SLICE in each store in turn; tests must not change it (see writable_store)."""
    if request.param == "embedded":
        return StoreUnderTest("embedded", index_dir=small_index)
    databases = request.getfixturevalue("databases")
    return StoreUnderTest("postgres", database_url=databases.create(template=request.getfixturevalue("small_database")))


@pytest.fixture
def writable_store(store, tmp_path, request) -> StoreUnderTest:
    """A private copy of the store's SMALL_SLICE, for a test that writes."""
    if store.kind == "embedded":
        index_dir = tmp_path / "index"
        shutil.copytree(store.index_dir, index_dir)
        return StoreUnderTest("embedded", index_dir=index_dir)
    databases = request.getfixturevalue("databases")
    return StoreUnderTest("postgres", index_dir=tmp_path / "index",
                          database_url=databases.create(template=request.getfixturevalue("small_database")))


@pytest.fixture
def empty_store(store, tmp_path, request) -> StoreUnderTest:
    """A store of the same kind holding nothing yet (the CLI or a build fills it)."""
    if store.kind == "embedded":
        return StoreUnderTest("embedded", index_dir=tmp_path / "index")
    return StoreUnderTest("postgres", index_dir=tmp_path / "index", database_url=request.getfixturevalue("databases").create())


@pytest.fixture
def admin(writable_store, encoder):
    """A writable copy of the small index (in each store), served with the admin endpoints on."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    app = create_app(writable_store.settings(admin_token=ADMIN_TOKEN, reload_interval=0), encoder=encoder)
    with TestClient(app) as client:
        yield client, writable_store


@pytest.fixture
def hostile(writable_store, encoder):
    """A copy of the small index (in each store) holding a speech with markup in every field."""
    from fastapi.testclient import TestClient

    from service.app import create_app

    app = create_app(writable_store.settings(admin_token=ADMIN_TOKEN, reload_interval=0), encoder=encoder)
    with TestClient(app) as client:
        added = client.post("/admin/speeches", json={"speeches": [HOSTILE_SPEECH]}, headers=ADMIN_AUTH)
        assert added.status_code == 200, added.text
        yield client


# ---------------------------------------------------------------- the browser tests


class _Quiet(SimpleHTTPRequestHandler):
    def log_message(self, *args):
        pass


def _serve_folder(folder: Path):
    server = ThreadingHTTPServer(("127.0.0.1", free_port()), partial(_Quiet, directory=str(folder)))
    threading.Thread(target=server.serve_forever, daemon=True).start()
    return server


@pytest.fixture(scope="module")
def portals(tmp_path_factory):
    """Two portal sites on other origins: (allowed origin, refused origin), served until the module ends."""
    folder = tmp_path_factory.mktemp("portal")
    allowed, refused = _serve_folder(folder), _serve_folder(folder)
    yield folder, f"http://localhost:{allowed.server_port}", f"http://localhost:{refused.server_port}"
    allowed.shutdown()
    refused.shutdown()


@pytest.fixture(scope="module")
def browser():
    """Debian's Chromium, headless, driven by Playwright (one a module)."""
    from playwright.sync_api import sync_playwright

    assert Path(CHROMIUM).exists(), f"Chromium not found at {CHROMIUM}: apt-get install chromium (.ci/run does)"
    with sync_playwright() as playwright:
        browser = playwright.chromium.launch(executable_path=CHROMIUM, args=CHROMIUM_ARGS)
        yield browser
        browser.close()


@pytest.fixture
def page(browser):
    """A fresh browser page; the test fails if the page's JavaScript raised."""
    context = browser.new_context(viewport={"width": 1100, "height": 900}, accept_downloads=True)
    page = context.new_page()
    errors: list[str] = []
    page.on("pageerror", lambda err: errors.append(str(err)))
    yield page
    context.close()
    assert not errors, f"JavaScript errors on the page: {errors}"


@pytest.fixture(scope="module")
def live_service(store, encoder, portals):
    """The real app (each store) under uvicorn on 127.0.0.1, allowing the first portal's origin."""
    _, allowed_origin, _ = portals
    from service.app import create_app

    with uvicorn_app(create_app(store.settings(allowed_origins=[allowed_origin]), encoder=encoder)) as url:
        yield url

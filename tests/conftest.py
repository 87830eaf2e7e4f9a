"""Shared fixtures: the real data beside the checkout, one loaded model, small real indexes.

Tests read real Hansard from ../shared/data (or $HANSARD_TEST_DATA) and index
small slices of it (a day or two), so the suite stays fast but honest.
"""

from __future__ import annotations

import os
from pathlib import Path

import pytest

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


def free_port() -> int:
    """A loopback port nothing listens on now, for a live server in a test."""
    import socket

    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def pytest_configure(config):
    if not XML.is_dir():
        raise pytest.UsageError(f"test data not found at {DATA}: set HANSARD_TEST_DATA to the shared data folder")


@pytest.fixture(scope="session")
def members():
    from indexer.members import MemberDirectory

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
def client(small_index, encoder):
    """The HTTP API over the small index, through FastAPI's TestClient (model loaded once)."""
    from fastapi.testclient import TestClient

    from service.app import create_app
    from service.settings import Settings

    with TestClient(create_app(Settings(index=small_index), encoder=encoder)) as client:
        yield client

"""The `hansard-search` command, run as a user runs it (a real subprocess)."""

import json
import os
import shutil
import subprocess
import sys
import time

import httpx
import pytest

from fixtures import SMALL_SLICE, STORE_KINDS, XML, StoreUnderTest, free_port, hansard_search

HS2_QUERY = "Chinese surveillance cameras bought for HS2"


@pytest.fixture(scope="module", params=STORE_KINDS)
def cli_index(request, tmp_path_factory, cache_dir):
    """Indexed by the CLI into each store: the contribution page plus two days of other debates."""
    if request.param == "embedded":
        target = StoreUnderTest("embedded", index_dir=tmp_path_factory.mktemp("cli") / "index")
    else:
        target = StoreUnderTest("postgres", database_url=request.getfixturevalue("databases").create())
    run = hansard_search("index", *SMALL_SLICE, *target.cli_args, "--quiet", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    return target, run


def test_index_ends_with_a_summary(cli_index):
    target, run = cli_index
    assert "indexed 4 files" in run.stderr
    assert ("database postgresql://" if target.database_url else f"index {target.index_dir}") in run.stderr
    assert "passages" in run.stderr and "speeches" in run.stderr
    assert "members data: " in run.stderr and "members data: none" not in run.stderr


def test_search_puts_the_contribution_page_first_with_its_reference(cli_index, cache_dir):
    target, _ = cli_index
    run = hansard_search("search", HS2_QUERY, *target.cli_args, "-k", "3", "--json", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    top = body["results"][0]
    assert top["speech_id"].startswith("contribution/") and top["reference"] == "823 cc554-7GC"
    assert len(body["results"]) == 3
    # The same highlights as the API: sentences with exact offsets, and the query's words.
    assert top["highlighted_by"] == "words" and top["highlights"]
    for sentence in top["highlights"]:
        assert top["text"][sentence["start"]:sentence["end"]] == sentence["text"]
    assert "HS2" in [top["text"][a:b] for a, b in top["marks"]]


def test_search_prints_speaker_and_reference(cli_index, cache_dir):
    target, _ = cli_index
    run = hansard_search("search", "biofuels and deforestation", cache_dir=cache_dir, env={**target.env, "COLUMNS": "200"})
    assert run.returncode == 0, run.stderr
    first = run.stdout.split("\n2. ")[0]
    assert first.startswith("1. ")
    assert "HC Deb 27 October 2009 c" in first and "WH" in first
    assert "(Conservative)" in first or "(Labour)" in first or "(Liberal Democrat)" in first


def test_search_of_a_missing_index_fails_clearly(store, tmp_path, cache_dir, request):
    if store.kind == "embedded":
        missing = ["--index", tmp_path / "nowhere"]
    else:
        missing = ["--database-url", request.getfixturevalue("databases").url_of("nowhere_at_all")]
    run = hansard_search("search", "anything", *missing, cache_dir=cache_dir)
    assert run.returncode == 1
    assert "does not exist" in run.stderr and "Traceback" not in run.stderr


def test_search_of_an_empty_database_says_how_to_fill_it(cache_dir, databases):
    run = hansard_search("search", "anything", "--database-url", databases.create(), cache_dir=cache_dir)
    assert run.returncode == 1 and "holds no hansard-search store" in run.stderr and "migrate" in run.stderr


def test_a_database_url_that_is_not_postgresql_is_a_usage_error(cache_dir):
    run = hansard_search("search", "anything", "--database-url", "mysql://somewhere/db", cache_dir=cache_dir)
    assert run.returncode == 2 and "postgresql://" in run.stderr


def test_migrate_creates_the_schema_once_and_index_fills_it(cache_dir, databases, tmp_path):
    url = databases.create()
    first = hansard_search("migrate", "--database-url", url, cache_dir=cache_dir)
    assert first.returncode == 0, first.stderr
    assert "applied migration 1" in first.stderr and "schema version 3" in first.stderr
    again = hansard_search("migrate", "--database-url", url, cache_dir=cache_dir)
    assert again.returncode == 0 and "applied" not in again.stderr and "already up to date" in again.stderr
    empty = hansard_search("search", "anything", "--database-url", url, "--json", cache_dir=cache_dir)
    assert empty.returncode == 0 and json.loads(empty.stdout)["results"] == []
    # Small batches: several transactions, with progress; a rerun changes nothing.
    day = XML / "2009-10_wms"
    run = hansard_search("index", day, "--database-url", url, "--batch-size", "20", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    rerun = hansard_search("index", day, "--database-url", url, "--batch-size", "20", "--quiet", cache_dir=cache_dir)
    assert rerun.returncode == 0, rerun.stderr
    counts = [line for line in (run.stderr + rerun.stderr).splitlines() if line.startswith("database ")]
    assert len(counts) == 2 and counts[0] == counts[1], counts
    assert "0 embedded" in rerun.stderr  # every vector kept from the store


def test_migrate_refuses_a_store_made_with_another_model(cache_dir, databases):
    from indexer.store import connect

    url = databases.create()
    assert hansard_search("migrate", "--database-url", url, cache_dir=cache_dir).returncode == 0
    with connect(url) as conn:
        conn.execute("UPDATE hansard_store SET model_name = 'some-other-model'")
    run = hansard_search("index", XML / "2009-10_wms", "--database-url", url, "--quiet", cache_dir=cache_dir)
    assert run.returncode == 1 and "some-other-model" in run.stderr and "--rebuild" in run.stderr


def test_index_reports_skipped_files_and_exits_3(empty_store, tmp_path, cache_dir):
    folder = tmp_path / "mixed"
    folder.mkdir()
    shutil.copy(XML / "2009-10_lordswms" / "lordswms2009-10-26a.xml", folder)
    (folder / "empty.xml").write_text("")
    (folder / "broken.xml").write_text('<?xml version="1.0"?>\n<publicwhip>\n<speech id="x/1">\n<p>cut off')
    run = hansard_search("index", folder, *empty_store.cli_args, "--quiet", cache_dir=cache_dir)
    assert run.returncode == 3, run.stderr
    assert "empty.xml: empty file" in run.stderr
    assert "broken.xml:" in run.stderr and "malformed XML" in run.stderr
    search = hansard_search("search", "public protection", *empty_store.cli_args, "--json", cache_dir=cache_dir)
    assert json.loads(search.stdout)["results"][0]["speech_id"].startswith("uk.org.publicwhip/wms/2009-10-26a")


def test_serve_answers_over_http(cli_index, cache_dir):
    target, _ = cli_index
    port = free_port()
    command = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    server = subprocess.Popen(
        [command, "serve", *target.cli_args, "--port", str(port), "--allow-origin", "https://portal.example"],
        env={**os.environ, "HANSARD_CACHE_DIR": str(cache_dir)}, stdout=subprocess.PIPE, stderr=subprocess.STDOUT,
    )
    try:
        base = f"http://127.0.0.1:{port}"
        deadline = time.monotonic() + 120
        while True:
            try:
                if httpx.get(f"{base}/health", timeout=2).json()["status"] == "ok":
                    break
            except httpx.HTTPError:
                pass
            assert server.poll() is None, server.stdout.read().decode()
            assert time.monotonic() < deadline, "server did not come up"
            time.sleep(0.5)
        body = httpx.get(f"{base}/search", params={"q": HS2_QUERY, "k": 2}).json()
        assert body["results"][0]["reference"] == "823 cc554-7GC"
        assert httpx.get(f"{base}/search", params={"q": HS2_QUERY, "k": 500}).status_code == 422
        assert 'id="search-form"' in httpx.get(f"{base}/").text
        cors = httpx.get(f"{base}/search", params={"q": HS2_QUERY, "k": 1}, headers={"Origin": "https://portal.example"})
        assert cors.headers["access-control-allow-origin"] == "https://portal.example"
        assert "https://portal.example" in httpx.get(f"{base}/embed").headers["content-security-policy"]
    finally:
        server.terminate()
        server.wait(timeout=30)


def test_serve_refuses_a_malformed_allowed_origin(cli_index, cache_dir):
    target, _ = cli_index
    run = hansard_search("serve", *target.cli_args, "--allow-origin", "portal.example/path", cache_dir=cache_dir)
    assert run.returncode == 2
    assert "--allow-origin" in run.stderr and "portal.example/path" in run.stderr


def test_search_filters_modes_and_grouping_on_the_command_line(cli_index, cache_dir):
    target, _ = cli_index
    run = hansard_search("search", "statement", *target.cli_args, "--speaker", "ian lucas", "--mode", "keyword",
                         "--group-by", "speech", "--json", cache_dir=cache_dir)
    assert run.returncode == 0, run.stderr
    body = json.loads(run.stdout)
    assert body["results"] and {r["speaker"]["name"] for r in body["results"]} == {"Ian Lucas"}
    assert len({r["speech_id"] for r in body["results"]}) == len(body["results"])
    bad = hansard_search("search", "statement", *target.cli_args, "--mode", "magic", cache_dir=cache_dir)
    assert bad.returncode == 2 and "--mode must be one of" in bad.stderr


def test_rebuild_starts_the_database_afresh(cache_dir, databases):
    url = databases.create()
    first = hansard_search("index", XML / "2009-10_wms", "--database-url", url, "--quiet", cache_dir=cache_dir)
    assert first.returncode == 0, first.stderr
    rebuilt = hansard_search("index", XML / "2009-10_lordswms", "--database-url", url, "--rebuild", "--quiet",
                             cache_dir=cache_dir)
    assert rebuilt.returncode == 0, rebuilt.stderr
    from indexer.store.postgres.reading import PostgresStore

    store = PostgresStore(url)
    houses = {row[0] for row in store._rows("SELECT DISTINCT house FROM hansard_passages")}
    assert houses == {"lords"} and store.generation >= 1
    store.close()

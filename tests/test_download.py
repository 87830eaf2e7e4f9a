"""`hansard-search download`, against a real HTTP server laid out like TheyWorkForYou's scrapedxml.

The server serves the shared data's folders under the site's folder names,
writes Apache-style directory listings, honours Range requests, and can be
told to misbehave: answer a status a few times, cut a body off mid-way,
ignore Range. Nothing on the HTTP side is mocked.
"""

from __future__ import annotations

import inspect
import os
import shutil
import socket
import subprocess
import sys
from datetime import date, datetime, timezone
from pathlib import Path

import pytest

from fixtures import PREFIX, XML, FakeTheyWorkForYou, fake_theyworkforyou
from indexer.sources.download import (
    DEFAULT_BASE_URL,
    Fetcher,
    RemoteFile,
    UsageError,
    download_files,
    latest_versions,
    older_versions_on_disk,
    parse_listing,
    parse_remote_file,
    part_path,
    plan_downloads,
    resolve_sections,
    retry_delay,
)

OLDER_DEBATES = b'<?xml version="1.0" encoding="ISO-8859-1"?>\n<publicwhip latest="no">an older version</publicwhip>\n'


@pytest.fixture
def site():
    """A fresh server per test: the shared data under the site's layout, plus a stray text file."""
    with fake_theyworkforyou() as fake:
        yield fake


def fetch(site: FakeTheyWorkForYou, dest: Path, house: str, sections: list[str], first: str, last: str, **options):
    """One run of the download, as the command does it, without pauses."""
    options = {"delay": 0.0, "retries": 2, "backoff": 0.0, **options}
    with Fetcher(**options) as fetcher:
        plan = plan_downloads(fetcher, site.base_url, resolve_sections(house, sections), date.fromisoformat(first),
                              date.fromisoformat(last))
        return plan, download_files(fetcher, site.base_url, plan.files, dest)


def files_under(dest: Path) -> list[str]:
    return sorted(str(p.relative_to(dest)) for p in dest.rglob("*") if p.is_file())


# --- choosing what to fetch -------------------------------------------------------------------------


def test_sections_map_to_the_sites_folders():
    assert resolve_sections("commons", []) == ["debates", "westminhall", "wms", "wrans", "standing"]
    assert resolve_sections("lords", []) == ["lordspages", "lordswms", "lordswrans"]
    assert resolve_sections("lords", ["debates,wms", "wrans", "debates"]) == ["lordspages", "lordswms", "lordswrans"]
    assert resolve_sections("Commons", ["Westminhall"]) == ["westminhall"]
    assert resolve_sections("lords", ["lordspages"]) == ["lordspages"]  # the site's own name works too


@pytest.mark.parametrize("house, section, message", [
    ("lords", "westminhall", "--section 'westminhall' is not a section of the lords: choose from debates, wms, wrans"),
    ("commons", "lordswms", "choose from debates, westminhall, wms, wrans, standing"),
    ("parliament", "debates", "--house must be one of commons, lords"),
])
def test_a_section_the_house_does_not_have_is_refused_with_the_choices(house, section, message):
    with pytest.raises(UsageError, match=message):
        resolve_sections(house, [section])


def test_a_listing_yields_the_file_names_and_nothing_else():
    html = """<html><body><table>
      <tr><th><a href="?C=N;O=D">Name</a></th><th><a href="?C=S;O=A">Size</a></th></tr>
      <tr><td><a href="/pwdata/scrapedxml/">Parent Directory</a></td></tr>
      <tr><td><a href="old/">old/</a></td></tr>
      <tr><td><a href="debates2009-10-26a.xml">debates2009-10-26a.xml</a></td></tr>
      <tr><td><a href=debates2009-10-26b.xml>unquoted</a></td></tr>
      <tr><td><a href="/pwdata/scrapedxml/debates/debates2009-10-27d.xml#top">absolute</a></td></tr>
      <tr><td><a href="changedates%20list.txt">changedates list.txt</a></td></tr>
    </table></body></html>"""
    assert parse_listing(html) == ["debates2009-10-26a.xml", "debates2009-10-26b.xml", "debates2009-10-27d.xml",
                                   "changedates list.txt"]
    assert parse_listing("") == []


def test_file_names_give_the_sitting_and_version():
    standing = parse_remote_file("standing", "standing2009-10-20_CHILDPOV_05-0_2009-10-27a.xml")
    assert standing == RemoteFile(day=date(2009, 10, 27), folder="standing",
                                  name="standing2009-10-20_CHILDPOV_05-0_2009-10-27a.xml",
                                  key="standing2009-10-20_CHILDPOV_05-0_2009-10-27", version="a")
    assert parse_remote_file("lordspages", "daylord2022-09-10d.xml").version == "d"
    for name in ("changedates.txt", "debates2009-10-26.xml", "debates2009-13-01a.xml", "../debates2009-10-26a.xml",
                 ".debates2009-10-26a.xml.part", "debates2009-10-26A.xml"):
        assert parse_remote_file("debates", name) is None, name


def test_latest_version_of_each_sitting_within_the_dates():
    names = ["debates2009-10-26a.xml", "debates2009-10-26c.xml", "debates2009-10-26b.xml", "debates2009-10-27a.xml",
             "debates2009-10-28a.xml", "standing2009-10-20_X_05-0_2009-10-27a.xml",
             "standing2009-10-20_X_06-0_2009-10-27a.xml", "standing2009-10-20_X_06-0_2009-10-27b.xml",
             "standing2009-10-26_Y_01-0_2009-10-28a.xml"]
    files = [parse_remote_file("standing" if n.startswith("standing") else "debates", n) for n in names]
    chosen = latest_versions(files, date(2009, 10, 26), date(2009, 10, 27))
    assert [f.name for f in chosen] == ["debates2009-10-26c.xml", "debates2009-10-27a.xml",
                                        "standing2009-10-20_X_05-0_2009-10-27a.xml",
                                        "standing2009-10-20_X_06-0_2009-10-27b.xml"]
    # A committee sitting counts by its own (last) date, not the committee's first.
    assert latest_versions(files, date(2009, 10, 20), date(2009, 10, 21)) == []


def test_retry_delay_doubles_and_honours_retry_after():
    assert [retry_delay(n, None, 2.0) for n in range(4)] == [2.0, 4.0, 8.0, 16.0]
    assert retry_delay(10, None, 2.0) == 60.0  # capped
    assert retry_delay(0, "7", 2.0) == 7.0
    assert retry_delay(0, "86400", 2.0) == 300.0  # honoured, but not for a day
    now = datetime(2024, 1, 1, 12, 0, 0, tzinfo=timezone.utc)
    assert retry_delay(0, "Mon, 01 Jan 2024 12:00:30 GMT", 2.0, now=now) == 30.0
    assert retry_delay(0, "Mon, 01 Jan 2024 11:00:00 GMT", 2.0, now=now) == 0.0
    assert retry_delay(1, "soon", 2.0) == 4.0  # unreadable: plain back-off


def test_older_versions_on_disk_include_their_partial_files(tmp_path):
    for name in ("debates2009-10-26a.xml", ".debates2009-10-26b.xml.part", "debates2009-10-26c.xml",
                 "debates2009-10-27a.xml", "notes.txt"):
        (tmp_path / name).write_text("x")
    latest = parse_remote_file("debates", "debates2009-10-26c.xml")
    assert [p.name for p in older_versions_on_disk(tmp_path, latest)] == [".debates2009-10-26b.xml.part",
                                                                         "debates2009-10-26a.xml"]


def test_the_commands_default_base_url_is_the_modules():
    from service import cli

    assert inspect.signature(cli.download).parameters["base_url"].default == DEFAULT_BASE_URL


# --- fetching from the server -----------------------------------------------------------------------


def test_only_the_latest_version_of_each_day_is_fetched_byte_for_byte(site, tmp_path):
    site.add("debates/debates2009-10-26a.xml", OLDER_DEBATES)
    plan, summary = fetch(site, tmp_path, "commons", ["debates"], "2009-10-26", "2009-10-27")
    assert files_under(tmp_path) == ["debates/debates2009-10-26b.xml", "debates/debates2009-10-27d.xml"]
    for name in ("debates2009-10-26b.xml", "debates2009-10-27d.xml"):
        assert (tmp_path / "debates" / name).read_bytes() == (XML / "2009-10_debates" / name).read_bytes()
    assert sorted(site.file_gets()) == ["debates/debates2009-10-26b.xml", "debates/debates2009-10-27d.xml"]
    assert len(summary.downloaded) == 2 and not summary.failed and not summary.present and not plan.failed_listings
    assert all(r.user_agent.startswith("hansard-search/") for r in site.requests)


@pytest.mark.parametrize("house, sections, first, last, expected", [
    ("commons", ["debates"], "2016-05-01", "2016-05-31",
     ["debates/debates2016-05-09b.xml", "debates/debates2016-05-10a.xml", "debates/debates2016-05-11b.xml",
      "debates/debates2016-05-12a.xml"]),
    ("lords", ["debates"], "2022-09-05", "2022-09-07",
     ["lordspages/daylord2022-09-05a.xml", "lordspages/daylord2022-09-06a.xml", "lordspages/daylord2022-09-07b.xml"]),
    ("commons", ["standing,westminhall"], "2009-10-27", "2009-10-27",
     ["standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.xml",
      "standing/standing2009-10-20_CHILDPOV_06-0_2009-10-27a.xml", "westminhall/westminster2009-10-27a.xml"]),
    ("lords", [], "2009-10-26", "2009-10-26",
     ["lordspages/daylord2009-10-26a.xml", "lordswms/lordswms2009-10-26a.xml", "lordswrans/lordswrans2009-10-26a.xml"]),
])
def test_the_dates_and_sections_choose_the_files(site, tmp_path, house, sections, first, last, expected):
    _, summary = fetch(site, tmp_path, house, sections, first, last)
    assert files_under(tmp_path) == expected
    assert sorted(site.file_gets()) == expected and not summary.failed


def test_an_interrupted_run_is_resumed_with_a_range_request(site, tmp_path):
    westminhall = "westminhall/westminster2009-10-27a.xml"
    whole = site.content(westminhall)
    half = len(whole) // 2
    site.cut_after[PREFIX + westminhall] = half
    _, first = fetch(site, tmp_path, "commons", ["westminhall", "wms"], "2009-10-26", "2009-10-27", retries=0)
    assert [f.path for f in first.downloaded] == ["wms/ministerial2009-10-26c.xml", "wms/ministerial2009-10-27a.xml"]
    assert len(first.failed) == 1 and first.failed[0].startswith(westminhall + ": RemoteProtocolError")
    target = tmp_path / westminhall
    assert not target.exists() and part_path(target).stat().st_size == half

    site.requests.clear()
    _, second = fetch(site, tmp_path, "commons", ["westminhall", "wms"], "2009-10-26", "2009-10-27", retries=0)
    assert target.read_bytes() == whole and not part_path(target).exists()
    assert [r.range for r in site.gets(westminhall)] == [f"bytes={half}-"]
    assert second.bytes_received == len(whole) - half
    assert site.file_gets() == [westminhall]  # the complete files are not asked for again
    assert [f.path for f in second.present] == ["wms/ministerial2009-10-26c.xml", "wms/ministerial2009-10-27a.xml"]
    assert [f.path for f in second.downloaded] == [westminhall] and not second.failed


def test_a_connection_cut_mid_file_is_retried_from_where_it_stopped(site, tmp_path):
    wms = "wms/ministerial2009-10-26c.xml"
    site.cut_after[PREFIX + wms] = 1000
    _, summary = fetch(site, tmp_path, "commons", ["wms"], "2009-10-26", "2009-10-26", retries=1)
    assert (tmp_path / wms).read_bytes() == site.content(wms)
    assert [r.range for r in site.gets(wms)] == [None, "bytes=1000-"]
    assert [f.path for f in summary.downloaded] == [wms]


def test_a_server_that_ignores_range_sends_the_whole_file_again(site, tmp_path):
    wms = "wms/ministerial2009-10-26c.xml"
    site.ranges = False
    part = part_path(tmp_path / wms)
    part.parent.mkdir(parents=True)
    part.write_bytes(b"stale bytes that the server will not continue")
    _, summary = fetch(site, tmp_path, "commons", ["wms"], "2009-10-26", "2009-10-26", retries=0)
    assert (tmp_path / wms).read_bytes() == site.content(wms) and not part.exists()
    assert len(site.gets(wms)) == 1 and summary.bytes_received == len(site.content(wms))


def test_a_partial_file_longer_than_the_file_is_fetched_afresh(site, tmp_path):
    wms = "wms/ministerial2009-10-26c.xml"
    part = part_path(tmp_path / wms)
    part.parent.mkdir(parents=True)
    too_long = site.content(wms) + b"more than there is"
    part.write_bytes(too_long)
    _, summary = fetch(site, tmp_path, "commons", ["wms"], "2009-10-26", "2009-10-26", retries=0)
    assert (tmp_path / wms).read_bytes() == site.content(wms)
    assert [r.range for r in site.gets(wms)] == [f"bytes={len(too_long)}-", None]  # 416, then the whole file
    assert not summary.failed  # a 416 is no failure: it costs no retry


def test_a_503_is_retried_with_back_off_until_it_passes(site, tmp_path):
    wms = "wms/ministerial2009-10-27a.xml"
    site.statuses[PREFIX + wms] = [503, 500]
    pauses: list[float] = []
    _, summary = fetch(site, tmp_path, "commons", ["wms"], "2009-10-27", "2009-10-27", retries=4, backoff=1.0,
                       sleep=pauses.append)
    assert (tmp_path / wms).read_bytes() == site.content(wms)
    assert len(site.gets(wms)) == 3
    assert pauses == [0.0, 2.0]  # the 503 said Retry-After: 0; the 500 said nothing: back-off, doubled once
    assert [f.path for f in summary.downloaded] == [wms]


def test_requests_are_spaced_by_the_delay(site, tmp_path):
    pauses: list[float] = []
    fetch(site, tmp_path, "commons", ["wms"], "2009-10-26", "2009-10-27", delay=1.5, sleep=pauses.append,
          clock=lambda: 100.0)  # a clock that stands still: every request waits the full delay
    assert len(site.requests) == 3 and pauses == [1.5, 1.5]


def test_files_that_keep_failing_are_reported_and_the_rest_fetched(site, tmp_path):
    site.add("wrans/answers2009-10-25a.xml", b"gone")
    site.listed_only.add(PREFIX + "wrans/answers2009-10-25a.xml")
    site.statuses[PREFIX + "wrans/answers2009-10-26f.xml"] = [500] * 10
    _, summary = fetch(site, tmp_path, "commons", ["wrans"], "2009-10-25", "2009-10-27", retries=2)
    assert summary.failed == ["wrans/answers2009-10-25a.xml: HTTP 404",
                              "wrans/answers2009-10-26f.xml: HTTP 500 (gave up after 3 tries)"]
    assert len(site.gets("wrans/answers2009-10-25a.xml")) == 1  # a 404 is not retried
    assert len(site.gets("wrans/answers2009-10-26f.xml")) == 3
    assert files_under(tmp_path) == ["wrans/answers2009-10-27c.xml"]
    assert (tmp_path / "wrans/answers2009-10-27c.xml").read_bytes() == site.content("wrans/answers2009-10-27c.xml")


def test_a_later_version_replaces_the_earlier_one_on_disk(site, tmp_path):
    (tmp_path / "debates").mkdir()
    (tmp_path / "debates" / "debates2009-10-26a.xml").write_bytes(OLDER_DEBATES)
    (tmp_path / "debates" / ".debates2009-10-26a.xml.part").write_bytes(OLDER_DEBATES[:10])
    _, summary = fetch(site, tmp_path, "commons", ["debates"], "2009-10-26", "2009-10-26")
    assert files_under(tmp_path) == ["debates/debates2009-10-26b.xml"]
    assert sorted(p.name for p in summary.removed) == [".debates2009-10-26a.xml.part", "debates2009-10-26a.xml"]


def test_a_download_indexes_cleanly(site, tmp_path, encoder, members):
    from indexer.build import build_index
    from indexer.sources.readers import discover

    dest = tmp_path / "xml"
    site.add("lordswms/lordswms2009-10-27b.xml", site.content("lordswms/lordswms2009-10-27a.xml"))
    site.cut_after[PREFIX + "lordswms/lordswms2009-10-27b.xml"] = 500
    fetch(site, dest, "lords", ["wms"], "2009-10-26", "2009-10-27", retries=0)  # leaves a partial file behind
    assert part_path(dest / "lordswms" / "lordswms2009-10-27b.xml").exists()  # hidden: the index passes over it

    assert [p.name for p in discover([dest], lambda problem: pytest.fail(str(problem)))] == ["lordswms2009-10-26a.xml"]
    summary = build_index([dest], tmp_path / "index", encoder, members)
    assert summary.files_read == 1 and not summary.problems and not summary.superseded and summary.passages > 0


# --- the command ------------------------------------------------------------------------------------


def hansard_search(*args, env=None):
    command = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    environment = {**os.environ, "COLUMNS": "200", **(env or {})}
    return subprocess.run([command, *map(str, args)], capture_output=True, text=True, env=environment, timeout=60)


def test_the_command_downloads_reports_and_exits_3_when_a_file_failed(site, tmp_path):
    site.listed_only.add(PREFIX + "wms/ministerial2009-10-26c.xml")
    run = hansard_search("download", "--house", "commons", "--section", "wms", "--from", "2009-10-26",
                         "--to", "2009-10-27", "--dest", tmp_path, "--delay", "0", "--retries", "0",
                         env={"HANSARD_DOWNLOAD_URL": site.base_url})
    assert run.returncode == 3, run.stderr
    assert "downloaded 1 files" in run.stderr and "failed 1" in run.stderr
    assert "wms/ministerial2009-10-26c.xml: HTTP 404" in run.stderr
    assert files_under(tmp_path) == ["wms/ministerial2009-10-27a.xml"]

    site.listed_only.clear()
    again = hansard_search("download", "--house", "commons", "--section", "wms", "--from", "2009-10-26",
                           "--to", "2009-10-27", "--dest", tmp_path, "--delay", "0", "--base-url", site.base_url)
    assert again.returncode == 0, again.stderr
    assert "downloaded 1 files" in again.stderr and "skipped 1 already in" in again.stderr and "failed 0" in again.stderr


def test_the_command_fails_when_no_listing_can_be_read(tmp_path):
    with socket.socket() as unused:  # a port with nothing listening
        unused.bind(("127.0.0.1", 0))
        port = unused.getsockname()[1]
    run = hansard_search("download", "--house", "lords", "--from", "2009-10-26", "--dest", tmp_path, "--delay", "0",
                         "--retries", "0", "--base-url", f"http://127.0.0.1:{port}/scrapedxml/")
    assert run.returncode == 1, run.stderr
    assert "could not read any folder listing" in run.stderr and "lordspages/: ConnectError" in run.stderr


@pytest.mark.parametrize("args, message", [
    (["--house", "lords", "--section", "westminhall", "--from", "2009-10-26"],
     "--section 'westminhall' is not a section of the lords: choose from debates, wms, wrans"),
    (["--house", "commons", "--from", "2009-10-28", "--to", "2009-10-27"], "--from 2009-10-28 is after --to 2009-10-27"),
    (["--house", "commons", "--from", "26/10/2009"], "--from must be a date as YYYY-MM-DD"),
    (["--house", "senate", "--from", "2009-10-26"], "--house must be one of commons, lords"),
    (["--house", "commons", "--from", "2009-10-26", "--base-url", "ftp://example.org/"], "--base-url must be"),
    (["--house", "commons"], "--from"),
])
def test_bad_usage_exits_2_naming_the_option(tmp_path, args, message):
    run = hansard_search("download", *args, "--dest", tmp_path / "dest")
    assert run.returncode == 2, run.stderr
    assert message in run.stderr
    assert not (tmp_path / "dest").exists()

"""Fetch ParlParse XML from TheyWorkForYou's public data, politely and resumably.

TheyWorkForYou publishes every collection as a plain directory listing under
https://www.theyworkforyou.com/pwdata/scrapedxml/<folder>/, one file per
version of a sitting day: `debates2009-10-26a.xml`, `debates2009-10-26b.xml`,
... with the latest version the highest letter. Public Bill Committee files
name the committee and its sitting as well
(`standing2009-10-20_CHILDPOV_05-0_2009-10-27a.xml`: the sitting date is the
last date in the name).

The pure functions (sections, listing parsing, choice of versions, back-off)
decide what to fetch; `Fetcher` does the HTTP, one request at a time, with a
minimum delay between requests and retries with exponential back-off; the
download functions put each file in `DEST/<folder>/<name>`, the site's own
layout, which `hansard-search index DEST` reads recursively.
"""

from __future__ import annotations

import email.utils
import importlib.metadata
import os
import posixpath
import re
import time
from dataclasses import dataclass, field
from datetime import date, datetime, timezone
from pathlib import Path
from typing import Callable, Iterable, Optional, TypeVar
from urllib.parse import unquote, urlsplit

import httpx
import lxml.html
from lxml.etree import ParserError

DEFAULT_BASE_URL = "https://www.theyworkforyou.com/pwdata/scrapedxml/"

# Section names as the command takes them, per house, and the site's folder
# for each. `debates` is the main chamber in both houses, so the one name
# works for either.
SECTIONS: dict[str, dict[str, str]] = {
    "commons": {
        "debates": "debates",
        "westminhall": "westminhall",
        "wms": "wms",
        "wrans": "wrans",
        "standing": "standing",
    },
    "lords": {
        "debates": "lordspages",
        "wms": "lordswms",
        "wrans": "lordswrans",
    },
}

# <collection><date><letter>.xml; for standing committees the collection part
# holds the committee and its first date, so the sitting date is the last one.
# Letters only and no dots or slashes: the name becomes a local path.
_VERSIONED_NAME = re.compile(r"^(?P<key>[A-Za-z][\w-]*?(?P<day>\d{4}-\d{2}-\d{2}))(?P<version>[a-z])\.xml$")

MAX_BACKOFF_S = 60.0
# A server may ask for a long pause; we honour it, but not beyond this, so a
# bad header cannot stall a run for hours.
MAX_RETRY_AFTER_S = 300.0
RETRYABLE_STATUS = frozenset({429}) | frozenset(range(500, 600))


T = TypeVar("T")


class UsageError(ValueError):
    """Options that do not make sense together; the message names the option."""


class FetchError(Exception):
    """A URL that could not be fetched, after any retries; the message says why."""


@dataclass(frozen=True, order=True)
class RemoteFile:
    """One version of one sitting's XML on the site."""

    day: date
    folder: str
    name: str
    key: str  # the name without its version letter: one sitting day (per committee sitting for standing)
    version: str

    @property
    def path(self) -> str:
        """Where it lives under the base URL, and under DEST."""
        return f"{self.folder}/{self.name}"


# --- deciding what to fetch (pure) -----------------------------------------------------------------


def resolve_sections(house: str, sections: Iterable[str]) -> list[str]:
    """Site folders for `--house` and `--section` values (repeatable, comma-separated; none: all).

    A section may also be given as the site's folder name (`lordspages`).
    """
    house = house.strip().lower()
    if house not in SECTIONS:
        raise UsageError(f"--house must be one of {', '.join(SECTIONS)}, not {house!r}")
    known = SECTIONS[house]
    names = [name.strip().lower() for value in sections for name in value.split(",") if name.strip()]
    if not names:
        return list(known.values())
    folders: list[str] = []
    for name in names:
        folder = known.get(name) or (name if name in known.values() else None)
        if folder is None:
            raise UsageError(f"--section {name!r} is not a section of the {house}: choose from {', '.join(known)}")
        if folder not in folders:
            folders.append(folder)
    return folders


def parse_listing(html: str) -> list[str]:
    """File names linked from a directory listing (Apache's, nginx's, or any page of links)."""
    try:
        document = lxml.html.document_fromstring(html)
    except (ParserError, ValueError):  # an empty or non-HTML body lists nothing
        return []
    names: list[str] = []
    for href in document.xpath("//a/@href"):
        path = urlsplit(str(href)).path  # drops Apache's sort links (?C=N;O=D) and fragments
        if not path or path.endswith("/"):
            continue  # the parent folder, subfolders
        name = unquote(posixpath.basename(path))
        if name not in names:
            names.append(name)
    return names


def parse_remote_file(folder: str, name: str) -> Optional[RemoteFile]:
    """The sitting and version a file name stands for, or None for anything else in the folder."""
    m = _VERSIONED_NAME.match(name)
    if not m:
        return None
    try:
        day = date.fromisoformat(m["day"])
    except ValueError:
        return None
    return RemoteFile(day=day, folder=folder, name=name, key=m["key"], version=m["version"])


def latest_versions(files: Iterable[RemoteFile], date_from: date, date_to: date) -> list[RemoteFile]:
    """The highest-lettered version of each sitting between the dates (inclusive), by date then name."""
    latest: dict[tuple[str, str], RemoteFile] = {}
    for f in files:
        if not date_from <= f.day <= date_to:
            continue
        seen = latest.get((f.folder, f.key))
        if seen is None or f.version > seen.version:
            latest[(f.folder, f.key)] = f
    return sorted(latest.values())


def older_versions_on_disk(folder: Path, latest: RemoteFile) -> list[Path]:
    """Files in `folder` holding an earlier version of `latest`'s sitting, finished or partial."""
    found: list[Path] = []
    if not folder.is_dir():
        return found
    for path in sorted(folder.iterdir()):
        name = path.name
        if name.startswith(".") and name.endswith(".part"):
            name = name[1 : -len(".part")]
        other = parse_remote_file(latest.folder, name)
        if other is not None and other.key == latest.key and other.version < latest.version:
            found.append(path)
    return found


def retry_delay(attempt: int, retry_after: Optional[str], backoff: float, now: Optional[datetime] = None) -> float:
    """Seconds to wait before try `attempt + 1` (from 0): the server's Retry-After if it gave one,
    else `backoff` doubled for each earlier retry, capped."""
    if retry_after:
        retry_after = retry_after.strip()
        if retry_after.isdigit():
            return min(float(retry_after), MAX_RETRY_AFTER_S)
        try:
            when = email.utils.parsedate_to_datetime(retry_after)
        except (TypeError, ValueError):
            when = None
        if when is not None:
            if when.tzinfo is None:
                when = when.replace(tzinfo=timezone.utc)
            seconds = (when - (now or datetime.now(timezone.utc))).total_seconds()
            return min(max(seconds, 0.0), MAX_RETRY_AFTER_S)
    return min(backoff * 2**attempt, MAX_BACKOFF_S)


def part_path(target: Path) -> Path:
    """Where `target` is written until complete. Hidden, so `hansard-search index DEST` passes over
    a half-fetched file instead of reporting it as broken XML."""
    return target.with_name(f".{target.name}.part")


def user_agent() -> str:
    try:
        version = importlib.metadata.version("hansard-search")
    except importlib.metadata.PackageNotFoundError:
        version = "dev"
    return f"hansard-search/{version} (semantic search over Hansard; fetches ParlParse XML, one request at a time)"


# --- HTTP ------------------------------------------------------------------------------------------


class _Retry(Exception):
    """This try failed in a way that may pass: a dropped connection, a timeout, 429 or 5xx."""

    def __init__(self, reason: str, retry_after: Optional[str] = None):
        super().__init__(reason)
        self.retry_after = retry_after


class _StartAgain(Exception):
    """The partial file cannot be continued (416, or a part from elsewhere): fetch it whole."""


class Fetcher:
    """One HTTP client, one request at a time: at least `delay` seconds between the starts of
    requests, and up to `retries` more tries of a request that failed in a way that may pass."""

    def __init__(
        self,
        client: Optional[httpx.Client] = None,
        *,
        delay: float = 1.0,
        retries: int = 4,
        backoff: float = 2.0,
        timeout: float = 30.0,
        sleep: Callable[[float], None] = time.sleep,
        clock: Callable[[], float] = time.monotonic,
    ):
        self.client = client or httpx.Client(
            headers={"User-Agent": user_agent()},
            timeout=httpx.Timeout(timeout, connect=min(timeout, 10.0)),
            follow_redirects=True,
        )
        self.delay = delay
        self.retries = retries
        self.backoff = backoff
        self.sleep = sleep
        self.clock = clock
        self._last_start: Optional[float] = None

    def __enter__(self) -> "Fetcher":
        return self

    def __exit__(self, *exc: object) -> None:
        self.client.close()

    def _throttle(self) -> None:
        if self._last_start is not None:
            wait = self.delay - (self.clock() - self._last_start)
            if wait > 0:
                self.sleep(wait)
        self._last_start = self.clock()

    def _with_retries(self, attempt: Callable[[], T]) -> T:
        for tries in range(self.retries + 1):
            self._throttle()
            try:
                return attempt()
            except httpx.TransportError as e:  # refused, reset, timed out, cut off mid-body
                failure = _Retry(f"{type(e).__name__}: {e}" if str(e) else type(e).__name__)
            except _Retry as e:
                failure = e
            if tries < self.retries:
                self.sleep(retry_delay(tries, failure.retry_after, self.backoff))
        plural = "try" if self.retries == 0 else "tries"
        raise FetchError(f"{failure} (gave up after {self.retries + 1} {plural})")

    def get_text(self, url: str) -> str:
        """The body of a page, such as a directory listing."""

        def attempt() -> str:
            response = self.client.get(url)
            _raise_for_status(response)
            return response.text

        return self._with_retries(attempt)

    def fetch_to(self, url: str, part: Path) -> int:
        """Write `url`'s body to `part`, carrying on from what `part` already holds when the server
        takes a Range request (206), else starting again. Returns the bytes received.

        A name on the site is one version of one sitting day, and a correction gets a new
        letter, so what a leftover `part` holds is the start of the same file.
        """
        received = 0

        def request() -> None:
            nonlocal received
            offset = part.stat().st_size if part.exists() else 0
            # identity: byte ranges and Content-Length must count the file's own bytes.
            headers = {"Accept-Encoding": "identity"}
            if offset:
                headers["Range"] = f"bytes={offset}-"
            with self.client.stream("GET", url, headers=headers) as response:
                if response.status_code == 416 and offset:
                    raise _StartAgain()  # what we have is no prefix of the file after all
                _raise_for_status(response)
                expected: Optional[int] = None
                mode = "wb"  # a 200 to a Range request: the server sends the whole file
                if response.status_code == 206:
                    start, total = _content_range(response.headers.get("content-range", ""))
                    if start != offset:
                        if offset:
                            raise _StartAgain()
                        raise _Retry(f"a part from byte {start} that was not asked for")
                    mode, expected = "ab", total
                elif response.headers.get("content-length", "").isdigit():
                    expected = int(response.headers["content-length"])
                encoded = response.headers.get("content-encoding", "identity").lower() != "identity"
                part.parent.mkdir(parents=True, exist_ok=True)
                try:
                    with part.open(mode) as out:
                        for chunk in response.iter_bytes():  # as it comes: a cut loses nothing received
                            out.write(chunk)
                            received += len(chunk)
                except httpx.TransportError:
                    if encoded:  # decoded bytes are no prefix of the file: nothing to resume from
                        part.unlink(missing_ok=True)
                    raise
                size = part.stat().st_size
                if expected is not None and not encoded and size != expected:
                    raise _Retry(f"got {size} of {expected} bytes")

        def attempt() -> None:
            try:
                request()
            except _StartAgain:
                # Not a failure of the server's: start from byte 0 at once, without spending a retry.
                part.unlink(missing_ok=True)
                self._throttle()
                request()  # no Range now, so this cannot ask to start again

        self._with_retries(attempt)
        return received


def _raise_for_status(response: httpx.Response) -> None:
    status = response.status_code
    if status in RETRYABLE_STATUS:
        raise _Retry(f"HTTP {status}", response.headers.get("retry-after"))
    if status >= 400:
        raise FetchError(f"HTTP {status}")


def _content_range(value: str) -> tuple[Optional[int], Optional[int]]:
    """(first byte, total length) of a `Content-Range: bytes 100-199/200` header."""
    m = re.fullmatch(r"\s*bytes\s+(\d+)-\d+/(\d+|\*)\s*", value)
    if not m:
        return None, None
    return int(m[1]), (int(m[2]) if m[2] != "*" else None)


# --- the run ---------------------------------------------------------------------------------------


@dataclass
class Plan:
    """What to fetch, and the folders whose listing could not be read."""

    files: list[RemoteFile] = field(default_factory=list)
    failed_listings: list[str] = field(default_factory=list)  # "<folder URL>: reason"
    folders_listed: int = 0


@dataclass
class DownloadSummary:
    downloaded: list[RemoteFile] = field(default_factory=list)
    present: list[RemoteFile] = field(default_factory=list)  # complete in DEST already: not requested
    failed: list[str] = field(default_factory=list)  # "<folder>/<name>: reason"
    removed: list[Path] = field(default_factory=list)  # earlier versions replaced by a later one
    bytes_received: int = 0
    seconds: float = 0.0


def folder_url(base_url: str, folder: str) -> str:
    return f"{base_url.rstrip('/')}/{folder}/"


def plan_downloads(fetcher: Fetcher, base_url: str, folders: Iterable[str], date_from: date, date_to: date) -> Plan:
    """Read each folder's listing and choose the latest version of each sitting in the dates."""
    plan = Plan()
    for folder in folders:
        url = folder_url(base_url, folder)
        try:
            listing = fetcher.get_text(url)
        except FetchError as e:
            plan.failed_listings.append(f"{url}: {e}")
            continue
        plan.folders_listed += 1
        files = (parse_remote_file(folder, name) for name in parse_listing(listing))
        plan.files.extend(latest_versions((f for f in files if f is not None), date_from, date_to))
    return plan


def download_files(
    fetcher: Fetcher,
    base_url: str,
    files: list[RemoteFile],
    dest: Path,
    wrap: Callable[[list[RemoteFile]], Iterable[RemoteFile]] = iter,
) -> DownloadSummary:
    """Fetch each file not yet complete in DEST into `DEST/<folder>/<name>`; `wrap` may show progress."""
    summary = DownloadSummary()
    started = time.monotonic()
    for f in wrap(files):
        target = dest / f.folder / f.name
        # A file is renamed into place only once complete, so its presence is proof enough.
        if target.is_file():
            summary.present.append(f)
        else:
            part = part_path(target)
            try:
                summary.bytes_received += fetcher.fetch_to(folder_url(base_url, f.folder) + f.name, part)
                os.replace(part, target)
            except FetchError as e:
                summary.failed.append(f"{f.path}: {e}")
                continue
            except OSError as e:  # DEST not writable, disk full: this file fails, the run goes on
                summary.failed.append(f"{f.path}: {e.strerror or e}")
                continue
            summary.downloaded.append(f)
        # Earlier versions of the day go once the latest is in place: the index would pass over
        # them anyway, but leaving them means stale copies on disk and "left out" noise on every
        # index run. While the latest is missing they stay, as the best copy there is.
        for path in older_versions_on_disk(target.parent, f):
            try:
                path.unlink()
                summary.removed.append(path)
            except OSError:
                pass
    summary.seconds = time.monotonic() - started
    return summary

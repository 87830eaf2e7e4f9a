"""Find source files, tell their format from their content, read speeches.

Formats: ParlParse XML, "UK Parliament / Open data" contribution-page text,
JSON Lines of `Speech` records, CSV. The file name is never trusted for the
format: a `.txt` may hold XML and an export may have no extension at all.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator

from indexer.errors import SourceError, SupersededFile
from indexer.members import MemberDirectory
from indexer.readers.contribution import looks_like_contribution_page, read_contribution_page
from indexer.readers.csvfile import looks_like_csv, read_csv
from indexer.readers.jsonl import looks_like_jsonl, read_jsonl
from indexer.readers.parlparse import latest_flag, looks_like_parlparse, read_parlparse
from indexer.records import Speech

HEAD_BYTES = 16 * 1024
# TheyWorkForYou names each version of a sitting day <collection><date><letter>.xml
_DAY_VERSION = re.compile(r"^(?P<day>.*\d{4}-\d{2}-\d{2})(?P<version>[a-z])\.xml$")


def discover(sources: Iterable[Path], report: Callable[[SourceError], None]) -> list[Path]:
    """Files named, and files under folders named, minus older versions of a day."""
    files: list[Path] = []
    for source in sources:
        source = Path(source)
        if source.is_dir():
            files.extend(p for p in sorted(source.rglob("*")) if p.is_file() and not _hidden(p, source))
        elif source.is_file():
            files.append(source)
        else:
            report(SourceError(source, "no such file or folder"))
    files = list(dict.fromkeys(files))
    superseded = _superseded_versions(files)
    for path in superseded:
        report(SupersededFile(path, "a later version of this sitting day is in the same folder"))
    return [p for p in files if p not in superseded]


def _hidden(path: Path, root: Path) -> bool:
    return any(part.startswith(".") for part in path.relative_to(root).parts)


def _superseded_versions(files: list[Path]) -> set[Path]:
    """Within one folder, keep the `latest="yes"` version of each day (else the last letter)."""
    days: dict[tuple[Path, str], list[Path]] = defaultdict(list)
    for path in files:
        m = _DAY_VERSION.match(path.name)
        if m:
            days[(path.parent, m["day"])].append(path)
    superseded: set[Path] = set()
    for versions in days.values():
        if len(versions) < 2:
            continue
        flagged = [p for p in versions if latest_flag(_head(p)) is True]
        keep = flagged[-1] if flagged else max(versions, key=lambda p: p.name)
        superseded.update(p for p in versions if p != keep)
    return superseded


def _head(path: Path) -> bytes:
    try:
        with path.open("rb") as f:
            return f.read(HEAD_BYTES)
    except OSError:
        return b""


def detect_format(head: bytes) -> str | None:
    """'parlparse', 'contribution', 'jsonl', 'csv', or None."""
    if looks_like_parlparse(head):
        return "parlparse"
    text = head.decode("utf-8-sig", errors="replace")
    if looks_like_contribution_page(text):
        return "contribution"
    if looks_like_jsonl(text):
        return "jsonl"
    if looks_like_csv(text):
        return "csv"
    return None


def read_source(path: Path, members: MemberDirectory, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    """Speeches of one file; raises SourceError when the file as a whole is unusable.

    `report` receives problems with single records (a bad JSONL line, a bad
    CSV row) that do not stop the rest of the file.
    """
    head = _head(path)
    if not head.strip():
        raise SourceError(path, "empty file")
    if b"\x00" in head:
        raise SourceError(path, "binary file (contains NUL bytes), not a text format")
    kind = detect_format(head)
    if kind is None:
        raise SourceError(path, "unrecognised format: not ParlParse XML, a contribution page, JSONL or CSV", line=1)
    if kind == "parlparse":
        yield from read_parlparse(path, members)
        return
    text = _decode(path)
    if kind == "contribution":
        yield from read_contribution_page(path, text)
    elif kind == "jsonl":
        yield from read_jsonl(path, text, report)
    else:
        yield from read_csv(path, text, report)


def _decode(path: Path) -> str:
    data = path.read_bytes()
    try:
        return data.decode("utf-8-sig")
    except UnicodeDecodeError:
        # Windows exports of Hansard text are common; cp1252 is what they use.
        try:
            return data.decode("cp1252")
        except UnicodeDecodeError as err:
            raise SourceError(path, f"not UTF-8 or Windows-1252 text (byte {err.start})") from err

"""Find source files, tell their format from their content, read speeches.

Formats: ParlParse XML, "UK Parliament / Open data" contribution-page text,
Parliament's own search records (Solr JSON), JSON Lines of `Speech` records,
CSV. The file name is never trusted for the
format: a `.txt` may hold XML and an export may have no extension at all.
"""

from __future__ import annotations

import re
from collections import defaultdict
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

from indexer.sources.errors import SourceError, SourceWarning, SupersededFile
from indexer.sources.members import MemberDirectory
from indexer.sources.readers.encoding import binary_kind, decode_head, decode_text
from indexer.sources.readers.contribution import looks_like_contribution_page, read_contribution_page
from indexer.sources.readers.csvfile import looks_like_csv, read_csv
from indexer.sources.readers.jsonl import looks_like_jsonl, read_jsonl
from indexer.sources.readers import contribution, search_records
from indexer.sources.readers.search_records import looks_like_search_records, read_search_records
from indexer.sources.readers.parlparse import latest_flag, looks_like_parlparse, read_parlparse
from indexer.sources.records import Speech

HEAD_BYTES = 16 * 1024
MB = 1024 * 1024
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
    # The same file named twice (a folder and a file in it, a link) is read once.
    unique: dict[Path, Path] = {}
    for path in files:
        unique.setdefault(_identity(path), path)
    files = list(unique.values())
    superseded = _superseded_versions(files)
    for path in superseded:
        report(SupersededFile(path, "a later version of this sitting day is in the same folder"))
    return [p for p in files if p not in superseded]


def _size(n: int) -> str:
    return f"{n / MB:,.0f} MB" if n >= 10 * MB else f"{n / MB:.1f} MB" if n >= MB else f"{n / 1024:,.0f} KB"


def _identity(path: Path) -> Path:
    try:
        return path.resolve()
    except OSError:
        return path


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
        flagged = [p for p in versions if latest_flag(_quiet_head(p)) is True]
        keep = flagged[-1] if flagged else max(versions, key=lambda p: p.name)
        superseded.update(p for p in versions if p != keep)
    return superseded


def _head(path: Path) -> bytes:
    with path.open("rb") as f:
        return f.read(HEAD_BYTES)


def _quiet_head(path: Path) -> str:
    try:
        return decode_head(_head(path))
    except OSError:
        return ""  # reported when the file itself is read


def detect_format(head: bytes | str) -> str | None:
    """'parlparse', 'contribution', 'search-records', 'jsonl', 'csv', or None, from the first bytes (or their text)."""
    text = decode_head(head) if isinstance(head, bytes) else head
    if looks_like_parlparse(text):
        return "parlparse"
    if looks_like_contribution_page(text):
        return "contribution"
    if looks_like_search_records(text):  # before JSONL: both start with "{"
        return "search-records"
    if looks_like_jsonl(text):
        return "jsonl"
    if looks_like_csv(text):
        return "csv"
    return None


def read_source(
    path: Path, members: MemberDirectory, report: Callable[[SourceError], None], max_bytes: Optional[int] = None
) -> Iterator[Speech]:
    """Speeches of one file; raises SourceError when the file as a whole is unusable.

    `report` receives problems with single records (a bad JSONL line, a bad
    CSV row) that do not stop the rest of the file, and `SourceWarning`s:
    the file is read, with a caveat (a guessed encoding, a missing field).
    A file over `max_bytes` is refused before anything of it is read.
    """
    size = path.stat().st_size
    if max_bytes is not None and size > max_bytes:
        raise SourceError(path, f"file too large: {_size(size)}, over the limit of {_size(max_bytes)} (raise it with --max-file-mb)")
    raw_head = _head(path)
    why = binary_kind(raw_head)
    if why is not None:
        raise SourceError(path, f"binary file ({why}), not a text format")
    head = decode_head(raw_head)
    if not head.strip():
        raise SourceError(path, "empty file")
    kind = detect_format(head)
    if kind is None:
        raise SourceError(path, "unrecognised format: not ParlParse XML, a contribution page, Parliament search records, JSONL or CSV", line=1)
    if kind == "search-records" and size > search_records.MAX_FILE_BYTES:
        # Parsed whole into memory: bounded whatever --max-file-mb says, before a byte more is read.
        raise SourceError(path, f"search records file too large: {_size(size)}, over the limit of {_size(search_records.MAX_FILE_BYTES)}")
    for speech in _speeches(path, kind, members, report):
        for note in speech.notes:  # what validation left out of the record (an unsafe URL)
            report(SourceWarning(path, note))
        yield speech


def _speeches(path: Path, kind: str, members: MemberDirectory, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    data = path.read_bytes()
    if kind == "parlparse":
        yield from read_parlparse(path, members, data, report)
        return
    text = decode_text(path, data, report)
    del data
    if kind == "contribution":
        yield from read_contribution_page(path, text, report)
    elif kind == "search-records":
        yield from read_search_records(path, text, report)
    elif kind == "jsonl":
        yield from read_jsonl(path, text, report)
    else:
        yield from read_csv(path, text, report)


# ---------------------------------------------------------------- merging sources of one run


def fill_from_records(speeches: list[Speech], on_fill: Optional[Callable[[Speech, Speech], None]] = None) -> list[Speech]:
    """The merge step of a run over several sources: contribution pages' missing speaker and date, from search records.

    A contribution page and a Parliament search record describe the same
    contribution when both hold, so that two contributions printed in one
    column are never confused:
    - the same house, volume, column series and first column (`823 cc554-7GC`
      on both: the house from the page's chamber, the record's from its uri);
    - the same start of text: the first 60 letters and digits of the words,
      case, spacing and punctuation aside (at least 20 of them on each side).
    Only what the page lacks is filled (its speaker when it names none, its
    date); its text, id, title and reference stay the page's. A page that two
    records fit equally is left as it is. `on_fill(page, record)` hears of each
    fill. Speeches other than pages pass through unchanged, in order.
    """
    records: dict[tuple, list[Speech]] = defaultdict(list)
    for speech in speeches:
        key = _contribution_key(speech)
        if key is not None and speech.id.startswith(search_records.ID_PREFIX):
            records[key].append(speech)
    if not records:
        return list(speeches)
    merged: list[Speech] = []
    for speech in speeches:
        if speech.id.startswith(contribution.ID_PREFIX) and (speech.speaker.name is None or speech.date is None):
            start = _text_start(speech)
            fits = [r for r in records.get(_contribution_key(speech), []) if start is not None and _text_start(r) == start]
            if len(fits) == 1:
                record = fits[0]
                update = {}
                if speech.speaker.name is None and record.speaker.name is not None:
                    update["speaker"] = record.speaker.model_copy()
                if speech.date is None and record.date is not None:
                    update["date"] = record.date
                if update:
                    speech = speech.model_copy(update=update)
                    if on_fill is not None:
                        on_fill(speech, record)
        merged.append(speech)
    return merged


_WORDS = re.compile(r"[^0-9a-z]+")
_TEXT_START_CHARS = 60


def _contribution_key(speech: Speech) -> Optional[tuple]:
    column = speech.column
    if speech.house is None or column.volume is None or column.start is None:
        return None
    return (speech.house, column.volume, column.suffix, column.start)


def _text_start(speech: Speech) -> Optional[str]:
    letters = _WORDS.sub("", " ".join(p.text for p in speech.paragraphs[:3]).lower())[:_TEXT_START_CHARS]
    return letters if len(letters) >= 20 else None

"""Speeches as CSV, one speech a row, columns found by their header names.

Covers the common research exports (ParlSpeech, the Louwerse COVID-19 set):
a text column is required; id, date, speaker, person id, party, house and
debate columns are used when present. Paragraphs are the text's lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
import itertools
from pathlib import Path
from typing import Callable, Iterator, Optional

from pydantic import ValidationError

from indexer.sources.errors import SourceError
from indexer.sources.vocabulary import party_name
from indexer.sources.records import Paragraph, Speaker, Speech

# Accepted header names for each field, first match wins.
COLUMNS = {
    "text": ("text", "speech", "body", "content"),
    "id": ("speech_id", "id", "speechnumber", "gid"),
    "date": ("date",),
    "speaker": ("speaker_name", "speaker", "speakername", "member"),
    "person_id": ("person_id", "speaker_id"),
    "party": ("speaker_party", "party"),
    "house": ("house", "chamber"),
    "debate": ("debate_subject", "agenda", "debate", "major_heading", "title"),
}


def looks_like_csv(head: str) -> bool:
    header = head.splitlines()[0] if head else ""
    try:
        names = {name.strip().lower() for name in next(csv.reader([header]))}
    except (csv.Error, StopIteration):
        return False
    return bool(names & set(COLUMNS["text"])) and len(names) > 1


MAX_BAD_ROWS = 100  # past this many malformed rows the file is not worth reading on


def read_csv(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    csv.field_size_limit(64 * 1024 * 1024)
    rows = _rows(path, text, report)
    header = next(rows, None)
    if header is None:
        return
    names = header[1]
    fields: dict[str, int] = {}
    for i, name in enumerate(names):
        fields.setdefault(name.strip().lower(), i)
    column = {key: next((fields[n] for n in names if n in fields), None) for key, names in COLUMNS.items()}
    for row_number, (line, cells) in enumerate(rows, start=1):
        try:
            speech = _speech(path, cells, row_number, column)
        except (ValueError, ValidationError) as err:
            report(SourceError(path, f"invalid row: {err}".splitlines()[0], line=line))
            continue
        if speech is None:
            report(SourceError(path, f"row {row_number} has no text (column {names[column['text']]!r} is empty); skipped", line=line))
            continue
        yield speech


def _rows(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[tuple[int, list[str]]]:
    """(first line, cells) of each row, parsed strictly; a malformed row is reported and reading resumes after its first line.

    Python's csv module, left lax, reads an unterminated quote as the start of
    a cell that runs on through every row after it. Strictly, it stops there:
    the row that opened the quote is reported, and parsing starts again on the
    next line, so the rows it would have swallowed are read as rows.
    """
    lines = io.StringIO(text, newline="").readlines()  # split at \n, \r\n and \r only, as csv does
    start, bad = 0, 0
    while start < len(lines):
        reader = csv.reader(itertools.islice(lines, start, None), strict=True)
        consumed = 0
        try:
            for cells in reader:
                first = start + consumed + 1
                consumed = reader.line_num
                if cells:  # a blank line is no row
                    yield first, cells
            return
        except csv.Error as err:
            first = start + consumed + 1
            bad += 1
            ended = "the file ends inside a quoted cell" if "end of data" in str(err) else str(err)
            report(SourceError(path, f"malformed row ({ended}; an unterminated quote?); skipped", line=first))
            if bad >= MAX_BAD_ROWS:
                report(SourceError(path, f"{bad} malformed rows; the rest of the file is skipped", line=first))
                return
            start = first  # resume on the line after the one that started the bad row


def _speech(path: Path, cells: list[str], row_number: int, column: dict) -> Optional[Speech]:
    def get(key: str) -> Optional[str]:
        i = column[key]
        value = cells[i].strip() if i is not None and i < len(cells) else ""
        return value or None

    text = get("text")
    if not text:
        return None
    date = dt.date.fromisoformat(get("date")[:10]) if get("date") else None
    source_id = get("id") or str(row_number)
    house = (get("house") or "").lower()
    person = get("person_id")
    return Speech(
        id=f"{path.stem}/{date or 'undated'}/{source_id}",
        paragraphs=[Paragraph(text=p.strip()) for p in text.splitlines() if p.strip()],
        speaker=Speaker(
            name=get("speaker"),
            person_id=person if person and "/person/" in person else None,
            party=party_name(get("party")),
        ),
        house="lords" if "lords" in house else "commons" if "commons" in house else None,
        date=date,
        major_heading=get("debate"),
    )

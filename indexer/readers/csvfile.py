"""Speeches as CSV, one speech a row, columns found by their header names.

Covers the common research exports (ParlSpeech, the Louwerse COVID-19 set):
a text column is required; id, date, speaker, person id, party, house and
debate columns are used when present. Paragraphs are the text's lines.
"""

from __future__ import annotations

import csv
import datetime as dt
import io
from pathlib import Path
from typing import Callable, Iterator, Optional

from pydantic import ValidationError

from indexer.errors import SourceError
from indexer.members import party_name
from indexer.records import Paragraph, Speaker, Speech

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


def read_csv(path: Path, text: str, report: Callable[[SourceError], None]) -> Iterator[Speech]:
    csv.field_size_limit(64 * 1024 * 1024)
    reader = csv.DictReader(io.StringIO(text, newline=""))
    fields = {name.strip().lower(): name for name in reader.fieldnames or []}
    column = {key: next((fields[n] for n in names if n in fields), None) for key, names in COLUMNS.items()}
    for row_number, row in enumerate(reader, start=1):
        line = reader.line_num
        try:
            speech = _speech(path, row, row_number, column)
        except (ValueError, ValidationError) as err:
            report(SourceError(path, f"invalid row: {err}".splitlines()[0], line=line))
            continue
        if speech is not None:
            yield speech


def _speech(path: Path, row: dict, row_number: int, column: dict) -> Optional[Speech]:
    def get(key: str) -> Optional[str]:
        name = column[key]
        value = (row.get(name) or "").strip() if name else ""
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

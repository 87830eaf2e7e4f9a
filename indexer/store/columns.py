"""The passage fields every store keeps as columns, in one list, and the one mapping between a row and a `Passage`.

Flat columns, so that filters, facets and groups are plain SQL on them. Each
store spells the types in its own SQL (`sqlite`, `postgres` below); values go
in and come out as Python values (a `date`, a `bool`), which each store's
driver maps to its own form.
"""

from __future__ import annotations

import datetime as dt
from typing import Mapping

from indexer.sources.records import Passage, Speaker
from indexer.sources.references import Column

# (name, SQLite type, PostgreSQL type), in the order of the embedded store's table.
FIELDS = [
    ("id", "TEXT NOT NULL UNIQUE", "text NOT NULL"),
    ("speech_id", "TEXT NOT NULL", "text NOT NULL"),
    ("position", "INTEGER NOT NULL", "integer NOT NULL"),
    ("text", "TEXT NOT NULL", "text NOT NULL"),
    ("speaker_name", "TEXT", "text"),
    ("person_id", "TEXT", "text"),
    ("party", "TEXT", "text"),
    ("house", "TEXT", "text"),
    ("section", "TEXT", "text"),
    ("date", "TEXT", "date"),  # SQLite: ISO text, which sorts and compares as dates do
    ("time", "TEXT", "text"),
    ("debate", "TEXT", "text"),
    ("major_heading", "TEXT", "text"),
    ("minor_heading", "TEXT", "text"),
    ("volume", "INTEGER", "integer"),
    ("column_start", "INTEGER", "integer"),
    ("column_end", "INTEGER", "integer"),
    ("column_suffix", "TEXT", "text"),
    ("reference", "TEXT", "text"),
    ("citation", "TEXT", "text"),
    ("session", "TEXT", "text"),
    ("chamber", "TEXT", "text"),
    ("procedural", "INTEGER NOT NULL", "boolean NOT NULL"),
    ("url", "TEXT", "text"),
    ("debate_id", "TEXT", "text"),  # PostgreSQL: added by migration 3
]
NAMES = [name for name, _, _ in FIELDS]


def passage_values(p: Passage) -> tuple:
    """A passage's column values, in NAMES order (date as a `date`, procedural as a `bool`)."""
    c = p.column
    return (
        p.id, p.speech_id, p.position, p.text, p.speaker.name, p.speaker.person_id, p.speaker.party,
        p.house, p.section, p.date, p.time, p.debate, p.major_heading, p.minor_heading,
        c.volume, c.start, c.end, c.suffix, p.reference, p.citation, p.session, p.chamber, bool(p.procedural), p.url,
        p.debate_id,
    )


def passage_of(row: Mapping) -> Passage:
    """A passage from a row read by column name (the date as ISO text or a `date`)."""
    date = row["date"]
    return Passage(
        id=row["id"], speech_id=row["speech_id"], position=row["position"], text=row["text"],
        speaker=Speaker(name=row["speaker_name"], person_id=row["person_id"], party=row["party"]),
        house=row["house"], section=row["section"],
        date=dt.date.fromisoformat(date) if isinstance(date, str) else date, time=row["time"],
        debate=row["debate"], major_heading=row["major_heading"], minor_heading=row["minor_heading"],
        column=Column(volume=row["volume"], start=row["column_start"], end=row["column_end"], suffix=row["column_suffix"]),
        reference=row["reference"], citation=row["citation"], session=row["session"], chamber=row["chamber"],
        procedural=bool(row["procedural"]), url=row["url"],
        debate_id=_optional(row, "debate_id"),
    )


def _optional(row: Mapping, name: str):
    """A column a store written before it was added may lack (read as null)."""
    try:
        return row[name]
    except (KeyError, IndexError):
        return None

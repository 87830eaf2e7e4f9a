"""Hansard column references and citations: parsing and printing.

Hansard prints a column range with the end abbreviated to the digits that
change ("cc554-7" is columns 554 to 557) and a suffix naming the column
series (GC Grand Committee, WH Westminster Hall, W/WA written answers,
WS written statements). A citation puts the house, date and volume in front:
"HL Deb 5 July 2023 vol 823 cc554-7GC".
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from pydantic import BaseModel, Field, model_validator

# Bounds on what a source may claim, checked before anything stores it: the
# largest real values are far below them (Lords volume 840s, a written-answers
# column in the 2,000s), and SQLite refuses integers past 2**63 outright.
MAX_VOLUME = 10_000
MAX_COLUMN = 100_000


class Column(BaseModel):
    """Where the words are printed in the bound Hansard volume."""

    volume: Optional[int] = Field(default=None, ge=1, le=MAX_VOLUME)
    start: Optional[int] = Field(default=None, ge=1, le=MAX_COLUMN)
    end: Optional[int] = Field(default=None, ge=1, le=MAX_COLUMN)
    suffix: Optional[str] = Field(
        default=None, max_length=10, description="Column series: GC, WS, WA, WH, W, or null for the main chamber"
    )

    @model_validator(mode="after")
    def _end_not_before_start(self):
        if self.start is not None and self.end is not None and self.end < self.start:
            raise ValueError(f"column end {self.end} is before its start {self.start}")
        return self


# Digit runs are bounded before int() sees them (a 5,000-digit number is an
# error in Python itself); values past the Column bounds read as unknown.
_REFERENCE = re.compile(
    r"^\s*(?:(?:vol\.?\s*)?(?P<volume>\d{1,6})\s+)?"
    r"(?P<cc>cc?)\s*(?P<start>\d{1,6})(?:\s*[-\u2013]\s*(?P<end>\d{1,6}))?\s*(?P<suffix>[A-Z]{1,3})?\s*$"
)
_COLNUM = re.compile(r"^\s*(?P<number>\d{1,6})\s*(?P<suffix>[A-Z]{1,3})?\s*$")


def expand_end(start: int, abbreviated: str) -> int:
    """'554', '7' -> 557; '349', '50' -> 350; '98', '102' -> 102."""
    start_digits = str(start)
    if len(abbreviated) >= len(start_digits):
        return int(abbreviated)
    end = int(start_digits[: len(start_digits) - len(abbreviated)] + abbreviated)
    # '99-2' means 99 to 102: the printed digits rolled over.
    if end < start:
        end += 10 ** len(abbreviated)
    return end


def parse_reference(text: str) -> Optional[Column]:
    """'823 cc554-7GC' -> Column(volume=823, start=554, end=557, suffix='GC')."""
    m = _REFERENCE.match(text)
    if not m:
        return None
    start = int(m["start"])
    end = expand_end(start, m["end"]) if m["end"] else start
    volume = int(m["volume"]) if m["volume"] else None
    if not (1 <= start <= end <= MAX_COLUMN) or (volume is not None and not 1 <= volume <= MAX_VOLUME):
        return None
    return Column(
        volume=volume,
        start=start,
        end=end,
        suffix=m["suffix"] or None,
    )


def parse_colnum(text: Optional[str]) -> tuple[Optional[int], Optional[str]]:
    """ParlParse colnum '349W' -> (349, 'W'); '' or junk -> (None, None)."""
    m = _COLNUM.match(text or "")
    if not m or not 1 <= int(m["number"]) <= MAX_COLUMN:
        return None, None
    return int(m["number"]), m["suffix"] or None


def abbreviate_end(start: int, end: int) -> str:
    """557 after 554 -> '7'; 350 after 349 -> '50'; 102 after 99 -> '102'."""
    s, e = str(start), str(end)
    if len(s) != len(e):
        return e
    i = 0
    while i < len(s) - 1 and s[i] == e[i]:
        i += 1
    return e[i:]


def format_reference(column: Column) -> Optional[str]:
    """Column -> '823 cc554-7GC', 'c312', 'cc349-50W'; None without a start column."""
    if column.start is None:
        return None
    suffix = column.suffix or ""
    if column.end is None or column.end <= column.start:
        cols = f"c{column.start}{suffix}"
    else:
        cols = f"cc{column.start}-{abbreviate_end(column.start, column.end)}{suffix}"
    return f"{column.volume} {cols}" if column.volume is not None else cols


def format_date(date: dt.date) -> str:
    return f"{date.day} {date:%B %Y}"


def citation_prefix(house: Optional[str], section: Optional[str]) -> Optional[str]:
    if section == "standing":
        return "PBC Deb"
    if house == "lords":
        return "HL Deb"
    if house == "commons":
        return "HC Deb"
    return None


def format_citation(
    house: Optional[str], section: Optional[str], date: Optional[dt.date], column: Column
) -> Optional[str]:
    """'HL Deb 5 July 2023 vol 823 cc554-7GC'; parts the source lacks are left out."""
    prefix = citation_prefix(house, section)
    cols = format_reference(column.model_copy(update={"volume": None}))
    if cols is None and date is None and column.volume is None:
        return None  # "HL Deb" alone cites nothing
    parts = [prefix]
    if date is not None:
        parts.append(format_date(date))
    if column.volume is not None:
        parts.append(f"vol {column.volume}")
    parts.append(cols)
    return " ".join(p for p in parts if p)

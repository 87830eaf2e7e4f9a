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
from urllib.parse import quote, quote_plus

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


# ---------------------------------------------------------------- OSCOLA

# The Lords print their written answers and statements with the series in
# front of the number ("WA 261", "WS 87") and OSCOLA keeps it there; Grand
# Committee and the Commons series follow it ("554GC", "505W", "48WH", "6WS").
_LORDS_PREFIXED = frozenset({"WA", "WS"})
# A Public Bill Committee is cited by its Bill ("Child Poverty Bill Deb ..."):
# only a heading that is a Bill's title names it, never a clause heading.
_BILL_TITLE = re.compile(r"^[A-Z][^\n\[\]]{0,180}\bBill(?: \[(?:HL|Lords)\])?$")


def bill_title(heading: Optional[str]) -> Optional[str]:
    """'Child Poverty Bill' -> itself; 'Clause 2 — Duties' or None -> None."""
    heading = (heading or "").strip()
    return heading if _BILL_TITLE.match(heading) else None


def oscola_end(start: int, end: int) -> str:
    """OSCOLA keeps at least two digits of a range's end: 554-557 -> '57', 349-350 -> '50', 1-2 -> '2'."""
    short = abbreviate_end(start, end)
    return str(end)[-2:] if len(short) < 2 <= len(str(end)) else short


def oscola_columns(house: Optional[str], column: Column) -> Optional[str]:
    """'col 6WS', 'cols 554–57GC', 'col WA261' (Lords written answers); None without a start column."""
    if column.start is None:
        return None
    suffix = column.suffix or ""
    before, after = (suffix, "") if house == "lords" and suffix in _LORDS_PREFIXED else ("", suffix)
    if column.end is None or column.end <= column.start:
        return f"col {before}{column.start}{after}"
    return f"cols {before}{column.start}\u2013{oscola_end(column.start, column.end)}{after}"


def oscola_prefix(house: Optional[str], section: Optional[str], bill: Optional[str] = None) -> Optional[str]:
    if section == "standing":
        title = bill_title(bill)
        return f"{title} Deb" if title else "PBC Deb"
    return citation_prefix(house, section)


def format_oscola(
    house: Optional[str], section: Optional[str], date: Optional[dt.date], column: Column, bill: Optional[str] = None
) -> Optional[str]:
    """'HL Deb 5 July 2023, vol 823, cols 554–57GC'; parts the source lacks are left out; None when nothing cites it.

    `bill`: a Public Bill Committee's heading, which names the Bill when it is one.
    """
    prefix = oscola_prefix(house, section, bill)
    cols = oscola_columns(house, column)
    if prefix is None or (cols is None and date is None and column.volume is None):
        return None
    head = f"{prefix} {format_date(date)}" if date is not None else prefix
    parts = [head, f"vol {column.volume}" if column.volume is not None else None, cols]
    return ", ".join(p for p in parts if p)


# ---------------------------------------------------------------- links out

TWFY = "https://www.theyworkforyou.com"
# ParlParse gid collection -> TheyWorkForYou's page for it: the 'page_all' of
# each major in TheyWorkForYou's www/includes/dbtypes.php, whose URLs are in
# www/includes/easyparliament/metadata.php ('debates/', 'whall/', 'wrans/',
# 'wms/', 'lords/', each with ?id=<gid after the last slash>: utility.php's
# fix_gid_from_db). Its scripts/xml2db.pl loads Lords written answers
# (lordswrans) into the written answers and Lords written statements
# (lordswms) into the statements, gids unchanged: they share those pages.
TWFY_PAGES = {"debate": "debates", "westminhall": "whall", "wrans": "wrans", "wms": "wms", "lords": "lords"}
_GID = re.compile(r"^uk\.org\.publicwhip/(?P<collection>[a-z]{1,20})/(?P<tail>[A-Za-z0-9][A-Za-z0-9_.\-]{0,200})$")
# hansardlist.php's _get_listurl cuts a committee gid's "standing<date>_<BILL>_"
# (preg_replace('#^.*?_.*?_#', '')) and puts it under pbc/<session>/<Bill_Title>/.
_STANDING_TAIL = re.compile(r"^[^_]*_[^_]*_(?P<id>.+)$")
_SESSION = re.compile(r"^(?:19|20)\d{2}-\d{2}$")  # TheyWorkForYou's bill sessions: "2008-09"


class Links(BaseModel):
    """Where else to read a passage: TheyWorkForYou's page for it, and the printed record."""

    theyworkforyou: Optional[str] = Field(default=None, description="TheyWorkForYou's page for its ParlParse gid")
    printed: Optional[str] = Field(default=None, description="The printed page the source names (http or https)")


def theyworkforyou_url(gid: Optional[str], session: Optional[str] = None, bill: Optional[str] = None) -> Optional[str]:
    """TheyWorkForYou's page for a ParlParse gid; None for other ids, or a committee whose Bill and session are unknown.

    'uk.org.publicwhip/debate/2009-10-26b.30.1' -> 'https://www.theyworkforyou.com/debates/?id=2009-10-26b.30.1'.
    """
    m = _GID.match(gid or "")
    if not m:
        return None
    collection, tail = m["collection"], m["tail"]
    if collection in TWFY_PAGES:
        return f"{TWFY}/{TWFY_PAGES[collection]}/?id={quote(tail, safe='')}"
    if collection == "standing":
        title, cut = bill_title(bill), _STANDING_TAIL.match(tail)
        if title is None or cut is None or not _SESSION.match(session or ""):
            return None  # the page's address needs both; a guessed one would be a wrong link
        return f"{TWFY}/pbc/{quote_plus(session)}/{quote_plus(title.replace(' ', '_'))}/{quote(cut['id'], safe='')}"
    return None


# ---------------------------------------------------------------- citation lookup

MAX_CITATION_CHARS = 200
CITATION_EXAMPLES = ('"823 cc554-7GC", "HL Deb vol 823 cc554-7GC", "HL Deb 5 July 2023, vol 823, cols 554–57GC", '
                     '"HL Deb 2022-23, cols 554–57GC", "HC Deb 26 October 2009, col 6WS" or "HC Deb, 5 July 2023, c554"')
_MONTHS = {name.lower(): n for n, name in enumerate(
    ["January", "February", "March", "April", "May", "June", "July", "August", "September", "October", "November", "December"],
    start=1)}
_MONTHS.update({name[:3]: n for name, n in list(_MONTHS.items())})
_MONTHS["sept"] = 9

# One pattern, every part but the columns optional; digit runs bounded before
# int() sees them. Dashes are made "-" and spaces single before it runs.
_CITATION = re.compile(
    r"^(?:(?P<house>HC|HL)\s+Deb\.?\s*,?\s*)?"
    r"(?:(?:(?P<day>\d{1,2})\s+(?P<month>[A-Za-z]{3,9})\.?\s+(?P<year>\d{4})|(?P<iso>\d{4}-\d{2}-\d{2}))\s*,?\s*)?"
    r"(?:\(?(?:session\s+)?(?P<session>\d{4}-\d{2})\)?\s*,?\s*)?"
    r"(?:(?:vol\.?\s*(?P<vol>\d{1,6})|(?P<bare_vol>\d{1,6}))\s*,?\s*)?"
    r"(?P<cc>cols?\.?|cc?\.?)\s*(?P<pre>WA|WS)?\s*(?P<start>\d{1,6})(?:\s*-\s*(?P<end>\d{1,6}))?\s*(?P<suffix>[A-Z]{1,3})?\.?$",
    re.IGNORECASE,
)


class CitationQuery(BaseModel):
    """What a citation names: the columns, and where known the house, series, day and volume."""

    house: Optional[str] = None
    date: Optional[dt.date] = None
    volume: Optional[int] = None
    start: int
    end: int
    suffix: Optional[str] = Field(default=None, description="Column series (GC, WS, WA, WH, W), null for the main chamber")
    session: Optional[str] = Field(default=None, description='Parliamentary session, e.g. "2022-23"')


def _citation_error(why: str = "") -> ValueError:
    return ValueError(f"{why + ': ' if why else ''}expected a Hansard citation such as {CITATION_EXAMPLES}")


def _citation_date(m: re.Match) -> Optional[dt.date]:
    try:
        if m["iso"]:
            return dt.date.fromisoformat(m["iso"])
        if m["day"]:
            month = _MONTHS.get(m["month"].lower())
            if month is None:
                raise ValueError
            return dt.date(int(m["year"]), month, int(m["day"]))
    except ValueError:
        raise _citation_error("not a date") from None
    return None


def parse_citation(text: str) -> CitationQuery:
    """'HC Deb 26 October 2009, col 6WS', '823 cc554-7GC', ... -> CitationQuery; ValueError saying what was expected."""
    if not isinstance(text, str) or not text.strip():
        raise _citation_error("empty citation")
    if len(text) > MAX_CITATION_CHARS:
        raise _citation_error(f"citation longer than {MAX_CITATION_CHARS} characters")
    norm = re.sub(r"\s+", " ", re.sub(r"[\u2010-\u2015\u2212]", "-", text)).strip()
    m = _CITATION.match(norm)
    if not m:
        raise _citation_error()
    if m["pre"] and m["suffix"]:
        raise _citation_error("a column series both before and after the number")
    start = int(m["start"])
    end = expand_end(start, m["end"]) if m["end"] else start
    volume = m["vol"] or m["bare_vol"]
    volume = int(volume) if volume else None
    if not 1 <= start <= end <= MAX_COLUMN:
        raise _citation_error(f"columns must run forwards, from 1 to at most {MAX_COLUMN}")
    if volume is not None and not 1 <= volume <= MAX_VOLUME:
        raise _citation_error(f"volume must be from 1 to {MAX_VOLUME}")
    house = {"HC": "commons", "HL": "lords"}.get((m["house"] or "").upper())
    suffix = (m["pre"] or m["suffix"] or "").upper() or None
    return CitationQuery(house=house, date=_citation_date(m), volume=volume, start=start, end=end, suffix=suffix,
                         session=m["session"])

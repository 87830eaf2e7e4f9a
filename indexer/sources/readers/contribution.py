""""UK Parliament / Open data" contribution pages, saved as text -> one speech.

Layout, in order: `UK Parliament / Open data`; the debate title; optionally
`Proceeding contribution from <Member> (<Party>) in the House of ... on
<Weekday, d Month yyyy>. It occurred during <business> on <title>.`; the
paragraphs, with time stamps on their own line (`4.30 pm`) and paragraphs
broken mid-sentence where the printed column turned; then a trailer of
labelled fields: `Reference`, `Session`, `Chamber / Committee`.
"""

from __future__ import annotations

import datetime as dt
import hashlib
import re
from pathlib import Path
from typing import Callable, Iterator, Optional

from indexer.sources.errors import SourceError, SourceWarning
from indexer.sources.normalise import clean_text, is_clock_line, normalise_time
from indexer.sources.records import Paragraph, Speaker, Speech
from indexer.sources.references import Column
from indexer.sources.references import parse_reference

BANNER = "UK Parliament / Open data"
# Every page's speech id starts so (see `_speech_id`): how a merge step tells pages from other speeches.
ID_PREFIX = "contribution/"
# Lines that end the speech and start the labelled trailer.
_TRAILER_STARTS = {"About this proceeding contribution", "Type", "Reference"}
_FIELD_LABELS = {"Type", "Reference", "Session", "Chamber / Committee"}
_PROCEEDING = re.compile(
    r"^Proceeding contribution from (?P<member>.+?)(?: \((?P<party>[^()]+)\))? "
    r"in the (?P<house>House of Lords|House of Commons) on (?:[A-Za-z]+, )?(?P<date>\d{1,2} [A-Za-z]+ \d{4})\."
    r"(?: It occurred during (?P<business>.+?) on (?P<title>.+?)\.?)?\s*$"
)
# The column series printed after a reference, and where it puts the words.
_SUFFIX_SECTIONS = {"GC": "grand-committee", "WH": "westminhall", "WS": "wms", "WA": "wrans", "W": "wrans"}


def looks_like_contribution_page(head: str) -> bool:
    first = next((line.strip() for line in head.splitlines() if line.strip()), "")
    return first == BANNER


def read_contribution_page(path: Path, text: str, report: Optional[Callable[[SourceError], None]] = None) -> Iterator[Speech]:
    """The page's one speech; `report` hears of a page indexed without its column reference."""
    lines = [line.strip() for line in text.splitlines()]
    blocks = _blocks(lines)  # (first line number, text) for each blank-line separated block
    if not blocks or blocks[0][1] != BANNER:
        raise SourceError(path, f"not a contribution page: first line is not {BANNER!r}", line=1)
    if len(blocks) < 3:
        raise SourceError(path, "contribution page has no title or no text", line=blocks[-1][0])
    title = blocks[1][1]

    body, trailer = [], []
    for lineno, block in blocks[2:]:
        if trailer or block.split("\n")[0] in _TRAILER_STARTS:
            trailer.append(block)
        else:
            body.append((lineno, block))

    proceeding = None
    if body and body[0][1].startswith("Proceeding contribution from"):
        proceeding = _PROCEEDING.match(clean_text(body[0][1]))
        body = body[1:]
    paragraphs = _paragraphs(body)
    if not paragraphs:
        raise SourceError(path, "contribution page has no paragraphs of speech", line=blocks[1][0])

    fields = _trailer_fields(trailer)
    column = parse_reference(fields["Reference"]) if fields.get("Reference") else None
    if report is not None and column is None:
        # Still worth finding, but it cannot be cited: say so rather than index it silently.
        why = "no Reference field" if not fields.get("Reference") else f"Reference {fields['Reference']!r} is not a column reference"
        report(SourceWarning(path, f"contribution page has {why}: indexed without a column reference or citation"))
    chamber = fields.get("Chamber / Committee")
    house, section = _house_and_section(chamber, column, proceeding)
    speaker = Speaker()
    date = None
    if proceeding:
        speaker = Speaker(name=proceeding["member"], party=proceeding["party"])
        date = _parse_date(proceeding["date"])
    yield Speech(
        id=_speech_id(fields.get("Reference"), paragraphs),
        paragraphs=paragraphs,
        speaker=speaker,
        house=house,
        section=section,
        date=date,
        time=paragraphs[0].time,
        major_heading=title,
        minor_heading=None,
        column=column or Column(),
        session=fields.get("Session"),
        chamber=chamber,
    )


def _blocks(lines: list[str]) -> list[tuple[int, str]]:
    """Blank-line separated blocks with the line number each starts at."""
    blocks, current, start = [], [], 0
    for number, line in enumerate(lines, start=1):
        if line:
            if not current:
                start = number
            current.append(line)
        elif current:
            blocks.append((start, "\n".join(current)))
            current = []
    if current:
        blocks.append((start, "\n".join(current)))
    return blocks


def _paragraphs(body: list[tuple[int, str]]) -> list[Paragraph]:
    """Drop time stamps (they time what follows) and rejoin broken sentences."""
    paragraphs: list[Paragraph] = []
    time = None
    for _, block in body:
        text = clean_text(block)
        if is_clock_line(text):
            time = normalise_time(text)
            continue
        if paragraphs and _continues_previous(text):
            previous = paragraphs[-1]
            glue = "" if text[0] in "—–-" else " "
            paragraphs[-1] = Paragraph(text=previous.text.rstrip() + glue + text, time=previous.time)
            continue
        paragraphs.append(Paragraph(text=text, time=time))
    return paragraphs


def _continues_previous(text: str) -> bool:
    # The page breaks a paragraph where the printed column turned: the next
    # part starts mid-sentence, in lower case or with a dash.
    return text[0].islower() or text[0] in "—–"


def rejoin_broken(texts: list[str]) -> list[str]:
    """Cleaned paragraph texts with the pieces broken where a printed column turned joined back.

    Shared with other readers of Parliament's own text (its search records break
    paragraphs at column turns the same way).
    """
    joined: list[str] = []
    for raw in texts:
        text = clean_text(raw)
        if not text:
            continue
        if joined and _continues_previous(text):
            glue = "" if text[0] in "—–-" else " "
            joined[-1] = joined[-1].rstrip() + glue + text
        else:
            joined.append(text)
    return joined


def section_of(house: Optional[str], suffix: Optional[str]) -> Optional[str]:
    """The section a column series puts words in (GC, WH, WS, WA, W), else the house's chamber: debates or lords."""
    if suffix in _SUFFIX_SECTIONS:
        return _SUFFIX_SECTIONS[suffix]
    return "lords" if house == "lords" else "debates" if house == "commons" else None


def _trailer_fields(trailer: list[str]) -> dict[str, str]:
    """`Label` lines followed by their value, in any order."""
    lines = [line for block in trailer for line in block.split("\n")]
    fields: dict[str, str] = {}
    for i, line in enumerate(lines[:-1]):
        if line in _FIELD_LABELS and lines[i + 1] not in _FIELD_LABELS:
            fields[line] = clean_text(lines[i + 1])
    return fields


def _house_and_section(chamber: Optional[str], column: Optional[Column], proceeding) -> tuple[Optional[str], Optional[str]]:
    name = (chamber or (proceeding["house"] if proceeding else "") or "").lower()
    suffix = column.suffix if column else None
    house = "lords" if "lords" in name else "commons" if ("commons" in name or "westminster hall" in name) else None
    if suffix in _SUFFIX_SECTIONS:
        section = _SUFFIX_SECTIONS[suffix]
        if house is None:
            house = "lords" if suffix in ("GC", "WA") else "commons" if suffix in ("WH", "W") else None
    elif "grand committee" in name:
        section = "grand-committee"
    elif "westminster hall" in name:
        section = "westminhall"
    elif house == "lords":
        section = "lords"
    elif house == "commons":
        section = "debates"
    else:
        section = None
    return house, section


def _parse_date(text: str) -> Optional[dt.date]:
    try:
        return dt.datetime.strptime(text, "%d %B %Y").date()
    except ValueError:
        return None


def _speech_id(reference: Optional[str], paragraphs: list[Paragraph]) -> str:
    """Stable across rebuilds: the reference plus a digest of the words."""
    digest = hashlib.sha1("\n".join(p.text for p in paragraphs).encode("utf-8")).hexdigest()[:10]
    ref = re.sub(r"\s+", "-", reference.strip()) if reference else "no-reference"
    return f"{ID_PREFIX}{ref}/{digest}"

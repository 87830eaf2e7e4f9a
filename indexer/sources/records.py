"""The records that flow through the indexer: speeches in, passages out.

`Speech` is what every reader produces and is also the documented JSONL input
schema (one `Speech` object per line), so any other source can be fed in.
`Passage` is what the store holds and the service returns.
"""

from __future__ import annotations

import datetime as dt
import functools
import re
from typing import Optional
from urllib.parse import urlsplit

from pydantic import BaseModel, ConfigDict, Field, PrivateAttr, StrictBool, computed_field, field_validator, model_validator

from indexer.sources.normalise import normalise_time
from indexer.sources.references import Column, Links, format_oscola, parse_reference, theyworkforyou_url
from indexer.sources.vocabulary import House


MAX_ID_CHARS = 500
MAX_URL_CHARS = 2_000
# Links are rendered as citations by portals and the search page: only web
# addresses, never javascript:, data:, vbscript:, file: or relative ones.
URL_SCHEMES = ("http", "https")
_CONTROL_CHARS = re.compile(r"[\x00-\x1f\x7f]")


@functools.lru_cache(maxsize=65_536)  # every passage read back is checked again: one URL serves many passages
def web_url(value: Optional[str]) -> Optional[str]:
    """`value` if it is an absolute http(s) address a browser can follow safely, else None."""
    if value is None:
        return None
    value = value.strip()
    if not value or len(value) > MAX_URL_CHARS or _CONTROL_CHARS.search(value) or any(c.isspace() for c in value):
        return None
    try:
        parts = urlsplit(value)
    except ValueError:  # e.g. an unbalanced [ in the host
        return None
    if parts.scheme.lower() not in URL_SCHEMES or not parts.hostname:
        return None
    return value


class Speaker(BaseModel):
    """Who spoke; every field is null where the source does not say."""

    name: Optional[str] = None
    person_id: Optional[str] = None
    party: Optional[str] = None


class Paragraph(BaseModel):
    text: str = Field(min_length=1)
    time: Optional[str] = Field(default=None, description="HH:MM, 24-hour clock, where known")

    @field_validator("time")
    @classmethod
    def _check_time(cls, value):
        return _normalised_time(value)


class Speech(BaseModel):
    """One contribution by one speaker (or one block of procedural text)."""

    model_config = ConfigDict(extra="forbid")

    id: str = Field(min_length=1, max_length=MAX_ID_CHARS, description="The source's own id, e.g. a ParlParse gid")
    paragraphs: list[Paragraph] = Field(min_length=1)
    speaker: Speaker = Field(default_factory=Speaker)
    house: Optional[House] = None
    section: Optional[str] = Field(
        default=None,
        description="debates, westminhall, wrans, wms, lords, standing, grand-committee, ...",
    )
    date: Optional[dt.date] = None
    time: Optional[str] = Field(default=None, description="HH:MM at which the speech starts")
    major_heading: Optional[str] = None
    minor_heading: Optional[str] = None
    debate_id: Optional[str] = Field(
        default=None, max_length=MAX_ID_CHARS,
        description="The debate's stable id: for ParlParse, the gid of the heading that opens it",
    )
    column: Column = Field(default_factory=Column)
    reference: Optional[str] = Field(
        default=None, description='Printed reference, e.g. "823 cc554-7GC"; fills `column` when that is not given'
    )
    session: Optional[str] = Field(default=None, description="Parliamentary session, e.g. 2022-23")
    chamber: Optional[str] = Field(default=None, description="e.g. House of Lords Grand Committee")
    # Strict: "yes", "no", 0 or 1 are refused, not guessed at.
    procedural: StrictBool = Field(default=False, description="Text with no speaker (motions, chair's notes)")
    type: Optional[str] = Field(default=None, description="ParlParse speech type, e.g. Start Question")
    url: Optional[str] = Field(default=None, description="The record on the web: an http or https address, else dropped")
    # What was dropped from the record while reading it (an unsafe URL), for the reader to report.
    _notes: list[str] = PrivateAttr(default_factory=list)

    @field_validator("id")
    @classmethod
    def _check_id(cls, value: str) -> str:
        # The id names the speech in URLs (/speeches/<id>) and passage ids (<id>#0).
        if not value.strip():
            raise ValueError("the speech id is blank")
        if _CONTROL_CHARS.search(value):
            raise ValueError("the speech id contains control characters")
        return value

    @field_validator("debate_id")
    @classmethod
    def _check_debate_id(cls, value: Optional[str]) -> Optional[str]:
        # It names the debate in URLs (/debates/<id>, /read/<id>): none that is blank or carries control characters.
        if value is not None and not value.strip():
            raise ValueError("the debate id is blank")
        if value is not None and _CONTROL_CHARS.search(value):
            raise ValueError("the debate id contains control characters")
        return value

    @field_validator("paragraphs", mode="before")
    @classmethod
    def _accept_plain_strings(cls, value):
        # JSONL writers may give paragraphs as plain strings.
        if isinstance(value, list):
            return [{"text": p} if isinstance(p, str) else p for p in value]
        return value

    @field_validator("time")
    @classmethod
    def _check_time(cls, value):
        return _normalised_time(value)

    @model_validator(mode="after")
    def _drop_unsafe_url(self):
        if self.url is not None:
            safe = web_url(self.url)
            if safe is None:
                shown = self.url if len(self.url) <= 80 else self.url[:77] + "..."
                self._notes.append(f"speech {self.id}: url {shown!r} left out: only {' and '.join(URL_SCHEMES)} links are kept")
            self.url = safe
        return self

    @property
    def notes(self) -> list[str]:
        return self._notes

    @model_validator(mode="after")
    def _column_from_reference(self):
        if self.reference and self.column.start is None:
            parsed = parse_reference(self.reference)
            if parsed is None:
                raise ValueError(f"reference {self.reference!r} is not a Hansard column reference such as '823 cc554-7GC'")
            self.column = parsed
        return self

    @property
    def debate(self) -> Optional[str]:
        return debate_title(self.major_heading, self.minor_heading)


def _normalised_time(value: Optional[str]) -> Optional[str]:
    # Sources print times many ways ("4.30 pm", "014:30:00"); keep HH:MM or nothing.
    return normalise_time(value) if value is not None else None


def debate_title(major: Optional[str], minor: Optional[str]) -> Optional[str]:
    """'Major: Minor' the way TheyWorkForYou shows it; either part may be missing."""
    parts = [p for p in (major, minor) if p]
    if len(parts) == 2 and parts[0].lower() == parts[1].lower():
        parts = parts[:1]
    return ": ".join(parts) or None


class Cited(BaseModel):
    """Who spoke, when, in which debate, and where it is printed: shared by passages and speeches."""

    speaker: Speaker
    house: Optional[House] = None
    section: Optional[str] = None
    date: Optional[dt.date] = None
    time: Optional[str] = None
    debate: Optional[str] = Field(default=None, description="Debate title: major and minor heading")
    major_heading: Optional[str] = None
    minor_heading: Optional[str] = None
    debate_id: Optional[str] = Field(default=None, max_length=MAX_ID_CHARS,
                                     description="The debate's stable id (/debates/{debate_id}); null where the source gives none")
    column: Column
    reference: Optional[str] = Field(default=None, description='As printed, e.g. "823 cc554-7GC"')
    citation: Optional[str] = Field(default=None, description='e.g. "HL Deb 5 July 2023 vol 823 cc554-7GC"')
    session: Optional[str] = None
    chamber: Optional[str] = None
    procedural: bool = False
    url: Optional[str] = None

    @field_validator("url")
    @classmethod
    def _only_web_urls(cls, value):
        # Also on the way out: an index written before URLs were checked must not serve a javascript: link.
        return web_url(value)

    # Computed from the fields above on every read, so that indexes written
    # before them serve them too; references.py is their one home.
    @computed_field(description='OSCOLA, to footnote: e.g. "HL Deb 5 July 2023, vol 823, cols 554–57GC"')
    @property
    def oscola(self) -> Optional[str]:
        return format_oscola(self.house, self.section, self.date, self.column, self.major_heading)

    @computed_field(description="TheyWorkForYou's page for it (ParlParse ids only) and the printed page the source names")
    @property
    def links(self) -> Links:
        # A passage names its speech by speech_id, a speech itself by id.
        gid = getattr(self, "speech_id", None) or getattr(self, "id", None)
        return Links(theyworkforyou=theyworkforyou_url(gid, self.session, self.major_heading), printed=web_url(self.url))


class PassageKey(BaseModel):
    id: str = Field(description='"<speech id>#<n>", n from 0 in speech order')
    speech_id: str
    position: int = Field(description="n: this passage's place in its speech")
    text: str


# Base order puts PassageKey's fields first in JSON: id, speech_id, position, text, speaker, ...
class Passage(Cited, PassageKey):
    """One searchable paragraph (or a sentence-bounded piece of a long one)."""

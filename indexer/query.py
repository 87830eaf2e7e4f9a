"""What a search asks for: free text, exact phrases, excluded words, filters.

Queries may carry filters inline, TheyWorkForYou style:

    forced labour "Hikvision" -Dahua speaker:"Lord Alton" house:lords from:2023-01-01 to:2023-03-31 party:Labour

`parse_query` splits such a query into the words to rank by (`text`), the
phrases every result must contain, the words no result may contain, and the
filters. Parsing is pure and total: any string parses; values are checked
when filters are validated.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional

from pydantic import BaseModel, Field, field_validator, model_validator

from indexer.sources.vocabulary import party_name

HOUSES = ("commons", "lords")

# Inline field names -> Filters fields.
_INLINE_FIELDS = {
    "speaker": "speaker",
    "person": "person_id",
    "person_id": "person_id",
    "party": "party",
    "house": "house",
    "section": "section",
    "from": "date_from",
    "date_from": "date_from",
    "to": "date_to",
    "date_to": "date_to",
    "debate": "debate",
}
_INLINE = re.compile(r'(?<!\S)(?P<field>[A-Za-z_]+):(?:"(?P<quoted>[^"]*)"|(?P<bare>\S+))')
_PHRASE = re.compile(r'"([^"]+)"')
_EXCLUDED = re.compile(r"(?<!\S)-(\w[\w'’-]*)")
_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
_WORD = re.compile(r"\w+(?:['’]\w+)*")


class Filters(BaseModel):
    """Exact restrictions on which passages may be returned; all must hold."""

    speaker: Optional[str] = Field(default=None, max_length=200, description='Speaker name, case-insensitive, partial ("Lord Alton")')
    person_id: Optional[str] = Field(default=None, max_length=100, description='ParlParse person id, e.g. "uk.org.publicwhip/person/10586" or "10586"')
    party: Optional[str] = Field(default=None, max_length=100, description='Party, case-insensitive ("Labour", "Lab", "Conservative")')
    house: Optional[str] = Field(default=None, description="commons or lords")
    section: Optional[str] = Field(default=None, max_length=50, description="debates, westminhall, wrans, wms, lords, standing, grand-committee, ...")
    date_from: Optional[dt.date] = Field(default=None, description="On or after this date (YYYY-MM-DD)")
    date_to: Optional[dt.date] = Field(default=None, description="On or before this date (YYYY-MM-DD)")
    debate: Optional[str] = Field(default=None, max_length=200, description="Words that must all appear in the debate title")

    @field_validator("speaker", "person_id", "party", "section", "debate", mode="before")
    @classmethod
    def _blank_is_none(cls, value):
        if isinstance(value, str):
            value = " ".join(value.split())
            return value or None
        return value

    @field_validator("house", mode="before")
    @classmethod
    def _house(cls, value):
        if value is None or value == "":
            return None
        house = str(value).strip().lower()
        house = {"hc": "commons", "hl": "lords", "house of commons": "commons", "house of lords": "lords"}.get(house, house)
        if house not in HOUSES:
            raise ValueError(f"house must be one of {', '.join(HOUSES)}, not {value!r}")
        return house

    @field_validator("person_id")
    @classmethod
    def _person(cls, value):
        if value and value.isdigit():
            return f"uk.org.publicwhip/person/{value}"
        return value

    @field_validator("party")
    @classmethod
    def _party(cls, value):
        return party_name(value) if value else None

    @field_validator("section")
    @classmethod
    def _section(cls, value):
        return value.lower() if value else None

    @model_validator(mode="after")
    def _dates_in_order(self):
        if self.date_from and self.date_to and self.date_from > self.date_to:
            raise ValueError(f"date_from {self.date_from} is after date_to {self.date_to}")
        return self

    def is_empty(self) -> bool:
        return not any(self.model_dump().values())

    def merged(self, other: "Filters") -> "Filters":
        """These filters, with any field that `other` sets taken from `other`."""
        return Filters.model_validate({**self.model_dump(), **other.model_dump(exclude_none=True)})


class ParsedQuery(BaseModel):
    text: str = Field(description="The words to rank by, without filters, phrases' quotes or exclusions")
    phrases: list[str] = Field(default_factory=list, description="Phrases every result must contain exactly")
    excluded: list[str] = Field(default_factory=list, description="Words no result may contain")
    filters: dict[str, str] = Field(default_factory=dict, description="Inline filters, unvalidated")

    @property
    def terms(self) -> list[str]:
        """Words of the free text, for keyword search."""
        return _WORD.findall(self.text)

    @property
    def constrained(self) -> bool:
        return bool(self.phrases or self.excluded)


def parse_query(query: str) -> ParsedQuery:
    """Split a user's query into ranking text, phrases, exclusions and inline filters."""
    filters: dict[str, str] = {}
    # Control characters (a NUL pasted in, say) separate words, as spaces do:
    # neither store's full-text syntax can take them.
    query = _CONTROL.sub(" ", query)

    def take_filter(match: re.Match) -> str:
        field = _INLINE_FIELDS.get(match["field"].lower())
        if field is None:
            return match[0]  # "Note:" or a URL is text, not a filter
        filters[field] = match["quoted"] if match["quoted"] is not None else match["bare"]
        return " "

    rest = _INLINE.sub(take_filter, query)
    phrases = [" ".join(p.split()) for p in _PHRASE.findall(rest) if p.strip()]
    excluded = _EXCLUDED.findall(rest)
    rest = _EXCLUDED.sub(" ", rest)
    text = " ".join(rest.replace('"', " ").split())
    return ParsedQuery(text=text, phrases=phrases, excluded=excluded, filters=filters)


def fts_phrase(words: str) -> str:
    """An FTS5 phrase string: double quotes doubled inside."""
    return '"' + words.replace('"', '""') + '"'



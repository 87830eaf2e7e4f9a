"""What a search asks for: free text, exact phrases, excluded words, filters.

Queries may carry filters inline, TheyWorkForYou style:

    forced labour "Hikvision" -Dahua speaker:"Lord Alton" house:lords from:2023-01-01 to:2023-03-31 party:Labour

`parse_query` splits such a query into the words to rank by (`text`), the
phrases every result must contain, the words no result may contain, and the
filters. Parsing is pure and total: any string parses; values are checked
when filters are validated.
"""

from __future__ import annotations

import re

from pydantic import BaseModel, Field

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


class ParsedQuery(BaseModel):
    text: str = Field(description="The words to rank by, without filters, phrases' quotes or exclusions")
    phrases: list[str] = Field(default_factory=list, description="Phrases every result must contain exactly")
    excluded: list[str] = Field(default_factory=list, description="Words no result may contain")
    filters: dict[str, str] = Field(default_factory=dict, description="Inline filters, unvalidated")

    @property
    def terms(self) -> list[str]:
        """Words of the free text, for keyword search."""
        return _WORD.findall(self.text)


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

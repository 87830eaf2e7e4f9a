"""A search as an Atom feed (/search?format=atom): its results newest first, built by feedgen from the API's own results.

Every string (the query echoed in the title and links, a speaker's name, a
passage's text) goes into the feed as text, escaped by the library (lxml
under feedgen); nothing is built as markup by hand. Characters XML 1.0 cannot
carry at all (most control characters) are dropped first, so that a hostile
query or record still makes a well-formed feed.

- The feed's id is a tag: URI of the search's canonical parameters (not of
  the host it was fetched from), its self link the canonical feed URL, its
  alternate link the search page for the same search, and its updated time
  the newest entry's.
- An entry's id is a tag: URI of the passage id; its times are the sitting's
  date (and the speech's time, when known) in London time; its author is the
  speaker; its content the passage text, then a line with the speaker,
  debate and citation. It links to the source (Hansard, TheyWorkForYou) when
  the passage has a web address, and always to the passage on this service
  (/passages/{id}, JSON) until a reading page exists.
- Undated passages are left out: Atom requires every entry to have a time,
  and inventing one would misplace the passage in a reader.
"""

from __future__ import annotations

import datetime as dt
import re
from typing import Optional
from urllib.parse import quote, urlencode
from zoneinfo import ZoneInfo

from feedgen.ext.base import BaseEntryExtension
from feedgen.feed import FeedGenerator
from feedgen.util import xml_elem
from fastapi.responses import Response

from indexer.store import Filters
from service.models import Result

MEDIA_TYPE = "application/atom+xml; charset=utf-8"
TAG = "tag:hansard-search,2026:"  # RFC 4151: the same ids whichever host serves the feed
LONDON = ZoneInfo("Europe/London")
HOUSE_NAMES = {"commons": "House of Commons", "lords": "House of Lords"}
# The filter parameters, in the order the canonical URL and the title name them.
FILTER_NAMES = ["speaker", "person_id", "party", "house", "section", "date_from", "date_to", "debate"]
# Characters XML 1.0 cannot hold, even escaped.
_NOT_XML = re.compile("[^\t\n\r\x20-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")


def xml_text(value: Optional[str]) -> str:
    """`value` with the characters XML cannot carry dropped (the library escapes the rest)."""
    return _NOT_XML.sub("", value or "")


def search_parameters(q: str, filters: Filters, mode: str, group_by: str, k: int, offset: int) -> list[tuple[str, str]]:
    """The search's parameters in a fixed order, those at their defaults left out: what names the feed."""
    params = [("q", q)]
    for name in FILTER_NAMES:
        value = getattr(filters, name)
        if value is not None:
            params.append((name, str(value)))
    params += [("mode", mode), ("group_by", group_by)]
    if k != 10:
        params.append(("k", str(k)))
    if offset:
        params.append(("offset", str(offset)))
    return params


def entry_time(result: Result) -> dt.datetime:
    """When the passage was spoken: its sitting's date, and its time (HH:MM) where known, in London time."""
    hour, minute = 0, 0
    if result.time:
        try:
            hour, minute = (int(part) for part in result.time.split(":")[:2])
        except ValueError:
            pass
    return dt.datetime.combine(result.date, dt.time(hour, minute), tzinfo=LONDON)


def speaker_of(result: Result) -> str:
    return result.speaker.name or ("Procedural" if result.procedural else "Unknown speaker")


def citation_line(result: Result) -> str:
    """Who, in which debate, where it is printed: "David Drew (Labour) · Biofuels · HC Deb 27 October 2009 c1WH"."""
    who = speaker_of(result) + (f" ({result.speaker.party})" if result.speaker.party else "")
    parts = [who, result.debate or "Untitled debate", result.chamber or HOUSE_NAMES.get(result.house or "", ""),
             result.citation or result.reference or ""]
    return " · ".join(part for part in parts if part)


def feed_title(q: str, filters: Filters) -> str:
    named = [f"{name}: {getattr(filters, name)}" for name in FILTER_NAMES if getattr(filters, name) is not None]
    return f"Hansard: {q}" + (f" ({', '.join(named)})" if named else "")


class EntryLinks(BaseEntryExtension):
    """An entry's links with their rel, type and title, through feedgen's extension hook.

    (feedgen 1.0.0's own FeedEntry.link writes only the href of an entry's
    link, so every link would read as rel="alternate" of no type.)"""

    def __init__(self):
        self.links: list[dict[str, str]] = []

    def add(self, **attributes: str) -> None:
        self.links.append(attributes)

    def extend_atom(self, entry):
        for attributes in self.links:
            xml_elem("link", entry, **attributes)  # lxml escapes the attribute values
        return entry


def atom_feed(results: list[Result], *, q: str, filters: Filters, mode: str, group_by: str, k: int, offset: int,
              base_url: str, fallback_updated: dt.datetime) -> bytes:
    """The Atom document for one search's results (searched with sort=-date); `base_url` ends in "/"."""
    params = search_parameters(q, filters, mode, group_by, k, offset)
    query = urlencode(params)
    feed_url = f"{base_url}search?{urlencode([*params, ('format', 'atom')])}"
    page_url = f"{base_url}?{urlencode([*params, ('sort', '-date')])}"
    # Newest first by date and time (the search orders by date alone); undated passages left out.
    dated = sorted((r for r in results if r.date), key=entry_time, reverse=True)

    fg = FeedGenerator()
    fg.id(xml_text(f"{TAG}search?{query}"))
    fg.title(xml_text(feed_title(q, filters)))
    fg.subtitle(xml_text("Passages of UK Parliament debates (Hansard) matching this search, newest first"))
    fg.link(href=xml_text(feed_url), rel="self", type="application/atom+xml")
    fg.link(href=xml_text(page_url), rel="alternate", type="text/html")
    fg.author({"name": "hansard-search"})
    fg.generator("hansard-search")
    fg.language("en-GB")
    fg.rights("Parliamentary copyright, reused under the Open Parliament Licence v3.0")
    fg.updated(max((entry_time(r) for r in dated), default=fallback_updated))

    for result in dated:
        entry = fg.add_entry(order="append")
        entry.id(xml_text(TAG + "passage/" + quote(result.id, safe="/:")))
        entry.title(xml_text(f"{speaker_of(result)} — {result.debate or 'Untitled debate'}"))
        entry.author({"name": xml_text(speaker_of(result))})
        spoken = entry_time(result)
        entry.published(spoken)
        entry.updated(spoken)
        entry.summary(xml_text(citation_line(result)), type="text")
        entry.content(xml_text(f"{result.text}\n\n{citation_line(result)}"), type="text")
        entry.register_extension("links", EntryLinks, atom=True, rss=False)
        if result.url:  # already an http(s) address (Cited checks it)
            entry.links.add(href=xml_text(result.url), rel="alternate", type="text/html", title="Hansard")
        entry.links.add(href=xml_text(f"{base_url}passages/{quote(result.id, safe='')}"),
                        rel="related" if result.url else "alternate", type="application/json", title="This passage (JSON)")
        if result.house:
            entry.category(term=result.house, label=HOUSE_NAMES.get(result.house, result.house))
        if result.section:
            entry.category(term=xml_text(result.section), scheme=TAG + "section")
    return fg.atom_str(pretty=True)


def feed_response(results: list[Result], base_url: str, built_at: str, **search) -> Response:
    """The feed as the HTTP answer; an empty feed is dated by the index's build time."""
    try:
        fallback = dt.datetime.fromisoformat(built_at)
        fallback = fallback if fallback.tzinfo else fallback.replace(tzinfo=dt.timezone.utc)
    except (TypeError, ValueError):
        fallback = dt.datetime.now(dt.timezone.utc)
    return Response(atom_feed(results, base_url=base_url, fallback_updated=fallback, **search), media_type=MEDIA_TYPE)

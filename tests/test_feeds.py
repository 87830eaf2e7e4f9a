"""Any search as an Atom feed (/search?format=atom), on both stores: valid Atom (read back with feedparser), newest first."""

from __future__ import annotations

import calendar
import datetime as dt
from urllib.parse import parse_qsl, quote, unquote, urlsplit

import feedparser
import pytest
from lxml import etree

from indexer.store import Filters
from service.feeds import TAG, atom_feed
from service.models import Result

from fixtures import HOSTILE_SPEECH, MARKUP

ATOM = "{http://www.w3.org/2005/Atom}"


def feed_of(client, **params):
    """(the parsed feed, the response) of /search?format=atom, checked to be well-formed, valid Atom."""
    response = client.get("/search", params={**params, "format": "atom"})
    assert response.status_code == 200, response.text
    assert response.headers["content-type"] == "application/atom+xml; charset=utf-8"
    etree.fromstring(response.content)  # well-formed XML, or this raises
    feed = feedparser.parse(response.content)
    assert not feed.bozo, feed.get("bozo_exception")
    assert feed.version == "atom10"
    return feed, response


def passage_id(entry) -> str:
    assert entry.id.startswith(TAG + "passage/")
    return unquote(entry.id.removeprefix(TAG + "passage/"))


def links(entry) -> dict[str, dict]:
    return {link["type"]: link for link in entry.links}


def test_a_feed_is_the_search_newest_first_whatever_the_sort(client):
    feed, _ = feed_of(client, q="government policy", k=30)
    assert len(feed.entries) == 30
    times = [calendar.timegm(e.published_parsed) for e in feed.entries]
    assert times == sorted(times, reverse=True)
    dates = [e.published[:10] for e in feed.entries]
    assert dates == sorted(dates, reverse=True) and dates[0] == "2009-10-27"
    # The same passages as the JSON search sorted newest first; sort is ignored for a feed.
    newest = client.get("/search", params={"q": "government policy", "k": 30, "sort": "-date"}).json()["results"]
    assert all(r["date"] for r in newest)
    assert {passage_id(e) for e in feed.entries} == {r["id"] for r in newest}
    for sort in ("relevance", "date"):
        again, _ = feed_of(client, q="government policy", k=30, sort=sort)
        assert [e.id for e in again.entries] == [e.id for e in feed.entries]


def test_each_entry_has_speaker_date_debate_citation_text_and_links(client):
    feed, _ = feed_of(client, q="biofuels and deforestation", k=10)
    results = {r["id"]: r for r in client.get("/search", params={"q": "biofuels and deforestation", "k": 10}).json()["results"]}
    assert feed.entries and {passage_id(e) for e in feed.entries} == set(results)
    for entry in feed.entries:
        r = results[passage_id(entry)]
        assert entry.author == r["speaker"]["name"]
        assert entry.title == f"{r['speaker']['name']} — {r['debate']}"
        assert entry.published[:10] == r["date"] and entry.updated == entry.published
        if r["time"]:
            assert entry.published[11:16] == r["time"]
        content = entry.content[0]
        assert content.type == "text/plain"
        assert content.value.startswith(r["text"] + "\n\n")
        assert r["citation"] in content.value and r["debate"] in content.value
        assert r["citation"] in entry.summary
        assert {t.term for t in entry.tags} == {r["house"], r["section"]}
        by_type = links(entry)
        passage = by_type["application/json"]["href"]
        assert passage == "http://testserver/passages/" + quote(r["id"], safe="")
        assert client.get(urlsplit(passage).path).json()["text"] == r["text"]  # (TestClient: path only)
        if r["url"]:
            assert by_type["text/html"]["href"] == r["url"] and by_type["text/html"]["rel"] == "alternate"
            assert entry.link == r["url"]
        else:
            assert entry.link == passage


def test_the_feed_names_the_search_and_links_to_itself_and_to_the_search_page(client):
    params = {"q": '"carbon footprint" fuel', "house": "commons", "mode": "keyword", "k": 5}
    feed, _ = feed_of(client, **params)
    assert feed.feed.title == 'Hansard: "carbon footprint" fuel (house: commons)'
    assert feed.feed.id.startswith(TAG + "search?")
    assert feed.feed.updated == max(e.updated for e in feed.entries)
    by_rel = {link["rel"]: link for link in feed.feed.links}
    self_url, page_url = by_rel["self"]["href"], by_rel["alternate"]["href"]
    assert by_rel["self"]["type"] == "application/atom+xml" and by_rel["alternate"]["type"] == "text/html"
    assert self_url.startswith("http://testserver/search?") and page_url.startswith("http://testserver/?")
    self_params, page_params = dict(parse_qsl(urlsplit(self_url).query)), dict(parse_qsl(urlsplit(page_url).query))
    assert self_params == {"q": params["q"], "house": "commons", "mode": "keyword", "group_by": "passage", "k": "5",
                           "format": "atom"}
    assert page_params == {**{k: v for k, v in self_params.items() if k != "format"}, "sort": "-date"}
    # The self link is the same feed; the id is stable and names the search, not the host.
    again, _ = feed_of(client, **{k: v for k, v in self_params.items() if k != "format"})
    assert again.feed.id == feed.feed.id and [e.id for e in again.entries] == [e.id for e in feed.entries]
    other, _ = feed_of(client, q='"carbon footprint"', house="commons", mode="keyword", k=5)
    assert other.feed.id != feed.feed.id
    assert client.get(urlsplit(page_url).path).status_code == 200


def test_filters_phrases_and_exclusions_are_honoured(client):
    feed, _ = feed_of(client, q='"carbon footprint" fuel', k=50)
    assert len(feed.entries) == 2 and all("carbon footprint" in e.content[0].value.lower() for e in feed.entries)
    feed, _ = feed_of(client, q="surveillance cameras -Hikvision", k=50)
    assert feed.entries and not any("hikvision" in e.content[0].value.lower() for e in feed.entries)
    feed, _ = feed_of(client, q="government statement", house="commons", date_from="2009-10-27", k=20)
    assert feed.entries and all(e.published[:10] == "2009-10-27" for e in feed.entries)
    assert feed.feed.title == "Hansard: government statement (house: commons, date_from: 2009-10-27)"


def test_filters_alone_are_a_feed(client):
    feed, _ = feed_of(client, q='speaker:"Ian Lucas"', k=20)
    assert len(feed.entries) == 10 and {e.author for e in feed.entries} == {"Ian Lucas"}
    assert feed.feed.title == 'Hansard: speaker:"Ian Lucas"'
    feed, _ = feed_of(client, q="section:wms", k=100)
    assert len(feed.entries) == 100 and feed.entries[0].published[:10] == "2009-10-27"
    assert {t.term for e in feed.entries for t in e.tags} == {"commons", "wms"}


def test_a_search_matching_nothing_is_an_empty_valid_feed(client):
    feed, _ = feed_of(client, q="palm oil", speaker="a\x00")  # (a NUL: dropped from the XML, kept in the URLs)
    assert feed.entries == [] and feed.feed.updated and feed.feed.title == "Hansard: palm oil (speaker: a)"


def test_characters_xml_cannot_hold_in_the_query_still_make_a_feed(client):
    feed, _ = feed_of(client, q="palm\x01oil \x0b\ufffe\x7f", k=3)
    assert feed.feed.title.startswith("Hansard: palmoil")
    assert "%01" in {link["rel"]: link for link in feed.feed.links}["self"]["href"]


@pytest.mark.parametrize(
    "params, parameter",
    [({}, "q"), ({"q": ""}, "q"), ({"q": "   "}, "q"), ({"q": "x", "k": 0}, "k"), ({"q": "x", "k": 101}, "k"),
     ({"q": "x", "offset": -1}, "offset"), ({"q": "x" * 1001}, "q"), ({"q": "x", "house": "senate"}, "house"),
     ({"q": "x", "mode": "magic"}, "mode"), ({"q": "x house:senate"}, "q"), ({"q": "x", "party": "Pirates"}, "party"),
     ({"q": "x", "date_from": "2010-01-01", "date_to": "2009-01-01"}, "date_from")],
)
def test_bad_parameters_of_a_feed_are_422_naming_the_parameter(client, params, parameter):
    response = client.get("/search", params={**params, "format": "atom"})
    assert response.status_code == 422, response.text
    assert response.json()["message"].startswith(f"{parameter}:")


def test_similar_has_no_feed_and_unknown_formats_are_refused(client):
    assert client.get("/similar", params={"text": "biofuels", "format": "atom"}).status_code == 422
    assert client.get("/search", params={"q": "biofuels", "format": "rss"}).json()["message"].startswith("format:")


def test_the_api_docs_list_the_atom_answer(client):
    schema = client.get("/openapi.json").json()
    search = schema["paths"]["/search"]["get"]
    assert "application/atom+xml" in search["responses"]["200"]["content"]
    assert "application/atom+xml" not in schema["paths"]["/similar"]["get"]["responses"]["200"]["content"]
    format_parameter = next(p for p in search["parameters"] if p["name"] == "format")
    assert "atom" in str(format_parameter["schema"]) and "atom" in format_parameter["description"]


def test_undated_passages_are_left_out(client):
    # The contribution page (the one Lords record here) has no date: Atom cannot place it, so the feed leaves it out.
    results = client.get("/search", params={"q": "procurement", "mode": "keyword", "k": 50}).json()["results"]
    undated = {r["id"] for r in results if not r["date"]}
    assert undated and len(undated) < len(results)
    feed, _ = feed_of(client, q="procurement", mode="keyword", k=50)
    assert {passage_id(e) for e in feed.entries} == {r["id"] for r in results} - undated
    lords, _ = feed_of(client, q="house:lords")
    assert lords.entries == [] and lords.feed.updated  # (an empty feed is dated by the index's build)


def test_a_feed_is_built_from_results_alone(client):
    results = [Result.model_validate(r) for r in client.get("/search", params={"q": "biofuels", "k": 3}).json()["results"]]
    body = atom_feed(results, q="biofuels", filters=Filters(), mode="hybrid", group_by="passage", k=3, offset=0,
                     base_url="https://example.org/", fallback_updated=dt.datetime(2020, 1, 1, tzinfo=dt.timezone.utc))
    feed = feedparser.parse(body)
    assert not feed.bozo and {passage_id(e) for e in feed.entries} == {r.id for r in results}
    assert all(link["href"].startswith("https://example.org/") for link in feed.feed.links)
    assert all(links(e)["application/json"]["href"].startswith("https://example.org/passages/") for e in feed.entries)


# ---------------------------------------------------------------- markup in the query and in the records


def _only_atom(response) -> None:
    """Nothing in the document is markup but the feed's own: no element outside Atom's."""
    tree = etree.fromstring(response.content)
    assert {el.tag for el in tree.iter()} <= {ATOM + name for name in (
        "feed", "id", "title", "subtitle", "updated", "link", "author", "name", "generator", "rights", "entry",
        "published", "summary", "content", "category")}
    assert b"<script" not in response.content and b"<img" not in response.content


def test_markup_in_the_query_comes_back_as_text(hostile):
    # (Not a test of what it finds: MARKUP holds a quoted phrase, "window.pwned=2", which the two stores' word
    # splitting matches differently.)
    feed, response = feed_of(hostile, q=f"lighthouse keepers {MARKUP}", debate=MARKUP)
    _only_atom(response)
    assert feed.feed.title == f"Hansard: lighthouse keepers {MARKUP} (debate: {MARKUP})"
    by_rel = {link["rel"]: link for link in feed.feed.links}
    for rel in ("self", "alternate"):
        params = dict(parse_qsl(urlsplit(by_rel[rel]["href"]).query))
        assert params["q"] == f"lighthouse keepers {MARKUP}" and params["debate"] == MARKUP


def test_markup_in_the_records_comes_back_as_text(hostile):
    feed, response = feed_of(hostile, q="lighthouse keepers Farne Islands", speaker=f"Keeper {MARKUP}")
    _only_atom(response)
    assert feed.feed.title == f"Hansard: lighthouse keepers Farne Islands (speaker: Keeper {MARKUP})"
    assert len(feed.entries) == 2
    texts = {p["text"] for p in HOSTILE_SPEECH["paragraphs"]}
    for entry in feed.entries:
        assert passage_id(entry).startswith(HOSTILE_SPEECH["id"] + "#")
        assert entry.author == HOSTILE_SPEECH["speaker"]["name"]
        assert entry.title == f"{HOSTILE_SPEECH['speaker']['name']} — Lighthouses {MARKUP}: Keepers {MARKUP}"
        text, _, line = entry.content[0].value.partition("\n\n")
        assert text in texts and f"Lighthouses {MARKUP}" in line
        assert links(entry)["text/html"]["href"] == HOSTILE_SPEECH["url"]
        assert links(entry)["application/json"]["href"].endswith("/passages/" + quote(passage_id(entry), safe=""))

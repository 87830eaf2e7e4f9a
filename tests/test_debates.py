"""Debates as resources: every passage's debate_id, and /debates/{id} on both stores."""

import datetime as dt
from urllib.parse import quote

import pytest

from indexer.sources.readers.parlparse import read_parlparse
from indexer.store import Location, open_store
from fixtures import XML

WH_FILE = XML / "2009-10_westminhall" / "westminster2009-10-27a.xml"
BIOFUELS = "uk.org.publicwhip/westminhall/2009-10-27a.1.0"  # "[David Taylor in the Chair] — Biofuels"
MILITARY = "uk.org.publicwhip/westminhall/2009-10-27a.24.0"  # a "[Mrs. Joan Humble in the Chair]" heading at 37.1 within it


@pytest.fixture(scope="module")
def wh_speeches(members):
    return list(read_parlparse(WH_FILE, members))


def test_a_westminster_hall_debate_opens_at_its_heading_and_a_chair_notice_does_not_split_it(wh_speeches):
    ids = [s.debate_id for s in wh_speeches]
    assert all(ids)
    opened = list(dict.fromkeys(ids))
    assert opened[:2] == [BIOFUELS, MILITARY]
    military = [s for s in wh_speeches if s.debate_id == MILITARY]
    columns = [s.column.start for s in military]
    assert min(columns) < 37 < max(columns)  # before and after the chair notice, one debate
    assert {s.debate for s in military} == {"Military Vehicles and Aircraft"}


def test_a_bills_clause_headings_stay_in_the_bills_debate(members):
    speeches = list(read_parlparse(XML / "2009-10_debates" / "debates2009-10-26b.xml", members))
    marine = {s.debate_id for s in speeches if (s.major_heading or "").startswith("Marine and Coastal Access Bill [Lords]")
              and "Programme" not in (s.major_heading or "")}
    assert len(marine) == 1
    clauses = [s for s in speeches if s.debate_id in marine and s.minor_heading]
    assert len(clauses) > 10  # clause and amendment headings beneath the Bill, one debate


def _all_passages(store):
    index = open_store(store.location)
    try:
        return [p for _, p in index.iter_passages()]
    finally:
        index.close()


def test_every_passage_debate_id_resolves_to_a_debate_that_holds_it(client, store):
    passages = _all_passages(store)
    by_debate = {}
    for p in passages:
        if p.debate_id is not None:
            by_debate.setdefault(p.debate_id, set()).add(p.id)
    parlparse = [p for p in passages if p.speech_id.startswith("uk.org.publicwhip/")]
    assert parlparse and all(p.debate_id for p in parlparse)
    for debate_id, ids in by_debate.items():
        response = client.get("/debates/" + quote(debate_id, safe=""))
        assert response.status_code == 200, debate_id
        body = response.json()
        assert body["id"] == debate_id and not body["truncated"]
        held = {p["id"] for s in body["speeches"] for p in s["passages"]}
        assert held == ids
        assert body["total_passages"] == len(ids)


def test_the_biofuels_debate_holds_its_speeches_in_order(client, wh_speeches):
    body = client.get("/debates/" + quote(BIOFUELS, safe="")).json()
    assert body["title"] == "Biofuels" and body["date"] == "2009-10-27"
    assert body["house"] == "commons" and body["section"] == "westminhall"
    expected = [s.id for s in wh_speeches if s.debate_id == BIOFUELS]
    assert [s["id"] for s in body["speeches"]] == expected
    assert body["column"]["start"] == 1 and body["column"]["end"] == 24 and body["column"]["suffix"] == "WH"
    for speech in body["speeches"]:
        assert speech["debate_id"] == BIOFUELS
        assert [p["position"] for p in speech["passages"]] == list(range(len(speech["passages"])))
        assert all(p["speech_id"] == speech["id"] and p["debate_id"] == BIOFUELS for p in speech["passages"])
    # Each speech as /speeches/{id} gives it.
    first = body["speeches"][0]
    alone = client.get("/speeches/" + quote(first["id"], safe="")).json()
    assert first["passages"] == alone["passages"] and first["speaker"] == alone["speaker"]


def test_speeches_either_side_of_a_chair_notice_share_one_debate(client):
    body = client.get("/debates/" + quote(MILITARY, safe="")).json()
    starts = [s["column"]["start"] for s in body["speeches"]]
    assert min(starts) < 37 <= max(starts)
    assert body["title"] == "Military Vehicles and Aircraft"


def test_an_unknown_debate_is_404(client):
    assert client.get("/debates/uk.org.publicwhip/debate/1900-01-01a.1.1").status_code == 404
    assert client.get("/debates/" + quote("x" * 600, safe="")).status_code == 404


def test_a_debate_id_also_works_unencoded(client):
    assert client.get(f"/debates/{BIOFUELS}").json()["id"] == BIOFUELS


def test_a_long_debate_is_cut_with_a_flag(client, monkeypatch):
    from service.routes import records

    monkeypatch.setattr(records, "MAX_DEBATE_PASSAGES", 5)
    body = client.get("/debates/" + quote(BIOFUELS, safe="")).json()
    assert body["truncated"] and body["total_passages"] == 5
    assert sum(len(s["passages"]) for s in body["speeches"]) == 5


# ---------------------------------------------------------------- /read/{debate_id}


def test_the_read_page_shows_every_speech_in_order_with_anchors_and_columns(client):
    from html.parser import HTMLParser

    body = client.get("/debates/" + quote(BIOFUELS, safe="")).json()
    response = client.get("/read/" + quote(BIOFUELS, safe=""))
    assert response.status_code == 200 and response.headers["content-type"].startswith("text/html")
    policy = response.headers["content-security-policy"]
    assert "script-src 'self'" in policy and policy.endswith("frame-ancestors 'self'")
    assert response.headers["x-frame-options"] == "SAMEORIGIN" and response.headers["x-content-type-options"] == "nosniff"

    class Ids(HTMLParser):
        def __init__(self):
            super().__init__()
            self.passages, self.scripts, self.inline_styles, self.anchors = [], 0, 0, []

        def handle_starttag(self, tag, attrs):
            attrs = dict(attrs)
            self.scripts += tag == "script"
            self.inline_styles += "style" in attrs or tag == "style"
            if tag == "p" and attrs.get("class") == "passage":
                self.passages.append(attrs["id"])
            if tag == "a" and attrs.get("class") == "anchor":
                self.anchors.append(attrs["href"])

    page = Ids()
    page.feed(response.text)
    expected = [p["id"] for s in body["speeches"] for p in s["passages"]]
    assert page.passages == expected  # every passage in order, its id as the element's id
    assert page.anchors == ["#" + quote(i, safe="") for i in expected]
    assert not page.scripts and not page.inline_styles  # the CSP allows neither
    assert "Biofuels" in response.text and "Column 1WH" in response.text and "Anne Main" in response.text
    assert "(Conservative)" in response.text
    # The next debate of the day, in Westminster Hall; none before the first.
    assert 'rel="next" href="/read/' + quote(MILITARY, safe="") + '"' in response.text
    assert 'rel="prev"' not in response.text
    later = client.get("/read/" + quote(MILITARY, safe="")).text
    assert 'rel="prev" href="/read/' + quote(BIOFUELS, safe="") + '"' in later


def test_the_read_page_of_an_unknown_debate_is_404_and_escapes_what_it_shows(client):
    response = client.get("/read/" + quote('<script>alert(1)</script>"x', safe=""))
    assert response.status_code == 404
    assert "<script>" not in response.text and "&lt;script&gt;" in response.text
    assert response.headers["content-security-policy"].endswith("frame-ancestors 'self'")


def test_the_read_page_escapes_the_text_it_shows():
    from indexer.sources.records import Passage, Speaker
    from indexer.sources.references import Column
    from service.routes.pages import read_html

    hostile = '<img src=x onerror=alert(1)>"'
    p = Passage(id=f'{hostile}#0', speech_id=hostile, position=0, text=hostile, speaker=Speaker(name=hostile, party=hostile),
                debate=hostile, debate_id=hostile, column=Column(start=3, suffix="<b>"), time="10:25")
    html = read_html(hostile, [p], [])
    assert "<img" not in html and "<b>" not in html and "&lt;img src=x onerror=alert(1)&gt;&quot;" in html
    assert 'href="#%3Cimg%20src%3Dx%20onerror%3Dalert%281%29%3E%22%230"' in html


def test_an_embedded_index_written_before_debate_ids_answers_no_debate(small_index, tmp_path):
    import shutil
    import sqlite3

    from indexer.store.embedded import EmbeddedStore
    from indexer.store.embedded.layout import METADATA, live_version

    copy = tmp_path / "index"
    shutil.copytree(small_index, copy)
    db = sqlite3.connect(str(copy / live_version(copy) / METADATA))
    with db:
        db.execute("DROP INDEX passages_debate")
        db.execute("ALTER TABLE passages DROP COLUMN debate_id")
    db.close()
    store = EmbeddedStore(copy)
    try:
        assert store.debate(BIOFUELS) == [] and store.debates_on(dt.date(2009, 10, 27)) == []
        assert store.passage(next(p.id for _, p in store.iter_passages())).debate_id is None
    finally:
        store.close()


def test_jsonl_may_carry_a_debate_id_and_its_passages_inherit_it():
    from pydantic import ValidationError

    from indexer.sources.passages import speech_passages
    from indexer.sources.records import Speech

    speech = Speech.model_validate({"id": "s1", "paragraphs": ["One.", "Two."], "debate_id": "debate-7"})
    assert {p.debate_id for p in speech_passages(speech, 5)} == {"debate-7"}
    assert Speech.model_validate({"id": "s2", "paragraphs": ["x"]}).debate_id is None
    for bad in (" ", "a\x00b", "x" * 501):
        with pytest.raises(ValidationError):
            Speech.model_validate({"id": "s3", "paragraphs": ["x"], "debate_id": bad})


def test_a_written_answer_is_read_below_the_question_it_answers(tmp_path, encoder, members):
    """ParlParse's ques/reply pairs: one debate, the question first, so /read shows it above its answer."""
    from fixtures import first_speeches
    from indexer.build import build_index

    wrans = tmp_path / "wrans" / "lordswrans2009-10-26a.xml"
    wrans.parent.mkdir()
    wrans.write_text(first_speeches(XML / "2009-10_lordswrans" / "lordswrans2009-10-26a.xml", 4), encoding="latin-1")
    build_index([wrans], tmp_path / "index", encoder, members)
    store = open_store(Location.of(tmp_path / "index"))
    try:
        debates = {p.debate_id for _, p in store.iter_passages()}
        assert len(debates) == 2  # two questions, each with its answer
        for debate_id in debates:
            speeches = list(dict.fromkeys((p.speech_id, p.speaker.name) for p in store.debate(debate_id)))
            (question, asker), (answer, minister) = speeches  # in this order: the question above
            assert store.speech(question)[0].text.startswith("To ask") and asker != minister
            assert not store.speech(answer)[0].text.startswith("To ask")
    finally:
        store.close()

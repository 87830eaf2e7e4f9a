"""Parliament's own search records (the Solr JSON behind contribution pages) read as a source.

Read from the real files in ../shared/data/hansard/parliament-search-records;
malformed and oversized files are built here from them.
"""

import datetime as dt
import json

import pytest

from indexer.sources.errors import SourceError, SourceWarning
from indexer.sources.passages import speech_passages
from indexer.sources.readers import detect_format, fill_from_records, read_source, search_records
from indexer.sources.references import Column

from fixtures import CONTRIBUTION_PAGE, HANSARD

RECORDS = HANSARD / "parliament-search-records"
STATEMENT = RECORDS / "object_Commons-2012-12-18-12121863000016.json"
QUESTION = RECORDS / "object_Lords-2012-12-10-1212106000156.json"


def read(path, members, problems=None):
    return list(read_source(path, members, (problems if problems is not None else []).append))


def _answer(path):
    return json.loads(path.read_text(encoding="utf-8"))


def _write(path, docs):
    path.write_text(json.dumps({"responseHeader": {"status": 0}, "response": {"numFound": len(docs), "start": 0, "docs": docs}}),
                    encoding="utf-8")
    return path


@pytest.mark.parametrize("name, count", [
    ("object_Commons-2012-12-18-12121863000016.json", 1),  # one written statement
    ("object_Lords-2012-12-10-1212106000156.json", 2),  # one written question: the question and its answer
    ("results_written_questions.json", 20),  # ten questions, each answered
    ("results_written_statements.json", 10),
])
def test_every_record_file_is_read_without_problems(members, name, count):
    path = RECORDS / name
    assert detect_format(path.read_bytes()[:16384]) == "search-records"
    problems = []
    speeches = read(path, members, problems)
    assert problems == []
    assert len(speeches) == count
    assert len({s.id for s in speeches}) == count
    docs = _answer(path)["response"]["docs"]
    assert {s.id.removesuffix("/question").removesuffix("/answer") for s in speeches} == {
        "parliament/" + d["uri"].split("/", 3)[3] for d in docs}
    for s in speeches:
        assert s.house in ("commons", "lords") and s.date and s.session == "2012-13"
        assert s.speaker.name and s.speaker.person_id.startswith("parliament-ses/")
        assert s.column.volume and s.column.start and s.column.suffix in ("WS", "WA")
        assert s.section == ("wms" if s.column.suffix == "WS" else "wrans")
        assert s.url.startswith("http://www.publications.parliament.uk/")


def test_a_written_statement_field_by_field(members):
    [speech] = read(STATEMENT, members)
    assert speech.id == "parliament/Commons/2012-12-18/12121863000016"
    assert speech.speaker.name == "David Willetts"  # printed "The Minister for Universities and Science (Mr David Willetts)"
    assert speech.speaker.person_id == "parliament-ses/304401"
    assert speech.speaker.party is None  # the record gives only a thesaurus id for it: not guessed
    assert (speech.house, speech.section, speech.type) == ("commons", "wms", "Written Statement")
    assert speech.date == dt.date(2012, 12, 18)
    assert speech.column == Column(volume=555, start=77, end=79, suffix="WS")  # identifier_t "555 cc77-9WS"
    assert speech.debate == "Business, Innovation and Skills: EU Competitiveness Council"
    assert speech.session == "2012-13"
    assert speech.url == ("http://www.publications.parliament.uk/pa/cm201213/cmhansrd/cm121218/wmstext/"
                          "121218m0001.htm#12121863000016")
    assert speech.paragraphs[0].text == (
        "My noble Friend, the Minister of State for Trade and Investment (joint with Foreign and Commonwealth Office), "
        "Lord Green, has today made the following statement:")
    assert speech.paragraphs[1].text.startswith("The EU Competitiveness Council took place in Brussels on 10 and 11 December 2012.")
    assert len(speech.paragraphs) == _answer(STATEMENT)["response"]["docs"][0]["content_t"][0].count("<p>")
    assert not any("<" in p.text or "\n" in p.text for p in speech.paragraphs)
    passages = speech_passages(speech, 256)
    # Our citation is the record's own.
    assert passages[0].citation == _answer(STATEMENT)["response"]["docs"][0]["bibliographicCitation_t"][0]
    assert passages[0].reference == "555 cc77-9WS"


def test_a_written_question_and_its_answer_are_two_linked_speeches(members):
    question, answer = read(QUESTION, members)
    base = "parliament/Lords/2012-12-10/1212106000156"
    assert (question.id, answer.id) == (f"{base}/question", f"{base}/answer")
    assert question.speaker.name == "Lord Alton of Liverpool" and question.speaker.person_id == "parliament-ses/298836"
    assert answer.speaker.name == "Baroness Warsi" and answer.speaker.person_id == "parliament-ses/304301"
    assert (question.type, answer.type) == ("Written Question", "Written Answer")
    for s in (question, answer):
        assert (s.house, s.section, s.date, s.debate) == ("lords", "wrans", dt.date(2012, 12, 10), "BBC: World Service")
        assert s.column == Column(volume=741, start=189, end=190, suffix="WA")  # "741 cc189-190WA" beside "HL3811"
    assert question.column is not answer.column
    assert len(question.paragraphs) == 1
    assert question.paragraphs[0].text.startswith("To ask Her Majesty’s Government what criteria have been used")
    assert question.paragraphs[0].text.endswith("[HL3811]")
    # "... the relative importance of each market, the</p><p>availability of ...": one paragraph again.
    assert len(answer.paragraphs) == 2
    assert "each market, the availability of other national and regional independent" in answer.paragraphs[1].text
    assert speech_passages(answer, 256)[0].citation == "HL Deb 10 December 2012 vol 741 cc189-90WA"


def test_malformed_records_are_skipped_with_a_message(tmp_path, members):
    good = _answer(STATEMENT)["response"]["docs"][0]
    docs = [
        "not a record",
        {**good, "uri": None},
        {**good, "uri": "http://hansard.intranet.data.parliament.uk/Commons/2012-12-18/2", "date_dt": "18/12/2012"},
        {**good, "uri": "http://hansard.intranet.data.parliament.uk/Commons/2012-12-18/3", "memberPrinted_t": {"x": 1}},
        {**good, "uri": "http://hansard.intranet.data.parliament.uk/Commons/2012-12-18/4",
         "content_t": ["<p> </p>"], "statementText_t": None},
        {**good, "uri": "javascript:alert(1)"},
        good,
        good,  # the same record twice
    ]
    path = _write(tmp_path / "records.json", docs)
    problems = []
    speeches = read(path, members, problems)
    assert [s.id for s in speeches] == ["parliament/Commons/2012-12-18/12121863000016"]
    assert all(p.path == path and not isinstance(p, SourceWarning) for p in problems)
    reasons = [p.reason for p in problems]
    assert [r.split(" (", 1)[0] for r in reasons] == [f"search record {n}" for n in (1, 2, 3, 4, 5, 6, 8)]
    assert "a record is a JSON object" in reasons[0]
    assert "no uri" in reasons[1]
    assert "date_dt '18/12/2012' is not a date" in reasons[2]
    assert "memberPrinted_t is not text" in reasons[3]
    assert "no text" in reasons[4]
    assert "not a record address" in reasons[5]
    assert "the same record again" in reasons[6]
    assert all(r.endswith("skipped") for r in reasons)


@pytest.mark.parametrize("content, reason", [
    ('{"response": {"docs": [{"uri": ', "not valid JSON"),
    ('{"response": {"numFound": 0}}', "no response.docs list"),
    ('{"response": ' * 100_000 + "1" + "}" * 100_000, "not valid JSON"),  # nesting past the stack
])
def test_a_file_that_is_no_search_answer_is_refused(tmp_path, members, content, reason):
    path = tmp_path / "answer.json"
    path.write_text(content, encoding="utf-8")
    with pytest.raises(SourceError) as caught:
        read(path, members)
    assert reason in caught.value.reason and caught.value.path == path


def test_an_oversized_file_is_refused_before_it_is_parsed(members, monkeypatch):
    def parse(*args, **kwargs):
        raise AssertionError("parsed")

    monkeypatch.setattr(search_records, "MAX_FILE_BYTES", 20_000)
    monkeypatch.setattr(search_records.json, "loads", parse)
    with pytest.raises(SourceError) as caught:
        read(STATEMENT, members)  # 28 KB, refused from its size before a byte of it is read
    assert "too large: 28 KB, over the limit of 20 KB" in caught.value.reason
    with pytest.raises(SourceError) as caught:  # the reader itself bounds what it is given, too
        list(search_records.read_search_records(STATEMENT, STATEMENT.read_text(encoding="utf-8"), [].append))
    assert "too large" in caught.value.reason
    with pytest.raises(AssertionError):  # the small one is parsed: the bound, not the parser, refused the other
        read(QUESTION, members)


def test_html_is_read_as_text_only(tmp_path, members):
    good = _answer(STATEMENT)["response"]["docs"][0]
    html = ("<p>Rail &amp; bus fares <script>alert('x')</script>rose.</p><!-- a comment --><style>p{}</style>"
            "<table><tr><td>North</td><td>4%</td></tr></table><p><img src='http://example.org/x.png'>End"
            "<br>of it.</p><div><div>Nested.</div></div>\x00")
    deep = "<p>Top.</p>" + "<div>" * 5000 + "Deep." + "</div>" * 5000
    path = _write(tmp_path / "html.json", [{**good, "content_t": [html], "statementText_t": None},
                                           {**good, "uri": good["uri"] + "7", "content_t": [deep], "statementText_t": None}])
    problems = []
    [speech] = read(path, members, problems)
    assert [p.text for p in speech.paragraphs] == ["Rail & bus fares rose.", "North 4%", "End of it.", "Nested."]
    # libxml2 would keep "Top." and silently drop the words below 256 levels: the record is refused instead.
    assert [p.reason.split(": ", 1)[1] for p in problems] == ["content_t is HTML nested too deeply to read whole; skipped"]


def _record_for_page(page, text, reference="823 cc554-7GC"):
    return {
        "uri": "http://hansard.intranet.data.parliament.uk/Lords/2023-07-05/23070545000123",
        "date_dt": "2023-07-05T00:00:00Z", "title_t": "Procurement Bill [HL]",
        "identifier_t": [reference], "memberPrinted_t": ["Lord Alton of Liverpool"], "member_ses": [298836],
        "session_t": ["2022-23"], "content_t": [text],
    }


def test_a_record_fills_the_contribution_pages_missing_speaker_and_date(tmp_path, members):
    [page] = read(CONTRIBUTION_PAGE, members)
    assert page.speaker.name is None and page.date is None
    # No record in the sample data describes the page's contribution (they are of 2012, it of 2023):
    real = [s for f in sorted(RECORDS.iterdir()) for s in read(f, members)]
    assert fill_from_records([page, *real]) == [page, *real]
    # So one is built from the page's own reference and the start of its words.
    first = "<p>" + page.paragraphs[0].text[:400] + "</p>"
    [record] = read(_write(tmp_path / "r.json", [_record_for_page(page, first)]), members)
    assert record.house == "lords" and record.column == page.column
    fills = []
    filled, same_record = fill_from_records([page, record], on_fill=lambda p, r: fills.append((p.id, r.id)))
    assert same_record is record
    assert filled.speaker.name == "Lord Alton of Liverpool" and filled.speaker.person_id == "parliament-ses/298836"
    assert filled.date == dt.date(2023, 7, 5)
    assert fills == [(page.id, record.id)]
    # The page's own words, id, title and reference stay.
    assert (filled.id, filled.paragraphs, filled.debate, filled.column, filled.session) == (
        page.id, page.paragraphs, page.debate, page.column, page.session)
    assert speech_passages(filled, 256)[0].citation == "HL Deb 5 July 2023 vol 823 cc554-7GC"


@pytest.mark.parametrize("text, reference", [
    ("<p>My Lords, I beg to move that the House do now adjourn, and I shall be brief.</p>", "823 cc554-7GC"),
    (None, "823 cc554-7"),  # the page's words, but printed in the chamber's columns, not Grand Committee's
    (None, "822 cc554-7GC"),
])
def test_a_record_of_another_contribution_fills_nothing(tmp_path, members, text, reference):
    [page] = read(CONTRIBUTION_PAGE, members)
    text = text or "<p>" + page.paragraphs[0].text + "</p>"
    [record] = read(_write(tmp_path / "r.json", [_record_for_page(page, text, reference)]), members)
    [kept, _] = fill_from_records([page, record])
    assert kept is page and kept.speaker.name is None and kept.date is None


def test_two_records_that_fit_equally_fill_nothing(tmp_path, members):
    [page] = read(CONTRIBUTION_PAGE, members)
    first = "<p>" + page.paragraphs[0].text + "</p>"
    one = _record_for_page(page, first)
    other = {**one, "uri": one["uri"] + "9", "memberPrinted_t": ["Lord True"]}
    records = read(_write(tmp_path / "r.json", [one, other]), members)
    assert fill_from_records([page, *records])[0] is page


def test_search_answers_and_jsonl_are_told_apart():
    assert detect_format(b'{"responseHeader": {"status": 0}, "response": {"docs": []}}') == "search-records"
    assert detect_format(b'\n  {"response": {"docs": []}}') == "search-records"
    assert detect_format(b'{"id": "response", "paragraphs": ["{\\"response\\": 1}"]}\n') == "jsonl"


def test_an_indexing_run_fills_the_page_from_a_record_given_beside_it(tmp_path, members, encoder):
    from indexer.build import build_index
    from indexer.store import Location, open_store

    [page] = read(CONTRIBUTION_PAGE, members)
    first = "<p>" + page.paragraphs[0].text[:400] + "</p>"
    (tmp_path / "records").mkdir()
    records = _write(tmp_path / "records" / "r.json", [_record_for_page(page, first)])
    summary = build_index([CONTRIBUTION_PAGE, records], tmp_path / "index", encoder, members)
    assert not summary.problems
    assert any("filled from the Parliament search record" in w.reason for w in summary.warnings)
    store = open_store(Location.of(tmp_path / "index"))
    try:
        [first_passage, *_] = store.speech(page.id)
        assert first_passage.speaker.name == "Lord Alton of Liverpool" and first_passage.date == dt.date(2023, 7, 5)
        assert first_passage.citation == "HL Deb 5 July 2023 vol 823 cc554-7GC"
    finally:
        store.close()

"""Readers turn real source files into speech records with the right fields.

Known speeches are checked field by field in every kind of collection, in
both the old ParlParse form (speakerid=member/N, ISO-8859-1 with an entity
DTD) and the new one (person_id).
"""

import datetime as dt
import json

import pytest

from indexer.sources.errors import SourceError, SupersededFile
from indexer.sources.readers import detect_format, discover, read_source
from indexer.sources.references import Column

from fixtures import CONTRIBUTION_PAGE, XML


def read(path, members, problems=None):
    return list(read_source(path, members, (problems if problems is not None else []).append))


def speech_by_id(path, members, speech_id):
    found = [s for s in read(path, members) if s.id == speech_id]
    assert found, f"{speech_id} not read from {path}"
    return found[0]


KNOWN = [
    # collection file, speech id, name, person id, party, date, time, debate, column
    ("2009-10_debates/debates2009-10-26b.xml", "uk.org.publicwhip/debate/2009-10-26b.1.7",
     "David Taylor", "uk.org.publicwhip/person/10586", "Labour", "2009-10-26", "14:30",
     "Home Department: Animals (Scientific Procedures) Act", Column(start=1, end=1), "c1", "commons", "debates"),
    ("2009-10_lordspages/daylord2009-10-26a.xml", "uk.org.publicwhip/lords/2009-10-26a.971.2",
     "Lord Bach", "uk.org.publicwhip/person/13526", "Labour", "2009-10-26", "14:36",
     "Commonwealth: Privy Council — Question", Column(start=971, end=971), "c971", "lords", "lords"),
    ("2009-10_westminhall/westminster2009-10-27a.xml", "uk.org.publicwhip/westminhall/2009-10-27a.1.2",
     "Anne Main", "uk.org.publicwhip/person/11798", "Conservative", "2009-10-27", "09:30",
     "Biofuels", Column(start=1, end=2, suffix="WH"), "cc1-2WH", "commons", "westminhall"),
    ("2009-10_wrans/answers2009-10-26f.xml", "uk.org.publicwhip/wrans/2009-10-26f.294961.r0",
     "Stuart Bell", "uk.org.publicwhip/person/10036", "Labour", "2009-10-26", None,
     "Church Commissioners: Ministers of Religion", Column(start=1, end=1, suffix="W"), "c1W", "commons", "wrans"),
    ("2009-10_lordswrans/lordswrans2009-10-26a.xml", "uk.org.publicwhip/wrans/2009-10-26a.101.1",
     "Lord Moonie", "uk.org.publicwhip/person/13583", "Labour", "2009-10-26", None,
     "Armed Forces: Unmanned Aircraft", Column(start=101, end=101, suffix="WA"), "c101WA", "lords", "wrans"),
    ("2009-10_wms/ministerial2009-10-26c.xml", "uk.org.publicwhip/wms/2009-10-26c.1WS.2",
     "Ian Lucas", "uk.org.publicwhip/person/11057", "Labour", "2009-10-26", None,
     "Business, Enterprise and Regulatory Reform: EU Informal Competitiveness Council",
     Column(start=1, end=2, suffix="WS"), "cc1-2WS", "commons", "wms"),
    ("2009-10_lordswms/lordswms2009-10-26a.xml", "uk.org.publicwhip/wms/2009-10-26a.87.1",
     "Lord Bach", "uk.org.publicwhip/person/13526", "Labour", "2009-10-26", None,
     "Crime: Multi-agency Public Protection Arrangements", Column(start=87, end=88, suffix="WS"), "cc87-8WS", "lords", "wms"),
    ("2009-10_standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.xml",
     "uk.org.publicwhip/standing/standing2009-10-20_CHILDPOV_05-0_2009-10-27a.2.2",
     "Andrew Selous", "uk.org.publicwhip/person/11216", "Conservative", "2009-10-27", "10:30",
     "Child Poverty Bill: Clause 1", Column(start=125, end=125), "c125", "commons", "standing"),
    # New form: person_id on the speech.
    ("2016-2021_debates/debates2016-03-11b.xml", "uk.org.publicwhip/debate/2016-03-11b.628.0",
     "Claire Perry", "uk.org.publicwhip/person/24915", "Conservative", "2016-03-11", "14:50",
     "Luton Railway Station", Column(start=628, end=628), "c628", "commons", "debates"),
    ("2016-2021_debates/debates2016-05-09b.xml", "uk.org.publicwhip/debate/2016-05-09b.357.4",
     "Justin Madders", "uk.org.publicwhip/person/25378", "Labour", "2016-05-09", None,
     "Work and Pensions: Food Banks: Work Coaches", Column(start=357, end=357), "c357", "commons", "debates"),
    # The members data has no 2022 Lords memberships: party is null, not guessed.
    ("2022-2023_lordspages/daylord2022-09-05a.xml", "uk.org.publicwhip/lords/2022-09-05a.84.1",
     "Baroness Goldie", "uk.org.publicwhip/person/13998", None, "2022-09-05", "19:58",
     "Ukraine Update - Statement", Column(start=84, end=84), "c84", "lords", "lords"),
]


@pytest.mark.parametrize(
    "file, speech_id, name, person_id, party, date, time, debate, column, reference, house, section",
    KNOWN, ids=[k[1].split("/", 1)[1] for k in KNOWN],
)
def test_known_speech(members, file, speech_id, name, person_id, party, date, time, debate, column, reference, house, section):
    from indexer.sources.passages import speech_passages

    speech = speech_by_id(XML / file, members, speech_id)
    assert speech.speaker.name == name
    assert speech.speaker.person_id == person_id
    assert speech.speaker.party == party
    assert speech.date == dt.date.fromisoformat(date)
    assert speech.time == time
    assert speech.debate == debate
    assert speech.column == column
    assert speech.house == house
    assert speech.section == section
    assert not speech.procedural
    assert speech_passages(speech, 256)[0].reference == reference


def test_procedural_text_is_kept_and_marked(members):
    speeches = read(XML / "2009-10_westminhall/westminster2009-10-27a.xml", members)
    motion = next(s for s in speeches if s.id == "uk.org.publicwhip/westminhall/2009-10-27a.1.1")
    assert motion.procedural
    assert motion.speaker.name is None
    assert motion.paragraphs[0].text.startswith("Motion made, and Question proposed")


def test_chair_notices_are_not_debate_titles(members):
    speeches = read(XML / "2009-10_westminhall/westminster2009-10-27a.xml", members)
    assert not any("in the Chair" in (s.debate or "") for s in speeches)


def test_questions_and_replies_are_both_read(members):
    speeches = read(XML / "2009-10_wrans/answers2009-10-26f.xml", members)
    ids = {s.id for s in speeches}
    assert "uk.org.publicwhip/wrans/2009-10-26f.294961.q0" in ids
    assert "uk.org.publicwhip/wrans/2009-10-26f.294961.r0" in ids


@pytest.mark.parametrize("collection", sorted(p.name for p in XML.iterdir() if p.is_dir()))
def test_every_collection_reads_without_error(members, collection):
    problems: list[SourceError] = []
    files = discover([XML / collection], problems.append)
    speeches = [s for f in files for s in read(f, members, problems)]
    assert not [p for p in problems if not isinstance(p, SupersededFile)]
    assert len(speeches) >= 10
    assert len({s.id for s in speeches}) == len(speeches)
    assert all(s.house in ("commons", "lords") and s.date for s in speeches)
    assert sum(1 for s in speeches if s.speaker.person_id) > len(speeches) / 2


# ---------------------------------------------------------------- versions of a day


def _day(path, latest, speech="Hello there, this is a test speech on railways."):
    path.write_text(
        f'<?xml version="1.0" encoding="utf-8"?>\n<publicwhip latest="{latest}">\n'
        f'<major-heading id="uk.org.publicwhip/debate/2020-01-01{path.stem[-1]}.1.0" colnum="1">Railways</major-heading>\n'
        f'<speech id="uk.org.publicwhip/debate/2020-01-01{path.stem[-1]}.1.1" person_id="uk.org.publicwhip/person/1" '
        f'speakername="A Member" colnum="1" time="015:07:00"><p>{speech}</p></speech>\n</publicwhip>\n',
        encoding="utf-8",
    )


def test_only_the_latest_version_of_a_day_is_read(tmp_path):
    _day(tmp_path / "debates2020-01-01a.xml", "no")
    _day(tmp_path / "debates2020-01-01b.xml", "yes")
    problems = []
    files = discover([tmp_path], problems.append)
    assert [f.name for f in files] == ["debates2020-01-01b.xml"]
    assert isinstance(problems[0], SupersededFile) and problems[0].path.name == "debates2020-01-01a.xml"


def test_a_superseded_file_named_directly_is_refused(tmp_path, members):
    _day(tmp_path / "debates2020-01-01a.xml", "no")
    with pytest.raises(SupersededFile):
        read(tmp_path / "debates2020-01-01a.xml", members)


def test_odd_time_is_normalised(tmp_path, members):
    _day(tmp_path / "debates2020-01-01a.xml", "yes")
    [speech] = read(tmp_path / "debates2020-01-01a.xml", members)
    assert speech.time == "15:07"
    assert speech.debate == "Railways"


def test_malformed_xml_is_reported_with_its_line(tmp_path, members):
    bad = tmp_path / "debates2020-01-01a.xml"
    bad.write_text('<?xml version="1.0"?>\n<publicwhip>\n<speech id="x/1">\n<p>unclosed\n</publicwhip>\n')
    with pytest.raises(SourceError) as caught:
        read(bad, members)
    assert caught.value.path == bad and caught.value.line is not None
    assert "XML" in caught.value.reason


# ---------------------------------------------------------------- contribution page


def test_contribution_page_fields(members):
    [speech] = read(CONTRIBUTION_PAGE, members)
    assert speech.debate == "Procurement Bill [HL]"
    assert speech.column == Column(volume=823, start=554, end=557, suffix="GC")
    assert speech.session == "2022-23"
    assert speech.chamber == "House of Lords Grand Committee"
    assert speech.house == "lords"
    assert speech.speaker.name is None and speech.speaker.party is None  # the page names no speaker
    assert speech.date is None


def test_contribution_page_passages(members):
    from indexer.sources.passages import speech_passages

    [speech] = read(CONTRIBUTION_PAGE, members)
    passages = speech_passages(speech, 256)
    assert len(passages) == 11  # the time stamp is no passage; two broken sentences rejoined
    assert all(p.reference == "823 cc554-7GC" and p.column.volume == 823 for p in passages)
    assert all(p.session == "2022-23" and p.chamber == "House of Lords Grand Committee" for p in passages)
    assert not any(p.text.strip() == "4.30 pm" for p in passages)
    stamped = [i for i, p in enumerate(passages) if p.time == "16:30"]
    assert stamped == [9, 10]  # the passages after the "4.30 pm" line
    # "...through freedom of information requests" + "—have found that..."
    assert "freedom of information requests —have found" in passages[5].text or \
        "freedom of information requests—have found" in passages[5].text
    assert "which requires transparency about the extent of the problem" in passages[10].text


def test_proceeding_line_gives_speaker_party_house_and_date(tmp_path, members):
    text = CONTRIBUTION_PAGE.read_text(encoding="utf-8").replace(
        "Procurement Bill [HL]\n",
        "Procurement Bill [HL]\n\nProceeding contribution from Lord Alton of Liverpool (Crossbench) in the House of "
        "Lords on Wednesday, 5 July 2023. It occurred during Debate on bills on Procurement Bill [HL].\n",
        1,
    )
    page = tmp_path / "page.txt"
    page.write_text(text, encoding="utf-8")
    [speech] = read(page, members)
    assert speech.speaker.name == "Lord Alton of Liverpool"
    assert speech.speaker.party == "Crossbench"
    assert speech.house == "lords"
    assert speech.date == dt.date(2023, 7, 5)
    from indexer.sources.passages import speech_passages

    passages = speech_passages(speech, 256)
    assert len(passages) == 11
    assert passages[0].citation == "HL Deb 5 July 2023 vol 823 cc554-7GC"


# ---------------------------------------------------------------- JSONL, CSV, detection


def test_jsonl_speeches_and_bad_lines(tmp_path, members):
    good = {"id": "mine/1", "paragraphs": ["First paragraph about trains.", {"text": "Second.", "time": "4.30 pm"}],
            "speaker": {"name": "Jane Doe", "party": "Labour"}, "house": "commons", "date": "2020-02-03",
            "major_heading": "Transport", "reference": "700 c12"}
    path = tmp_path / "export"  # no extension: the content decides
    path.write_text(json.dumps(good) + "\n" + '{"id": "mine/2"}\n' + "not json\n", encoding="utf-8")
    problems = []
    speeches = read(path, members, problems)
    assert [s.id for s in speeches] == ["mine/1"]
    assert speeches[0].paragraphs[1].time == "16:30"
    assert speeches[0].column == Column(volume=700, start=12, end=12)
    assert [(p.line, p.path) for p in problems] == [(2, path), (3, path)]
    assert "paragraphs" in problems[0].reason


@pytest.mark.parametrize(
    "content, reason",
    [(b"", "empty"), (b"\x00\x01\x02binary", "binary"), (b"just some words\nand more\n", "unrecognised")],
)
def test_unusable_files_are_refused_with_a_reason(tmp_path, members, content, reason):
    path = tmp_path / "bad.xml"
    path.write_bytes(content)
    with pytest.raises(SourceError) as caught:
        read(path, members)
    assert reason in caught.value.reason


def test_format_is_detected_from_content():
    assert detect_format(b'<?xml version="1.0"?><publicwhip>') == "parlparse"
    assert detect_format(CONTRIBUTION_PAGE.read_bytes()[:4096]) == "contribution"
    assert detect_format(b'{"id": "a", "paragraphs": ["x"]}\n') == "jsonl"


def test_csv_research_export_is_read_by_header_names(members):
    path = XML.parent / "csv" / "louwerse_oppoistion_2021-uk_covid_speeches.csv"
    problems = []
    speeches = read(path, members, problems)
    assert not problems and len(speeches) > 400
    first = speeches[0]
    assert first.id == "louwerse_oppoistion_2021-uk_covid_speeches/2020-01-23/a433.0"
    assert first.speaker.name == "Sharon Hodgson"
    assert first.speaker.person_id == "uk.org.publicwhip/person/11592"
    assert first.speaker.party == "Labour"
    assert first.date == dt.date(2020, 1, 23) and first.debate == "Wuhan Coronavirus"


def test_csv_bad_row_is_reported_with_its_line(tmp_path, members):
    path = tmp_path / "speeches.csv"
    path.write_text("date,speaker,text\n2020-01-02,A Member,Some words about trains.\nnot-a-date,B,More words.\n")
    problems = []
    speeches = read(path, members, problems)
    assert len(speeches) == 1
    assert [p.line for p in problems] == [3]

"""Hostile and careless input files: what cannot be read is said (file and line) and skipped, what was indexed stays.

Every hostile file is made here, at test time, from real ones (a truncated
day, a day re-encoded, a ParlParse day given an entity DTD that points at a
file outside the input); nothing large is stored: the 200 MB file is sparse
and refused before it is read.
"""

import json
import random
import re
import shutil
from pathlib import Path

import pytest

from indexer.build import build_index
from indexer.sources.errors import SourceError, SourceWarning
from indexer.sources.passages import speech_passages
from indexer.sources.readers import read_source
from indexer.sources.records import Speech
from indexer.store.embedded import CURRENT, EmbeddedStore

from fixtures import CONTRIBUTION_PAGE
from fixtures import (KNOWN_SPEECH, LORDS_WMS, LORDS_WRANS, MAX_MB, UMEA_SPEECH, WATCHKEEPER_REPLY, BYELAWS_SPEECH,
                      WESTMINSTER_HALL, WMS_FIRST, WMS_SECOND, copy_index, dense_top, first_speeches, hansard_search,
                      speech_texts)


# ---------------------------------------------------------------- bad input files


def long_paragraph(members) -> str:
    """100,000 characters of real debate (a Westminster Hall sitting) as one paragraph."""
    words = " ".join(p.text for s in read_source(WESTMINSTER_HALL, members, [].append) for p in s.paragraphs)
    assert len(words) > 100_000
    return words[:100_000]


def make_mixed_folder(folder: Path, members) -> dict[str, Path]:
    """Good files and every kind of bad one, side by side."""
    folder.mkdir()
    files = {name: folder / file for name, file in {
        "good": "ministerial2009-10-27a.xml",
        "truncated": "truncated-ministerial2009-10-26c.xml",
        "utf16": "lordswrans-utf16.xml",
        "declared_utf8": "lordswms-declared-utf8.xml",
        "empty": "empty.xml",
        "random": "random.bin",
        "png": "picture.png",
        "no_reference": "procurement-no-reference.txt",
        "dup_a": "duplicate-a.jsonl",
        "dup_b": "duplicate-b.jsonl",
        "long": "long-paragraph.jsonl",
        "huge": "huge.xml",
    }.items()}
    shutil.copy(WMS_SECOND, files["good"])
    data = WMS_FIRST.read_bytes()  # the day already indexed, cut off half-way through a speech
    files["truncated"].write_bytes(data[: len(data) // 2])
    files["utf16"].write_bytes(first_speeches(LORDS_WRANS, 4).replace('encoding="ISO-8859-1"', 'encoding="UTF-16"').encode("utf-16"))
    files["declared_utf8"].write_bytes(first_speeches(LORDS_WMS, 3).replace('encoding="ISO-8859-1"', 'encoding="UTF-8"').encode("latin-1"))
    files["empty"].write_bytes(b"")
    files["random"].write_bytes(random.Random(7).randbytes(8192))
    files["png"].write_bytes(b"\x89PNG\r\n\x1a\n\x00\x00\x00\rIHDR" + random.Random(8).randbytes(2000))
    page = CONTRIBUTION_PAGE.read_text(encoding="utf-8")
    files["no_reference"].write_text(re.sub(r"\nReference\n\n[^\n]*\n", "\n", page), encoding="utf-8")
    files["dup_a"].write_text(json.dumps({"id": "robustness/duplicate", "paragraphs": [
        "The first file to carry this id gives its words about canal boat licence fees to the index."]}) + "\n")
    files["dup_b"].write_text(json.dumps({"id": "robustness/duplicate", "paragraphs": [
        "The second file to carry the same id is reported, and its words about lighthouses are left out."]}) + "\n")
    files["long"].write_text(json.dumps({"id": "robustness/long-paragraph", "house": "commons",
                                         "paragraphs": [long_paragraph(members)]}) + "\n", encoding="utf-8")
    with open(files["huge"], "wb") as f:  # 200 MB on paper, next to nothing on disk
        f.write(WMS_SECOND.read_bytes()[:4096])
        f.truncate(200 * 1024 * 1024)
    return files


def test_a_folder_of_bad_files_is_indexed_around_them(tmp_path, previous_index, cache_dir, encoder, members):
    index_dir = copy_index(previous_index, tmp_path / "index")
    known_before = speech_texts(EmbeddedStore(index_dir), KNOWN_SPEECH)
    assert known_before
    files = make_mixed_folder(tmp_path / "mixed", members)

    run = hansard_search("index", tmp_path / "mixed", "--index", index_dir, "--quiet", cache_dir=cache_dir, timeout=600)
    err = run.stderr
    assert run.returncode == 3, err  # indexed, with skipped files
    assert "Traceback" not in err

    # Each bad file is named with its reason (and line, where there is one) ...
    truncated_lines = files["truncated"].read_bytes().count(b"\n") + 1
    assert f"{files['truncated']}:{truncated_lines}: malformed XML" in err
    assert f"{files['empty']}: empty file" in err
    assert f"{files['random']}: binary file (contains NUL bytes)" in err
    assert f"{files['png']}: binary file (a PNG image)" in err
    assert f"{files['huge']}: file too large: 200 MB, over the limit of {MAX_MB} MB (raise it with --max-file-mb)" in err
    # ... the second of two files with one speech id is reported: the first read (in name order) is kept ...
    assert (f"{files['dup_b']}: duplicate speech id 'robustness/duplicate' (first read from {files['dup_a']}); "
            "skipped") in err
    # ... and what was read with a caveat is indexed, and the caveat said.
    assert re.search(re.escape(str(files["declared_utf8"])) + r":\d+: declares encoding UTF-8 but is not UTF-8", err)
    assert f"{files['no_reference']}: contribution page has no Reference field" in err
    assert "skipped 5 files and 1 records" in err and "indexed 7 files" in err and "with 2 notes" in err

    index = EmbeddedStore(index_dir)
    # Nothing already in the index is lost: the truncated copy of the first day replaced none of it.
    assert speech_texts(index, KNOWN_SPEECH) == known_before
    assert len({p.speech_id for _, p in index.iter_passages() if "/2009-10-26c." in p.speech_id}) == 8
    # The good file is searchable, by meaning and by words.
    assert dense_top(index, encoder, "councils making byelaws without permission from Whitehall")[0] == BYELAWS_SPEECH
    _, vecs = index.keyword("byelaws", 5)
    assert BYELAWS_SPEECH in {p.speech_id for p in index.passages_at(vecs)}
    # Files in an unexpected encoding are read correctly, not as mojibake.
    assert "took place in Umeå in Sweden" in " ".join(speech_texts(index, UMEA_SPEECH))
    assert "Watchkeeper" in " ".join(speech_texts(index, WATCHKEEPER_REPLY))
    assert dense_top(index, encoder, "arming the Watchkeeper unmanned aircraft")[0].startswith("uk.org.publicwhip/wrans/")
    # The page with no Reference is indexed, without a citation.
    [page_id] = {p.speech_id for _, p in index.iter_passages() if p.speech_id.startswith("contribution/")}
    assert page_id.startswith("contribution/no-reference/")
    assert all(p.reference is None and p.citation is None for p in index.speech(page_id))
    assert speech_texts(index, "robustness/duplicate") == [
        "The first file to carry this id gives its words about canal boat licence fees to the index."]
    # The 100,000-character paragraph is cut into passages the model reads whole, none of it lost.
    long = index.speech("robustness/long-paragraph")
    assert len(long) >= 60
    assert all(encoder.count_tokens(p.text) <= encoder.max_tokens for p in long)
    original = json.loads(files["long"].read_text(encoding="utf-8"))["paragraphs"][0]
    assert " ".join(p.text for p in long) == " ".join(original.split())


def test_a_run_where_every_file_is_bad_leaves_the_index_untouched(tmp_path, previous_index, encoder, members):
    index_dir = copy_index(previous_index, tmp_path / "index")
    before = (index_dir / CURRENT).read_text()
    bad = tmp_path / "bad"
    bad.mkdir()
    (bad / "empty.xml").write_bytes(b"")
    (bad / "truncated.xml").write_bytes(WMS_FIRST.read_bytes()[:5000])
    summary = build_index([bad], index_dir, encoder, members)
    assert [p.path.name for p in summary.files_skipped] == ["empty.xml", "truncated.xml"]
    assert (index_dir / CURRENT).read_text() == before  # not even rewritten
    assert summary.passages == len(EmbeddedStore(index_dir)) and summary.speeches_kept == 8


# Every way of writing one day of Lords statements (which has "Umeå" as a raw ISO-8859-1 byte).
_LORDS_WMS_TEXT = first_speeches(LORDS_WMS, 3)
ENCODINGS = {
    "as published (ISO-8859-1)": (_LORDS_WMS_TEXT.encode("latin-1"), None),
    "UTF-16 with a byte-order mark": (_LORDS_WMS_TEXT.replace("ISO-8859-1", "UTF-16").encode("utf-16"), None),
    "UTF-16 declared as ISO-8859-1": (_LORDS_WMS_TEXT.encode("utf-16"), None),
    "UTF-16-LE without a mark": (_LORDS_WMS_TEXT.replace("ISO-8859-1", "UTF-16").encode("utf-16-le"), None),
    "UTF-8 with a mark": (b"\xef\xbb\xbf" + _LORDS_WMS_TEXT.replace("ISO-8859-1", "UTF-8").encode("utf-8"), None),
    "UTF-8 declared as ISO-8859-1": (_LORDS_WMS_TEXT.encode("utf-8"), "declares encoding ISO-8859-1 but is UTF-8"),
    "ISO-8859-1 declared as UTF-8": (_LORDS_WMS_TEXT.replace("ISO-8859-1", "UTF-8").encode("latin-1"),
                                     "declares encoding UTF-8 but is not UTF-8"),
    "8-bit declared as UTF-16": (_LORDS_WMS_TEXT.replace("ISO-8859-1", "UTF-16").encode("latin-1"),
                                 "declares encoding UTF-16 but is 8-bit text"),
}


@pytest.mark.parametrize("encoding", list(ENCODINGS))
def test_xml_in_any_encoding_is_read_as_written(tmp_path, members, encoding):
    data, warning = ENCODINGS[encoding]
    path = tmp_path / "statements.xml"
    path.write_bytes(data)
    reports = []
    speeches = {s.id: s for s in read_source(path, members, reports.append)}
    assert len(speeches) == 3
    assert "took place in Umeå in Sweden" in " ".join(p.text for p in speeches[UMEA_SPEECH].paragraphs)
    assert speeches[UMEA_SPEECH].speaker.name == "Lord Davies of Abersoch"
    assert [type(r) for r in reports] == ([SourceWarning] if warning else [])
    if warning:
        assert warning in reports[0].reason


@pytest.mark.parametrize("encoding, warning", [("utf-16", None), ("utf-8-sig", None), ("cp1252", "read as Windows-1252")])
def test_a_contribution_page_in_another_encoding_is_read_as_written(tmp_path, members, encoding, warning):
    path = tmp_path / "page.txt"
    path.write_bytes(CONTRIBUTION_PAGE.read_text(encoding="utf-8").encode(encoding))
    reports = []
    [speech] = read_source(path, members, reports.append)
    assert speech.column.volume == 823 and "Hikvision" in speech.paragraphs[0].text
    assert "Department of Health—and I believe" in " ".join(p.text for p in speech.paragraphs)  # an em dash, intact
    assert [r.reason for r in reports] == ([f"not UTF-8 (first bad byte on this line); {warning}"] if warning else [])


def test_a_file_over_the_size_limit_is_refused_unread(tmp_path, members):
    huge = tmp_path / "huge.xml"
    with open(huge, "wb") as f:
        f.write(WMS_FIRST.read_bytes())  # a good file, but over the limit once padded
        f.truncate(200 * 1024 * 1024)
    with pytest.raises(SourceError, match=r"file too large: 200 MB, over the limit of 100 MB \(raise it with --max-file-mb\)"):
        list(read_source(huge, members, [].append, max_bytes=100 * 1024 * 1024))
    with pytest.raises(SourceError, match="file too large: 24 KB, over the limit of 10 KB"):
        list(read_source(WMS_FIRST, members, [].append, max_bytes=10 * 1024))
    assert len(list(read_source(WMS_FIRST, members, [].append, max_bytes=None))) == 8


@pytest.mark.parametrize("shape", ["sentences", "one long sentence", "no spaces", "very short sentences"])
def test_a_100000_character_paragraph_is_split_in_linear_time(encoder, members, shape):
    text = long_paragraph(members)
    if shape == "one long sentence":
        text = (re.sub(r"[.!?]", "", text) * 2)[:100_000]
    elif shape == "no spaces":
        text = (text.replace(" ", "") * 2)[:100_000]
    elif shape == "very short sentences":
        text = ("Yes. " * 20_000)[:100_000]
    counted = []

    def count(piece: str) -> int:
        counted.append(len(piece))
        return encoder.count_tokens(piece)

    passages = speech_passages(Speech(id="long", paragraphs=[text]), encoder.max_tokens, count)
    assert len(passages) > 20
    assert all(encoder.count_tokens(p.text) <= encoder.max_tokens for p in passages)
    if shape != "no spaces":  # (a "word" of 100,000 characters has to be cut inside)
        assert " ".join(p.text for p in passages) == " ".join(text.split())
    # Tokens counted, in all, a small multiple of the paragraph, whatever its shape: the old
    # splitter counted every candidate piece whole, 115 times the paragraph for one long
    # sentence, 66 times for very short ones (and a paragraph with no spaces was one passage).
    assert len(text) == 100_000
    assert sum(counted) < 20 * len(text), f"{sum(counted) / len(text):.0f} times the paragraph counted"


# ---------------------------------------------------------------- XML that reaches outside itself

SECRET = "ADMIN_TOKEN=s3cret-words-never-to-be-published"
HOSTNAME = "internal-host-name-never-to-be-published"
FIRST_STATEMENT = "uk.org.publicwhip/wms/2009-10-26a.87.1"  # Lord Bach on MAPPA, the first speech of LORDS_WMS


@pytest.fixture
def outside(tmp_path):
    """Files beside (not in) the folder being indexed, and a listener that tells whether anything called it."""
    import socket

    folder = tmp_path / "outside"
    folder.mkdir()
    (folder / "passwd").write_text(SECRET + "\n")
    (folder / "hostname").write_text(HOSTNAME + "\n")
    (folder / "entities.dtd").write_text(f'<!ENTITY leak "{SECRET}">\n<!ENTITY pound "&#163;">\n')
    listener = socket.socket()
    listener.bind(("127.0.0.1", 0))
    listener.listen(8)
    listener.setblocking(False)
    yield {"dir": folder, "url": f"http://127.0.0.1:{listener.getsockname()[1]}/entities", "listener": listener}
    listener.close()


def _was_called(listener) -> bool:
    try:
        listener.accept()[0].close()
        return True
    except BlockingIOError:
        return False


def hostile_day(outside, declarations: str = "", doctype_system: str = "", in_heading: str = "", in_text: str = "") -> str:
    """A real day of Lords statements whose entity DTD gains `declarations`, with entity references placed in it."""
    text = first_speeches(LORDS_WMS, 3)
    if doctype_system:
        text = text.replace("<!DOCTYPE publicwhip\n", f'<!DOCTYPE publicwhip SYSTEM "{doctype_system}"\n', 1)
    text = text.replace("<!ENTITY ndash", declarations.format(dir=outside["dir"], url=outside["url"]) + "\n<!ENTITY ndash", 1)
    text = text.replace("\tCrime: Multi-agency Public Protection Arrangements", f"\tCrime: Public Protection {in_heading}", 1)
    return text.replace("<p pid=\"a.87.1/1\">", f"<p pid=\"a.87.1/1\">Fees of &pound;5 &mdash; &#163;6 {in_text} in all. ", 1)


def _everything_indexed(index: EmbeddedStore) -> str:
    return "\n".join(json.dumps(p.model_dump(mode="json")) for _, p in index.iter_passages())


HOSTILE_DAYS = {
    "a file entity in the text": dict(declarations='<!ENTITY x SYSTEM "file://{dir}/passwd">', in_text="&x;"),
    "a file entity in a heading": dict(declarations='<!ENTITY h SYSTEM "file://{dir}/hostname">', in_heading="&h;"),
    "an entity by a relative path": dict(declarations='<!ENTITY x SYSTEM "../outside/passwd">', in_text="&x;"),
    "a network entity": dict(declarations='<!ENTITY n SYSTEM "{url}">', in_text="&n;"),
    "an internal entity wrapping a file entity": dict(
        declarations='<!ENTITY x SYSTEM "file://{dir}/passwd">\n<!ENTITY wrap "before &x; after">', in_text="&wrap;"),
    # Not even asked for: the parser never loads an external DTD subset (so nothing is lost, and nothing said).
    "an external DTD": dict(doctype_system="{dir}/entities.dtd"),
    "a network DTD": dict(doctype_system="{url}"),
}


@pytest.mark.parametrize("case", list(HOSTILE_DAYS))
def test_external_entities_are_never_read_and_the_day_is_indexed_without_them(tmp_path, outside, encoder, members, case):
    options = dict(HOSTILE_DAYS[case])
    if "doctype_system" in options:
        options["doctype_system"] = options["doctype_system"].format(dir=outside["dir"], url=outside["url"])
    day = tmp_path / "input" / "lordswms2009-10-26a.xml"
    day.parent.mkdir()
    day.write_bytes(hostile_day(outside, **options).encode("latin-1"))

    summary = build_index([day.parent], tmp_path / "index", encoder, members)

    indexed = _everything_indexed(EmbeddedStore(tmp_path / "index"))
    assert SECRET not in indexed and HOSTNAME not in indexed and "s3cret" not in indexed
    assert not _was_called(outside["listener"])
    # The day is indexed, its internal entities (the old ParlParse DTD's) expanded as before ...
    first = " ".join(speech_texts(EmbeddedStore(tmp_path / "index"), FIRST_STATEMENT))
    assert "Fees of £5 — £6" in first and "in all." in first and "annual multi-agency public protection" in first
    assert summary.speeches == 3 and not summary.files_skipped
    # ... and an entity left out is said, naming the file and what the entity pointed at.
    if "doctype_system" in options:
        assert not summary.warnings
    else:
        [note] = summary.warnings
        assert note.path == day and "indexed without what its external entities name: refusing to read" in note.reason
        assert ("/outside/passwd" in note.reason or "/outside/hostname" in note.reason or outside["url"] in note.reason)


def test_a_parameter_entity_pointing_outside_is_not_read_and_the_file_is_skipped(tmp_path, outside, encoder, members):
    # The outside DTD would define &leak;; unread, the reference is undefined: the file is malformed, said and skipped.
    day = tmp_path / "input" / "lordswms2009-10-26a.xml"
    day.parent.mkdir()
    day.write_bytes(hostile_day(outside, declarations='<!ENTITY % outside SYSTEM "file://{dir}/entities.dtd">\n%outside;',
                                in_text="&leak;").encode("latin-1"))
    good = day.parent / "ministerial2009-10-27a.xml"
    shutil.copy(WMS_SECOND, good)

    summary = build_index([day.parent], tmp_path / "index", encoder, members)

    assert SECRET not in _everything_indexed(EmbeddedStore(tmp_path / "index"))
    [skipped] = summary.files_skipped
    assert skipped.path == day and "Entity 'leak' not defined" in skipped.reason
    assert f"refusing to read '{outside['dir'].as_uri()}/entities.dtd'" in skipped.reason
    assert EmbeddedStore(tmp_path / "index").speech(BYELAWS_SPEECH)  # the good file beside it is indexed


def test_xinclude_is_never_processed(tmp_path, outside, members):
    day = tmp_path / "lordswms2009-10-26a.xml"
    text = hostile_day(outside).replace(
        "<publicwhip ", '<publicwhip xmlns:xi="http://www.w3.org/2001/XInclude" ', 1)
    text = text.replace("in all. ", f'in all. <xi:include href="file://{outside["dir"]}/passwd" parse="text"/>', 1)
    day.write_bytes(text.encode("latin-1"))
    speeches = list(read_source(day, members, [].append))
    assert len(speeches) == 3
    assert SECRET not in json.dumps([s.model_dump(mode="json") for s in speeches])


@pytest.mark.parametrize("blow_up", ["billion laughs", "quadratic"])
def test_entity_expansion_bombs_are_refused_quickly(tmp_path, members, blow_up):
    if blow_up == "billion laughs":
        entities = '<!ENTITY lol0 "lol">\n' + "".join(
            f'<!ENTITY lol{n} "{("&lol" + str(n - 1) + ";") * 10}">\n' for n in range(1, 10))
        use = "&lol9;"
    else:  # one 10,000-character entity used 100,000 times: a gigabyte from half a megabyte
        entities = f'<!ENTITY big "{"x" * 10_000}">\n'
        use = "&big;" * 100_000
    text = first_speeches(LORDS_WMS, 3).replace("<!ENTITY ndash", entities + "<!ENTITY ndash", 1)
    day = tmp_path / "lordswms2009-10-26a.xml"
    day.write_bytes(text.replace("<p pid=\"a.87.1/1\">", f"<p pid=\"a.87.1/1\">{use}", 1).encode("latin-1"))
    with pytest.raises(SourceError) as refused:
        list(read_source(day, members, [].append))
    assert "malformed XML" in refused.value.reason and "amplification" in refused.value.reason.lower()


# ---------------------------------------------------------------- records with values out of range

def _jsonl(path: Path, records: list) -> Path:
    path.write_text("".join((r if isinstance(r, str) else json.dumps(r)) + "\n" for r in records), encoding="utf-8")
    return path


def _record(n: int, **fields) -> dict:
    return {"id": f"hostile/{n}", "house": "commons", "paragraphs": [f"Record {n} speaks of lighthouse dues and pilotage."],
            **fields}


OUT_OF_RANGE = {
    "a volume too large for SQLite": {"column": {"volume": 3616655366409402449920}},
    "a negative column": {"column": {"start": -5}},
    "a column past any volume's": {"column": {"start": 10**12}},
    "an end before its start": {"column": {"start": 557, "end": 554}},
    "a reference with a huge volume": {"reference": "99999999999 cc1-2"},
    "a reference of 5,000 digits": {"reference": "c" + "9" * 5000},
}


def test_records_with_numbers_out_of_range_are_reported_and_the_run_goes_on(tmp_path, cache_dir):
    records = [_record(0)] + [_record(n, **fields) for n, fields in enumerate(OUT_OF_RANGE.values(), start=1)]
    records.append(_record(99, column={"volume": 823, "start": 554, "end": 557, "suffix": "GC"}))
    source = _jsonl(tmp_path / "records.jsonl", records)

    run = hansard_search("index", source, "--index", tmp_path / "index", "--quiet", cache_dir=cache_dir, timeout=600)

    assert run.returncode == 3, run.stderr  # indexed, with records skipped
    assert "Traceback" not in run.stderr
    for line in range(2, 2 + len(OUT_OF_RANGE)):
        assert f"{source}:{line}: invalid speech record: " in run.stderr
    assert "column.volume: Input should be less than or equal to 10000" in run.stderr
    assert "column end 554 is before its start 557" in run.stderr
    index = EmbeddedStore(tmp_path / "index")
    assert {p.speech_id for _, p in index.iter_passages()} == {"hostile/0", "hostile/99"}  # the good records, after the bad
    assert index.speech("hostile/99")[0].citation == "HC Deb vol 823 cc554-7GC"


def test_a_colnum_too_large_reads_as_unknown_not_as_a_failure(tmp_path, members):
    day = tmp_path / "lordswms2009-10-26a.xml"
    text = first_speeches(LORDS_WMS, 3).replace('colnum="87"', 'colnum="' + "9" * 30 + '"')
    day.write_bytes(text.encode("latin-1"))
    speeches = {s.id: s for s in read_source(day, members, [].append)}
    assert len(speeches) == 3 and speeches[FIRST_STATEMENT].column.start is None


# ---------------------------------------------------------------- CSV that swallows rows

def test_an_unterminated_quote_in_a_csv_is_reported_and_the_rows_after_it_are_read(tmp_path, members):
    path = tmp_path / "speeches.csv"
    path.write_text(
        "date,speaker,text\n"
        "2020-01-02,A Member,Words about trains.\n"
        '2020-01-03,B Member,"An unterminated quote about buses\n'
        "2020-01-04,C Member,Words about ferries.\n"
        '2020-01-05,D Member,"Two lines\nabout trams, quoted properly."\n'
        "2020-01-06,E Member,Words about canals.\n", encoding="utf-8")
    problems = []
    speeches = list(read_source(path, members, problems.append))
    assert [(p.line, "unterminated quote" in p.reason) for p in problems] == [(3, True)]
    assert [s.speaker.name for s in speeches] == ["A Member", "C Member", "D Member", "E Member"]
    assert [p.text for p in speeches[2].paragraphs] == ["Two lines", "about trams, quoted properly."]
    assert speeches[1].paragraphs[0].text == "Words about ferries."  # not swallowed into B's cell


def test_a_csv_that_ends_inside_a_quote_loses_only_that_row(tmp_path, members):
    path = tmp_path / "speeches.csv"
    path.write_text('date,speaker,text\n2020-01-02,A Member,"Never closed\n2020-01-03,B Member,Words about ferries.\n',
                    encoding="utf-8")
    problems = []
    speeches = list(read_source(path, members, problems.append))
    assert [(p.line, "the file ends inside a quoted cell" in p.reason) for p in problems] == [(2, True)]
    assert [s.speaker.name for s in speeches] == ["B Member"]


def test_a_csv_row_with_an_empty_text_cell_is_reported(tmp_path, members):
    path = tmp_path / "speeches.csv"
    path.write_text("date,speaker,text\n2020-01-02,A Member,Words about trains.\n2020-01-03,B Member,  \n"
                    "2020-01-04,C Member\n2020-01-05,D Member,Words about ferries.\n", encoding="utf-8")
    problems = []
    speeches = list(read_source(path, members, problems.append))
    assert [s.speaker.name for s in speeches] == ["A Member", "D Member"]
    assert [(p.line, "has no text (column 'text' is empty)" in p.reason) for p in problems] == [(3, True), (4, True)]


# ---------------------------------------------------------------- links and lax values

UNSAFE_URLS = ["javascript:alert(document.domain)", "JavaScript:alert(1)", " javascript:alert(1)", "java\tscript:alert(1)",
               "data:text/html,<script>alert(1)</script>", "vbscript:msgbox(1)", "file:///etc/passwd",
               "//evil.example/x", "/relative/path", "https://", "http://exa mple.org/"]


def test_only_http_and_https_urls_are_kept_from_any_reader(tmp_path, members):
    records = [_record(n, url=url) for n, url in enumerate(UNSAFE_URLS)]
    records.append(_record(100, url="https://hansard.parliament.uk/Lords/2023-07-05/debates/1"))
    problems = []
    speeches = {s.id: s for s in read_source(_jsonl(tmp_path / "links.jsonl", records), members, problems.append)}
    assert len(speeches) == len(UNSAFE_URLS) + 1
    assert all(speeches[f"hostile/{n}"].url is None for n in range(len(UNSAFE_URLS)))
    assert speeches["hostile/100"].url == "https://hansard.parliament.uk/Lords/2023-07-05/debates/1"
    assert len(problems) == len(UNSAFE_URLS) and all(isinstance(p, SourceWarning) for p in problems)
    assert "speech hostile/0: url 'javascript:alert(document.domain)' left out: only http and https" in problems[0].reason

    day = tmp_path / "lordswms2009-10-26a.xml"
    lord_bach = 'speakername="Lord Bach" colon=":" colnum="87"  url="'
    day.write_bytes(first_speeches(LORDS_WMS, 3).replace(lord_bach, lord_bach + "javascript:alert(1)//", 1).encode("latin-1"))
    problems = []
    [first, *rest] = read_source(day, members, problems.append)
    assert first.url is None and all(s.url.startswith("http://www.publications.parliament.uk/") for s in rest)
    assert [p.reason.split(":")[0] for p in problems] == [f"speech {first.id}"]


def test_an_index_written_before_urls_were_checked_serves_none_of_its_unsafe_links(tmp_path, previous_index):
    import sqlite3

    index_dir = copy_index(previous_index, tmp_path / "index")
    version = index_dir / (index_dir / CURRENT).read_text().strip()
    with sqlite3.connect(version / "passages.sqlite") as db:
        db.execute("UPDATE passages SET url = 'javascript:alert(1)' WHERE speech_id = ?", (KNOWN_SPEECH,))
    passages = EmbeddedStore(index_dir).speech(KNOWN_SPEECH)
    assert passages and all(p.url is None for p in passages)


LAX_RECORDS = {
    "an empty id": ({"id": ""}, "id: String should have at least 1 character"),
    "a blank id": ({"id": "   "}, "id: the speech id is blank"),
    "an id with a control character": ({"id": "hostile/\u0007bell"}, "id: the speech id contains control characters"),
    "an id of 501 characters": ({"id": "x" * 501}, "id: String should have at most 500 characters"),
    '"procedural": "yes"': ({"procedural": "yes"}, "procedural: Input should be a valid boolean"),
    '"procedural": 0': ({"procedural": 0}, "procedural: Input should be a valid boolean"),
}


def test_lax_values_are_refused_not_coerced(tmp_path, members):
    records = [{**_record(n), **fields} for n, (fields, _) in enumerate(LAX_RECORDS.values())]
    records.append(_record(100, procedural=True))
    problems = []
    speeches = list(read_source(_jsonl(tmp_path / "lax.jsonl", records), members, problems.append))
    assert [s.id for s in speeches] == ["hostile/100"] and speeches[0].procedural is True
    assert [(p.line, message in p.reason) for p, (_, message) in zip(problems, LAX_RECORDS.values())] == [
        (line, True) for line in range(1, len(LAX_RECORDS) + 1)]


def test_xml_with_no_declaration_is_not_said_to_declare_one(tmp_path, members):
    text = first_speeches(LORDS_WMS, 3)
    text = text[text.index("<!DOCTYPE"):]  # no <?xml ...?>: UTF-8 by rule, but the bytes are Windows-1252
    day = tmp_path / "lordswms2009-10-26a.xml"
    day.write_bytes(text.encode("cp1252"))
    problems = []
    assert len(list(read_source(day, members, problems.append))) == 3
    [warning] = problems
    assert "has no XML declaration (so is UTF-8 by rule) but is not UTF-8" in warning.reason
    assert "declares" not in warning.reason

"""Bad input and killed runs: what cannot be read is said and skipped, what was indexed stays.

The bad files are made here, at test time, from real ones (a truncated day,
a day re-encoded, a contribution page with its Reference cut out); nothing
large is stored: the 200 MB file is sparse and refused before it is read.
"""

import json
import os
import random
import re
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexer.build import BuildError, build_index
from indexer.errors import SourceError, SourceWarning
from indexer.passages import speech_passages
from indexer.readers import read_source
from indexer.records import Speech
from indexer.store import CURRENT, LOCK, MANIFEST, Index, lock_index

from conftest import CONTRIBUTION_PAGE, XML

WMS_FIRST = XML / "2009-10_wms" / "ministerial2009-10-26c.xml"  # indexed first; its truncated copy comes later
WMS_SECOND = XML / "2009-10_wms" / "ministerial2009-10-27a.xml"  # a good file among the bad ones
LORDS_WMS = XML / "2009-10_lordswms" / "lordswms2009-10-26a.xml"  # ISO-8859-1: "Umeå" is one raw byte
LORDS_WRANS = XML / "2009-10_lordswrans" / "lordswrans2009-10-26a.xml"
WESTMINSTER_HALL = XML / "2009-10_westminhall" / "westminster2009-10-27a.xml"
KILLED_INPUT = XML / "2009-10_lordswms" / "lordswms2009-10-27a.xml"  # 52 passages: seconds of embedding

KNOWN_SPEECH = "uk.org.publicwhip/wms/2009-10-26c.1WS.2"  # in WMS_FIRST
UMEA_SPEECH = "uk.org.publicwhip/wms/2009-10-26a.88.3"  # "...Competitiveness Council, which took place in Umeå"
WATCHKEEPER_REPLY = "uk.org.publicwhip/wrans/2009-10-26a.101.2"
BYELAWS_SPEECH = "uk.org.publicwhip/wms/2009-10-27a.7WS.2"  # in WMS_SECOND
KILLED_INPUT_SPEECH = "uk.org.publicwhip/wms/2009-10-27a.93.1"
MAX_MB = 100  # the default of --max-file-mb


def hansard_search(*args, cache_dir, **kwargs):
    return subprocess.run(_command(*args), capture_output=True, text=True, env=_env(cache_dir), **kwargs)


def _command(*args) -> list[str]:
    command = shutil.which("hansard-search", path=os.path.dirname(sys.executable)) or "hansard-search"
    return [command, *map(str, args)]


def _env(cache_dir) -> dict:
    return {**os.environ, "HANSARD_CACHE_DIR": str(cache_dir), "COLUMNS": "250"}


def first_speeches(path: Path, n: int) -> str:
    """A real day's XML up to the end of its nth speech, closed: a small file of the same form."""
    text = path.read_bytes().decode("latin-1")
    ends = [m.end() for m in re.finditer(r"</(?:speech|ques|reply)>", text)]
    return text[: ends[n - 1]] + "\n</publicwhip>\n"


def copy_index(index_dir: Path, to: Path) -> Path:
    shutil.copytree(index_dir, to, ignore=shutil.ignore_patterns(LOCK))
    return to


def speech_texts(index: Index, speech_id: str) -> list[str]:
    return [p.text for p in index.speech(speech_id)]


def dense_top(index: Index, encoder, query: str, k: int = 3) -> list[str]:
    """Speech ids of the nearest passages: a real search over the stored vectors."""
    _, vecs = index.search(encoder.encode_query(query), k)
    return [p.speech_id for p in index.passages_at(vecs)]


@pytest.fixture(scope="module")
def previous_index(tmp_path_factory, encoder, members) -> Path:
    """An index of one day of written statements, made before any bad input comes near it."""
    index_dir = tmp_path_factory.mktemp("previous") / "index"
    summary = build_index([WMS_FIRST], index_dir, encoder, members)
    assert not summary.problems and summary.speeches == 8
    return index_dir


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
    known_before = speech_texts(Index(index_dir), KNOWN_SPEECH)
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

    index = Index(index_dir)
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
    assert summary.passages == len(Index(index_dir)) and summary.speeches_kept == 8


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


# ---------------------------------------------------------------- killed runs


class _Stderr:
    """A process's stderr, read as it comes (progress bars end lines with \\r, not \\n)."""

    def __init__(self, process: subprocess.Popen):
        self.text = bytearray()
        self._process = process
        self._changed = threading.Condition()
        self._thread = threading.Thread(target=self._read, daemon=True)
        self._thread.start()

    def _read(self):
        while chunk := os.read(self._process.stderr.fileno(), 4096):
            with self._changed:
                self.text.extend(chunk)
                self._changed.notify_all()
        with self._changed:
            self._changed.notify_all()

    def wait_for(self, marker: bytes, timeout: float) -> bool:
        with self._changed:
            return self._changed.wait_for(lambda: marker in self.text or not self._thread.is_alive(), timeout) \
                and marker in self.text

    def all(self) -> str:
        self._thread.join(timeout=60)
        return self.text.decode(errors="replace")


def _state(index_dir: Path) -> dict:
    index = Index(index_dir)
    return {"current": (index_dir / CURRENT).read_text(), "passages": len(index),
            "known": speech_texts(index, KNOWN_SPEECH), "built_at": index.manifest.built_at}


def _assert_tidy(index_dir: Path) -> None:
    """The live version (and at most the one it replaced, kept for servers still on it), nothing a dead run left."""
    names = sorted(p.name for p in index_dir.iterdir())
    versions = [n for n in names if n.startswith("v-")]
    assert 1 <= len(versions) <= 2 and (index_dir / CURRENT).read_text().strip() in versions, names
    assert set(names) <= {CURRENT, LOCK, *versions}, names


def test_an_indexing_run_killed_while_embedding_leaves_the_old_index_serving(tmp_path, previous_index, encoder):
    index_dir = copy_index(previous_index, tmp_path / "index")
    before = _state(index_dir)
    fresh_cache = tmp_path / "cache"  # nothing cached: the run has to embed
    command = _command("index", KILLED_INPUT, "--index", index_dir)
    run = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=_env(fresh_cache))
    stderr = _Stderr(run)
    try:
        # The model is loaded, the file read and split: the progress bar says the embedding has begun.
        assert stderr.wait_for(b"embedding:", timeout=240), stderr.all()
        os.kill(run.pid, signal.SIGKILL)
    finally:
        run.kill()
        run.wait(timeout=60)
    assert run.returncode == -signal.SIGKILL
    assert "indexed 1 files" not in stderr.all()  # killed before its summary: it never finished

    # The old index is intact and serves.
    assert _state(index_dir) == before
    assert dense_top(Index(index_dir), encoder, "multi-agency public protection arrangements")  # a search works
    assert KNOWN_SPEECH in dense_top(Index(index_dir), encoder, " ".join(before["known"])[:300])
    assert not Index(index_dir).speech(KILLED_INPUT_SPEECH)

    # The same command, run again, completes with no clean-up by hand.
    again = subprocess.run(command, capture_output=True, text=True, env=_env(fresh_cache), timeout=600)
    assert again.returncode == 0, again.stderr
    after = Index(index_dir)
    assert after.speech(KILLED_INPUT_SPEECH) and speech_texts(after, KNOWN_SPEECH) == before["known"]
    assert len(after) > before["passages"]
    _assert_tidy(index_dir)


# The write phase, killed at each step: a subprocess writes a new version
# (the old one less its last speech) and SIGKILLs itself at the chosen point.
_KILL_WHILE_WRITING = r"""
import os, signal, sys
from pathlib import Path
import indexer.store as store

index_dir, point = Path(sys.argv[1]), sys.argv[2]
old = store.Index(index_dir)
pairs = list(old.iter_passages())
last = pairs[-1][1].speech_id
pairs = [(vec, p) for vec, p in pairs if p.speech_id != last]
passages, vectors = [p for _, p in pairs], old.vectors_at([vec for vec, _ in pairs])

def die():
    os.kill(os.getpid(), signal.SIGKILL)

def after(function, when=lambda *a: True):
    def wrapped(*args, **kwargs):
        result = function(*args, **kwargs)
        if when(*args):
            die()
        return result
    return wrapped

real_replace = os.replace
if point == "vectors written":
    store.faiss.write_index = after(store.faiss.write_index)
elif point == "passages half inserted":
    calls = []
    real_row = store._row
    def row(passage):
        calls.append(1)
        if len(calls) == len(passages) // 2:
            die()
        return real_row(passage)
    store._row = row
elif point == "manifest written":
    store._fsync = after(store._fsync, lambda path: Path(path).is_dir())  # the version folder, after its manifest
elif point == "version renamed":
    store.os.replace = after(real_replace, lambda src, dst: Path(dst).name.startswith("v-"))
elif point == "CURRENT half switched":
    def replace(src, dst):
        if Path(dst).name == store.CURRENT:
            die()
        return real_replace(src, dst)
    store.os.replace = replace
elif point == "CURRENT switched":
    store._remove_stale_versions = lambda *args, **kwargs: die()
store.write_index(index_dir, passages, vectors, old.model)
print("not killed")
"""
KILL_POINTS = ["vectors written", "passages half inserted", "manifest written", "version renamed",
               "CURRENT half switched", "CURRENT switched"]


@pytest.mark.parametrize("point", KILL_POINTS)
def test_an_indexing_run_killed_while_writing_leaves_a_whole_index(tmp_path, previous_index, encoder, members, point):
    index_dir = copy_index(previous_index, tmp_path / "index")
    before = _state(index_dir)
    killed = subprocess.run([sys.executable, "-c", _KILL_WHILE_WRITING, str(index_dir), point],
                            capture_output=True, text=True, timeout=120, cwd=Path(__file__).resolve().parents[1])
    assert killed.returncode == -signal.SIGKILL, killed.stdout + killed.stderr
    left = sorted(p.name for p in index_dir.iterdir())
    assert len(left) >= 3, left  # CURRENT, the old version, and what the dead run left

    # Whatever the step, the index opens whole: the old version, or (once CURRENT was switched) the new one.
    state = _state(index_dir)
    if point == "CURRENT switched":
        assert state["current"] != before["current"] and state["passages"] < before["passages"]
    else:
        assert state == before
    assert state["known"] == before["known"]
    assert dense_top(Index(index_dir), encoder, "public protection arrangements")

    # The next run completes and sweeps up what the dead one left.
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "robustness/after-the-crash", "paragraphs": [
        "A statement indexed after the crash, about the repair of the parliamentary estate."]}) + "\n")
    summary = build_index([extra], index_dir, encoder, members)
    assert not summary.problems
    _assert_tidy(index_dir)
    index = Index(index_dir)
    assert index.speech("robustness/after-the-crash") and speech_texts(index, KNOWN_SPEECH) == before["known"]


def test_a_second_run_is_refused_while_one_holds_the_index(tmp_path, previous_index, encoder, members):
    index_dir = copy_index(previous_index, tmp_path / "index")
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "robustness/second-run", "paragraphs": ["Words of a second run, for later."]}) + "\n")
    with lock_index(index_dir):  # as a run in another process would
        with pytest.raises(BuildError, match=f"another indexing run \\(process {os.getpid()}\\) is updating"):
            build_index([extra], index_dir, encoder, members)
    assert not Index(index_dir).speech("robustness/second-run")
    build_index([extra], index_dir, encoder, members)  # once the first has finished (or died)
    assert Index(index_dir).speech("robustness/second-run")


# ---------------------------------------------------------------- damaged index directories


def _version(index_dir: Path) -> Path:
    return index_dir / (index_dir / CURRENT).read_text().strip()


def _truncate(path: Path) -> None:
    with open(path, "r+b") as f:
        f.truncate(path.stat().st_size // 2)


DAMAGE = {
    "truncated vectors": (lambda d: _truncate(_version(d) / "vectors.faiss"), "vectors.faiss is"),
    "truncated passages": (lambda d: _truncate(_version(d) / "passages.sqlite"), "passages.sqlite is"),
    "no passages": (lambda d: (_version(d) / "passages.sqlite").unlink(), "has no passages.sqlite"),
    "garbage manifest": (lambda d: (_version(d) / MANIFEST).write_bytes(os.urandom(64)), "unreadable manifest"),
    "manifest of the wrong shape": (lambda d: (_version(d) / MANIFEST).write_text(json.dumps(
        {**json.loads((_version(d) / MANIFEST).read_text()), "model": "all-MiniLM-L6-v2"})), "unreadable manifest"),
    "CURRENT names a missing version": (lambda d: shutil.rmtree(_version(d)), "which is missing"),
    "CURRENT garbage": (lambda d: (d / CURRENT).write_bytes(b"\xff\xfe../../etc\x00"), "not an index version"),
}


@pytest.mark.parametrize("damage", list(DAMAGE))
def test_serve_refuses_a_damaged_index_with_a_clear_message(tmp_path, previous_index, cache_dir, damage):
    index_dir = copy_index(previous_index, tmp_path / "index")
    harm, message = DAMAGE[damage]
    harm(index_dir)
    run = hansard_search("serve", "--index", index_dir, "--port", "0", cache_dir=cache_dir, timeout=120)
    assert run.returncode == 1
    assert f"error: index {index_dir}" in run.stderr and message in run.stderr
    assert "Traceback" not in run.stderr + run.stdout


def test_search_refuses_a_damaged_index_with_a_clear_message(tmp_path, previous_index, cache_dir):
    index_dir = copy_index(previous_index, tmp_path / "index")
    shutil.rmtree(_version(index_dir))
    run = hansard_search("search", "public protection", "--index", index_dir, cache_dir=cache_dir, timeout=300)
    assert run.returncode == 1
    assert f"error: index {index_dir} is incomplete: CURRENT names version" in run.stderr
    assert "which is missing" in run.stderr and "--rebuild" in run.stderr
    assert "Traceback" not in run.stderr + run.stdout

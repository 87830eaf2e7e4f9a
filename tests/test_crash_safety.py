"""Killed runs and damaged index directories: an index is always whole, and a damaged one is refused with a clear message."""

import json
import os
import shutil
import signal
import subprocess
import sys
import threading
from pathlib import Path

import pytest

from indexer.build import BuildError, build_index
from indexer.store.embedded import CURRENT, LOCK, MANIFEST, EmbeddedStore, lock_index

from fixtures import KILLED_INPUT, KILLED_INPUT_SPEECH, KNOWN_SPEECH, cli_env, command, copy_index, dense_top, \
    hansard_search, speech_texts


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
    index = EmbeddedStore(index_dir)
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
    index_command = command("index", KILLED_INPUT, "--index", index_dir)
    run = subprocess.Popen(index_command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, env=cli_env(fresh_cache))
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
    assert dense_top(EmbeddedStore(index_dir), encoder, "multi-agency public protection arrangements")  # a search works
    assert KNOWN_SPEECH in dense_top(EmbeddedStore(index_dir), encoder, " ".join(before["known"])[:300])
    assert not EmbeddedStore(index_dir).speech(KILLED_INPUT_SPEECH)

    # The same command, run again, completes with no clean-up by hand.
    again = subprocess.run(index_command, capture_output=True, text=True, env=cli_env(fresh_cache), timeout=600)
    assert again.returncode == 0, again.stderr
    after = EmbeddedStore(index_dir)
    assert after.speech(KILLED_INPUT_SPEECH) and speech_texts(after, KNOWN_SPEECH) == before["known"]
    assert len(after) > before["passages"]
    _assert_tidy(index_dir)


# The write phase, killed at each step: a subprocess writes a new version
# (the old one less its last speech) and SIGKILLs itself at the chosen point.
_KILL_WHILE_WRITING = r"""
import os, signal, sys
from pathlib import Path
import indexer.store.embedded.writing as store
from indexer.store.embedded import EmbeddedStore

index_dir, point = Path(sys.argv[1]), sys.argv[2]
old = EmbeddedStore(index_dir)
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
    real_row = store._sqlite_values
    def row(passage):
        calls.append(1)
        if len(calls) == len(passages) // 2:
            die()
        return real_row(passage)
    store._sqlite_values = row
elif point == "keyword index half written":
    written = []
    real_keywords = store.keywords.write
    def keywords(path, documents, text_bytes):
        def documents_then_die():
            for n, document in enumerate(documents):
                if n == len(passages) // 2:
                    die()
                yield document
        return real_keywords(path, documents_then_die(), text_bytes)
    store.keywords.write = keywords
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
store.write_index(index_dir, passages, vectors, old.model, old.title_vectors())
print("not killed")
"""
KILL_POINTS = ["vectors written", "passages half inserted", "keyword index half written", "manifest written", "version renamed",
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
    assert dense_top(EmbeddedStore(index_dir), encoder, "public protection arrangements")

    # The next run completes and sweeps up what the dead one left.
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "robustness/after-the-crash", "paragraphs": [
        "A statement indexed after the crash, about the repair of the parliamentary estate."]}) + "\n")
    summary = build_index([extra], index_dir, encoder, members)
    assert not summary.problems
    _assert_tidy(index_dir)
    index = EmbeddedStore(index_dir)
    assert index.speech("robustness/after-the-crash") and speech_texts(index, KNOWN_SPEECH) == before["known"]


def test_a_second_run_is_refused_while_one_holds_the_index(tmp_path, previous_index, encoder, members):
    index_dir = copy_index(previous_index, tmp_path / "index")
    extra = tmp_path / "extra.jsonl"
    extra.write_text(json.dumps({"id": "robustness/second-run", "paragraphs": ["Words of a second run, for later."]}) + "\n")
    with lock_index(index_dir):  # as a run in another process would
        with pytest.raises(BuildError, match=f"another indexing run \\(process {os.getpid()}\\) is updating"):
            build_index([extra], index_dir, encoder, members)
    assert not EmbeddedStore(index_dir).speech("robustness/second-run")
    build_index([extra], index_dir, encoder, members)  # once the first has finished (or died)
    assert EmbeddedStore(index_dir).speech("robustness/second-run")


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

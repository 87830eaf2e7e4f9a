"""The index directory's layout: versions, CURRENT, the manifest, the lock, and the checks made before opening one.

Layout:

    DIR/CURRENT            names the live version (replaced atomically)
    DIR/v-<stamp>/manifest.json
    DIR/v-<stamp>/vectors.faiss      row i is the vector of passage `vec = i`
    DIR/v-<stamp>/passages.sqlite
    DIR/v-<stamp>/keywords/          the keyword engine's indexes (tantivy): passages/, speeches/
    DIR/v-<stamp>/speech-vectors.faiss  row r is the vector of the speech whose key is keys[r]
    DIR/v-<stamp>/speeches.npy       keys[r]: the vec of speech r's first passage, ascending
    DIR/v-<stamp>/speech-of.npy      the speech row of each passage, by vec
    DIR/v-<stamp>/title-vectors.npy  row t is the embedding of debate title t (table `titles` of passages.sqlite)
    DIR/v-<stamp>/title-of.npy       the title row of each passage, by vec (-1: none)

A build writes a complete new version beside the live one and then swaps
CURRENT with one atomic rename, so a reader never sees half an index and a
build that dies part-way (even killed outright) leaves the previous version
serving. What a dead build leaves behind (`.building-*` folders, a version
never made current, `.CURRENT.*.tmp`) is removed by the next build that
completes. One build at a time holds DIR/.lock (an advisory lock the system
drops when its process ends, however it ends).
"""

from __future__ import annotations

import contextlib
import json
import os
import re
import shutil
import uuid
from pathlib import Path
from typing import Iterator, Optional

try:
    import fcntl
except ImportError:  # not on Windows: builds there are not locked against each other
    fcntl = None

from indexer.store.base import StoreDescription, StoreError, StoreLocked

# 2: full-text (FTS5) table and filter indexes; 3: keyword search by tantivy, FTS5 gone;
# 4: speech vectors, and debate titles' vectors
FORMAT_VERSION = 4
CURRENT = "CURRENT"
MANIFEST = "manifest.json"
VECTORS = "vectors.faiss"
METADATA = "passages.sqlite"
KEYWORDS = "keywords"
SPEECH_VECTORS = "speech-vectors.faiss"
SPEECH_KEYS = "speeches.npy"
SPEECH_OF = "speech-of.npy"
TITLE_VECTORS = "title-vectors.npy"
TITLE_OF = "title-of.npy"
LOCK = ".lock"
REBUILD = "rebuild it with `hansard-search index --rebuild`"  # the advice for a damaged index
_VERSION_NAME = re.compile(r"^v-[A-Za-z0-9_-][A-Za-z0-9._-]*$")  # a name in DIR, never a path


@contextlib.contextmanager
def lock_index(index_dir: Path) -> Iterator[None]:
    """Hold index_dir for one build; StoreLocked if another build holds it."""
    index_dir = Path(index_dir)
    index_dir.mkdir(parents=True, exist_ok=True)
    with open(index_dir / LOCK, "a+", encoding="utf-8") as f:
        if fcntl is not None:
            try:
                fcntl.flock(f.fileno(), fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                f.seek(0)
                holder = f.read().strip()
                raise StoreLocked(
                    f"another indexing run{f' (process {holder})' if holder.isdigit() else ''} is updating "
                    f"{index_dir}: wait for it to finish"
                ) from None
            except OSError:
                pass  # a file system without locks (some network mounts): go on unlocked, as before
            else:
                f.seek(0)
                f.truncate()
                f.write(f"{os.getpid()}\n")
                f.flush()
        yield  # the lock goes with the file: closed here, or by the system when the process dies


def live_version(index_dir: Path) -> Optional[str]:
    """The version directory CURRENT names (None when there is none or it is unreadable)."""
    try:
        return (index_dir / CURRENT).read_text(encoding="utf-8").strip() or None
    except (OSError, UnicodeDecodeError):
        return None


def _write_atomic(path: Path, text: str) -> None:
    tmp = path.with_name(f".{path.name}.{uuid.uuid4().hex[:8]}.tmp")
    with open(tmp, "w", encoding="utf-8") as f:
        f.write(text)
        f.flush()
        os.fsync(f.fileno())
    os.replace(tmp, path)


def _fsync(path: Path) -> None:
    """Flush a file's or a directory's entries to disk."""
    fd = os.open(path, os.O_RDONLY)
    try:
        os.fsync(fd)
    finally:
        os.close(fd)


def _remove_stale_versions(index_dir: Path, keep: set) -> None:
    """Remove what earlier builds left: old versions, and the debris of builds that died."""
    # A server holding an old version keeps its open files; unlinking is safe.
    for child in index_dir.iterdir():
        if child.name in keep or child.name in (CURRENT, LOCK):
            continue
        if child.is_dir() and child.name.startswith(("v-", ".building-")):
            shutil.rmtree(child, ignore_errors=True)
        elif child.is_file() and child.name.startswith(f".{CURRENT}.") and child.name.endswith(".tmp"):
            child.unlink(missing_ok=True)


def _manifest_problem(manifest: StoreDescription) -> Optional[str]:
    """What is wrong with the manifest's fields, if anything (they come from a file)."""
    def whole(value) -> bool:
        return isinstance(value, int) and not isinstance(value, bool) and value >= 0

    if not isinstance(manifest.model, dict) or not all(isinstance(manifest.model.get(k), str) for k in ("name", "version")):
        return "model must name the model and its version"
    for name in ("format_version", "dimension", "passages", "speeches"):
        if not whole(getattr(manifest, name)):
            return f"{name} must be a whole number, not {getattr(manifest, name)!r}"
    if manifest.files is not None and not (
        isinstance(manifest.files, dict) and all(whole(size) for size in manifest.files.values())
    ):
        return "files must give each file's size"
    return None


def _sqlite_truncation(path: Path) -> Optional[str]:
    """Why a SQLite file is shorter than its own header says, or None (a cheap check: no page is read)."""
    try:
        with open(path, "rb") as f:
            header = f.read(100)
    except OSError as err:
        return f"cannot be read: {err}"
    if len(header) < 100 or not header.startswith(b"SQLite format 3\x00"):
        return "is not an SQLite database"
    page_size = int.from_bytes(header[16:18], "big")
    page_size = 65536 if page_size == 1 else page_size
    pages = int.from_bytes(header[28:32], "big")
    # The page count in the header is valid when written by the same change as the header's counter.
    if header[24:28] == header[92:96] and pages and path.stat().st_size < pages * page_size:
        return f"is truncated: {path.stat().st_size:,} bytes of {pages * page_size:,}"
    return None


def is_index(index_dir: Path) -> bool:
    return (Path(index_dir) / CURRENT).is_file()


def open_version(index_dir: Path) -> tuple[Path, StoreDescription]:
    """The live version's folder and manifest, checked whole before anything is read from its files.

    StoreError, saying what is wrong and what to do, for a missing
    directory, a damaged CURRENT, a version without its manifest or files,
    a file of another size than the manifest records, or a truncated SQLite file.
    """
    current = index_dir / CURRENT
    if not index_dir.is_dir():
        raise StoreError(f"index directory {index_dir} does not exist; build one with `hansard-search index`")
    if not current.is_file():
        raise StoreError(f"{index_dir} is not a hansard-search index (no {CURRENT} file); build one with `hansard-search index`")
    try:
        with open(current, "rb") as f:
            version = f.read(200).decode("ascii").strip()
    except UnicodeDecodeError:
        version = None
    except OSError as err:
        raise StoreError(f"index {index_dir}: cannot read {CURRENT}: {err}") from err
    if not version or not _VERSION_NAME.match(version):
        shown = "nothing" if version == "" else repr(version) if version else "unreadable bytes"
        raise StoreError(f"index {index_dir} is damaged: {CURRENT} names {shown}, not an index version; {REBUILD}")
    path = index_dir / version
    if not path.is_dir():
        raise StoreError(f"index {index_dir} is incomplete: {CURRENT} names version {version}, which is missing; {REBUILD}")
    manifest_path = path / MANIFEST
    if not manifest_path.is_file():
        raise StoreError(f"index {index_dir} is incomplete: version {version!r} has no {MANIFEST}; {REBUILD}")
    try:
        fields = json.loads(manifest_path.read_text(encoding="utf-8"))
        manifest = StoreDescription(**fields)
    except (ValueError, TypeError) as err:
        raise StoreError(f"index {index_dir} has an unreadable manifest: {err}; {REBUILD}") from err
    problem = _manifest_problem(manifest)
    if problem:
        raise StoreError(f"index {index_dir} has an unreadable manifest: {problem}; {REBUILD}")
    if manifest.format_version != FORMAT_VERSION:
        raise StoreError(
            f"index {index_dir} has format version {manifest.format_version}; this program reads "
            f"version {FORMAT_VERSION}: {REBUILD}"
        )
    if not (path / KEYWORDS).is_dir():
        raise StoreError(f"index {index_dir} is incomplete: version {version!r} has no {KEYWORDS}; {REBUILD}")
    for name in dict.fromkeys([VECTORS, METADATA, SPEECH_VECTORS, SPEECH_KEYS, SPEECH_OF, TITLE_VECTORS, TITLE_OF,
                               *(manifest.files or {})]):
        if ".." in Path(name).parts or Path(name).is_absolute():
            raise StoreError(f"index {index_dir} has an unreadable manifest: file {name!r} is outside the version; {REBUILD}")
        if not (path / name).is_file():
            raise StoreError(f"index {index_dir} is incomplete: version {version!r} has no {name}; {REBUILD}")
        expected = (manifest.files or {}).get(name)
        size = (path / name).stat().st_size
        if expected is not None and size != expected:
            raise StoreError(
                f"index {index_dir} is damaged: {name} is {size:,} bytes, the manifest says {expected:,} "
                f"(truncated or overwritten); {REBUILD}"
            )
    truncated = _sqlite_truncation(path / METADATA)
    if truncated:
        raise StoreError(f"index {index_dir} is damaged: {METADATA} {truncated}; {REBUILD}")
    return path, manifest

"""One indexing run: source files -> speeches -> passages -> vectors -> index.

The run is forgiving of its inputs and strict about its output: a file that
cannot be read is reported (with file, line and reason) and skipped; the rest
is indexed. Speeches already in the index are kept unless the run brings a new
version of the same speech id, so a day can be added without re-reading the
rest. The new index version only becomes live once it is complete.

With a database URL the same run loads PostgreSQL instead (indexer.pgstore):
in batches of whole sittings, each replaced in one transaction, so a run
that stops part-way leaves every sitting either old or new, never half.
"""

from __future__ import annotations

import time
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional

import numpy as np

from embeddings.encoder import Encoder
from indexer.sources.errors import SourceError, SourceWarning, SupersededFile
from indexer.sources.members import MemberDirectory
from indexer.sources.passages import speech_passages
from indexer.sources.readers import MB, discover, read_source
from indexer.sources.vocabulary import sitting_key
from indexer.sources.records import Passage, Speech
from indexer.store import ANN_THRESHOLD, Index, IndexError_, IndexLocked, Manifest, is_index, lock_index, write_index

DEFAULT_MAX_FILE_MB = 100
# Passages embedded and written per PostgreSQL transaction (whole sittings:
# a batch may run over to finish its last sitting).
DEFAULT_BATCH_PASSAGES = 2_000

BatchReport = Callable[[int, int], None]  # (paragraphs embedded or written so far, paragraphs in all)
EMBED_CHUNK = 256  # passages embedded between progress reports


class BuildError(Exception):
    """The run cannot go on at all (as opposed to a file being skipped)."""


@dataclass
class BuildSummary:
    files_read: int = 0
    files_skipped: list[SourceError] = field(default_factory=list)  # whole files left out
    records_skipped: list[SourceError] = field(default_factory=list)  # single records left out
    superseded: list[SourceError] = field(default_factory=list)  # older versions of a day, left out on purpose
    warnings: list[SourceWarning] = field(default_factory=list)  # read and indexed, with a caveat
    speeches_read: int = 0
    speeches_kept: int = 0  # from the previous index, untouched by this run
    speeches_replaced: int = 0
    speeches_removed: int = 0  # gone: asked to remove, or dropped by a newer version of their sitting
    passages: int = 0  # in the finished index
    passages_embedded: int = 0  # passages of this run's input (cache hits included)
    passages_reused: int = 0  # of those, unchanged (same id and text): vector taken from the index
    passages_cached: int = 0  # of the rest, how many the embedding cache already held
    seconds: dict[str, float] = field(default_factory=dict)
    manifest: Optional[Manifest] = None

    @property
    def problems(self) -> list[SourceError]:
        return self.files_skipped + self.records_skipped

    @property
    def speeches(self) -> int:
        return self.manifest.speeches if self.manifest else 0


FileWrapper = Callable[[Iterable[Path]], Iterable[Path]]  # e.g. a progress bar over the files


def build_index(
    sources: list[Path],
    index_dir: Path,
    encoder: Encoder,
    members: MemberDirectory,
    rebuild: bool = False,
    progress: bool = False,
    wrap_files: Optional[FileWrapper] = None,
    max_file_mb: Optional[float] = DEFAULT_MAX_FILE_MB,
    ann_threshold: Optional[int] = ANN_THRESHOLD,
    database_url: Optional[str] = None,
    batch_passages: int = DEFAULT_BATCH_PASSAGES,
    report: Optional[BatchReport] = None,
) -> BuildSummary:
    """Index sources into index_dir, or into PostgreSQL when database_url is given (merging unless rebuild).

    One run at a time per index directory: a second run on the same
    directory is refused while the first holds its lock (which the system
    releases when a run ends, however it ends). PostgreSQL takes many
    writers at once. Files over max_file_mb (None or 0: no limit) are
    skipped unread.
    """
    if database_url:
        summary = BuildSummary()
        _prepare_database(database_url, encoder, rebuild)
        started = time.perf_counter()
        max_bytes = int(max_file_mb * MB) if max_file_mb else None
        speeches = _read_all(sources, members, summary, wrap_files or (lambda files: files), max_bytes)
        summary.seconds["read"] = time.perf_counter() - started
        return _write_database(speeches, database_url, encoder, summary, batch_passages, report)
    with _locked(index_dir):
        summary = BuildSummary()
        previous = _open_previous(index_dir, encoder, rebuild)
        started = time.perf_counter()
        max_bytes = int(max_file_mb * MB) if max_file_mb else None
        speeches = _read_all(sources, members, summary, wrap_files or (lambda files: files), max_bytes)
        summary.seconds["read"] = time.perf_counter() - started
        return _embed_merge_write(speeches, previous, index_dir, encoder, summary, progress, ann_threshold)


def index_speeches(speeches: list[Speech], index_dir: Path, encoder: Encoder,
                   database_url: Optional[str] = None) -> BuildSummary:
    """Add speeches to the index (replacing any with the same id) as one new version: the admin API's write."""
    if database_url:
        _prepare_database(database_url, encoder, rebuild=False)
        summary = BuildSummary(speeches_read=len(speeches))
        return _write_database(speeches, database_url, encoder, summary, batch_passages=10**9)
    with _locked(index_dir):
        summary = BuildSummary(speeches_read=len(speeches))
        previous = _open_previous(index_dir, encoder, rebuild=False)
        return _embed_merge_write(speeches, previous, index_dir, encoder, summary, progress=False)


def remove_speeches(index_dir: Path, speech_ids: Iterable[str], database_url: Optional[str] = None) -> BuildSummary:
    """A new version without these speeches; their passages and vectors go, the rest is untouched."""
    unwanted = set(speech_ids)
    if database_url:
        from indexer.pgstore import PgIndex, write_passages

        try:
            result = write_passages(database_url, [], np.zeros((0, 1)), unwanted, remove_only=True)
            store = PgIndex(database_url)
        except IndexError_ as err:
            raise BuildError(str(err)) from err
        store.close()
        return BuildSummary(speeches_removed=len(result.speeches_removed), manifest=store.manifest,
                            passages=store.manifest.passages, speeches_kept=store.manifest.speeches)
    with _locked(index_dir):
        try:
            previous = Index(index_dir)
        except IndexError_ as err:
            raise BuildError(str(err)) from err
        kept_vecs, kept, dropped = _without(previous, lambda passage: passage.speech_id in unwanted)
        summary = BuildSummary(speeches_removed=len({passage_id.rsplit("#", 1)[0] for passage_id in dropped}))
        if not dropped:
            summary.manifest, summary.passages = previous.manifest, len(previous)
            return summary
        if not kept:
            raise BuildError("removing these speeches would leave the index empty")
        summary.manifest = write_index(index_dir, kept, previous.vectors_at(kept_vecs), previous.model)
        summary.passages = len(kept)
        summary.speeches_kept = summary.manifest.speeches
        return summary


def _without(index: Index, unwanted: Callable[[Passage], bool]) -> tuple[list[int], list[Passage], dict[str, tuple[int, str]]]:
    """The index's passages (and vector ids) that are wanted, and the others as {passage id: (vec, text)}."""
    kept_vecs, kept, dropped = [], [], {}
    for vec, passage in index.iter_passages():
        if unwanted(passage):
            dropped[passage.id] = (vec, passage.text)
        else:
            kept_vecs.append(vec)
            kept.append(passage)
    return kept_vecs, kept, dropped


@contextmanager
def _locked(index_dir: Path) -> Iterator[None]:
    try:
        with lock_index(index_dir):
            yield
    except IndexLocked as err:
        raise BuildError(str(err)) from err


def _embed_merge_write(speeches: list[Speech], previous: Optional[Index], index_dir: Path, encoder: Encoder,
                       summary: BuildSummary, progress: bool, ann_threshold: Optional[int] = ANN_THRESHOLD) -> BuildSummary:
    """Split and embed the speeches read, merge them into the previous version, write.

    Merging: a speech read replaces the one with its id. A ParlParse file is
    a whole sitting (one collection, one day), so its speeches also replace
    every speech of that sitting the index holds from an earlier version of
    the file: a speech the newer version dropped, or moved to a new id (its
    `gidredirect`), goes. A passage whose id and text are unchanged keeps
    its vector from the index: it is not embedded again, cache or no cache.
    """
    if previous is not None and not speeches:
        # Nothing read (every file skipped): the index stays exactly as it is, not rewritten.
        summary.speeches_kept = previous.speech_count()
        summary.manifest = previous.manifest
        summary.passages = len(previous)
        return summary

    started = time.perf_counter()
    new_passages = [
        passage for speech in speeches for passage in speech_passages(speech, encoder.max_tokens, encoder.count_tokens)
    ]
    summary.seconds["split"] = time.perf_counter() - started

    incoming = {s.id for s in speeches}
    sittings = {key for s in speeches if (key := sitting_key(s.house, s.id))}

    def superseded(passage: Passage) -> bool:
        return passage.speech_id in incoming or sitting_key(passage.house, passage.speech_id) in sittings

    kept_vecs, kept, dropped = _without(previous, superseded) if previous is not None else ([], [], {})
    new_vectors = _embed_reusing(
        new_passages, {passage_id: text for passage_id, (_, text) in dropped.items()},
        lambda ids: previous.vectors_at([dropped[passage_id][0] for passage_id in ids]), encoder, summary, progress)

    passages, vectors = new_passages, new_vectors
    if previous is not None:
        dropped_speeches = {passage_id.rsplit("#", 1)[0] for passage_id in dropped}
        summary.speeches_replaced = len(dropped_speeches & incoming)
        summary.speeches_removed = len(dropped_speeches - incoming)
        summary.speeches_kept = len({p.speech_id for p in kept})
        if kept:
            passages = kept + new_passages
            vectors = np.vstack([previous.vectors_at(kept_vecs), new_vectors])

    if not passages:
        raise BuildError("nothing to index: no speeches were read from the sources given")

    started = time.perf_counter()
    summary.manifest = write_index(index_dir, passages, vectors, encoder.info, ann_threshold)
    summary.seconds["store"] = time.perf_counter() - started
    summary.passages = len(passages)
    return summary


def _embed_reusing(passages: list[Passage], stored_text: dict[str, str],
                   stored_vectors: Callable[[list[str]], np.ndarray], encoder: Encoder, summary: BuildSummary,
                   progress: bool = False, on_chunk: Optional[Callable[[int, int], None]] = None) -> np.ndarray:
    """Vectors for the passages. One whose id and text the store holds (stored_text) keeps its stored vector,
    cache or no cache; the others are embedded (on_chunk(embedded so far, to embed) after each EMBED_CHUNK).
    """
    started = time.perf_counter()
    vectors = np.zeros((len(passages), encoder.info.dimension), dtype=np.float32)
    unchanged = [i for i, passage in enumerate(passages) if stored_text.get(passage.id) == passage.text]
    if unchanged:
        vectors[unchanged] = stored_vectors([passages[i].id for i in unchanged])
    reused = set(unchanged)
    todo = [i for i in range(len(passages)) if i not in reused]
    hits_before = encoder.cache_hits
    step = EMBED_CHUNK if on_chunk is not None else max(1, len(todo))
    for start in range(0, len(todo), step):
        chunk = todo[start:start + step]
        vectors[chunk] = encoder.encode([passages[i].text for i in chunk], progress=progress)
        if on_chunk is not None:
            on_chunk(start + len(chunk), len(todo))
    summary.passages_embedded += len(passages)
    summary.passages_reused += len(unchanged)
    summary.passages_cached += encoder.cache_hits - hits_before
    summary.seconds["embed"] = summary.seconds.get("embed", 0.0) + time.perf_counter() - started
    return vectors


def _open_previous(index_dir: Path, encoder: Encoder, rebuild: bool) -> Optional[Index]:
    if rebuild or not is_index(index_dir):
        return None
    try:
        previous = Index(index_dir)
    except IndexError_ as err:
        advice = "" if "--rebuild" in str(err) else "; to start afresh, run again with --rebuild"
        raise BuildError(f"{err}{advice}") from err
    if previous.model != encoder.info:
        raise BuildError(
            f"index {index_dir} was built with {previous.model.key} ({previous.model.dimension}-d), "
            f"not {encoder.info.key}: use --model {previous.model.name} to add to it, or --rebuild to replace it"
        )
    return previous


def _read_all(
    sources: list[Path], members: MemberDirectory, summary: BuildSummary, wrap_files: FileWrapper,
    max_bytes: Optional[int] = None,
) -> list[Speech]:
    """Every speech of every readable file, first version of each speech id winning.

    A file that cannot be read whole is skipped whole, whatever the reason
    (including a fault in a reader: the other files are still indexed), and
    reported. A speech id read again from a later file is reported and the
    later copy skipped: files are read in the order given, folders in name order.
    """

    def report_discovery(problem: SourceError) -> None:
        (summary.superseded if isinstance(problem, SupersededFile) else summary.files_skipped).append(problem)

    files = discover(sources, report_discovery)
    speeches: dict[str, Speech] = {}
    origin: dict[str, Path] = {}
    for path in wrap_files(files):
        records: list[SourceError] = []
        try:
            # A file counts only if it reads to the end: a fault half-way
            # (truncated XML) skips the whole file, not its first half.
            read = list(read_source(path, members, records.append, max_bytes=max_bytes))
        except SourceError as problem:
            summary.files_skipped.append(problem)
            continue
        except (OSError, ValueError) as err:
            summary.files_skipped.append(SourceError(path, f"cannot read: {err}"))
            continue
        except Exception as err:  # noqa: BLE001 - one odd file must not stop the run
            summary.files_skipped.append(SourceError(path, f"cannot read: {type(err).__name__}: {err}"))
            continue
        summary.files_read += 1
        summary.warnings.extend(r for r in records if isinstance(r, SourceWarning))
        summary.records_skipped.extend(r for r in records if not isinstance(r, SourceWarning))
        for speech in read:
            if speech.id in speeches:
                summary.records_skipped.append(
                    SourceError(path, f"duplicate speech id {speech.id!r} (first read from {origin[speech.id]}); skipped")
                )
                continue
            speeches[speech.id] = speech
            origin[speech.id] = path
    summary.speeches_read = len(speeches)
    return list(speeches.values())


def find_members_folder(sources: Iterable[Path]) -> Optional[Path]:
    """A `members` folder beside the sources (as in TheyWorkForYou's layout), if any."""
    for source in sources:
        for folder in [Path(source).resolve(), *Path(source).resolve().parents][:4]:
            candidate = folder / "members"
            if candidate.is_dir():
                return candidate
    return None


# ---------------------------------------------------------------- PostgreSQL


def _prepare_database(database_url: str, encoder: Encoder, rebuild: bool) -> None:
    """Bring the store's schema up to date (creating it on first use); with rebuild, start it afresh."""
    from indexer.pgstore import drop_store, migrate

    try:
        if rebuild:
            drop_store(database_url)
        migrate(database_url, encoder.info)
    except IndexError_ as err:
        raise BuildError(str(err)) from err


def _sitting_batches(speeches: list[Speech], passages_of: Callable[[Speech], list[Passage]],
                     batch_passages: int) -> Iterator[list[tuple[Speech, list[Passage]]]]:
    """The speeches with their passages, in batches of about batch_passages, never splitting a sitting."""
    sittings: dict = {}
    for speech in speeches:
        sittings.setdefault(sitting_key(speech.house, speech.id) or ("speech", speech.id), []).append(speech)
    batch, size = [], 0
    for group in sittings.values():
        for speech in group:
            passages = passages_of(speech)
            batch.append((speech, passages))
            size += len(passages)
        if size >= batch_passages:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _write_database(speeches: list[Speech], database_url: str, encoder: Encoder, summary: BuildSummary,
                    batch_passages: int, report: Optional[BatchReport] = None) -> BuildSummary:
    """Split, embed and write speeches to PostgreSQL, one transaction per batch of whole sittings.

    Each batch replaces its speeches and every speech of its ParlParse
    sittings (a newer version of a sitting file holds all of it). A passage
    whose id and text the store already holds keeps its stored vector.
    """
    from indexer.pgstore import PgIndex, bulk_load, connect, existing_vectors, write_passages

    def passages_of(speech: Speech) -> list[Passage]:
        return speech_passages(speech, encoder.max_tokens, encoder.count_tokens)

    total = sum(len(s.paragraphs) for s in speeches)  # an estimate for progress: long paragraphs split further
    done = 0
    removed: set = set()
    started_all = time.perf_counter()
    try:
        with connect(database_url) as conn, bulk_load(conn, total):
            for batch in _sitting_batches(speeches, passages_of, batch_passages):
                passages = [p for _, ps in batch for p in ps]
                speech_ids = {speech.id for speech, _ in batch}
                sittings = {key for speech, _ in batch if (key := sitting_key(speech.house, speech.id))}
                held = existing_vectors(conn, speech_ids, sittings)
                paragraphs = sum(len(speech.paragraphs) for speech, _ in batch)

                def embedding(embedded: int, to_embed: int) -> None:  # progress moves as a batch embeds
                    if report is not None:
                        report(min(done + paragraphs * embedded // to_embed, total), total)

                vectors = _embed_reusing(passages, {pid: text for pid, (text, _) in held.items()},
                                         lambda ids: np.stack([held[pid][1] for pid in ids]), encoder, summary,
                                         on_chunk=embedding)
                result = write_passages(conn, passages, vectors, speech_ids, sittings)
                summary.speeches_replaced += result.speeches_replaced
                removed.update(result.speeches_removed)
                done += paragraphs
                if report is not None:
                    report(min(done, total), total)
        # Writing, including the HNSW index built at the end of a bulk load.
        summary.seconds["store"] = time.perf_counter() - started_all - summary.seconds.get("embed", 0.0)
        store = PgIndex(database_url)
    except IndexError_ as err:
        raise BuildError(str(err)) from err
    except Exception as err:
        import psycopg

        if isinstance(err, psycopg.Error):
            raise BuildError(f"writing to the database failed: {str(err).strip()}; batches already written "
                             f"stay (each is whole); run the same command again to finish") from err
        raise
    store.close()
    summary.speeches_removed = len(removed)
    summary.manifest = store.manifest
    summary.passages = store.manifest.passages
    summary.speeches_kept = store.manifest.speeches - len(speeches)
    return summary

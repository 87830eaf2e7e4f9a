"""One indexing run: source files -> speeches -> passages -> vectors -> a store's writer.

The run is forgiving of its inputs and strict about its output: a file that
cannot be read is reported (with file, line and reason) and skipped; the rest
is indexed. Speeches already in the store are kept unless the run brings a new
version of the same speech id (or of its ParlParse sitting), so a day can be
added without re-reading the rest; a passage whose id and text are unchanged
keeps its stored vector. What a run writes becomes visible as the store's
writer commits it (`indexer.store.base.StoreWriter`): the embedded store as
one new version at the end, PostgreSQL batch by batch of whole sittings.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Iterator, Optional, Union

import numpy as np

from embeddings.encoder import Encoder, ModelInfo
from indexer.sources.errors import SourceError, SourceWarning, SupersededFile
from indexer.sources.members import MemberDirectory
from indexer.sources.passages import speech_passages
from indexer.sources.readers import MB, discover, fill_from_records, read_source
from indexer.sources.records import Passage, Speech
from indexer.sources.vocabulary import sitting_key
from indexer.store import ANN_THRESHOLD, Location, StoreDescription, StoreError, StoreWriter, open_writer

DEFAULT_MAX_FILE_MB = 100

BatchReport = Callable[[int, int], None]  # (paragraphs embedded or written so far, paragraphs in all)
EMBED_CHUNK = 256  # passages embedded between progress reports
Target = Union[Location, Path]  # a store, or the index directory of an embedded one


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
    manifest: Optional[StoreDescription] = None

    @property
    def problems(self) -> list[SourceError]:
        return self.files_skipped + self.records_skipped

    @property
    def speeches(self) -> int:
        return self.manifest.speeches if self.manifest else 0


FileWrapper = Callable[[Iterable[Path]], Iterable[Path]]  # e.g. a progress bar over the files


def build_index(
    sources: list[Path],
    target: Target,
    encoder: Encoder,
    members: MemberDirectory,
    rebuild: bool = False,
    progress: bool = False,
    wrap_files: Optional[FileWrapper] = None,
    max_file_mb: Optional[float] = DEFAULT_MAX_FILE_MB,
    ann_threshold: Optional[int] = ANN_THRESHOLD,
    batch_passages: Optional[int] = None,
    report: Optional[BatchReport] = None,
) -> BuildSummary:
    """Index sources into the target store (merging unless rebuild).

    The store's writer is opened before a file is read, so that a run that
    cannot write (another run holds the index directory, the database
    is down or made by another model) fails at once. Files over max_file_mb
    (None or 0: no limit) are skipped unread.
    """
    summary = BuildSummary()
    with _writer(target, encoder.info, rebuild, ann_threshold, batch_passages) as writer:
        started = time.perf_counter()
        max_bytes = int(max_file_mb * MB) if max_file_mb else None
        speeches = _read_all(sources, members, summary, wrap_files or (lambda files: files), max_bytes)
        summary.seconds["read"] = time.perf_counter() - started
        return _write(speeches, writer, encoder, summary, progress, report)


def index_speeches(speeches: list[Speech], target: Target, encoder: Encoder) -> BuildSummary:
    """Add speeches to the store (replacing any with the same id) in one write: the admin API's."""
    summary = BuildSummary(speeches_read=len(speeches))
    with _writer(target, encoder.info, batch_passages=10**9) as writer:
        return _write(speeches, writer, encoder, summary)


def remove_speeches(target: Target, speech_ids: Iterable[str], model: ModelInfo) -> BuildSummary:
    """The store (of vectors by `model`) without these speeches; their passages and vectors go, the rest is untouched."""
    with _writer(target, model) as writer:
        try:
            removed = writer.remove(speech_ids)
            description = writer.commit()
        except StoreError as err:
            raise BuildError(str(err)) from err
    return _described(BuildSummary(speeches_removed=removed), description, speeches_written=0)


class _writer:
    """The target's writer, opened and closed with the store's errors said as BuildError."""

    def __init__(self, target: Target, model: ModelInfo, rebuild: bool = False,
                 ann_threshold: Optional[int] = ANN_THRESHOLD, batch_passages: Optional[int] = None):
        self.writer = open_writer(Location.of(target), model, rebuild, ann_threshold, batch_passages)

    def __enter__(self) -> StoreWriter:
        try:
            return self.writer.__enter__()
        except StoreError as err:
            raise BuildError(str(err)) from err

    def __exit__(self, *exc) -> None:
        self.writer.__exit__(*exc)


def _write(speeches: list[Speech], writer: StoreWriter, encoder: Encoder, summary: BuildSummary,
           progress: bool = False, report: Optional[BatchReport] = None) -> BuildSummary:
    """Split and embed the speeches, and hand them to the writer in batches of whole sittings; commit.

    Each batch replaces its speeches and every speech of its ParlParse
    sittings the store holds (a newer version of a sitting's file holds all
    of it: a speech it dropped, or moved to a new id, goes). A passage whose
    id and text the store already holds keeps its stored vector.
    """
    def passages_of(speech: Speech) -> list[Passage]:
        return speech_passages(speech, encoder.max_tokens, encoder.count_tokens)

    total = sum(len(s.paragraphs) for s in speeches)  # an estimate for progress: long paragraphs split further
    # Progress: a store written in batches reports each batch's embedding and
    # writing (`report`); one written whole at the end shows the encoder's own bar.
    batched = writer.batch_passages is not None
    report = report if batched else None
    progress = progress and not batched
    done = 0
    removed: set = set()
    started_all = time.perf_counter()
    try:
        with writer.bulk(total):
            for batch in _sitting_batches(speeches, passages_of, writer.batch_passages):
                passages = [p for _, ps in batch for p in ps]
                speech_ids = {speech.id for speech, _ in batch}
                sittings = {key for speech, _ in batch if (key := sitting_key(speech.house, speech.id))}
                held = writer.held(speech_ids, sittings)
                paragraphs = sum(len(speech.paragraphs) for speech, _ in batch)

                def embedding(embedded: int, to_embed: int) -> None:  # progress moves as a batch embeds
                    if report is not None:
                        report(min(done + paragraphs * embedded // to_embed, total), total)

                vectors = _embed_reusing(passages, {pid: text for pid, (text, _) in held.items()},
                                         lambda ids: writer.vectors_at([held[pid][1] for pid in ids]), encoder, summary,
                                         progress, on_chunk=embedding if report is not None else None)
                _embed_titles(passages, writer, encoder)
                replaced = writer.replace(passages, vectors, speech_ids, sittings)
                summary.speeches_replaced += replaced.speeches_replaced
                removed.update(replaced.speeches_removed)
                done += paragraphs
                if report is not None:
                    report(min(done, total), total)
            description = writer.commit()
    except StoreError as err:
        raise BuildError(str(err)) from err
    # Writing, including a vector index built at the end of a load.
    summary.seconds["store"] = time.perf_counter() - started_all - summary.seconds.get("embed", 0.0)
    summary.speeches_removed = len(removed)
    return _described(summary, description, speeches_written=len(speeches))


def _described(summary: BuildSummary, description: StoreDescription, speeches_written: int) -> BuildSummary:
    summary.manifest = description
    summary.passages = description.passages
    summary.speeches_kept = description.speeches - speeches_written
    return summary


def _sitting_batches(speeches: list[Speech], passages_of: Callable[[Speech], list[Passage]],
                     batch_passages: Optional[int]) -> Iterator[list[tuple[Speech, list[Passage]]]]:
    """The speeches with their passages, in batches of about batch_passages (None: one), never splitting a sitting."""
    sittings: dict = {}
    for speech in speeches:
        sittings.setdefault(sitting_key(speech.house, speech.id) or ("speech", speech.id), []).append(speech)
    batch, size = [], 0
    for group in sittings.values():
        for speech in group:
            passages = passages_of(speech)
            batch.append((speech, passages))
            size += len(passages)
        if batch_passages is not None and size >= batch_passages:
            yield batch
            batch, size = [], 0
    if batch:
        yield batch


def _embed_titles(passages: list[Passage], writer: StoreWriter, encoder: Encoder) -> None:
    """Embed the debate titles of these passages that the store does not hold yet (a few per sitting).

    The hybrid ranking reads a passage's title vector beside its own: a
    paragraph's topic is often named only in its debate's title.
    """
    missing = sorted(writer.missing_titles({p.debate for p in passages if p.debate}))
    if missing:
        writer.add_titles(dict(zip(missing, encoder.encode(missing))))


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

    def filled(page: Speech, record: Speech) -> None:
        summary.warnings.append(SourceWarning(origin[page.id], f"{page.id}: what it lacks (speaker, date) filled "
                                                               f"from the Parliament search record {record.id}"))

    # A contribution page lacks its speaker and date where Parliament's search record of it has them.
    return fill_from_records(list(speeches.values()), filled)


def find_members_folder(sources: Iterable[Path]) -> Optional[Path]:
    """A `members` folder beside the sources (as in TheyWorkForYou's layout), if any."""
    for source in sources:
        for folder in [Path(source).resolve(), *Path(source).resolve().parents][:4]:
            candidate = folder / "members"
            if candidate.is_dir():
                return candidate
    return None

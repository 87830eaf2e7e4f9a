"""One indexing run: source files -> speeches -> passages -> vectors -> index.

The run is forgiving of its inputs and strict about its output: a file that
cannot be read is reported (with file, line and reason) and skipped; the rest
is indexed. Speeches already in the index are kept unless the run brings a new
version of the same speech id, so a day can be added without re-reading the
rest. The new index version only becomes live once it is complete.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, field
from pathlib import Path
from typing import Callable, Iterable, Optional

import numpy as np

from embeddings.encoder import Encoder
from indexer.errors import SourceError, SupersededFile
from indexer.members import MemberDirectory
from indexer.passages import speech_passages
from indexer.readers import discover, read_source
from indexer.records import Passage, Speech
from indexer.store import Index, IndexError_, Manifest, is_index, write_index


class BuildError(Exception):
    """The run cannot go on at all (as opposed to a file being skipped)."""


@dataclass
class BuildSummary:
    files_read: int = 0
    files_skipped: list[SourceError] = field(default_factory=list)  # whole files left out
    records_skipped: list[SourceError] = field(default_factory=list)  # single records left out
    superseded: list[SourceError] = field(default_factory=list)  # older versions of a day, left out on purpose
    speeches_read: int = 0
    speeches_kept: int = 0  # from the previous index, untouched by this run
    speeches_replaced: int = 0
    passages: int = 0  # in the finished index
    passages_embedded: int = 0  # passages of this run's input (cache hits included)
    passages_cached: int = 0  # of those, how many the embedding cache already held
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
) -> BuildSummary:
    """Index sources into index_dir (merging with what is there unless rebuild)."""
    summary = BuildSummary()
    previous = _open_previous(index_dir, encoder, rebuild)

    started = time.perf_counter()
    speeches = _read_all(sources, members, summary, wrap_files or (lambda files: files))
    summary.seconds["read"] = time.perf_counter() - started

    started = time.perf_counter()
    new_passages = [
        passage for speech in speeches for passage in speech_passages(speech, encoder.max_tokens, encoder.count_tokens)
    ]
    summary.seconds["split"] = time.perf_counter() - started

    started = time.perf_counter()
    hits_before = encoder.cache_hits
    new_vectors = encoder.encode([p.text for p in new_passages], progress=progress)
    summary.passages_embedded = len(new_passages)
    summary.passages_cached = encoder.cache_hits - hits_before
    summary.seconds["embed"] = time.perf_counter() - started

    passages, vectors = new_passages, new_vectors
    if previous is not None:
        incoming = {s.id for s in speeches}
        kept_vecs, kept = [], []
        replaced = set()
        for vec, passage in previous.iter_passages():
            if passage.speech_id in incoming:
                replaced.add(passage.speech_id)
            else:
                kept_vecs.append(vec)
                kept.append(passage)
        summary.speeches_replaced = len(replaced)
        summary.speeches_kept = len({p.speech_id for p in kept})
        if kept:
            passages = kept + new_passages
            vectors = np.vstack([previous.vectors_at(kept_vecs), new_vectors])

    if not passages:
        raise BuildError("nothing to index: no speeches were read from the sources given")

    started = time.perf_counter()
    summary.manifest = write_index(index_dir, passages, vectors, encoder.info)
    summary.seconds["store"] = time.perf_counter() - started
    summary.passages = len(passages)
    return summary


def _open_previous(index_dir: Path, encoder: Encoder, rebuild: bool) -> Optional[Index]:
    if rebuild or not is_index(index_dir):
        return None
    try:
        previous = Index(index_dir)
    except IndexError_ as err:
        raise BuildError(f"{err}; to start afresh, run again with --rebuild") from err
    if previous.model != encoder.info:
        raise BuildError(
            f"index {index_dir} was built with {previous.model.key} ({previous.model.dimension}-d), "
            f"not {encoder.info.key}: use --model {previous.model.name} to add to it, or --rebuild to replace it"
        )
    return previous


def _read_all(
    sources: list[Path], members: MemberDirectory, summary: BuildSummary, wrap_files: FileWrapper
) -> list[Speech]:
    """Every speech of every readable file, first version of each speech id winning."""

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
            read = list(read_source(path, members, records.append))
        except SourceError as problem:
            summary.files_skipped.append(problem)
            continue
        except (OSError, ValueError) as err:
            summary.files_skipped.append(SourceError(path, f"cannot read: {err}"))
            continue
        summary.files_read += 1
        summary.records_skipped.extend(records)
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

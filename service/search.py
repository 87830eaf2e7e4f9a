"""Query -> ranked passages: the one place that turns a question into results.

The API and the CLI both call `Searcher`, so they rank identically.
"""

from __future__ import annotations

import threading
from dataclasses import dataclass
from pathlib import Path
from typing import Optional

from embeddings.encoder import Encoder
from indexer.records import Passage
from indexer.store import Index, IndexError_


class ModelMismatch(IndexError_):
    """The index's vectors were made by another model than the one loaded."""


@dataclass
class Hit:
    passage: Passage
    score: float


class Searcher:
    """A loaded index and the model that made it; shared by all requests."""

    def __init__(self, index: Index, encoder: Encoder):
        if index.model != encoder.info:
            raise ModelMismatch(
                f"index {index.dir} was built with {index.model.key} ({index.model.dimension}-d) but the service "
                f"loaded {encoder.info.key} ({encoder.info.dimension}-d): serve it with --model {index.model.name}, "
                f"or rebuild the index with `hansard-search index --rebuild --model {encoder.info.name}`"
            )
        self.index = index
        self.encoder = encoder
        # A fast (Rust) tokenizer shared between threads can fail with
        # "Already borrowed"; queries take ~10 ms, so one at a time is cheap.
        self._encode_lock = threading.Lock()

    @classmethod
    def open(cls, index_dir: Path, encoder: Encoder) -> "Searcher":
        return cls(Index(index_dir), encoder)

    @property
    def total(self) -> int:
        return len(self.index)

    def search(self, query: str, k: int = 10, offset: int = 0) -> list[Hit]:
        """The k passages after the first `offset`, best first, by cosine similarity."""
        with self._encode_lock:
            vector = self.encoder.encode_query(query)
        scores, vecs = self.index.search(vector, k + offset)
        scores, vecs = scores[offset:], vecs[offset:]
        passages = self.index.passages_at(vecs)
        return [Hit(passage, float(score)) for passage, score in zip(passages, scores)]

    def passage(self, passage_id: str) -> Optional[Passage]:
        return self.index.passage(passage_id)

    def speech(self, speech_id: str) -> list[Passage]:
        return self.index.speech(speech_id)

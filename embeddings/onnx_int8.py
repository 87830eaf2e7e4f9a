"""The same model, exported to ONNX and quantised to int8: ~8x faster queries on a CPU.

The packaged sentence-transformers weights are exported once with torch's
ONNX exporter (dynamo; the legacy exporter gives wrong vectors under
transformers 5), then dynamically quantised to int8 per channel with
onnxruntime (per-tensor loses too much: cosine 0.945 against 0.99). The
result is cached as `<model cache>/<model>@<version>.int8.onnx`, so export
happens at the first start only and is reproducible from the packaged
weights. Running it needs only onnxruntime and the model's own
tokenizer.json: mean pooling over the attention mask and L2 normalisation,
as sentence-transformers does for these models.

Export needs `torch`, `onnx` and `onnxscript`; they are dependencies of the
project, so a fresh install can always build the file.
"""

from __future__ import annotations

import contextlib
import logging
import os
import uuid
import warnings
from pathlib import Path
from typing import Sequence

import numpy as np

log = logging.getLogger("hansard")

MAX_TOKENS = 256  # all-MiniLM-L6-v2 reads at most 256 word-pieces
_INPUTS = ("input_ids", "attention_mask", "token_type_ids")


def int8_model_path(model_cache: Path, model_key: str) -> Path:
    return model_cache / f"{model_key.replace('/', '_')}.int8.onnx"


class _Drop(logging.Filter):
    """Drops the log records whose message starts with one of `starts`; lets every other through."""

    def __init__(self, *starts: str):
        super().__init__()
        self.starts = starts

    def filter(self, record: logging.LogRecord) -> bool:
        return not record.getMessage().startswith(self.starts)


@contextlib.contextmanager
def _without_notes(logger: logging.Logger, *starts: str):
    """Silence exactly these messages of one logger for the block (a first index printed them as warnings).

    The root logger gets a do-nothing handler meanwhile: onnxruntime logs through `logging.warning`,
    which would otherwise configure the root logger for the rest of the process."""
    drop, keep_root_bare = _Drop(*starts), logging.NullHandler()
    logger.addFilter(drop)
    logging.getLogger().addHandler(keep_root_bare)
    try:
        yield
    finally:
        logging.getLogger().removeHandler(keep_root_bare)
        logger.removeFilter(drop)


# Notes the first export printed that mean nothing to a user: torch's exporter skipping the ops of
# torchvision (not installed, not needed: a text model), and onnxruntime's advice to run its shape
# pre-processing first (it changes nothing for this model's dynamic quantisation).
_TORCHVISION_NOTE = ("torch.onnx._internal.exporter._registration", "torchvision is not installed")
_PREPROCESS_NOTE = ("", "Please consider to run pre-processing before quantization")  # the root logger


def export_int8(sentence_transformer, destination: Path) -> Path:
    """Export a loaded SentenceTransformer's transformer to int8 ONNX at destination (atomically)."""
    import torch
    from onnxruntime.quantization import QuantType, quantize_dynamic

    transformer = sentence_transformer[0].auto_model.eval()
    tokenizer = sentence_transformer.tokenizer

    class LastHiddenState(torch.nn.Module):
        def __init__(self, model):
            super().__init__()
            self.model = model

        def forward(self, input_ids, attention_mask, token_type_ids):
            return self.model(input_ids=input_ids, attention_mask=attention_mask,
                              token_type_ids=token_type_ids).last_hidden_state

    example = tokenizer(["an example", "a second, longer example sentence"], padding=True, return_tensors="pt")
    batch, sequence = torch.export.Dim("batch"), torch.export.Dim("sequence", max=512)
    destination.parent.mkdir(parents=True, exist_ok=True)
    work = destination.parent / f".export-{uuid.uuid4().hex[:8]}"
    work.mkdir()
    try:
        fp32 = work / "model.onnx"
        with warnings.catch_warnings(), _without_notes(logging.getLogger(_TORCHVISION_NOTE[0]), _TORCHVISION_NOTE[1]):
            warnings.simplefilter("ignore")  # the exporter's notes on axis names and deprecations
            program = torch.onnx.export(
                LastHiddenState(transformer).eval(), tuple(example[name] for name in _INPUTS), dynamo=True,
                input_names=list(_INPUTS), output_names=["last_hidden_state"],
                dynamic_shapes={name: {0: batch, 1: sequence} for name in _INPUTS}, verbose=False,
            )
        program.save(str(fp32))
        int8 = work / "model.int8.onnx"
        with _without_notes(logging.getLogger(_PREPROCESS_NOTE[0]), _PREPROCESS_NOTE[1]):
            quantize_dynamic(str(fp32), str(int8), per_channel=True, weight_type=QuantType.QInt8)
        os.replace(int8, destination)
    finally:
        for leftover in work.iterdir():
            leftover.unlink()
        work.rmdir()
    return destination


class OnnxInt8Model:
    """Embeds texts with the int8 ONNX model: unit vectors, mean-pooled, as the torch model does."""

    def __init__(self, onnx_path: Path, tokenizer_json: Path, threads: int = 1):
        import onnxruntime
        from tokenizers import Tokenizer

        options = onnxruntime.SessionOptions()
        # One thread per request: in a serving process more threads fight (see settings.threads).
        options.intra_op_num_threads = threads
        options.inter_op_num_threads = 1
        options.graph_optimization_level = onnxruntime.GraphOptimizationLevel.ORT_ENABLE_ALL
        options.log_severity_level = 3
        self.session = onnxruntime.InferenceSession(str(onnx_path), options, providers=["CPUExecutionProvider"])
        self.tokenizer = Tokenizer.from_file(str(tokenizer_json))
        self.tokenizer.enable_truncation(MAX_TOKENS)
        self.tokenizer.enable_padding(pad_id=0, pad_token="[PAD]")

    def embed(self, texts: Sequence[str]) -> np.ndarray:
        encoded = self.tokenizer.encode_batch(list(texts))
        ids = np.array([e.ids for e in encoded], dtype=np.int64)
        mask = np.array([e.attention_mask for e in encoded], dtype=np.int64)
        hidden = self.session.run(None, {"input_ids": ids, "attention_mask": mask,
                                         "token_type_ids": np.zeros_like(ids)})[0]
        weights = mask[..., None].astype(np.float32)
        pooled = (hidden * weights).sum(axis=1) / np.maximum(weights.sum(axis=1), 1e-9)
        return (pooled / np.maximum(np.linalg.norm(pooled, axis=1, keepdims=True), 1e-12)).astype(np.float32)

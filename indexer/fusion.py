"""Combining a dense and a keyword ranking into one: pure functions on score arrays.

Used by the embedded store's hybrid search (the PostgreSQL store does the
same arithmetic in SQL) and by the fusion benchmark.
"""

from __future__ import annotations

import numpy as np

RRF_K = 60


def fill_missing(scores_by_vec: dict[int, float], vecs: np.ndarray, floor: float) -> np.ndarray:
    """Scores for vecs; a vec outside the list gets `floor` (at most what the list's last one scored)."""
    return np.array([scores_by_vec.get(int(v), floor) for v in vecs], dtype=np.float32)


def weighted_fusion(dense: np.ndarray, bm25: np.ndarray, dense_weight: float) -> np.ndarray:
    """Weighted sum of the two scores, each min-max normalised over the candidates."""
    return dense_weight * minmax(dense) + (1 - dense_weight) * minmax(bm25)


def minmax(values: np.ndarray) -> np.ndarray:
    if not len(values):
        return values
    low, high = float(values.min()), float(values.max())
    if high - low < 1e-9:
        return np.zeros_like(values)
    return (values - low) / (high - low)


def reciprocal_rank_fusion(rankings: list[np.ndarray], k: int = RRF_K) -> tuple[np.ndarray, np.ndarray]:
    """Plain RRF: score = sum over rankings of 1 / (k + rank), rank from 1."""
    scores: dict[int, float] = {}
    for ranking in rankings:
        for rank, vec in enumerate(ranking, start=1):
            scores[int(vec)] = scores.get(int(vec), 0.0) + 1.0 / (k + rank)
    ordered = sorted(scores.items(), key=lambda kv: -kv[1])
    return (
        np.array([s for _, s in ordered], dtype=np.float32),
        np.array([v for v, _ in ordered], dtype=np.int64),
    )

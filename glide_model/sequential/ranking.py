"""What a fitted system is to the harness: a ranker of all items for a batch of histories.

A ranker answers ``top_k(histories, k, exclude_history)``: for each history the k best item indices,
best first, over the whole catalog (full ranking, no sampled negatives). ``exclude_history`` is the
"history excluded" protocol: items the user already has in its input sequence are never returned,
as GLIDE never recommends a consumed episode. Systems that score every item (popularity, kNN,
SASRec) subclass :class:`ScoreRanker` and only write ``scores``; generative ones (TIGER, the LLM)
implement ``top_k`` directly. Where fewer than k items can be returned the row is padded with -1.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Callable, Sequence
from typing import Protocol, runtime_checkable

import numpy as np

from glide_model.sequential.split import EvalSet

PAD = -1


@runtime_checkable
class Ranker(Protocol):
    def top_k(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool) -> np.ndarray:
        """(len(histories), k) int64 item indices, best first, PAD where nothing is left."""
        ...


def top_k_from_scores(scores: np.ndarray, histories: Sequence[np.ndarray], k: int,
                      exclude_history: bool) -> np.ndarray:
    """Best k columns per row of a (B, N) score matrix; ties go to the lower item index."""
    scores = np.array(scores, dtype=np.float64)  # a copy: masking must not touch the caller's array
    n_rows, n_items = scores.shape
    if exclude_history:
        for row, history in enumerate(histories):
            scores[row, np.asarray(history, dtype=np.int64)] = -np.inf
    take = min(k, n_items)
    part = np.argpartition(-scores, take - 1, axis=1)[:, :take] if take < n_items else \
        np.broadcast_to(np.arange(n_items), (n_rows, n_items))
    picked = np.take_along_axis(scores, part, axis=1)
    order = np.lexsort((part, -picked), axis=1)  # by score descending, then item index
    top = np.take_along_axis(part, order, axis=1)
    top = np.where(np.take_along_axis(picked, order, axis=1) == -np.inf, PAD, top)
    if take < k:
        top = np.concatenate([top, np.full((n_rows, k - take), PAD, dtype=top.dtype)], axis=1)
    return top.astype(np.int64)


class ScoreRanker(ABC):
    """A ranker that scores every item; ``top_k`` batches the histories to bound the (B, N) matrix."""

    batch_size: int = 256

    @abstractmethod
    def scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        """(len(histories), n_items) scores, higher is better."""

    def top_k(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool) -> np.ndarray:
        parts = [top_k_from_scores(self.scores(histories[lo: lo + self.batch_size]),
                                   histories[lo: lo + self.batch_size], k, exclude_history)
                 for lo in range(0, len(histories), self.batch_size)]
        return np.concatenate(parts) if parts else np.zeros((0, k), dtype=np.int64)


def rank_in_batches(ranker: Ranker, histories: Sequence[np.ndarray], k: int, exclude_history: bool,
                    batch_size: int = 1024, progress: Callable[[int, int], None] | None = None) -> np.ndarray:
    """``ranker.top_k`` over many histories in slices, reporting (done, total) after each slice."""
    parts = []
    for lo in range(0, len(histories), batch_size):
        parts.append(ranker.top_k(list(histories[lo: lo + batch_size]), k, exclude_history))
        if progress is not None:
            progress(min(lo + batch_size, len(histories)), len(histories))
    return np.concatenate(parts) if parts else np.zeros((0, k), dtype=np.int64)


def validation_recall(ranker: Ranker, eval_set: EvalSet, k: int = 10) -> float:
    """Recall@k with history excluded on ``eval_set``: what systems tune and early-stop on."""
    if not len(eval_set):
        return float("nan")
    top = rank_in_batches(ranker, eval_set.histories, k, exclude_history=True)
    return float((top == eval_set.targets[:, None]).any(axis=1).mean())

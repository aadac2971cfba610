"""Item-kNN on co-occurrence: "users who had this item also had ...", scored from the recent history.

Two items co-occur when they are at most ``window`` positions apart in a training sequence (None:
anywhere in it). Similarity is an asymmetric cosine with shrinkage,
``c_ij / (n_i^alpha * n_j^(1 - alpha) + shrink)``, pruned to each item's ``neighbors`` best; a user
scores ``sum_r decay^r * sim(h_r, j)`` over its ``recent`` newest items h_0, h_1, ... (h_0 newest),
because in sequential data the last items say most about the next one.

:func:`tune_itemknn` picks window/recency on the validation split (seconds on Scientific), so the
baseline is a tuned one, not a strawman.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
from scipy import sparse

from glide_model.sequential.ranking import ScoreRanker, validation_recall
from glide_model.sequential.split import EvalSet


@dataclass(frozen=True)
class ItemKNNConfig:
    window: int | None = 3  # max distance of a co-occurring pair; None: the whole sequence
    neighbors: int = 200
    alpha: float = 0.5  # 0.5: plain cosine
    shrink: float = 10.0  # damps similarities resting on a handful of co-occurrences
    recent: int = 5
    decay: float = 0.6


# validation grid of :func:`tune_itemknn`
TUNING_GRID = tuple(
    ItemKNNConfig(window=w, recent=r, decay=d)
    for w in (1, 3, None) for r, d in ((1, 1.0), (5, 0.6), (10, 0.8))
)


def cooccurrence(train: Sequence[np.ndarray], n_items: int, window: int | None) -> sparse.csr_matrix:
    """Symmetric (n_items, n_items) counts of pairs at most ``window`` apart, diagonal dropped."""
    rows, cols = [], []
    for seq in train:
        seq = np.asarray(seq, dtype=np.int64)
        reach = len(seq) - 1 if window is None else min(window, len(seq) - 1)
        for gap in range(1, reach + 1):
            rows.append(seq[:-gap])
            cols.append(seq[gap:])
    if not rows:
        return sparse.csr_matrix((n_items, n_items))
    r, c = np.concatenate(rows), np.concatenate(cols)
    counts = sparse.coo_matrix((np.ones(len(r)), (r, c)), shape=(n_items, n_items)).tocsr()
    counts = counts + counts.T
    counts.setdiag(0)
    counts.eliminate_zeros()
    return counts.tocsr()


def similarity(counts: sparse.csr_matrix, item_counts: np.ndarray, cfg: ItemKNNConfig) -> sparse.csr_matrix:
    """Shrunk asymmetric cosine, each row pruned to its ``cfg.neighbors`` largest entries."""
    coo = counts.tocoo()
    norm = item_counts[coo.row] ** cfg.alpha * item_counts[coo.col] ** (1 - cfg.alpha) + cfg.shrink
    sim = sparse.csr_matrix((coo.data / norm, (coo.row, coo.col)), shape=counts.shape)
    data, indices, indptr = [], [], [0]
    for i in range(sim.shape[0]):
        lo, hi = sim.indptr[i], sim.indptr[i + 1]
        values, cols = sim.data[lo:hi], sim.indices[lo:hi]
        if len(values) > cfg.neighbors:
            keep = np.argpartition(-values, cfg.neighbors - 1)[: cfg.neighbors]
            values, cols = values[keep], cols[keep]
        data.append(values)
        indices.append(cols)
        indptr.append(indptr[-1] + len(values))
    return sparse.csr_matrix((np.concatenate(data), np.concatenate(indices), np.asarray(indptr)), shape=sim.shape)


class ItemKNNRanker(ScoreRanker):
    def __init__(self, sim: sparse.csr_matrix, cfg: ItemKNNConfig, popularity: np.ndarray):
        self.sim, self.cfg = sim, cfg
        # a history with no neighbours still gets a ranking: popularity, far below any kNN score
        self.fallback = 1e-6 * popularity / max(float(popularity.max()), 1.0)

    def scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        rows, cols, weights = [], [], []
        for row, history in enumerate(histories):
            newest = np.asarray(history, dtype=np.int64)[::-1][: self.cfg.recent]
            rows.extend([row] * len(newest))
            cols.extend(newest.tolist())
            weights.extend((self.cfg.decay ** np.arange(len(newest))).tolist())
        profile = sparse.csr_matrix((weights, (rows, cols)), shape=(len(histories), self.sim.shape[0]))
        return np.asarray((profile @ self.sim).todense()) + self.fallback


def fit_itemknn(train: Sequence[np.ndarray], n_items: int, cfg: ItemKNNConfig | None = None) -> ItemKNNRanker:
    cfg = cfg or ItemKNNConfig()
    popularity = np.bincount(np.concatenate(train), minlength=n_items).astype(np.float64) if len(train) else \
        np.zeros(n_items)
    sim = similarity(cooccurrence(train, n_items, cfg.window), popularity, cfg)
    return ItemKNNRanker(sim, cfg, popularity)


def tune_itemknn(train: Sequence[np.ndarray], valid: EvalSet, n_items: int,
                 grid: Sequence[ItemKNNConfig] = TUNING_GRID) -> tuple[ItemKNNRanker, dict[str, float]]:
    """The grid point with the best validation Recall@10 (history excluded); ties keep the first."""
    if not len(valid):
        return fit_itemknn(train, n_items, grid[0]), {}
    best, best_recall, tried = None, -1.0, {}
    for cfg in grid:
        ranker = fit_itemknn(train, n_items, cfg)
        recall = validation_recall(ranker, valid)
        tried[f"window={cfg.window},recent={cfg.recent},decay={cfg.decay}"] = round(recall, 5)
        if recall > best_recall:
            best, best_recall = ranker, recall
    return best, tried


"""Most-interacted items first: the floor every other system must clear.

Counts come from the training split only (the validation and test items are held out), one count per
interaction, so a user who buys an item twice counts twice: it ranks what the shop sells most.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

from glide_model.sequential.ranking import ScoreRanker


def item_counts(sequences: Sequence[np.ndarray], n_items: int) -> np.ndarray:
    """Interactions per item index over ``sequences``, as float64 (n_items,)."""
    if not len(sequences):
        return np.zeros(n_items, dtype=np.float64)
    return np.bincount(np.concatenate(sequences).astype(np.int64), minlength=n_items).astype(np.float64)


class PopularityRanker(ScoreRanker):
    def __init__(self, counts: np.ndarray):
        self.counts = np.asarray(counts, dtype=np.float64)

    def scores(self, histories: Sequence[np.ndarray]) -> np.ndarray:
        return np.broadcast_to(self.counts, (len(histories), len(self.counts)))


def fit_popularity(train: Sequence[np.ndarray], n_items: int) -> PopularityRanker:
    return PopularityRanker(item_counts(train, n_items))

"""Leave-one-out split, the standard protocol for sequential recommendation on these datasets.

For a user with items s_1..s_n (n >= 3): the test example asks for s_n given s_1..s_{n-1}, the
validation example asks for s_{n-1} given s_1..s_{n-2}, and models train on s_1..s_{n-2} only. So a
model never trains on a held-out target, and the test history holds the validation item as history
(it happened before the test item), not as a training target.

Short users: with n == 2 the user trains on s_1 and is tested on s_2 (no validation example: the one
earlier item is needed as training and history both); with n == 1 the item only trains (popularity
counts it, a sequence model sees one item and no next-item pair). 5-core data (Scientific) has none.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np


@dataclass(frozen=True)
class EvalSet:
    """Held-out next-item examples: for each, the user's index, its history and the target item."""

    users: np.ndarray  # (n,) user index into the dataset
    histories: tuple[np.ndarray, ...]  # item indices the model may read, oldest first
    targets: np.ndarray  # (n,) the item to retrieve

    def __len__(self) -> int:
        return len(self.targets)

    def subset(self, positions: Sequence[int] | np.ndarray) -> EvalSet:
        positions = np.asarray(positions, dtype=np.int64)
        return EvalSet(users=self.users[positions], histories=tuple(self.histories[i] for i in positions),
                       targets=self.targets[positions])

    def sample(self, n: int | None, seed: int = 0) -> EvalSet:
        """``n`` examples drawn without replacement (kept in user order), or all when n is None or larger."""
        if n is None or n >= len(self):
            return self
        picked = np.sort(np.random.default_rng(seed).choice(len(self), size=n, replace=False))
        return self.subset(picked)


@dataclass(frozen=True)
class LeaveOneOut:
    train: tuple[np.ndarray, ...]  # per user (same order as the dataset), the items models may train on
    valid: EvalSet
    test: EvalSet


def leave_one_out(sequences: Sequence[np.ndarray]) -> LeaveOneOut:
    """Split every user's sequence as the module docstring says."""
    train: list[np.ndarray] = []
    valid: list[tuple[int, np.ndarray, int]] = []
    test: list[tuple[int, np.ndarray, int]] = []
    for user, seq in enumerate(sequences):
        seq = np.asarray(seq, dtype=np.int64)
        n = len(seq)
        train.append(seq[: max(1, n - 2)])
        if n >= 2:
            test.append((user, seq[:-1], int(seq[-1])))
        if n >= 3:
            valid.append((user, seq[:-2], int(seq[-2])))
    return LeaveOneOut(train=tuple(train), valid=_eval_set(valid), test=_eval_set(test))


def _eval_set(rows: list[tuple[int, np.ndarray, int]]) -> EvalSet:
    return EvalSet(users=np.asarray([r[0] for r in rows], dtype=np.int64), histories=tuple(r[1] for r in rows),
                   targets=np.asarray([r[2] for r in rows], dtype=np.int64))

"""Train / validation / test splits of an example frame: by time, by user, or both composed.

The paper evaluates on held-out users ("user-based evaluation split", §5.2); a time split on top
keeps evaluation examples after every training example, e.g.
``time_split(examples, cut)`` then ``user_split(...)`` of the part after the cut.
"""

from __future__ import annotations

import hashlib

import numpy as np
import pandas as pd


def time_split(
    examples: pd.DataFrame, valid_start: pd.Timestamp, test_start: pd.Timestamp | None = None, ts_col: str = "ts"
) -> dict[str, pd.DataFrame]:
    """train: ts < valid_start; valid: valid_start <= ts < test_start; test: ts >= test_start
    (without test_start, valid is everything from valid_start on and test is empty)."""
    if test_start is not None and test_start < valid_start:
        raise ValueError(f"test_start {test_start} is before valid_start {valid_start}")
    ts = examples[ts_col]
    train = (ts < valid_start).to_numpy()
    test = (ts >= test_start).to_numpy() if test_start is not None else np.zeros(len(ts), dtype=bool)
    parts = {"train": examples[train], "valid": examples[~train & ~test], "test": examples[test]}
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def user_buckets(user_ids: pd.Series, seed: int = 0) -> pd.Series:
    """A stable uniform number in [0, 1) per user: the same user lands in the same split on any data."""
    uniq = pd.unique(user_ids)
    value = {
        u: int.from_bytes(hashlib.blake2b(f"{seed}:{u}".encode(), digest_size=8).digest(), "big") / 2.0**64
        for u in uniq
    }
    return user_ids.map(value)


def user_split(
    examples: pd.DataFrame, valid_fraction: float = 0.1, test_fraction: float = 0.1, seed: int = 0
) -> dict[str, pd.DataFrame]:
    """Disjoint users per split, assigned by a seeded hash of user_id (not by row order)."""
    if valid_fraction < 0 or test_fraction < 0 or valid_fraction + test_fraction >= 1:
        raise ValueError("valid_fraction and test_fraction must be >= 0 and sum to < 1")
    bucket = user_buckets(examples["user_id"], seed).to_numpy()
    test = bucket < test_fraction
    valid = (~test) & (bucket < test_fraction + valid_fraction)
    parts = {"train": examples[~(test | valid)], "valid": examples[valid], "test": examples[test]}
    return {k: v.reset_index(drop=True) for k, v in parts.items()}


def split_sizes(parts: dict[str, pd.DataFrame]) -> dict[str, int]:
    return {k: int(len(v)) for k, v in parts.items()}


"""glide_model.data.splits: time and user-based splits."""

from __future__ import annotations

import pandas as pd
import pytest

from glide_model.data.splits import time_split, user_split

T0 = pd.Timestamp("2026-01-01", tz="UTC")


@pytest.fixture
def examples() -> pd.DataFrame:
    n = 2000
    return pd.DataFrame({
        "user_id": [f"user_{i % 400:05d}" for i in range(n)],
        "ts": [T0 + pd.Timedelta(hours=i) for i in range(n)],
    })


def test_time_split_boundaries(examples):
    valid_start, test_start = T0 + pd.Timedelta(hours=1000), T0 + pd.Timedelta(hours=1500)
    parts = time_split(examples, valid_start, test_start)
    assert parts["train"].ts.max() < valid_start
    assert parts["valid"].ts.min() == valid_start and parts["valid"].ts.max() < test_start
    assert parts["test"].ts.min() == test_start
    assert sum(len(p) for p in parts.values()) == len(examples)
    two = time_split(examples, valid_start)
    assert len(two["test"]) == 0 and len(two["valid"]) == 1000
    with pytest.raises(ValueError):
        time_split(examples, test_start, valid_start)


def test_user_split_is_disjoint_sized_and_stable(examples):
    parts = user_split(examples, valid_fraction=0.2, test_fraction=0.3, seed=1)
    users = {k: set(v.user_id) for k, v in parts.items()}
    assert not (users["train"] & users["valid"]) and not (users["train"] & users["test"]) and not (users["valid"] & users["test"])
    assert sum(len(v) for v in parts.values()) == len(examples)
    assert len(users["test"]) == pytest.approx(120, abs=30) and len(users["valid"]) == pytest.approx(80, abs=25)
    # a user's split depends on the user and the seed only, not on the rest of the data
    again = user_split(examples.iloc[::3], valid_fraction=0.2, test_fraction=0.3, seed=1)
    assert set(again["test"].user_id) <= users["test"]
    other_seed = user_split(examples, valid_fraction=0.2, test_fraction=0.3, seed=2)
    assert set(other_seed["test"].user_id) != users["test"]

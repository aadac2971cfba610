"""glide.world.stats.classify_listens: hand-made edge cases and agreement with a plain loop."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from glide.world import WorldConfig, classify_listens, generate_world

T0 = pd.Timestamp("2026-01-01", tz="UTC")
D = pd.Timedelta(days=1)


def _log(rows: list[tuple[str, str, pd.Timestamp, int]]) -> pd.DataFrame:
    return pd.DataFrame(rows, columns=["user_id", "show_id", "ts", "listened_seconds"])


def _naive(listens: pd.DataFrame) -> list[str]:
    out = []
    for _, row in listens.iterrows():
        same = listens[(listens.user_id == row.user_id) & (listens.show_id == row.show_id) & (listens.ts < row.ts)]
        recent = same[same.ts > row.ts - pd.Timedelta(days=28)]["listened_seconds"].sum()
        out.append("habitual" if recent >= 600 else "familiar" if len(same) else "unfamiliar")
    return out


def test_rule_edges():
    log = _log(
        [
            ("u1", "a", T0, 300),  # never heard a before: unfamiliar
            ("u1", "a", T0 + D, 300),  # 300 s before: familiar
            ("u1", "a", T0 + 2 * D, 100),  # 600 s in the window: habitual
            ("u1", "a", T0 + 31 * D, 50),  # everything older than 28 d: familiar again
            ("u1", "b", T0 + 2 * D, 900),  # a different show starts fresh
            ("u2", "a", T0 + 2 * D, 900),  # a different user too
            ("u3", "c", T0, 700),
            ("u3", "c", T0 + 28 * D, 10),  # exactly 28 d later: the window (t - 28 d, t) excludes it
            ("u4", "c", T0, 700),
            ("u4", "c", T0 + 28 * D - pd.Timedelta(seconds=1), 10),  # one second inside: habitual
            ("u5", "d", T0, 700),
            ("u5", "d", T0, 700),  # same instant: not strictly before, so unfamiliar
        ]
    )
    got = classify_listens(log).tolist()
    assert got == [
        "unfamiliar", "familiar", "habitual", "familiar", "unfamiliar", "unfamiliar",
        "unfamiliar", "familiar", "unfamiliar", "habitual", "unfamiliar", "unfamiliar",
    ]


def test_order_and_index_do_not_matter():
    log = _log([("u1", "a", T0 + D, 700), ("u1", "a", T0, 700), ("u1", "a", T0 + 2 * D, 5)])
    log.index = [10, 5, 7]
    got = classify_listens(log)
    assert list(got.index) == [10, 5, 7]
    assert got.tolist() == ["habitual", "unfamiliar", "habitual"]


def test_agrees_with_a_plain_loop_on_a_generated_world():
    listens = generate_world(WorldConfig(users=25, days=40, seed=5)).listens
    listens = listens.sample(frac=1.0, random_state=0)  # shuffled on purpose
    assert classify_listens(listens).tolist() == _naive(listens)


def test_empty_and_bad_input():
    assert classify_listens(_log([])).empty
    with pytest.raises(ValueError, match="listened_seconds"):
        classify_listens(pd.DataFrame({"user_id": [], "show_id": [], "ts": []}))


def test_half_a_million_listens_in_seconds():
    rng = np.random.default_rng(0)
    n = 500_000
    log = pd.DataFrame(
        {
            "user_id": pd.Series(rng.integers(0, 20_000, n)).map("user_{:05d}".format),
            "show_id": pd.Series(rng.integers(0, 300, n)).map("show_{:04d}".format),
            "ts": T0 + pd.to_timedelta(rng.integers(0, 60 * 86_400, n), unit="s"),
            "listened_seconds": rng.integers(1, 3600, n),
        }
    )
    t0 = time.perf_counter()
    labels = classify_listens(log)
    assert time.perf_counter() - t0 < 10.0
    assert set(labels.unique()) == {"habitual", "familiar", "unfamiliar"}

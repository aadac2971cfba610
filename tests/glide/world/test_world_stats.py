"""glide.world.stats.classify_listens: hand-made edge cases and agreement with a plain loop."""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from glide.world import WorldConfig, classify_listens, generate_world
from glide.world.config import V1_BEHAVIOUR
from glide.world.stats import taste_lift, world_taste_lift

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


def test_taste_lift_counts_top_topic_hits_against_the_popularity_mix():
    history = pd.DataFrame(
        [("u", "a", 0), ("u", "a", 1), ("u", "b", 2), ("u", "c", 3), ("u", "d", 4), ("v", "z", 0)],
        columns=["user_id", "topic", "pos"],
    )
    targets = pd.DataFrame(
        [("u", "a", 5, True),    # a is u's top topic: a top-1 and a top-3 hit
         ("u", "d", 5, False),   # d is 4th (ties by name: a, b, c): a miss
         ("u", "b", 3, False),   # only pos < 3 counts: top topics a, b -> hit
         ("v", "z", 0, False),   # no history before pos 0: skipped
         ("w", "a", 9, False)],  # unknown user: skipped
        columns=["user_id", "topic", "pos", "familiar"],
    )
    share = {"a": 0.1, "b": 0.2, "c": 0.3, "d": 0.4}
    out = taste_lift(history, targets, share)
    assert out.loc["all", "n"] == 3 and out.loc["familiar", "n"] == 1 and out.loc["unfamiliar", "n"] == 2
    assert out.loc["all", "top_share"] == pytest.approx(2 / 3)
    assert out.loc["all", "top1_share"] == pytest.approx(1 / 3)
    # nulls: {a,b,c} -> 0.6 twice, {a,b} -> 0.3
    assert out.loc["all", "null_share"] == pytest.approx(0.5)
    assert out.loc["all", "lift"] == pytest.approx((2 / 3) / 0.5)
    assert out.loc["unfamiliar", "top_share"] == pytest.approx(0.5)


def test_calibrated_world_is_more_taste_driven_than_the_first_settings():
    """The defaults were calibrated against real data (benchmarks/world_calibration.py): the next
    non-habitual pick follows the user's past topics clearly more than under the v1 settings."""
    lifts = {}
    for name, extra in (("v1", V1_BEHAVIOUR), ("default", {})):
        world = generate_world(WorldConfig(users=300, days=35, shows=120, episodes_per_show=20, seed=0, **extra))
        lifts[name] = world_taste_lift(world.listens, world.episodes)
    assert lifts["default"].loc["all", "n"] > 300
    assert lifts["default"].loc["unfamiliar", "lift"] > lifts["v1"].loc["unfamiliar", "lift"] + 0.3
    assert lifts["default"].loc["familiar", "lift"] > lifts["v1"].loc["familiar", "lift"] + 0.3
    assert lifts["default"].loc["all", "lift"] > 1.5  # picks follow taste well beyond popularity

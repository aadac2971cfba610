"""glide.habits: the vectorised functions agree with slow, obviously-correct loops on random logs.

The random logs put listens on a coarse day grid with seconds drawn from a few values so that
ties, windows of exactly 28 days and sums of exactly 600 s occur often.
"""

from __future__ import annotations

import time

import numpy as np
import pandas as pd
import pytest

from glide.habits import (
    HABIT_THRESHOLD_SECONDS,
    HABIT_WINDOW,
    LOOKUP_OFFSET,
    feature_lookup_time,
    habitual_shows_before,
    shows_before,
    label_listens,
    unflatten_codes,
    user_recent_sids_history,
    user_show_feature_history,
    user_show_features,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")
W = pd.Timedelta(HABIT_WINDOW)


def random_listens(seed: int, n: int = 120, users: int = 3, shows: int = 4, days: int = 90) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    day = rng.integers(0, days, n)
    # a third of the listens land exactly 28 days after an earlier one
    shift = rng.random(n) < 0.3
    day = np.where(shift, np.clip(day - 28, 0, None), day)
    frame = pd.DataFrame(
        {
            "event_id": [f"e{i:05d}" for i in rng.permutation(n)],
            "user_id": [f"u{k}" for k in rng.integers(0, users, n)],
            "show_id": [f"s{k}" for k in rng.integers(0, shows, n)],
            "ts": T0 + pd.to_timedelta(day, unit="D") + pd.to_timedelta(rng.integers(0, 2, n) * 3600, unit="s"),
            "listened_seconds": rng.choice([0, 100, 200, 300, 500, 600, 700], n),
        }
    )
    frame["episode_id"] = frame["show_id"] + "_ep" + pd.Series(rng.integers(0, 3, n)).astype(str)
    return frame


# ---------------------------------------------------------------- slow references
def ref_state(listens: pd.DataFrame, user: str, show: str, as_of: pd.Timestamp) -> dict | None:
    rows = [r for r in listens.itertuples() if r.user_id == user and r.show_id == show and r.ts <= as_of]
    if not rows:
        return None
    total = sum(r.listened_seconds for r in rows if r.ts > as_of - W)
    return {
        "listen_seconds_28d": total,
        "last_listened_at": max(r.ts for r in rows),
        "habitual": total >= HABIT_THRESHOLD_SECONDS,
    }


def ref_label(listens: pd.DataFrame) -> pd.DataFrame:
    out = []
    for r in listens.itertuples():
        earlier = [
            o for o in listens.itertuples() if o.user_id == r.user_id and o.show_id == r.show_id and o.ts < r.ts
        ]
        before = sum(o.listened_seconds for o in earlier if o.ts >= r.ts - W)
        hab = before >= HABIT_THRESHOLD_SECONDS
        mode = "habitual" if hab else ("familiar" if earlier else "unfamiliar")
        out.append((before, hab, bool(earlier), mode))
    return pd.DataFrame(out, columns=["listen_seconds_28d_before", "habitual_before", "ever_before", "mode"])


def pit_lookup(rows: pd.DataFrame | None, t: pd.Timestamp) -> pd.Series | None:
    """Latest of one pair's history rows at or before t."""
    if rows is None:
        return None
    rows = rows[rows.event_timestamp <= t]
    return None if rows.empty else rows.sort_values("event_timestamp").iloc[-1]


# ---------------------------------------------------------------- tests
@pytest.mark.parametrize("seed", range(6))
def test_label_listens_matches_reference(seed):
    listens = random_listens(seed)
    got = label_listens(listens)
    want = ref_label(listens)
    assert list(got.index) == list(listens.index)
    for col in want.columns:
        assert got[col].tolist() == want[col].tolist(), col


@pytest.mark.parametrize("seed", range(4))
def test_user_show_features_matches_reference(seed):
    listens = random_listens(seed)
    for as_of in [T0 + pd.Timedelta(days=d) for d in (0, 28, 40, 56.5, 89)] + list(listens.ts.sample(5, random_state=seed)):
        got = user_show_features(listens, as_of).set_index(["user_id", "show_id"])
        for (user, show), _ in listens.groupby(["user_id", "show_id"]):
            want = ref_state(listens, user, show, as_of)
            if want is None:
                assert (user, show) not in got.index
                continue
            row = got.loc[(user, show)]
            assert row.listen_seconds_28d == want["listen_seconds_28d"]
            assert row.last_listened_at == want["last_listened_at"]
            assert bool(row.habitual) == want["habitual"]
            assert bool(row.ever_listened)


@pytest.mark.parametrize("seed", range(4))
def test_history_point_in_time_lookup_is_exact_at_any_time(seed):
    listens = random_listens(seed)
    history = user_show_feature_history(listens)
    assert not history.duplicated(["user_id", "show_id", "event_timestamp"]).any()
    rng = np.random.default_rng(seed)
    # listen times, expiry instants, a microsecond either side of them, and random instants
    probes = list(listens.ts) + list(listens.ts + W)
    probes = [p + d for p in probes[::9] for d in (-LOOKUP_OFFSET, pd.Timedelta(0), LOOKUP_OFFSET)]
    probes += list(T0 + pd.to_timedelta(rng.uniform(-2, 130, 15), unit="D"))
    by_pair = dict(list(history.groupby(["user_id", "show_id"])))
    for t in probes:
        for (user, show), mine in listens.groupby(["user_id", "show_id"]):
            want = ref_state(mine, user, show, t)
            got = pit_lookup(by_pair.get((user, show)), t)
            if want is None:
                assert got is None
                continue
            assert got.listen_seconds_28d == want["listen_seconds_28d"], (user, show, t)
            assert got.last_listened_at == want["last_listened_at"]
            assert bool(got.habitual) == want["habitual"]


@pytest.mark.parametrize("seed", range(3))
def test_label_equals_point_in_time_join_just_before_the_listen(seed):
    listens = random_listens(seed)
    history = user_show_feature_history(listens).sort_values("event_timestamp")
    labelled = label_listens(listens)
    q = labelled.assign(lookup=feature_lookup_time(labelled.ts)).sort_values("lookup")
    joined = pd.merge_asof(q, history, left_on="lookup", right_on="event_timestamp", by=["user_id", "show_id"])
    assert (joined.listen_seconds_28d.fillna(0) == joined.listen_seconds_28d_before).all()
    assert (joined.habitual.fillna(False).astype(bool) == joined.habitual_before).all()
    assert (joined.ever_listened.fillna(False).astype(bool) == joined.ever_before).all()


def test_window_and_threshold_edges():
    t = T0 + pd.Timedelta(hours=5)
    listens = pd.DataFrame(
        {
            "user_id": ["u"] * 5,
            "show_id": ["a", "a", "a", "b", "b"],
            "ts": [t, t + W, t + W, t, t + pd.Timedelta(days=1)],
            "listened_seconds": [600, 10, 10, 599, 1],
        }
    )
    lab = label_listens(listens)
    # exactly 28 days later: the left limit at t+28d still holds the first listen ([t'-28d, t'))
    assert lab.listen_seconds_28d_before.tolist() == [0, 600, 600, 0, 599]
    assert lab["mode"].tolist() == ["unfamiliar", "habitual", "habitual", "unfamiliar", "familiar"]
    # ...but the state AT t+28d no longer does ((t'-28d, t']); simultaneous listens both count.
    at = user_show_features(listens, t + W).set_index("show_id")
    assert at.loc["a", "listen_seconds_28d"] == 20 and not at.loc["a", "habitual"]
    assert at.loc["b", "listen_seconds_28d"] == 1  # b's first listen expired exactly at t+28d
    just_before = user_show_features(listens, t + W - LOOKUP_OFFSET).set_index("show_id")
    assert just_before.loc["a", "listen_seconds_28d"] == 600 and just_before.loc["a", "habitual"]
    # 599 + 1 = 600 reaches the threshold on the day after
    day2 = user_show_features(listens, t + pd.Timedelta(days=1)).set_index("show_id")
    assert day2.loc["b", "habitual"]


def test_simultaneous_listens_are_not_before_each_other():
    listens = pd.DataFrame(
        {"user_id": ["u", "u"], "show_id": ["a", "a"], "ts": [T0, T0], "listened_seconds": [700, 700]}
    )
    assert label_listens(listens)["mode"].tolist() == ["unfamiliar", "unfamiliar"]
    hist = user_show_feature_history(listens)
    assert hist.listen_seconds_28d.tolist() == [1400, 0]


def test_naive_timestamps_are_rejected_with_the_fix():
    listens = pd.DataFrame({"user_id": ["u"], "show_id": ["a"], "ts": [pd.Timestamp("2026-01-01")], "listened_seconds": [1]})
    with pytest.raises(ValueError, match="utc=True"):
        label_listens(listens)
    with pytest.raises(ValueError, match="lacks column"):
        label_listens(listens.drop(columns="show_id"))


@pytest.mark.parametrize("seed", range(3))
def test_recent_sids_history_matches_reference(seed):
    listens = random_listens(seed, users=2)
    episodes = sorted(listens.episode_id.unique())
    assignments = pd.DataFrame({"episode_id": episodes[:-1], "codes": [(i % 5, i % 3, i) for i in range(len(episodes) - 1)]})
    lookup = dict(zip(assignments.episode_id, assignments.codes))
    cap = 7
    hist = user_recent_sids_history(listens, assignments, cap=cap)
    assert not hist.duplicated(["user_id", "event_timestamp"]).any()
    for row in hist.itertuples():
        mine = listens[(listens.user_id == row.user_id) & (listens.ts <= row.event_timestamp)]
        mine = mine[mine.episode_id.isin(lookup)].sort_values(["ts", "event_id"])
        want = mine.episode_id.tolist()[-cap:]
        assert row.recent_episode_ids == want
        assert unflatten_codes(row.recent_sid_codes, 3) == [lookup[e] for e in want]
    # one row per distinct listen time of assigned episodes
    assigned = listens[listens.episode_id.isin(lookup)]
    assert len(hist) == len(assigned.drop_duplicates(["user_id", "ts"]))


def test_habitual_shows_before():
    listens = pd.DataFrame(
        {
            "user_id": ["u", "u", "v"],
            "show_id": ["a", "b", "a"],
            "ts": [T0, T0, T0],
            "listened_seconds": [900, 100, 900],
        }
    )
    queries = pd.DataFrame({"user_id": ["u", "u", "u", "w"], "ts": [T0, T0 + pd.Timedelta(days=1), T0 + W + pd.Timedelta(days=1), T0]})
    assert habitual_shows_before(listens, queries) == [frozenset(), {"a"}, frozenset(), frozenset()]
    habitual, familiar = shows_before(listens, queries)
    assert familiar == [frozenset(), {"b"}, {"a", "b"}, frozenset()]


def test_history_is_fast_on_a_large_log():
    n = 200_000
    rng = np.random.default_rng(0)
    listens = pd.DataFrame(
        {
            "user_id": pd.Series(rng.integers(0, 20_000, n)).map("user_{:05d}".format),
            "show_id": pd.Series(rng.integers(0, 2_000, n)).map("show_{:04d}".format),
            "ts": T0 + pd.to_timedelta(rng.integers(0, 90 * 86400, n), unit="s"),
            "listened_seconds": rng.integers(0, 3600, n),
        }
    )
    start = time.perf_counter()
    hist = user_show_feature_history(listens)
    lab = label_listens(listens)
    elapsed = time.perf_counter() - start
    assert len(hist) <= 2 * n and len(lab) == n
    assert elapsed < 10, f"history + labels of {n} listens took {elapsed:.1f}s"

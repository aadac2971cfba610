"""The habit rule (paper §3) and the batch features derived from it, written once.

A show s is *habitual* for user u at time t when u's ``listened_seconds`` on s in the window
(t - 28 d, t] sum to >= 600 s. Everything that needs this rule -- training labels, the Feast offline
store, the test oracle of the streaming features, baselines -- calls the functions here.

Conventions shared by every function:

- Input ``listens`` has at least ``user_id``, ``show_id``, ``ts`` (tz-aware UTC) and
  ``listened_seconds``; ``episode_id`` and ``event_id`` where a function needs them.
- *State at t* covers listens with ts <= t: the 28-day sum over (t - 28 d, t].
- *Before a listen at t* means the state just before t, i.e. the left limit: listens with ts < t,
  28-day sum over [t - 28 d, t). Listens with identical timestamps are simultaneous: none of them
  is "before" another. This is exactly a point-in-time join ("latest row <= q") at
  q = t - LOOKUP_OFFSET (1 µs) for timestamps on whole microseconds, which is what Feast stores:
  query Feast at ``feature_lookup_time(ts)`` to get the same answer as :func:`label_listens`.
- Where an order among simultaneous listens is needed (recent-episode lists), ties are broken by
  ``event_id`` when present, else by input row order.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from datetime import timedelta

import numpy as np
import pandas as pd

HABIT_WINDOW = timedelta(days=28)
HABIT_THRESHOLD_SECONDS = 600
RECENT_SIDS_CAP = 50
# Point-in-time lookups for "before the listen" are made this much earlier than the listen.
LOOKUP_OFFSET = pd.Timedelta(microseconds=1)
MODES = ("habitual", "familiar", "unfamiliar")

_WINDOW_NS = int(pd.Timedelta(HABIT_WINDOW).value)
_NO_TIME = np.iinfo(np.int64).min


def feature_lookup_time(ts: pd.Series | pd.Timestamp) -> pd.Series | pd.Timestamp:
    """The point-in-time query time that yields the features just *before* a listen at ``ts``."""
    return ts - LOOKUP_OFFSET


def _require(frame: pd.DataFrame, columns: Sequence[str], what: str) -> None:
    missing = [c for c in columns if c not in frame.columns]
    if missing:
        raise ValueError(f"{what} lacks column(s) {missing}; it has {list(frame.columns)}")


def _ts_ns(values: pd.Series, name: str = "ts") -> np.ndarray:
    """int64 nanoseconds since epoch of a tz-aware timestamp column."""
    if not isinstance(values.dtype, pd.DatetimeTZDtype):
        raise ValueError(
            f"column {name!r} must be tz-aware UTC timestamps (got {values.dtype}); "
            "convert with pd.to_datetime(col, utc=True)"
        )
    if values.isna().any():
        raise ValueError(f"column {name!r} has missing timestamps; drop or fill those rows first")
    return values.dt.tz_convert("UTC").dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")


def _to_ts(ns: np.ndarray) -> pd.Series:
    return pd.Series(pd.to_datetime(ns, unit="ns", utc=True))


def _seconds(listens: pd.DataFrame) -> np.ndarray:
    """listened_seconds as int64 when integral (exact sums), else float64."""
    sec = pd.to_numeric(listens["listened_seconds"], errors="raise").to_numpy()
    if np.isnan(sec.astype(np.float64)).any() or (sec < 0).any():
        raise ValueError("listened_seconds must be non-negative and not missing")
    if np.issubdtype(sec.dtype, np.integer) or np.all(np.mod(sec, 1) == 0):
        return sec.astype(np.int64)
    return sec.astype(np.float64)


def _clean_sums(sums: np.ndarray) -> np.ndarray:
    # Float running sums of +x/-x leave ~1e-12 residues; integer sums are exact and untouched.
    return sums if np.issubdtype(sums.dtype, np.integer) else np.round(sums, 6)


def _pair_codes(listens: pd.DataFrame) -> tuple[np.ndarray, pd.DataFrame]:
    """Dense code per (user_id, show_id) and the table of distinct pairs indexed by code."""
    codes, uniques = pd.MultiIndex.from_arrays([listens["user_id"], listens["show_id"]]).factorize()
    pairs = uniques.to_frame(index=False, name=["user_id", "show_id"])
    return codes.astype(np.int64), pairs


def _tiebreak(listens: pd.DataFrame) -> np.ndarray:
    if "event_id" in listens.columns:
        return pd.factorize(listens["event_id"], sort=True)[0]
    return np.arange(len(listens))


def user_show_features(listens: pd.DataFrame, as_of: pd.Timestamp | str) -> pd.DataFrame:
    """State at ``as_of`` of every (user, show) pair with a listen at or before ``as_of``.

    Columns: user_id, show_id, listen_seconds_28d (over (as_of - 28 d, as_of]), ever_listened
    (always True: pairs never listened have no row), last_listened_at, habitual.
    """
    _require(listens, ["user_id", "show_id", "ts", "listened_seconds"], "listens")
    as_of_ns = _instant_ns(as_of)
    t = _ts_ns(listens["ts"])
    sec = _seconds(listens)
    upto = t <= as_of_ns
    frame = pd.DataFrame(
        {
            "user_id": listens["user_id"].to_numpy()[upto],
            "show_id": listens["show_id"].to_numpy()[upto],
            "t": t[upto],
            "sec": np.where(t[upto] > as_of_ns - _WINDOW_NS, sec[upto], 0),
        }
    )
    out = frame.groupby(["user_id", "show_id"], sort=True).agg(
        listen_seconds_28d=("sec", "sum"), last_ns=("t", "max")
    )
    out = out.reset_index()
    out["ever_listened"] = True
    out["last_listened_at"] = _to_ts(out.pop("last_ns").to_numpy())
    out["habitual"] = out["listen_seconds_28d"] >= HABIT_THRESHOLD_SECONDS
    return out[["user_id", "show_id", "listen_seconds_28d", "ever_listened", "last_listened_at", "habitual"]]


def _instant_ns(as_of: pd.Timestamp | str) -> int:
    stamp = pd.Timestamp(as_of)
    if stamp.tz is None:
        raise ValueError(f"as_of must be tz-aware (got {as_of!r}); use pd.Timestamp(..., tz='UTC')")
    return int(stamp.tz_convert("UTC").as_unit("ns").value)


def user_show_feature_history(listens: pd.DataFrame) -> pd.DataFrame:
    """Every state change of the (user, show) features, for point-in-time joins.

    One row per (user, show) at each listen time and at each expiry time (listen ts + 28 d; at that
    instant the listen has left the window (t - 28 d, t]). Simultaneous events collapse into one row
    holding the state after all of them, so "latest row with event_timestamp <= t" is the exact
    state at any t. Columns: user_id, show_id, event_timestamp, listen_seconds_28d, ever_listened,
    last_listened_at, habitual. Rows are sorted by (user_id, show_id, event_timestamp). A Feast view
    over this table needs no TTL (``ever_listened`` never expires); expiry rows lie up to 28 days in
    the future of the last listen and become current as time passes.
    """
    _require(listens, ["user_id", "show_id", "ts", "listened_seconds"], "listens")
    if len(listens) == 0:
        return pd.DataFrame(
            {
                "user_id": pd.Series(dtype=object),
                "show_id": pd.Series(dtype=object),
                "event_timestamp": pd.Series(dtype="datetime64[ns, UTC]"),
                "listen_seconds_28d": pd.Series(dtype=np.int64),
                "ever_listened": pd.Series(dtype=bool),
                "last_listened_at": pd.Series(dtype="datetime64[ns, UTC]"),
                "habitual": pd.Series(dtype=bool),
            }
        )
    pair, pairs = _pair_codes(listens)
    t = _ts_ns(listens["ts"])
    sec = _seconds(listens)
    n = len(t)
    # +seconds at the listen, -seconds at its expiry; each pair's deltas sum to zero, so a single
    # global cumsum over (pair, time)-sorted events is already the per-pair running sum.
    ev_pair = np.concatenate([pair, pair])
    ev_time = np.concatenate([t, t + _WINDOW_NS])
    ev_delta = np.concatenate([sec, -sec])
    ev_listen_time = np.concatenate([t, np.full(n, _NO_TIME)])
    order = np.lexsort((ev_time, ev_pair))
    ev_pair, ev_time = ev_pair[order], ev_time[order]
    running = _clean_sums(np.cumsum(ev_delta[order]))
    # last listen time so far within each pair: a cummax that restarts at each pair boundary.
    last = pd.Series(ev_listen_time[order]).groupby(ev_pair).cummax().to_numpy()
    keep = np.ones(len(order), dtype=bool)
    keep[:-1] = (ev_pair[1:] != ev_pair[:-1]) | (ev_time[1:] != ev_time[:-1])
    out_pair = ev_pair[keep]
    out = pd.DataFrame(
        {
            "user_id": pairs["user_id"].to_numpy()[out_pair],
            "show_id": pairs["show_id"].to_numpy()[out_pair],
            "event_timestamp": _to_ts(ev_time[keep]),
            "listen_seconds_28d": running[keep],
            "ever_listened": True,
            "last_listened_at": _to_ts(last[keep]),
        }
    )
    out["habitual"] = out["listen_seconds_28d"] >= HABIT_THRESHOLD_SECONDS
    return out


def label_listens(listens: pd.DataFrame) -> pd.DataFrame:
    """``listens`` plus the state just before each listen (left limit, see module docstring).

    Adds listen_seconds_28d_before (sum over [ts - 28 d, ts)), habitual_before, ever_before and
    mode: "habitual" if habitual_before, else "familiar" if ever_before, else "unfamiliar".
    Row order and index are preserved.
    """
    _require(listens, ["user_id", "show_id", "ts", "listened_seconds"], "listens")
    out = listens.copy()
    if len(listens) == 0:
        out["listen_seconds_28d_before"] = pd.Series(dtype=np.int64)
        out["habitual_before"] = pd.Series(dtype=bool)
        out["ever_before"] = pd.Series(dtype=bool)
        out["mode"] = pd.Series(dtype=object)
        return out
    pair, _ = _pair_codes(listens)
    t = _ts_ns(listens["ts"])
    sec = _seconds(listens)
    # Rank-encode times so (pair, time) folds into one sortable int64 key.
    times, inverse = np.unique(np.concatenate([t, t - _WINDOW_NS]), return_inverse=True)
    rank_t, rank_lo = inverse[: len(t)], inverse[len(t) :]
    base = len(times)
    order = np.lexsort((t, pair))
    keys = pair[order] * base + rank_t[order]
    csum = np.concatenate([np.zeros(1, dtype=sec.dtype), np.cumsum(sec[order])])
    n_before_t = np.searchsorted(keys, pair * base + rank_t, side="left")  # pair's listens < t
    n_before_lo = np.searchsorted(keys, pair * base + rank_lo, side="left")  # pair's listens < t-28d
    first_of_pair = np.searchsorted(keys, pair * base, side="left")
    before = _clean_sums(csum[n_before_t] - csum[n_before_lo])
    ever = n_before_t > first_of_pair
    habitual = before >= HABIT_THRESHOLD_SECONDS
    out["listen_seconds_28d_before"] = before
    out["habitual_before"] = habitual
    out["ever_before"] = ever
    out["mode"] = np.where(habitual, "habitual", np.where(ever, "familiar", "unfamiliar"))
    return out


def codes_by_episode(assignments: pd.DataFrame | Mapping[str, Sequence[int]]) -> dict[str, tuple[int, ...]]:
    """episode_id -> SID codes, from a mapping or a frame with ``episode_id`` and ``codes``."""
    if isinstance(assignments, Mapping):
        return {str(k): tuple(int(c) for c in v) for k, v in assignments.items()}
    _require(assignments, ["episode_id", "codes"], "SID assignments")
    return {
        str(e): tuple(int(c) for c in codes)
        for e, codes in zip(assignments["episode_id"].to_numpy(), assignments["codes"].to_numpy())
    }


def codes_matrix(episode_ids: Sequence[str], lookup: Mapping[str, tuple[int, ...]]) -> tuple[np.ndarray, np.ndarray]:
    """(codes[n, M] int64, found[n] bool) for ``episode_ids``; rows not found are zeros."""
    levels = {len(c) for c in lookup.values()}
    if len(levels) != 1:
        raise ValueError(f"SID assignments must all have the same number of levels, got {sorted(levels)}")
    m = levels.pop()
    uniq, inverse = np.unique(np.asarray(episode_ids, dtype=object), return_inverse=True)
    table = np.zeros((len(uniq), m), dtype=np.int64)
    found_u = np.zeros(len(uniq), dtype=bool)
    for i, e in enumerate(uniq):
        c = lookup.get(e)
        if c is not None:
            table[i] = c
            found_u[i] = True
    return table[inverse], found_u[inverse]


def user_recent_sids_history(
    listens: pd.DataFrame,
    assignments: pd.DataFrame | Mapping[str, Sequence[int]],
    cap: int = RECENT_SIDS_CAP,
) -> pd.DataFrame:
    """Per user, at every listen time, the last ``cap`` episodes listened to (newest last).

    Columns: user_id, event_timestamp, recent_episode_ids (list[str]), recent_sid_codes (flat
    list[int] of len(recent_episode_ids) * M: Feast has no nested arrays; unflatten with
    :func:`unflatten_codes`), sid_levels (M). Listens of episodes without a SID assignment are
    left out. One row per distinct (user, ts); simultaneous listens are ordered by event_id (else
    input order).
    """
    _require(listens, ["user_id", "episode_id", "ts"], "listens")
    if cap < 1:
        raise ValueError(f"cap must be >= 1, got {cap}")
    lookup = codes_by_episode(assignments)
    columns = ["user_id", "event_timestamp", "recent_episode_ids", "recent_sid_codes", "sid_levels"]
    if len(listens) == 0 or not lookup:
        return pd.DataFrame({c: pd.Series(dtype=object) for c in columns}).astype(
            {"event_timestamp": "datetime64[ns, UTC]", "sid_levels": np.int64}
        )
    codes, found = codes_matrix(listens["episode_id"].to_numpy(), lookup)
    user = pd.factorize(listens["user_id"])
    u, users = user[0][found], user[1]
    t = _ts_ns(listens["ts"])[found]
    tie = _tiebreak(listens)[found]
    eps = listens["episode_id"].to_numpy()[found]
    codes = codes[found]
    order = np.lexsort((tie, t, u))
    u, t, eps, codes = u[order], t[order], eps[order], codes[order]
    n = len(u)
    idx = np.arange(n)
    user_start = np.maximum.accumulate(np.where(np.r_[True, u[1:] != u[:-1]], idx, 0))
    last_of_time = np.r_[(u[1:] != u[:-1]) | (t[1:] != t[:-1]), True]
    ends = idx[last_of_time] + 1
    starts = np.maximum(user_start[last_of_time], ends - cap)
    return pd.DataFrame(
        {
            "user_id": users.to_numpy()[u[last_of_time]],
            "event_timestamp": _to_ts(t[last_of_time]),
            "recent_episode_ids": [eps[s:e].tolist() for s, e in zip(starts, ends)],
            "recent_sid_codes": [codes[s:e].ravel().tolist() for s, e in zip(starts, ends)],
            "sid_levels": np.int64(codes.shape[1]),
        }
    )


def unflatten_codes(flat: Sequence[int] | None, levels: int) -> list[tuple[int, ...]]:
    """Flat SID code list (as stored in Feast) -> list of M-tuples."""
    if flat is None or (not isinstance(flat, (list, tuple, np.ndarray)) and pd.isna(flat)):
        return []
    arr = np.asarray(flat, dtype=np.int64)
    if arr.size % levels:
        raise ValueError(f"flat SID code list of length {arr.size} is not a multiple of M={levels}")
    return [tuple(row) for row in arr.reshape(-1, levels).tolist()]


def shows_before(listens: pd.DataFrame, queries: pd.DataFrame) -> tuple[list[frozenset[str]], list[frozenset[str]]]:
    """For each query row (user_id, ts), just before ts (left limit): (habitual shows, familiar
    shows), familiar meaning listened to before but not habitual now."""
    _require(queries, ["user_id", "ts"], "queries")
    habitual: list[frozenset[str]] = [frozenset()] * len(queries)
    familiar: list[frozenset[str]] = [frozenset()] * len(queries)
    if len(queries) == 0 or len(listens) == 0:
        return habitual, familiar
    history = user_show_feature_history(listens)
    q = pd.DataFrame({"qid": np.arange(len(queries)), "user_id": queries["user_id"].to_numpy()})
    q["lookup"] = feature_lookup_time(queries["ts"].reset_index(drop=True)).dt.as_unit("ns")
    pairs = history[["user_id", "show_id"]].drop_duplicates()
    cand = q.merge(pairs, on="user_id", how="inner").sort_values("lookup", kind="stable")
    if cand.empty:
        return habitual, familiar
    joined = pd.merge_asof(
        cand,
        history[["user_id", "show_id", "event_timestamp", "habitual"]].sort_values("event_timestamp"),
        left_on="lookup",
        right_on="event_timestamp",
        by=["user_id", "show_id"],
        direction="backward",
    )
    joined = joined[joined["event_timestamp"].notna()]  # no row yet: never listened before ts
    is_habitual = joined["habitual"].eq(True)
    for qid, shows in joined[is_habitual].groupby("qid")["show_id"]:
        habitual[int(qid)] = frozenset(shows)
    for qid, shows in joined[~is_habitual].groupby("qid")["show_id"]:
        familiar[int(qid)] = frozenset(shows)
    return habitual, familiar


def habitual_shows_before(listens: pd.DataFrame, queries: pd.DataFrame) -> list[frozenset[str]]:
    """For each query row (user_id, ts): the user's habitual shows just before ts (left limit)."""
    return shows_before(listens, queries)[0]

"""The habit clock and cold start of CandidateService (streams/candidates.py), hermetic: the real
expiry-corrected reader (streams/feature_store.read_user_show_features) over fake online rows.

A session stamped long after the user's newest listen the streams have seen must not expire the
user's habits (the request's time never moves the habit clock past the streams); a session at or
before the newest listen reads the state exactly as before (what offline evaluation computes)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

import streams.candidates as candidates
import streams.feature_store as feature_store
from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from streams.candidates import CandidateConfig, CandidateService, habit_clock
from streams.schemas import SessionStart
from tests.streams.fakes import EchoBackend, FakeStore

K = 4
LAST = pd.Timestamp("2026-03-01 12:00:00", tz="UTC")  # the user's newest listen
# episode: (sid, show, popularity)
CATALOG = {
    "r1": ((0, 0), "recent", 50), "r2": ((0, 1), "recent", 40),  # listened, not a habit
    "h1": ((1, 0), "habit", 90), "h2": ((1, 1), "habit", 80),  # a habit, in the recent history
    "o1": ((2, 0), "old", 70),  # a habit the recent history does not show (found after generation)
    "n1": ((3, 0), "new", 60),  # never listened
}
# (user, show) -> (listen_seconds_28d as stored, last_listened_at)
PAIRS = {
    ("u", "recent"): (120, LAST), ("u", "habit"): (1800, LAST - pd.Timedelta(hours=1)),
    ("u", "old"): (900, LAST - pd.Timedelta(days=2)),
    # stored before the processor's watermark expired it: the reader's expiry correction still applies
    # up to the newest listen.
    ("u", "stale"): (900, LAST - pd.Timedelta(days=28, hours=1)),
}


@pytest.fixture
def service(monkeypatch):
    def inputs(store, refs, rows):
        known = [r["user_id"] == "u" for r in rows]
        return {"user_id": [r["user_id"] for r in rows],
                "sid_levels": [2 if k else None for k in known],
                "recent_sid_codes": [[0, 0, 1, 0] if k else None for k in known],
                "recent_episode_ids": [["r1", "h1"] if k else None for k in known],
                "cf_embedding": [None] * len(rows), "cf_version": [None] * len(rows),
                "locale": ["en-US" if k else None for k in known],
                "affinity_topics": [["news"] if k else None for k in known]}

    def pairs(store, refs, rows):
        got = [PAIRS.get((r["user_id"], r["show_id"])) for r in rows]
        return {"listen_seconds_28d": [g[0] if g else None for g in got],
                "ever_listened": [True if g else None for g in got],
                "last_listened_at": [g[1] if g else None for g in got],
                "habitual": [g[0] >= 600 if g else None for g in got]}

    monkeypatch.setattr(candidates, "online_features", inputs)
    monkeypatch.setattr(feature_store, "online_features", pairs)
    ids = list(CATALOG)
    codes = np.array([CATALOG[e][0] for e in ids])
    table = CollisionTable.from_arrays(ids, codes, [CATALOG[e][2] for e in ids], locale=["en-US"] * len(ids))
    sids = sorted({CATALOG[e][0] for e in ids})
    return CandidateService(FakeStore(), EchoBackend(SidTrie(codes, K), sids), table,
                            {e: v[1] for e, v in CATALOG.items()}, "v", CandidateConfig())


def _serve(service, ts: pd.Timestamp, mode: str, user: str = "u"):
    session = SessionStart(event_id="x", user_id=user, ts=int(ts.value // 1_000_000), surface="home",
                           context={"mode": mode})
    return service.recommend([session])[0]


def test_a_session_29_days_after_the_last_listen_still_sees_the_users_habits(service):
    later = LAST + pd.Timedelta(days=29)
    habitual, listened = service.show_states("u", frozenset({"habit", "old", "recent"}), later)
    assert habitual == {"habit", "old"} and listened == {"habit", "old", "recent"}
    for mode in ("familiar", "unfamiliar"):
        got = set(_serve(service, later, mode).episode_ids)
        assert not got & {"h1", "h2", "o1"}, mode  # no episode of a habitual show
    assert set(_serve(service, later, "familiar").episode_ids) == {"r2"}  # the listened, non-habitual show


def test_the_clock_is_the_session_time_up_to_the_newest_listen(service):
    # Before the newest listen: the request's own time, as offline evaluation has it.
    early = LAST - pd.Timedelta(hours=2)
    assert habit_clock(early, pd.Series([LAST, pd.NaT])) == early
    assert habit_clock(LAST + pd.Timedelta(days=3), pd.Series([LAST])) == LAST + pd.Timedelta(seconds=1)
    assert habit_clock(LAST, pd.Series([pd.NaT])) == LAST and habit_clock(None, pd.Series([LAST])) is None
    # 'stale' was last listened 28 d 1 h before the newest listen: expired at the clamped clock too.
    habitual, _ = service.show_states("u", frozenset({"stale", "recent"}), LAST + pd.Timedelta(days=29))
    assert habitual == frozenset()
    # A session 27 days after the pair's last listen but before the user's newest: the state at its ts.
    habitual, _ = service.show_states("u", frozenset({"old"}), LAST - pd.Timedelta(days=1))
    assert habitual == {"old"}


def test_unknown_users_get_cold_start_candidates_and_are_marked(service):
    known, cold = service.recommend([
        SessionStart(event_id=u, user_id=u, ts=int(LAST.value // 1_000_000), surface="home", context={})
        for u in ("u", "u-nobody")])
    assert not known.cold_start and cold.cold_start
    assert cold.episode_ids  # served from an empty history, not an error

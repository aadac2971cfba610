"""The listener panel answers slates by the world's ground truth (glide/world/panel.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glide.world.generator import WorldConfig, generate_world
from glide.world.panel import ListenerPanel
from glide.world.schema import DAY_S
from glide.world.truth import true_preference, true_preference_matrix

SLOT_S = 6 * 3600


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(users=150, days=28, seed=3, shows=60, episodes_per_show=12))


def _panel(world, seed=1):
    at = world.start + pd.Timedelta(days=21)
    return ListenerPanel(world, world.listens[world.listens["ts"] < at], at, seed=seed), int(at.timestamp())


def _play(panel, start_s, slate_of, slots=12):
    out = []
    for k in range(slots):
        s0 = start_s + k * SLOT_S
        sessions = panel.plan_slot(s0, SLOT_S)
        out.append(panel.respond(sessions, {panel.user_ids[u]: slate_of(panel, u, s0) for u in sessions.user}, s0 + SLOT_S))
    return pd.concat(out, ignore_index=True)


def _by_preference(best: bool):
    def slate(panel, u, s0):
        ok = panel.ep_published <= s0
        score = np.where(ok, panel.pref[u] if best else -panel.pref[u], -np.inf)
        return panel.ep_ids[np.argsort(-score, kind="stable")[:10]].tolist()
    return slate


def test_preference_matrix_is_the_one_rule(world):
    users, eps = world.users["user_id"].tolist()[:5], world.episodes["episode_id"].tolist()[:40]
    matrix = true_preference_matrix(world.users, world.shows, world.episodes, world.topics, users, eps)
    for i, u in enumerate(users):
        np.testing.assert_allclose(matrix[i], true_preference(world.users, world.shows, world.episodes, world.topics, u, eps))
    with pytest.raises(KeyError):
        true_preference_matrix(world.users, world.shows, world.episodes, world.topics, ["nobody"], eps)


def test_users_pick_slates_they_like_and_ignore_those_they_do_not(world):
    good = _play(*_panel(world), _by_preference(True))
    bad = _play(*_panel(world), _by_preference(False))
    good_slate, bad_slate = good[good["source"] == "slate"], bad[bad["source"] == "slate"]
    assert len(good_slate) > 100 and len(good_slate) > 10 * len(bad_slate)
    # A liked slate adds listening: the organic part is the same for both, the picks come on top.
    assert good["listened_seconds"].sum() > bad["listened_seconds"].sum()


def test_no_slate_means_organic_listens_only_and_search_never_reads_the_slate(world):
    panel, start = _panel(world)
    none = _play(panel, start, lambda p, u, s0: [])
    assert len(none) > 0 and (none["source"] == "organic").all()
    panel, start = _panel(world)
    some = _play(panel, start, _by_preference(True))
    assert not ((some["source"] == "slate") & some["surface"].isin(["search", "show_page"])).any()


def test_listens_are_well_formed_and_deterministic(world):
    a = _play(*_panel(world, seed=7), _by_preference(True), slots=6)
    b = _play(*_panel(world, seed=7), _by_preference(True), slots=6)
    pd.testing.assert_frame_equal(a, b)
    duration = world.episodes.set_index("episode_id")["duration_s"]
    assert (a["listened_seconds"] >= 1).all()
    assert (a["listened_seconds"].to_numpy() <= duration.reindex(a["episode_id"]).to_numpy()).all()
    published = world.episodes.set_index("episode_id")["published_at"].reindex(a["episode_id"]).to_numpy()
    assert (published <= a["ts"].to_numpy()).all()  # nobody plays an episode before it is out
    assert a["event_id"].is_unique
    start = _panel(world)[1]
    assert (a["ts"] < pd.Timestamp(start + 6 * SLOT_S, unit="s", tz="UTC")).all()


def test_activity_follows_the_history(world):
    panel, start = _panel(world)
    counts = np.zeros(len(panel.user_ids))
    for k in range(40):
        counts[panel.plan_slot(start + k * SLOT_S, SLOT_S).user] += 1
    days = 40 * SLOT_S / DAY_S
    busy, quiet = panel.activity > np.quantile(panel.activity, 0.8), panel.activity < np.quantile(panel.activity, 0.2)
    assert counts[busy].mean() / days > 2 * counts[quiet].mean() / days

"""A/A on the listener panel: two random halves served by the same slates show no lift (the
statistics and the panel together; the pipeline run is tests/glide_app/jobs/ab/test_ab_pipeline.py)."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glide.world.generator import WorldConfig, generate_world
from glide.world.panel import ListenerPanel
from glide_app.jobs.ab import stats
from glide_app.jobs.ab.assign import assign


def test_identical_arms_show_no_significant_lift():
    world = generate_world(WorldConfig(users=800, days=42, seed=5, shows=80, episodes_per_show=12))
    at = world.start + pd.Timedelta(days=35)
    history = world.listens[world.listens["ts"] < at]
    panel = ListenerPanel(world, history, at, seed=2)
    popular = history[history["ts"] > at - pd.Timedelta(days=7)]["episode_id"].value_counts().index[:10].tolist()
    start, slot = int(at.timestamp()), 6 * 3600
    played = []
    for k in range(7 * 4):
        sessions = panel.plan_slot(start + k * slot, slot)
        played.append(panel.respond(sessions, {panel.user_ids[u]: popular for u in sessions.user}, start + (k + 1) * slot))
    log = pd.concat([history, *played], ignore_index=True)
    window = stats.label_window(log, at, at + pd.Timedelta(days=7), min_stream_s=30)
    outcomes = stats.per_user(window, world.users["user_id"])
    assert outcomes["new_show"].sum() > 100  # enough events for the test to mean something
    arms = assign(world.users["user_id"].tolist(), "aa-test")
    lifts = stats.arm_lifts(outcomes, arms, "treatment", "control", n_boot=1000)
    for metric, lift in lifts.items():
        assert lift.ci[0] <= 0 <= lift.ci[1], (metric, lift)
        assert np.isfinite(lift.lift)

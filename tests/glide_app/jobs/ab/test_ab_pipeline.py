"""A small simulated A/B through the real pipeline (tansu, the stream worker, Feast, the GLIDE
worker): what the listeners played reaches the event log and the online store, GLIDE is served to
treatment only, and the verdict has the command's keys. About a minute and a half."""

from __future__ import annotations

import pandas as pd
import pytest
from rich.console import Console

from glide.config import load_settings
from glide_app.jobs.ab import report
from glide_app.jobs.ab.assign import CONTROL, TREATMENT
from glide_app.jobs.ab.config import ABConfig
from glide_app.jobs.ab.loop import run_experiment
from glide_app.jobs.ab.pipeline import prepare

CONTRACT = {"days", "users_per_arm", "lift_nonhabitual", "lift_nonhabitual_ci", "lift_new_show", "lift_new_show_ci",
            "lift_total_listening", "lift_total_listening_ci", "aa_lift_ci", "glide_share"}


@pytest.fixture(scope="module")
def experiment(tmp_path_factory):
    from infra import stack

    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("ab")))
    cfg = ABConfig(users=60, history_days=14, days=1, n_boot=200)
    console = Console(quiet=True)
    setup = prepare(settings, cfg, console)
    try:
        run = run_experiment(settings, cfg, setup, console)
        result, daily, _ = report.summarise(settings, cfg, run)
        yield settings, cfg, run, result, daily
    finally:
        setup.stream_worker.terminate()
        setup.stream_worker.wait(timeout=60)
        stack.down(settings)


def test_every_played_listen_reaches_the_event_log_and_the_online_store(experiment):
    from streams.feature_store import online_features, open_store

    settings, _, run, result, _ = experiment
    assert len(run.listens) > 20
    assert result["listens_logged"] == result["listens_played"] == len(run.listens)
    last = run.listens.sort_values(["ts", "event_id"]).groupby("user_id")["episode_id"].last()
    got = online_features(open_store(settings), ["user_recent_sids:recent_episode_ids"],
                          [{"user_id": u} for u in last.index])
    online_last = pd.Series([ids[-1] if ids else None for ids in got["recent_episode_ids"]], index=last.index)
    assert (online_last == last).all(), (online_last[online_last != last].head(), last[online_last != last].head())


def test_glide_is_served_to_treatment_only(experiment):
    from streams.candidate_client import CandidateClient
    from streams.feature_store import open_store

    settings, _, run, result, _ = experiment
    arm = run.served.groupby("arm")["glide"].mean()
    assert arm.get(CONTROL, 0.0) == 0.0 and arm[TREATMENT] > 0
    assert result["glide_share"] == pytest.approx(arm[TREATMENT], abs=1e-4)
    treated = run.served.loc[run.served["arm"] == TREATMENT, "user_id"].unique().tolist()
    controls = run.served.loc[run.served["arm"] == CONTROL, "user_id"].unique().tolist()
    cached = CandidateClient(settings, open_store(settings)).get(treated + controls)
    assert all(cached[u].sets for u in treated)  # every treated session start was answered and cached
    assert not any(cached[u].sets for u in controls)  # control users never reached the GLIDE worker
    assert result["glide_sessions"] >= run.served.loc[run.served["arm"] == TREATMENT].groupby("slot")["user_id"].nunique().sum()


def test_the_verdict_has_the_commands_keys(experiment):
    _, cfg, run, result, daily = experiment
    assert CONTRACT <= set(result)
    assert result["days"] == cfg.days and result["users_per_arm"] > 0
    for key in ("lift_nonhabitual_ci", "lift_new_show_ci", "lift_total_listening_ci", "aa_lift_ci"):
        assert len(result[key]) == 2
    assert list(daily.index) == list(range(1, cfg.days + 1))

"""A/B outcomes and lifts (glide_app/jobs/ab/stats.py): the habit rule on a hand-made history, CIs
that cover 0 when the arms are the same (A/A) and exclude it when they are not."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glide_app.jobs.ab import stats
from glide_app.jobs.ab.assign import assign

T0 = pd.Timestamp("2026-03-01", tz="UTC")


def _listen(user, show, day, seconds, n=[0]):
    n[0] += 1
    return {"event_id": f"e{n[0]}", "user_id": user, "show_id": show, "episode_id": f"{show}-{day}",
            "ts": T0 + pd.Timedelta(days=day), "listened_seconds": seconds}


def test_outcomes_follow_the_habit_rule():
    log = pd.DataFrame([
        _listen("u1", "habit", -5, 700),   # habitual from here on (>= 600 s in 28 days)
        _listen("u1", "habit", 1, 300),    # habitual before: not a non-habitual stream
        _listen("u1", "old", -40, 100),    # heard long ago: familiar, not new
        _listen("u1", "old", 2, 200),      # non-habitual, not a new show
        _listen("u1", "fresh", 3, 400),    # new show
        _listen("u1", "fresh", 4, 100),    # same show again: familiar now
        _listen("u1", "skim", 5, 10),      # under min_stream_s: no stream, still listening time
        _listen("u2", "fresh", 20, 100),   # outside the window
    ])
    window = stats.label_window(log, T0, T0 + pd.Timedelta(days=7), min_stream_s=30)
    per_user = stats.per_user(window, pd.Series(["u1", "u2", "u3"]))
    assert per_user.loc["u1"].to_dict() == {"nonhabitual": 3.0, "new_show": 1.0, "listening_s": 1010.0}
    assert per_user.loc["u2"].sum() == 0 and per_user.loc["u3"].sum() == 0  # absent users count as zeros
    days = stats.per_user_day(window, T0)
    # day 1 is [T0, T0 + 1 d): the listen at T0 + 3 d falls on day 4
    assert days.loc[("u1", 4), "new_show"] == 1 and days.loc[("u1", 3), "nonhabitual"] == 1


def test_a_real_lift_is_found_and_identical_arms_cover_zero():
    rng = np.random.default_rng(0)
    control = rng.poisson(2.0, 800).astype(float)
    lifted = stats.relative_lift(rng.poisson(2.6, 800).astype(float), control, n_boot=1000)
    assert lifted.significant and lifted.ci[0] < 0.3 < lifted.ci[1]
    covered = 0
    for k in range(40):
        same = stats.relative_lift(rng.poisson(2.0, 400).astype(float), rng.poisson(2.0, 400).astype(float),
                                   n_boot=500, seed=k)
        covered += same.ci[0] <= 0 <= same.ci[1]
    assert covered >= 34  # a 95% CI: 38 of 40 expected, binomial sd ~1.4


def test_cuped_narrows_the_ci_and_keeps_the_lift():
    rng = np.random.default_rng(1)
    taste = rng.gamma(2.0, 1.0, 2000)
    pre = rng.poisson(taste * 3).astype(float)
    treated = np.arange(2000) < 1000
    post = rng.poisson(taste * 3 * np.where(treated, 1.1, 1.0)).astype(float)
    raw = stats.relative_lift(post[treated], post[~treated], n_boot=1000)
    adjusted = stats.cuped(post, pre)
    cuped = stats.relative_lift(adjusted[treated], adjusted[~treated], n_boot=1000)
    assert cuped.ci[1] - cuped.ci[0] < 0.7 * (raw.ci[1] - raw.ci[0])
    assert abs(cuped.lift - 0.1) < 0.05


def test_arm_lifts_and_daily_lifts_read_every_user_of_both_arms():
    users = [f"u{i}" for i in range(600)]
    arms = assign(users, "salt")
    rng = np.random.default_rng(2)
    outcomes = pd.DataFrame({m: rng.poisson(3, len(users)).astype(float) for m in stats.METRICS},
                            index=pd.Index(users, name="user_id"))
    lifts = stats.arm_lifts(outcomes, arms, "treatment", "control", n_boot=500, pre=outcomes * 0 + 1)
    assert set(lifts) == {*stats.METRICS, *(f"{m}_cuped" for m in stats.METRICS)}
    assert all(lift.ci[0] <= 0 <= lift.ci[1] for lift in lifts.values())  # same distribution in both arms
    per_day = pd.DataFrame({"user_id": users[:10], "day": [1] * 10, **{m: [1.0] * 10 for m in stats.METRICS}}
                           ).set_index(["user_id", "day"])
    daily = stats.daily_lifts(per_day, arms, days=2)
    assert list(daily.index) == [1, 2] and daily.loc[2].isna().all()


def test_aa_resplits_are_calibrated():
    rng = np.random.default_rng(4)
    users = pd.Series([f"u{i}" for i in range(600)])
    outcomes = pd.DataFrame({"new_show": rng.negative_binomial(1, 0.4, 600).astype(float)}, index=users)
    rate = stats.aa_false_positive_rate(outcomes, users, splits=60, n_boot=300)
    assert rate <= 0.15  # 5% expected; 60 splits, binomial sd ~3%
    skewed = outcomes.assign(new_show=np.where(np.arange(600) % 2 == 0, outcomes["new_show"] * 3, outcomes["new_show"]))
    assert stats.relative_lift(skewed["new_show"].to_numpy()[::2], skewed["new_show"].to_numpy()[1::2]).significant

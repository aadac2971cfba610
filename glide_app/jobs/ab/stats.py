"""What an A/B test is judged on, per user, from the listens the streams recorded (the event log).

Outcomes per user over the experiment window (the paper's §5.3 metrics):

- ``nonhabitual``: streams of shows that were not habitual for the user just before the listen
  (glide.habits.label_listens: the one habit rule, over the user's whole logged history);
- ``new_show``: the non-habitual streams of shows the user had never played before;
- ``listening_s``: total seconds listened (the guardrail: it must not drop).

A stream is a listen of at least ``min_stream_s`` seconds. Every user of an arm counts, also those
who did not listen in the window (zeros): dropping them would bias the arm that keeps users away.

Lifts are relative: mean(treatment) / mean(control) - 1, with a percentile bootstrap CI that
resamples users within each arm. CUPED (Deng et al. 2013) adjusts each outcome by the same outcome
in the pre-period, which removes between-user variance the experiment did not cause; the adjusted
lift has the same expectation and a narrower CI.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import pandas as pd

from glide import habits

METRICS = ("nonhabitual", "new_show", "listening_s")


def label_window(log: pd.DataFrame, start: pd.Timestamp, end: pd.Timestamp, min_stream_s: int) -> pd.DataFrame:
    """Logged listens with ts in [start, end), labelled against the whole log, with one 0/1 column
    per stream metric and listening_s."""
    labelled = habits.label_listens(log.sort_values("ts", kind="stable").reset_index(drop=True))
    window = labelled[(labelled["ts"] >= start) & (labelled["ts"] < end)].copy()
    stream = window["listened_seconds"].to_numpy() >= min_stream_s
    window["nonhabitual"] = (stream & (window["mode"] != "habitual").to_numpy()).astype(np.int64)
    window["new_show"] = (stream & (window["mode"] == "unfamiliar").to_numpy()).astype(np.int64)
    window["listening_s"] = window["listened_seconds"].astype(np.float64)
    return window


def per_user(window: pd.DataFrame, users: pd.Series) -> pd.DataFrame:
    """users x METRICS sums over the labelled window; users without listens get zeros."""
    sums = window.groupby("user_id")[list(METRICS)].sum()
    return sums.reindex(pd.Index(users, name="user_id"), fill_value=0).astype(np.float64)


def per_user_day(window: pd.DataFrame, start: pd.Timestamp) -> pd.DataFrame:
    """(user_id, day) x METRICS sums; day 1 is the first experiment day."""
    day = ((window["ts"] - start) // pd.Timedelta(days=1)).astype(int) + 1
    return window.assign(day=day).groupby(["user_id", "day"])[list(METRICS)].sum()


@dataclass(frozen=True)
class Lift:
    lift: float
    ci: tuple[float, float]
    treatment_mean: float
    control_mean: float

    @property
    def significant(self) -> bool:
        return bool(self.ci[0] > 0 or self.ci[1] < 0)


def relative_lift(treatment: np.ndarray, control: np.ndarray, n_boot: int = 2000, seed: int = 0,
                  level: float = 0.95) -> Lift:
    """mean(treatment) / mean(control) - 1 and its bootstrap CI (users resampled within each arm)."""
    t, c = np.asarray(treatment, dtype=np.float64), np.asarray(control, dtype=np.float64)
    if len(t) == 0 or len(c) == 0 or c.mean() == 0:
        return Lift(float("nan"), (float("nan"), float("nan")), float(t.mean()) if len(t) else float("nan"),
                    float(c.mean()) if len(c) else float("nan"))
    rng = np.random.default_rng(seed)
    tb = t[rng.integers(0, len(t), size=(n_boot, len(t)))].mean(axis=1)
    cb = c[rng.integers(0, len(c), size=(n_boot, len(c)))].mean(axis=1)
    ratios = tb[cb != 0] / cb[cb != 0] - 1.0
    alpha = (1.0 - level) / 2
    return Lift(float(t.mean() / c.mean() - 1.0), (float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))),
                float(t.mean()), float(c.mean()))


def cuped(outcome: np.ndarray, covariate: np.ndarray) -> np.ndarray:
    """outcome - theta (covariate - mean covariate), theta = cov / var pooled over both arms."""
    y, x = np.asarray(outcome, dtype=np.float64), np.asarray(covariate, dtype=np.float64)
    var = x.var()
    if var == 0:
        return y.copy()
    theta = np.cov(x, y, bias=True)[0, 1] / var
    return y - theta * (x - x.mean())


def arm_lifts(outcomes: pd.DataFrame, arms: pd.DataFrame, treatment: str, control: str, column: str = "arm",
              n_boot: int = 2000, seed: int = 0, pre: pd.DataFrame | None = None) -> dict[str, Lift]:
    """Lift of every metric between two groups of ``arms[column]``; with ``pre`` (the same metrics in
    the pre-period, per user) the CUPED-adjusted lifts are added as '<metric>_cuped'."""
    groups = arms.set_index("user_id")[column].reindex(outcomes.index)
    t_rows, c_rows = (groups == treatment).to_numpy(), (groups == control).to_numpy()
    out = {}
    for k, metric in enumerate(METRICS):
        y = outcomes[metric].to_numpy()
        out[metric] = relative_lift(y[t_rows], y[c_rows], n_boot, seed + k)
        if pre is not None:
            both = t_rows | c_rows
            adjusted = np.full(len(y), np.nan)
            adjusted[both] = cuped(y[both], pre[metric].reindex(outcomes.index, fill_value=0).to_numpy()[both])
            # The adjustment keeps each arm's expected mean, so the ratio of adjusted means is the lift.
            out[f"{metric}_cuped"] = relative_lift(adjusted[t_rows], adjusted[c_rows], n_boot, seed + k)
    return out


def daily_lifts(per_day: pd.DataFrame, arms: pd.DataFrame, days: int, treatment: str = "treatment",
                control: str = "control", column: str = "arm") -> pd.DataFrame:
    """day x METRICS point lifts (every user of both arms on every day, zeros included)."""
    groups = arms.set_index("user_id")[column]
    rows = []
    for day in range(1, days + 1):
        frame = per_day.xs(day, level="day") if day in per_day.index.get_level_values("day") else per_day.iloc[:0]
        frame = frame.reindex(groups.index, fill_value=0)
        t, c = frame[(groups == treatment).to_numpy()], frame[(groups == control).to_numpy()]
        rows.append({"day": day, **{m: (t[m].mean() / c[m].mean() - 1.0) if c[m].mean() else np.nan for m in METRICS}})
    return pd.DataFrame(rows).set_index("day")


def aa_false_positive_rate(outcomes: pd.DataFrame, user_ids: pd.Series, metric: str = "new_show", splits: int = 100,
                           n_boot: int = 500, seed: int = 0) -> float:
    """Share of ``splits`` random halvings of ``user_ids`` whose A/A CI excludes 0 (a calibrated test:
    about 5%). One A/A split excludes 0 by chance one time in twenty; many re-splits of the same
    users say whether the CI itself can be trusted on this data."""
    from glide_app.jobs.ab.assign import assign

    users = pd.Series(user_ids).tolist()
    rows = outcomes.reindex(users)[metric].to_numpy(dtype=np.float64)
    hits = 0
    for k in range(splits):
        half = (assign(users, f"aa-resplit-{seed}-{k}")["aa_half"] == 1).to_numpy()
        lift = relative_lift(rows[half], rows[~half], n_boot, seed + k)
        hits += lift.significant
    return hits / splits

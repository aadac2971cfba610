"""An experiment's verdict: lifts with CIs (raw and CUPED), the A/A check, GLIDE's share of the served
slots, a table and a plot of the daily lift. Outcomes are read from the event log, i.e. from what the
streams recorded, not from the simulator's own list of listens."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from glide.config import GlideSettings
from glide_app.jobs.ab import stats
from glide_app.jobs.ab.assign import CONTROL, TREATMENT
from glide_app.jobs.ab.config import ABConfig
from glide_app.jobs.ab.loop import ABRun, glide_share, slate_pick_rate

LABELS = {"nonhabitual": "non-habitual streams", "new_show": "new-show streams", "listening_s": "listening min"}
KEYS = {"nonhabitual": "lift_nonhabitual", "new_show": "lift_new_show", "listening_s": "lift_total_listening"}


def outcomes(settings: GlideSettings, cfg: ABConfig, run: ABRun
             ) -> tuple[pd.DataFrame, pd.DataFrame, pd.DataFrame, int]:
    """(experiment outcomes per user, pre-period outcomes per user, per user and day, the played
    listens found in the log), from one read of the log."""
    from glide.event_log import open_event_log

    log = open_event_log(settings).read("listens")
    users = run.arms["user_id"]
    window = stats.label_window(log, run.start, run.end, cfg.min_stream_s)
    pre = stats.label_window(log, run.start - (run.end - run.start), run.start, cfg.min_stream_s)
    logged = int(window["event_id"].isin(run.listens["event_id"]).sum()) if len(run.listens) else 0
    return stats.per_user(window, users), stats.per_user(pre, users), stats.per_user_day(window, run.start), logged


def summarise(settings: GlideSettings, cfg: ABConfig, run: ABRun) -> tuple[dict, pd.DataFrame, dict]:
    """(the JSON result, the daily lifts, every Lift by name)."""
    per_user, pre, per_day, logged = outcomes(settings, cfg, run)
    ab = stats.arm_lifts(per_user, run.arms, TREATMENT, CONTROL, n_boot=cfg.n_boot, seed=cfg.seed, pre=pre)
    control = run.arms[run.arms["arm"] == CONTROL]
    aa = stats.arm_lifts(per_user, control, 1, 0, column="aa_half", n_boot=cfg.n_boot, seed=cfg.seed + 100, pre=pre)
    counts = run.arms["arm"].value_counts()
    result = {"days": cfg.days, "users_per_arm": int(min(counts.get(TREATMENT, 0), counts.get(CONTROL, 0)))}
    for metric, key in KEYS.items():
        result[key] = _round(ab[metric].lift)
        result[f"{key}_ci"] = [_round(x) for x in ab[metric].ci]
        result[f"{key}_cuped"] = _round(ab[f"{metric}_cuped"].lift)
        result[f"{key}_cuped_ci"] = [_round(x) for x in ab[f"{metric}_cuped"].ci]
    result["aa_lift_ci"] = [_round(x) for x in aa["new_show"].ci]
    result["aa_lift_cuped_ci"] = [_round(x) for x in aa["new_show_cuped"].ci]
    result["aa_false_positive_rate"] = stats.aa_false_positive_rate(per_user, control["user_id"], seed=cfg.seed)
    result["glide_share"] = _round(glide_share(run.served))
    result["slate_pick_rate"] = {k: _round(v) for k, v in slate_pick_rate(run).items()}
    result["users"] = {k: int(v) for k, v in counts.items()}
    result["sessions"], result["glide_sessions"] = run.sessions, run.glide_sessions
    result["listens_played"], result["listens_logged"] = int(len(run.listens)), logged
    result["guardrail_ok"] = bool(ab["listening_s"].ci[1] >= 0 if np.isfinite(ab["listening_s"].ci[1]) else False)
    daily = stats.daily_lifts(per_day, run.arms, cfg.days)
    return result, daily, {**{f"A/B {m}": v for m, v in ab.items()}, **{f"A/A {m}": v for m, v in aa.items()}}


def _round(x: float) -> float | None:
    return None if x is None or not np.isfinite(x) else round(float(x), 4)


def table(lifts: dict[str, stats.Lift]) -> Table:
    out = Table(title="simulated A/B: treatment (control's sources + GLIDE) vs control, one shared ranker; "
                      "means per user; A/A = two halves of control")
    for col in ("", "metric", "ctrl", "treat", "lift", "95% CI", "sig"):
        out.add_column(col, justify="left" if col in ("", "metric") else "right", no_wrap=True)
    for name, lift in lifts.items():
        comparison, metric = name.split(" ", 1)
        base = metric.removesuffix("_cuped")
        scale = 1 / 60 if base == "listening_s" else 1.0
        label = LABELS[base] + (" CUPED" if metric.endswith("_cuped") else "")
        out.add_row(comparison, label, f"{lift.control_mean * scale:.2f}", f"{lift.treatment_mean * scale:.2f}",
                    f"{lift.lift:+.1%}", f"[{lift.ci[0]:+.1%}, {lift.ci[1]:+.1%}]", "yes" if lift.significant else "no")
    return out


def plot_daily(daily: pd.DataFrame, path: Path) -> Path:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(7, 3.5))
    for metric in daily.columns:
        ax.plot(daily.index, daily[metric] * 100, marker="o", label=LABELS[metric])
    ax.axhline(0, color="grey", lw=0.8)
    ax.set_xlabel("experiment day")
    ax.set_ylabel("lift, treatment vs control (%)")
    ax.set_title("simulated A/B: daily lift")
    ax.legend(fontsize=7)
    fig.tight_layout()
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path


def show(console: Console, result: dict, lifts: dict[str, stats.Lift], daily: pd.DataFrame) -> None:
    console.print(table(lifts))
    console.print(f"A/A: new-show lift CI of control's two halves {result['aa_lift_ci']}; over 100 random "
                  f"re-splits of control {result['aa_false_positive_rate']:.0%} of the A/A CIs exclude 0 (calibrated: ~5%)")
    console.print(f"GLIDE's share of treatment's served slots: {result['glide_share']:.1%}; slate pick rate "
                  f"{result['slate_pick_rate']}; {result['listens_logged']} of {result['listens_played']} played "
                  "listens are in the event log")
    console.print("daily lift (point estimates): " + ", ".join(
        f"day {d}: {row['new_show']:+.0%} new-show" for d, row in daily.iterrows() if np.isfinite(row["new_show"])))

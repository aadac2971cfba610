"""World statistics: point-in-time habitual / familiar / unfamiliar labels for listens (paper §3).

A listen at time t on show s by user u is
- `habitual` if u's listened_seconds on s over listens in (t - 28 d, t) sum to >= 600,
- `familiar` (non-habitual but familiar) if u listened to s at any time before t but below that,
- `unfamiliar` (non-habitual and unfamiliar) if u never listened to s before t.
Only listens strictly before t count. This batch version is for world statistics; the streaming
feature version of the rule lives with the online runtime.
"""

from __future__ import annotations

import numpy as np
import pandas as pd

from glide.world.schema import epoch_ints

HABIT_WINDOW = pd.Timedelta(days=28)
HABIT_SECONDS = 600
LABELS = ("habitual", "familiar", "unfamiliar")


def classify_listens(
    listens: pd.DataFrame, window: pd.Timedelta = HABIT_WINDOW, threshold_s: int = HABIT_SECONDS
) -> pd.Series:
    """Label each listen (index-aligned categorical Series named `familiarity`)."""
    missing = {"user_id", "show_id", "ts", "listened_seconds"} - set(listens.columns)
    if missing:
        raise ValueError(f"classify_listens needs columns {sorted(missing)}")
    n = len(listens)
    if n == 0:
        return pd.Series(pd.Categorical([], categories=LABELS), index=listens.index, name="familiarity")
    group = listens.groupby(["user_id", "show_id"], sort=False).ngroup().to_numpy(np.int64)
    # Millisecond offsets keep group * span + t inside int64 for any realistic world.
    t = epoch_ints(listens["ts"], "ms")
    t = t - t.min()
    w = int(window / pd.Timedelta(milliseconds=1))
    span = int(t.max()) + w + 1
    key = group * span + t
    order = np.argsort(key, kind="stable")
    skey = key[order]
    csum = np.r_[0, np.cumsum(listens["listened_seconds"].to_numpy(np.int64)[order])]
    group_start = np.searchsorted(skey, group * span, side="left")
    before = np.searchsorted(skey, key, side="left")  # first listen of the group at or after t
    window_lo = np.maximum(np.searchsorted(skey, key - w, side="right"), group_start)  # first one after t - w
    recent = csum[before] - csum[window_lo]
    label = np.where(recent >= threshold_s, 0, np.where(before > group_start, 1, 2))
    return pd.Series(pd.Categorical.from_codes(label, categories=LABELS), index=listens.index, name="familiarity")


def familiarity_shares(listens: pd.DataFrame) -> dict[str, float]:
    """Share of listens per label (habitual, familiar, unfamiliar)."""
    labels = classify_listens(listens)
    counts = labels.value_counts()
    total = max(len(labels), 1)
    return {name: float(counts.get(name, 0)) / total for name in LABELS}


def taste_lift(
    history: pd.DataFrame, targets: pd.DataFrame, topic_share: dict[str, float], top: int = 3
) -> pd.DataFrame:
    """How much a user's past topics predict their next pick, beyond popularity (world calibration).

    For each target (user_id, topic, pos, familiar), the user's `top` most frequent topics in
    `history` rows with a smaller `pos` are taken; `top_share` is how often the target's topic is
    one of them, `null_share` how often it would be if the pick followed `topic_share` (the
    popularity-weighted topic mix) and ignored taste, `lift` their ratio, `top1_share` the share
    hitting the single most frequent topic. One row per segment: all, familiar, unfamiliar.
    Targets without history are skipped. Works for any log with a topic per item (Amazon
    categories, podcast genres), which is what lets the synthetic world be compared to real data.
    """
    hist = history.sort_values(["user_id", "pos"], kind="stable")
    by_user = {u: (g["pos"].to_numpy(), g["topic"].to_numpy()) for u, g in hist.groupby("user_id", sort=False)}
    rows = []
    for user, topic, pos, familiar in targets[["user_id", "topic", "pos", "familiar"]].itertuples(index=False):
        if user not in by_user:
            continue
        p, t = by_user[user]
        past = t[: np.searchsorted(p, pos, side="left")]
        if len(past) == 0:
            continue
        names, counts = np.unique(past, return_counts=True)
        best = names[np.argsort(-counts, kind="stable")[:top]].tolist()
        rows.append((topic in best, topic == best[0], sum(topic_share.get(x, 0.0) for x in best), bool(familiar)))
    frame = pd.DataFrame(rows, columns=["hit", "hit1", "null", "familiar"])
    out = {}
    for name, part in (("all", frame), ("familiar", frame[frame.familiar]), ("unfamiliar", frame[~frame.familiar])):
        n = len(part)
        hit, null = (float(part.hit.mean()), float(part.null.mean())) if n else (float("nan"), float("nan"))
        out[name] = {"n": n, "top_share": hit, "null_share": null,
                     "lift": hit / null if n and null > 0 else float("nan"),
                     "top1_share": float(part.hit1.mean()) if n else float("nan")}
    return pd.DataFrame.from_dict(out, orient="index")


def world_taste_lift(listens: pd.DataFrame, episodes: pd.DataFrame, holdout_days: float = 4, top: int = 3) -> pd.DataFrame:
    """`taste_lift` on a world: targets are the non-habitual listens of the last `holdout_days`,
    history every earlier listen, topics the episodes' `topic`, the null mix that of listens before
    the holdout."""
    topic_of = dict(zip(episodes["episode_id"], episodes["topic"]))
    log = listens.assign(topic=listens["episode_id"].map(topic_of), pos=epoch_ints(listens["ts"], "ms"),
                         label=classify_listens(listens).astype(str))
    cut = log["ts"].max() - pd.Timedelta(days=holdout_days)
    before = log[log["ts"] < cut]
    share = before["topic"].value_counts(normalize=True).to_dict()
    targets = log[(log["ts"] >= cut) & (log["label"] != "habitual")].assign(familiar=lambda d: d["label"] == "familiar")
    return taste_lift(log, targets, share, top)

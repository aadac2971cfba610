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

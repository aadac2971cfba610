"""The collision tie-breaker, recounted from what the streams applied (paper §4.4.1: refreshed daily).

Popularity is the number of distinct listeners per episode among the listens in the offline event log
(glide/event_log.py, written by the listen processor), as `glide train` counts the popularity it
writes to the catalog DB and offline evaluation counts it (glide_model.evaluation.baselines
.episode_popularity); an episode with no listen counted gets 0. An empty count (no listens logged, e.g.
no stream worker has run) leaves the table as it is rather than zeroing every episode.
"""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from glide.config import GlideSettings
from glide.event_log import open_event_log
from glide_model.sids.collisions import CollisionTable


def listener_counts(settings: GlideSettings, window_s: float = 0.0, now: pd.Timestamp | None = None
                    ) -> dict[str, float] | None:
    """Distinct listeners per episode among the logged listens of the last ``window_s`` seconds
    (0: all of them); None when there are none."""
    now = now or pd.Timestamp.now(tz="UTC")
    start = now - pd.Timedelta(seconds=window_s) if window_s > 0 else None
    listens = open_event_log(settings).read("listens", start=start)
    if listens.empty:
        return None
    return {str(e): float(n) for e, n in listens.groupby("episode_id")["user_id"].nunique().items()}


def apply_popularity(table: CollisionTable, counts: Mapping[str, float]) -> int:
    """Give every episode of ``table`` its count (0 without one); returns how many episodes were
    counted. Not safe beside a running decode: the worker calls it between batches."""
    ids = table.catalog()[0]
    table.update_popularity({e: float(counts.get(e, 0.0)) for e in ids})
    return sum(e in counts for e in ids)

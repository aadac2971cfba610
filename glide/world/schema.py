"""Column contract of the world's tables (see World in generator.py) and its time conventions; other
packages rely on these names. The bottom of glide.world: it imports no other world module."""

from __future__ import annotations

import numpy as np
import pandas as pd

COLUMNS: dict[str, tuple[str, ...]] = {
    "shows": ("show_id", "title", "description", "host", "topics", "locale", "popularity"),
    "episodes": (
        "episode_id", "show_id", "title", "description", "topic", "locale", "published_at",
        "duration_s", "playable", "popularity",
    ),
    "users": (
        "user_id", "locale", "country", "favourite_show_ids", "affinity_topics", "topic_weights",
        "explore_rate",
    ),
    "sessions": ("session_id", "user_id", "ts", "surface", "context", "intent_topic"),
    "listens": (
        "event_id", "session_id", "user_id", "episode_id", "show_id", "listened_seconds", "ts",
        "surface", "locale",
    ),
}
TABLES: tuple[str, ...] = tuple(COLUMNS)
TIME_COLUMNS: dict[str, tuple[str, ...]] = {
    "episodes": ("published_at",),
    "sessions": ("ts",),
    "listens": ("ts",),
}
LIST_COLUMNS: dict[str, tuple[str, ...]] = {
    "shows": ("topics",),
    "users": ("favourite_show_ids", "affinity_topics", "topic_weights"),
}
SURFACES: tuple[str, ...] = ("home", "search", "show_page", "exploration")
EPOCH = pd.Timestamp(0, tz="UTC")
# Time conventions shared by the catalogs, the config and the simulation (all in UTC epoch seconds).
DAY_S = 86_400
DEFAULT_START = "2026-01-01T00:00:00+00:00"


def epoch_ints(ts: pd.Series, unit: str = "s") -> np.ndarray:
    """UTC timestamps as int64 counts of `unit` ("s", "ms") since the epoch, floored."""
    return ((ts - EPOCH) // pd.Timedelta(1, unit=unit)).to_numpy(dtype=np.int64)


def check_table(name: str, df: pd.DataFrame) -> None:
    """Raise ValueError when `df` misses a contract column or has a naive/non-UTC timestamp column."""
    missing = [c for c in COLUMNS[name] if c not in df.columns]
    if missing:
        raise ValueError(f"{name} table lacks columns {missing}; it needs {list(COLUMNS[name])}")
    for col in TIME_COLUMNS.get(name, ()):
        dtype = df[col].dtype
        if not isinstance(dtype, pd.DatetimeTZDtype) or str(dtype.tz) != "UTC":
            raise ValueError(
                f"{name}.{col} must be datetime64[ns, UTC], got {dtype}; "
                "convert with pd.to_datetime(col, utc=True)"
            )

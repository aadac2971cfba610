"""Feast access for the online runtime: open the store for the active profile, apply the
definitions, push feature rows, read them back.

The store's configuration and constructor live in ``streams.feast_config`` (``open_store`` is
re-exported here, where callers look for Feast access): the online writer and its layout cache need
them without this module, and this module needs the layout cache, so the shared part sits below both.
"""

from __future__ import annotations

import os
from contextlib import contextmanager

import pandas as pd

from glide.config import GlideSettings
from streams.feast_config import open_store
from streams.online_layout import write_layout

__all__ = ["apply_definitions", "definitions", "online_features", "open_store", "push", "read_user_show_features"]


@contextmanager
def _definitions_env(settings: GlideSettings | None):
    """feature_repo/definitions.py reads these at import time to place its batch sources. Set only
    while it is (re)imported: left in os.environ, a cluster store opened once would turn every later
    load_settings() in the process into the cluster profile."""
    if settings is None:
        yield
        return
    wanted = {"GLIDE_PROFILE": settings.profile, "GLIDE_DATA_DIR": str(settings.data_dir),
              "GLIDE_POSTGRES_SCHEMA": settings.postgres_schema}
    saved = {k: os.environ.get(k) for k in wanted}
    os.environ.update(wanted)
    try:
        yield
    finally:
        for k, v in saved.items():
            if v is None:
                os.environ.pop(k, None)
            else:
                os.environ[k] = v


def definitions(settings: GlideSettings | None = None):
    """The objects of feature_repo/definitions.py, (re)imported for ``settings`` (default: the
    GLIDE_* environment)."""
    import importlib

    with _definitions_env(settings):
        import feature_repo.definitions as defs

        return importlib.reload(defs)


def apply_definitions(store, settings: GlideSettings | None = None) -> list[str]:
    """Register entities, views and services; returns the feature view names. With ``settings``,
    also caches the online layout the stream workers read instead of importing Feast
    (streams/online_layout.py)."""
    settings = settings or getattr(store, "glide_settings", None)
    defs = definitions(settings)
    store.apply(defs.ALL_OBJECTS)
    if settings is not None:
        write_layout(settings, store)
    return sorted(fv.name for fv in store.list_feature_views())


def push(store, view: str, frame: pd.DataFrame) -> None:
    """Write rows to the online store through the view's push source."""
    from feast.data_source import PushMode

    store.push(f"{view}_push", frame, to=PushMode.ONLINE)


def online_features(store, refs: list[str] | object, entity_rows: list[dict], timestamps: bool = False
                    ) -> dict[str, list]:
    """get_online_features as a plain dict of columns; with ``timestamps``, also each feature's row
    event time as ``<feature>__ts`` (epoch seconds, 0 where no row is stored)."""
    response = store.get_online_features(features=refs, entity_rows=entity_rows)
    return response.to_dict(include_event_timestamps=True) if timestamps else response.to_dict()


_PAIR_FEATURES = ("listen_seconds_28d", "ever_listened", "last_listened_at", "habitual")


def read_user_show_features(store, user_id: str, show_ids: list[str], as_of=None) -> pd.DataFrame:
    """One user's 28-day listening on ``show_ids``, corrected for expiry at ``as_of``.

    The stream processors keep each row exact as of their partition's event-time watermark (listens
    leave the total when the watermark passes listen ts + 28 d, even without new events for the
    pair). Between that watermark and a later ``as_of``, more listens may have expired: a pair whose
    last listen is 28 days or more before ``as_of`` reads 0 seconds and not habitual here; any other
    pair is returned as stored (an upper bound until the watermark reaches ``as_of``). Without
    ``as_of`` the rows are returned as stored. Never-listened shows come back with 0 / False / NaT.
    Columns: show_id, listen_seconds_28d, ever_listened, last_listened_at, habitual, mode
    ("habitual" | "familiar" | "unfamiliar", paper §3).
    """
    from glide.habits import HABIT_THRESHOLD_SECONDS, HABIT_WINDOW

    refs = [f"user_show_listening_28d:{f}" for f in _PAIR_FEATURES]
    got = online_features(store, refs, [{"user_id": user_id, "show_id": s} for s in show_ids])
    out = pd.DataFrame({"show_id": list(show_ids)})
    out["listen_seconds_28d"] = [int(v or 0) for v in got["listen_seconds_28d"]]
    out["ever_listened"] = [bool(v) for v in got["ever_listened"]]
    out["last_listened_at"] = pd.to_datetime(got["last_listened_at"], utc=True)
    if as_of is not None:
        stamp = pd.Timestamp(as_of)
        if stamp.tzinfo is None:
            raise ValueError(f"as_of must be timezone-aware (got {as_of!r}); use pd.Timestamp(..., tz='UTC')")
        expired = out["last_listened_at"].notna() & (out["last_listened_at"] <= stamp - HABIT_WINDOW)
        out.loc[expired, "listen_seconds_28d"] = 0
    out["habitual"] = out["listen_seconds_28d"] >= HABIT_THRESHOLD_SECONDS
    out["mode"] = ["habitual" if h else "familiar" if e else "unfamiliar"
                   for h, e in zip(out["habitual"], out["ever_listened"])]
    return out

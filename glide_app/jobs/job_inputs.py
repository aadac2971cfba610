"""What an offline job learns from: the live system's records, never a world's files.

- listens: the offline event log the stream processors wrote (glide/event_log.py), i.e. exactly
  the listens the online features were computed from;
- episodes and shows: the catalog DB the `catalog-updates` stream keeps;
- user profiles (locale, country, affinity topics): the `user_context` view of the online store,
  the profiles the listen processor checked every listen against.

A world reaches these only through Kafka (`glide replay`), or through :func:`backfill_world`
(`glide replay --backfill`), which writes a world's history the way the streams would have: the
bootstrap of a new deployment from an archive, and the fast path of tests and benchmarks.
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from glide.config import GlideSettings
from glide.event_log import EventLogError, open_event_log

PROFILE_FEATURES = ["user_context:locale", "user_context:country", "user_context:affinity_topics"]


@dataclass
class JobInputs:
    listens: pd.DataFrame  # world `listens` columns (no session_id), event-time order
    episodes: pd.DataFrame
    shows: pd.DataFrame
    users: pd.DataFrame  # user_id, locale, country, affinity_topics


def load_job_inputs(settings: GlideSettings, db, store) -> JobInputs:
    """The log's listens, the catalog DB's episodes and shows, the online profiles of the listeners."""
    log = open_event_log(settings)
    listens = log.read("listens")
    if listens.empty:
        raise EventLogError(
            f"empty training window: the event log ({settings.data_dir / 'event_log'} on the embedded profile) "
            "holds no listens; run the stream worker and `glide replay` (or `glide replay --backfill`) first")
    listens = listens.drop(columns=["partition", "offset"])
    episodes, shows = db.episodes_frame(), db.shows_frame()
    unknown = sorted(set(listens["episode_id"]) - set(episodes["episode_id"]))
    if unknown:
        raise EventLogError(f"{len(unknown)} logged episode(s) are not in the catalog DB (e.g. {unknown[:3]}): "
                            "the catalog-updates stream has not caught up, or the catalog DB is another deployment's")
    return JobInputs(listens, episodes, shows, user_profiles(store, listens))


def user_profiles(store, listens: pd.DataFrame) -> pd.DataFrame:
    """Each listener's online profile; one without a profile gets the locale of their newest listen."""
    from streams.feature_store import online_features

    users = sorted(listens["user_id"].unique())
    got = online_features(store, PROFILE_FEATURES, [{"user_id": u} for u in users])
    newest_locale = listens.groupby("user_id")["locale"].last()
    return pd.DataFrame({
        "user_id": users,
        "locale": [loc if isinstance(loc, str) and loc else newest_locale[u] for u, loc in zip(users, got["locale"])],
        "country": [c if isinstance(c, str) else "" for c in got["country"]],
        "affinity_topics": [list(t) if t is not None else [] for t in got["affinity_topics"]],
    })


def saved_or_new_world(folder, config: dict):
    """The world saved in ``folder``, or a new one generated from ``config`` (WorldConfig fields) and saved."""
    from pathlib import Path

    from glide.world.generator import World, WorldConfig, generate_world
    from glide_app.jobs.config_io import from_dict

    folder = Path(folder)
    if (folder / "world.json").exists():
        return World.load(folder)
    world = generate_world(from_dict(WorldConfig, config, "world"))
    world.save(folder)
    return world


def backfill_world(settings: GlideSettings, world, db) -> int:
    """Write a world's history where the streams would have: catalog into the catalog DB, profiles
    into `user_context`, every listen into the event log (one batch per Kafka partition the replay
    would have used). Returns the listens logged; idempotent (the log counts a batch once)."""
    from streams import schemas as S
    from streams.feature_store import apply_definitions, open_store
    from streams.replay import push_profiles

    apply_definitions(open_store(settings))  # as `glide stack up` would have: the views the profiles land in
    db.upsert_shows(world.shows)
    db.upsert_episodes(world.episodes)
    push_profiles(settings, world.users, world.start)
    listens = world.listens.sort_values(["ts", "event_id"], kind="stable")
    ts_ms = S.ms_series(listens["ts"])
    rows = [{"event_id": e, "user_id": u, "episode_id": ep, "show_id": s, "listened_seconds": int(sec),
             "ts": int(t), "surface": surf, "locale": loc, "offset": i}
            for i, (e, u, ep, s, sec, t, surf, loc) in enumerate(zip(
                listens["event_id"], listens["user_id"], listens["episode_id"], listens["show_id"],
                listens["listened_seconds"], ts_ms, listens["surface"], listens["locale"]))]
    log = open_event_log(settings)
    return log.append("listens", rows, partition=0, first_offset=0, next_offset=len(rows)) if rows else 0

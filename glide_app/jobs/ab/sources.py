"""Candidate sources of the A/B arms, and what a slate is built from: what the online store says about
each user (their recent episodes, CF vector and locale, read back from Feast as a ranker would) and
the catalog as it stands at the slot's time.

Control serves the existing sources: the most played episodes of the popularity window (counted from
the event log the streams write), the newest episodes of the shows the user's CF vector ranks highest,
and the newest episodes of the shows the user has been listening to (followed). Treatment adds GLIDE's
cached set for the surface's mode (read through CandidateClient). Every source drops episodes the
user has heard recently and episodes outside the user's language.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass

import numpy as np
import pandas as pd

POPULARITY, CF, FOLLOWED, GLIDE = "popularity", "cf", "followed", "glide"
CONTROL_SOURCES = (POPULARITY, CF, FOLLOWED)


def language(locale) -> str:
    return str(locale or "").split("-")[0]


@dataclass
class UserView:
    """One user as the online store has them at the slot's start."""

    user_id: str
    locale: str
    recent_episodes: list[str]  # newest last
    cf_vector: np.ndarray | None


def read_user_views(store, user_ids: Sequence[str]) -> dict[str, UserView]:
    """Recent episodes, CF vector and locale of ``user_ids`` in one online lookup."""
    from streams.feature_store import online_features

    refs = ["user_recent_sids:recent_episode_ids", "user_cf_embedding:cf_embedding", "user_context:locale"]
    got = online_features(store, refs, [{"user_id": u} for u in user_ids])
    views = {}
    for u, recent, vector, locale in zip(user_ids, got["recent_episode_ids"], got["cf_embedding"], got["locale"]):
        views[u] = UserView(u, locale or "", list(recent or []),
                            None if vector is None else np.asarray(vector, dtype=np.float32))
    return views


class CatalogAt:
    """The catalog's playable episodes published by a time, with their show, topic and language."""

    def __init__(self, episodes: pd.DataFrame, shows: pd.DataFrame, at: pd.Timestamp):
        live = episodes[episodes["playable"].astype(bool) & (episodes["published_at"] <= at)]
        self.at = at
        self.episodes = live.sort_values("published_at", ascending=False, kind="stable").set_index("episode_id")
        self.show_language = shows.set_index("show_id")["locale"].map(language)
        self.newest_by_show = self.episodes.groupby("show_id", sort=False).head(5).groupby("show_id", sort=False)

    def newest(self, show_ids: Sequence[str], per_show: int = 3) -> list[str]:
        groups = self.newest_by_show.groups
        return [e for s in show_ids if s in groups for e in list(groups[s])[:per_show]]

    def fits(self, episode_id: str, user: UserView, heard: set[str]) -> bool:
        if episode_id in heard or episode_id not in self.episodes.index:
            return False
        return self.show_language.get(self.episodes.at[episode_id, "show_id"]) == language(user.locale)


def popularity_source(plays: pd.Series, catalog: CatalogAt, user: UserView, k: int) -> list[str]:
    """The most played episodes (``plays``: episode_id -> plays in the window, most first)."""
    heard = set(user.recent_episodes)
    return [e for e in plays.index if catalog.fits(e, user, heard)][:k]


def cf_source(cf_model, catalog: CatalogAt, user: UserView, k: int) -> list[str]:
    """Newest episodes of the shows the user's CF vector scores highest (show-level CF)."""
    if user.cf_vector is None or len(user.cf_vector) != cf_model.dim:
        return []
    order = np.argsort(-cf_model.scores(user.cf_vector[None])[0], kind="stable")
    heard = set(user.recent_episodes)
    shows = [cf_model.item_ids[j] for j in order[: k]]
    return [e for e in catalog.newest(shows) if catalog.fits(e, user, heard)][:k]


def followed_source(catalog: CatalogAt, user: UserView, show_of: Mapping[str, str], k: int) -> list[str]:
    """Newest episodes of the shows of the user's recent episodes, most recent show first."""
    shows = list(dict.fromkeys(show_of[e] for e in reversed(user.recent_episodes) if e in show_of))
    heard = set(user.recent_episodes)
    return [e for e in catalog.newest(shows) if catalog.fits(e, user, heard)][:k]


def glide_source(cached, mode: str, catalog: CatalogAt, user: UserView, k: int) -> list[str]:
    """GLIDE's cached set of ``mode`` for the user (CandidateClient's UserCandidates)."""
    if cached is None or mode not in cached.sets:
        return []
    heard = set(user.recent_episodes)
    return [e for e in cached.sets[mode].episode_ids if catalog.fits(e, user, heard)][:k]


def pool(lists: Mapping[str, Sequence[str]]) -> dict[str, set[str]]:
    """episode_id -> the sources that proposed it, in first-proposed order."""
    out: dict[str, set[str]] = {}
    for source, ids in lists.items():
        for e in ids:
            out.setdefault(e, set()).add(source)
    return out

"""The one ranker both arms share: it scores any candidate from what it knows of the user and the
episode, never from which source proposed it, so a source earns slate positions only by merit.

    score = w.cf x z(CF affinity of the user for the show) + w.popularity x z(log(1 + show plays))
            + w.freshness x exp(-age / 14 d) + w.topic x (share of the user's recent listens on the
            episode's topic) + w.known_show x (the user heard the show recently)

z() standardises over the user's candidate pool. Ties keep the pool's order.
"""

from __future__ import annotations

from collections.abc import Mapping

import numpy as np
import pandas as pd

from glide_app.jobs.ab.config import RankerWeights
from glide_app.jobs.ab.sources import CatalogAt, UserView


def _z(x: np.ndarray) -> np.ndarray:
    sd = x.std()
    return (x - x.mean()) / sd if sd > 0 else np.zeros_like(x)


def rank(candidates: Mapping[str, set[str]], user: UserView, catalog: CatalogAt, show_plays: pd.Series,
         cf_model, weights: RankerWeights, size: int) -> list[tuple[str, frozenset[str]]]:
    """The slate: the top ``size`` (episode_id, proposing sources) by score."""
    ids = list(candidates)
    if not ids:
        return []
    eps = catalog.episodes.loc[ids]
    shows = eps["show_id"].to_numpy(dtype=object)
    cf = np.zeros(len(ids))
    if user.cf_vector is not None and len(user.cf_vector) == cf_model.dim:
        rows = cf_model.item_index(shows)
        scores = cf_model.scores(user.cf_vector[None])[0]
        cf = np.where(rows >= 0, scores[np.maximum(rows, 0)], 0.0)
    popularity = np.log1p(show_plays.reindex(shows, fill_value=0).to_numpy(dtype=np.float64))
    age_days = (catalog.at - eps["published_at"]).dt.total_seconds().to_numpy() / 86_400
    recent = [e for e in user.recent_episodes if e in catalog.episodes.index]
    recent_topics = catalog.episodes.loc[recent, "topic"].value_counts(normalize=True) if recent else pd.Series(dtype=float)
    recent_shows = set(catalog.episodes.loc[recent, "show_id"]) if recent else set()
    score = (weights.cf * _z(cf) + weights.popularity * _z(popularity) + weights.freshness * np.exp(-age_days / 14)
             + weights.topic * recent_topics.reindex(eps["topic"], fill_value=0).to_numpy()
             + weights.known_show * np.isin(shows, list(recent_shows)))
    order = np.argsort(-score, kind="stable")[:size]
    return [(ids[i], frozenset(candidates[ids[i]])) for i in order]

"""A simulated listener's true preference for an episode, read from the world's ground truth.

The simulation (simulate.py) decides what a user plays and for how long from two drawn facts: the
user's topic taste (``users.topic_weights``; intents are sampled from it, listen length grows with
``taste / top taste`` of the episode's topic) and their language (shows in another language are
discovered at ``OTHER_LANGUAGE_WEIGHT`` of the weight). Popularity, favourites and what the user
already heard change *which* episode is reached, not how much the user likes it, so they are left
out: the preference is what an evaluator of interest alignment (the LLM judge, a reviewer) should
recover, and a popular but off-taste episode must not score high here.

    true_preference(u, e) = taste[u, topic(e)] / max_t taste[u, t]
                            x (1 if language(show(e)) == language(u) else OTHER_LANGUAGE_WEIGHT)

so 1.0 is an episode on the user's favourite topic in their language, and values are comparable
across users.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import pandas as pd

from glide.world.simulate import OTHER_LANGUAGE_WEIGHT


def _language(locale: str) -> str:
    return str(locale).split("-")[0]


def true_preference(
    users: pd.DataFrame, shows: pd.DataFrame, episodes: pd.DataFrame, topics: Sequence[str],
    user_id: str, episode_ids: Sequence[str],
) -> np.ndarray:
    """True preference in [0, 1] of ``user_id`` for each of ``episode_ids`` (world tables, see the
    module docstring). Pure: reads the tables, draws nothing. Unknown ids raise KeyError."""
    row = users.loc[users["user_id"] == user_id]
    if row.empty:
        raise KeyError(f"user {user_id!r} is not in the world's users table")
    taste = np.asarray(row.iloc[0]["topic_weights"], dtype=np.float64)
    if len(taste) != len(topics):
        raise ValueError(f"user {user_id!r} has {len(taste)} topic weights for {len(topics)} topics")
    taste_norm = taste / taste.max()
    t_index = {t: i for i, t in enumerate(topics)}
    ep = episodes.set_index("episode_id").reindex(list(episode_ids))
    missing = ep.index[ep["show_id"].isna()].tolist()
    if missing:
        raise KeyError(f"episodes {missing[:3]} are not in the world's episodes table")
    show_locale = shows.set_index("show_id")["locale"]
    same_language = np.array(
        [_language(show_locale[s]) == _language(row.iloc[0]["locale"]) for s in ep["show_id"]], dtype=bool
    )
    topic_taste = taste_norm[[t_index[t] for t in ep["topic"]]]
    return topic_taste * np.where(same_language, 1.0, OTHER_LANGUAGE_WEIGHT)

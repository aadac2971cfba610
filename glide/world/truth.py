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
    return true_preference_matrix(users, shows, episodes, topics, [user_id], episode_ids)[0]


def true_preference_matrix(
    users: pd.DataFrame, shows: pd.DataFrame, episodes: pd.DataFrame, topics: Sequence[str],
    user_ids: Sequence[str], episode_ids: Sequence[str],
) -> np.ndarray:
    """[len(user_ids), len(episode_ids)] true preferences, the rule of the module docstring for many
    users at once (a listener panel needs every user x episode)."""
    rows = users.set_index("user_id").reindex(list(user_ids))
    unknown = rows.index[rows["locale"].isna()].tolist()
    if unknown:
        raise KeyError(f"user {unknown[0]!r} is not in the world's users table")
    taste = np.array(rows["topic_weights"].tolist(), dtype=np.float64).reshape(len(rows), -1)
    if taste.shape[1] != len(topics):
        raise ValueError(f"user {rows.index[0]!r} has {taste.shape[1]} topic weights for {len(topics)} topics")
    taste_norm = taste / taste.max(axis=1, keepdims=True)
    t_index = {t: i for i, t in enumerate(topics)}
    ep = episodes.set_index("episode_id").reindex(list(episode_ids))
    missing = ep.index[ep["show_id"].isna()].tolist()
    if missing:
        raise KeyError(f"episodes {missing[:3]} are not in the world's episodes table")
    show_language = shows.set_index("show_id")["locale"].map(_language)
    ep_language = ep["show_id"].map(show_language).to_numpy(dtype=object)
    user_language = np.array([_language(loc) for loc in rows["locale"]], dtype=object)
    same_language = user_language[:, None] == ep_language[None, :]
    topic_taste = taste_norm[:, [t_index[t] for t in ep["topic"]]]
    return topic_taste * np.where(same_language, 1.0, OTHER_LANGUAGE_WEIGHT)

"""glide.world.truth.true_preference, the ground truth the judge is calibrated against."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glide.world.simulate import OTHER_LANGUAGE_WEIGHT
from glide.world.truth import true_preference

TOPICS = ["news", "comedy", "science"]
USERS = pd.DataFrame({"user_id": ["u1"], "locale": ["en-US"], "topic_weights": [[0.2, 0.7, 0.1]]})
SHOWS = pd.DataFrame({"show_id": ["s1", "s2"], "locale": ["en-GB", "de-DE"]})
EPISODES = pd.DataFrame({"episode_id": ["a", "b", "c", "d"], "show_id": ["s1", "s1", "s1", "s2"],
                         "topic": ["comedy", "news", "science", "comedy"], "popularity": [1.0, 99.0, 5.0, 50.0]})


def test_taste_over_top_taste_times_language() -> None:
    pref = true_preference(USERS, SHOWS, EPISODES, TOPICS, "u1", ["a", "b", "c", "d"])
    assert pref == pytest.approx(np.array([1.0, 0.2 / 0.7, 0.1 / 0.7, OTHER_LANGUAGE_WEIGHT]))
    # Popularity plays no part: the popular news episode stays below the favourite topic.
    assert pref[1] < pref[0]


def test_unknown_ids_raise() -> None:
    with pytest.raises(KeyError):
        true_preference(USERS, SHOWS, EPISODES, TOPICS, "nobody", ["a"])
    with pytest.raises(KeyError):
        true_preference(USERS, SHOWS, EPISODES, TOPICS, "u1", ["zzz"])

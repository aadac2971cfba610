"""`WorldConfig`: every knob of a synthetic world, validated in one place.

Its own module, below both the simulation and the generator, because both need it: the generator
builds a world from it and the simulation reads its behaviour settings. Keeping it here lets the
imports inside glide.world flow one way (schema/vocab -> catalog -> config -> simulate -> generator).
"""

from __future__ import annotations

from dataclasses import dataclass

import pandas as pd

from glide.world import vocab
from glide.world.schema import DEFAULT_START

# The behaviour settings of the first two sessions, before calibration against real data: picks
# were driven mostly by show popularity (taste lift 1.1 on unfamiliar picks vs 2.2 in Amazon
# Scientific; `glide bench world-calibration`). Kept so the difference stays measurable.
V1_BEHAVIOUR = dict(intent_stickiness=0.6, taste_concentration=0.3, discovery_popularity_exponent=0.8,
                    secondary_topic_weight=0.15, exploration_random_topic=0.5)


@dataclass(frozen=True)
class WorldConfig:
    users: int = 200
    days: int = 14
    seed: int = 0
    shows: int = 300  # synthetic catalog only
    episodes_per_show: int = 40  # mean, synthetic catalog only
    topics: int = len(vocab.TOPICS)  # first N topics of glide.world.vocab.TOPICS, synthetic catalog only
    start: str = DEFAULT_START  # ISO-8601 with a UTC offset
    sessions_per_day: float = 0.8  # median sessions per user per day
    explore_rate_mean: float = 0.25
    # Behaviour defaults are calibrated so a user's next non-habitual pick follows their past topics
    # about as much as in real data, without exceeding it (benchmarks/RESULTS.md, "World calibration").
    intent_stickiness: float = 0.8  # P(next session keeps the previous session's intent topic)
    taste_concentration: float = 0.1  # Dirichlet alpha of user topic tastes (smaller = pickier)
    # How much show popularity (vs topic) drives which new show a user discovers and which shows
    # become favourites: weights are popularity ** exponent (0 = taste alone).
    discovery_popularity_exponent: float = 0.3
    favourite_popularity_exponent: float = 0.7
    secondary_topic_weight: float = 0.05  # discovery weight of a show that only touches on the intent topic
    exploration_random_topic: float = 0.2  # P(an exploration placement ignores the intent for a uniform topic)

    @property
    def start_ts(self) -> pd.Timestamp:
        return _parse_start(self.start)

    @property
    def end_ts(self) -> pd.Timestamp:
        return self.start_ts + pd.Timedelta(days=self.days)

    def validate(self) -> None:
        """Raise ValueError naming the bad field and the fix."""
        checks = [
            (self.users >= 1, f"users must be >= 1 (got {self.users})"),
            (self.days >= 1, f"days must be >= 1 (got {self.days})"),
            (self.seed >= 0, f"seed must be >= 0 (got {self.seed})"),
            (self.shows >= 2, f"shows must be >= 2 (got {self.shows})"),
            (self.episodes_per_show >= 1, f"episodes_per_show must be >= 1 (got {self.episodes_per_show})"),
            (1 <= self.topics <= len(vocab.TOPICS), f"topics must be in 1..{len(vocab.TOPICS)} (got {self.topics})"),
            (0 < self.sessions_per_day <= 10, f"sessions_per_day must be in (0, 10] (got {self.sessions_per_day})"),
            (0 < self.explore_rate_mean < 1, f"explore_rate_mean must be in (0, 1) (got {self.explore_rate_mean})"),
            (0 <= self.intent_stickiness < 1, f"intent_stickiness must be in [0, 1) (got {self.intent_stickiness})"),
            (self.taste_concentration > 0, f"taste_concentration must be > 0 (got {self.taste_concentration})"),
            (self.discovery_popularity_exponent >= 0,
             f"discovery_popularity_exponent must be >= 0 (got {self.discovery_popularity_exponent})"),
            (self.favourite_popularity_exponent >= 0,
             f"favourite_popularity_exponent must be >= 0 (got {self.favourite_popularity_exponent})"),
            (0 <= self.secondary_topic_weight <= 1,
             f"secondary_topic_weight must be in [0, 1] (got {self.secondary_topic_weight})"),
            (0 <= self.exploration_random_topic <= 1,
             f"exploration_random_topic must be in [0, 1] (got {self.exploration_random_topic})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"bad WorldConfig: {msg}")
        _parse_start(self.start)


def _parse_start(value: str) -> pd.Timestamp:
    try:
        ts = pd.Timestamp(value)
    except (ValueError, TypeError) as exc:
        raise ValueError(f"bad WorldConfig: start {value!r} is not an ISO-8601 time, e.g. {DEFAULT_START!r}") from exc
    if ts.tzinfo is None:
        raise ValueError(f"bad WorldConfig: start {value!r} needs a UTC offset, e.g. {DEFAULT_START!r}")
    return ts.tz_convert("UTC")

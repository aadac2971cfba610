"""What a simulated A/B test is: its world, its clock, what the arms serve and how it is judged.

Every field can be set from the command line (`glide simulate ab --help`); `ABConfig.quick()` is the
acceptance-check size (about 15 minutes on a 2-core CPU with the demo's tiny model).
"""

from __future__ import annotations

from dataclasses import dataclass, field, replace
from pathlib import Path

from glide_app.jobs.catalog_setup import CONFIGS



@dataclass(frozen=True)
class RankerWeights:
    """The one ranker both arms share (ranker.py): a weighted sum of per-candidate features."""

    cf: float = 1.0  # z-scored CF affinity of the user for the episode's show
    popularity: float = 0.5  # z-scored log plays of the show in the popularity window
    freshness: float = 0.5  # exp(-age / 14 days)
    topic: float = 1.5  # share of the user's recent listens on the episode's topic
    known_show: float = 0.3  # the user heard the show recently


@dataclass(frozen=True)
class ABConfig:
    users: int = 800
    history_days: int = 35  # the world replayed through the streams before day 1; the model trains on it
    days: int = 14  # experiment days
    slots_per_day: int = 4  # serving rounds per day: a user has at most one session per slot
    seed: int = 0
    shows: int = 120
    episodes_per_show: int = 20
    treatment_share: float = 0.5
    glide_in_treatment: bool = True  # False: an A/A through the whole pipeline (both arms served as control)
    salt: str = "glide-ab-1"  # assignment hash salt: a new salt is a new random split
    slate_size: int = 10
    source_size: int = 30  # candidates per control source (popularity, CF, followed shows)
    popularity_days: int = 7
    min_stream_s: int = 30  # a listen counts as a stream from this many seconds on
    n_boot: int = 2000
    train_config: Path = CONFIGS / "demo.yaml"
    threads: int | None = None  # decoder threads (default: glide_model/llm/threads.py)
    ranker: RankerWeights = field(default_factory=RankerWeights)

    def __post_init__(self) -> None:
        checks = [
            (self.users >= 20, f"users must be >= 20 (got {self.users})"),
            (self.history_days >= 14, f"history_days must be >= 14 so a model can train (got {self.history_days})"),
            (self.days >= 1, f"days must be >= 1 (got {self.days})"),
            (1 <= self.slots_per_day <= 24 and 24 % self.slots_per_day == 0,
             f"slots_per_day must divide 24 (got {self.slots_per_day})"),
            (0 < self.treatment_share < 1, f"treatment_share must be in (0, 1) (got {self.treatment_share})"),
            (self.slate_size >= 1 and self.source_size >= 1, "slate_size and source_size must be >= 1"),
            (self.popularity_days >= 1, f"popularity_days must be >= 1 (got {self.popularity_days})"),
            (self.min_stream_s >= 0, f"min_stream_s must be >= 0 (got {self.min_stream_s})"),
            (self.n_boot >= 100, f"n_boot must be >= 100 (got {self.n_boot})"),
        ]
        for ok, msg in checks:
            if not ok:
                raise ValueError(f"bad A/B config: {msg}")

    @property
    def slot_s(self) -> int:
        return 24 * 3600 // self.slots_per_day

    @classmethod
    def quick(cls, **overrides) -> ABConfig:
        return replace(cls(users=1000, days=7), **overrides)

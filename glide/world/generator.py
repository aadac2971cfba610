"""The synthetic podcast world: `WorldConfig` -> `generate_world` -> `World` (tables + save/load).

Deterministic by seed: the same config gives byte-identical Parquet files. Tables and columns are the
contract in glide/world/schema.py; ground truth (tastes, explore rates, session intents) is kept in
the contract's columns so online behaviour can be simulated later.
"""

from __future__ import annotations

import json
from dataclasses import asdict, dataclass, fields
from pathlib import Path

import numpy as np
import pandas as pd

from glide.world import vocab
from glide.world.catalog import DAY_S, DEFAULT_START, Catalog, synthetic_catalog
from glide.world.schema import LIST_COLUMNS, TABLES, TIME_COLUMNS, check_table
from glide.world.simulate import Progress, simulate_listening

FORMAT_VERSION = 1
MAX_STATE_CELLS = 300_000_000  # users x shows of per-user listening state the simulation keeps dense


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


@dataclass
class World:
    config: WorldConfig
    topics: list[str]
    start: pd.Timestamp
    end: pd.Timestamp
    shows: pd.DataFrame
    episodes: pd.DataFrame
    users: pd.DataFrame
    sessions: pd.DataFrame
    listens: pd.DataFrame
    catalog: str = "synthetic"

    def tables(self) -> dict[str, pd.DataFrame]:
        return {name: getattr(self, name) for name in TABLES}

    def save(self, directory: str | Path) -> Path:
        """Write <table>.parquet for each table plus world.json into `directory` (created if needed)."""
        out = Path(directory)
        out.mkdir(parents=True, exist_ok=True)
        for name, df in self.tables().items():
            df.to_parquet(out / f"{name}.parquet", index=False, compression="zstd")
        meta = {
            "format_version": FORMAT_VERSION,
            "catalog": self.catalog,
            "seed": self.config.seed,
            "config": asdict(self.config),
            "topics": list(self.topics),
            "start": self.start.isoformat(),
            "end": self.end.isoformat(),
            "counts": {name: len(df) for name, df in self.tables().items()},
        }
        (out / "world.json").write_text(json.dumps(meta, indent=2, sort_keys=True) + "\n")
        return out

    @classmethod
    def load(cls, directory: str | Path) -> World:
        """Read a folder written by `save`."""
        src = Path(directory)
        meta_path = src / "world.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} not found: generate a world first with `glide world generate --out {src}`")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{src} holds world format {meta.get('format_version')}, expected {FORMAT_VERSION}: regenerate it")
        known = {f.name for f in fields(WorldConfig)}
        config = WorldConfig(**{k: v for k, v in meta["config"].items() if k in known})
        tables = {}
        for name in TABLES:
            df = pd.read_parquet(src / f"{name}.parquet")
            for col in LIST_COLUMNS.get(name, ()):
                df[col] = [list(v) for v in df[col]]  # parquet lists come back as numpy arrays
            for col in TIME_COLUMNS.get(name, ()):
                df[col] = df[col].astype("datetime64[ns, UTC]")
            check_table(name, df)
            tables[name] = df
        return cls(
            config=config, topics=list(meta["topics"]), start=pd.Timestamp(meta["start"]).tz_convert("UTC"),
            end=pd.Timestamp(meta["end"]).tz_convert("UTC"), catalog=meta.get("catalog", "synthetic"), **tables,
        )


def generate_world(
    config: WorldConfig, catalog: Catalog | None = None, progress: Progress | None = None
) -> World:
    """Build a world: the synthetic catalog (or `catalog`, e.g. from load_itunes_catalog) plus simulated
    users, sessions and listens. `progress(stage, done, total)` is called as work advances."""
    config.validate()
    start, end = config.start_ts, config.end_ts
    seeds = np.random.SeedSequence(config.seed).spawn(2)
    if catalog is None:
        topics = list(vocab.TOPICS[: config.topics])
        catalog = synthetic_catalog(
            config.shows, config.episodes_per_show, topics, start, end, np.random.default_rng(seeds[0])
        )
    catalog.validate()
    cells = config.users * len(catalog.shows)
    if cells > MAX_STATE_CELLS:
        raise ValueError(
            f"{config.users} users x {len(catalog.shows)} shows exceeds the simulation's dense state limit "
            f"({MAX_STATE_CELLS:,} cells): use fewer users or shows"
        )
    if progress is not None:
        progress("catalog", 1, 1)
    users, sessions, listens = simulate_listening(
        catalog, config, start, np.random.default_rng(seeds[1]), progress=progress
    )
    episodes = catalog.episodes.copy()
    counts = listens["episode_id"].value_counts()
    episodes["popularity"] = episodes["episode_id"].map(counts).fillna(0).astype(np.float64)
    return World(
        config=config, topics=list(catalog.topics), start=start, end=start + pd.Timedelta(seconds=config.days * DAY_S),
        shows=catalog.shows.reset_index(drop=True), episodes=episodes.reset_index(drop=True), users=users,
        sessions=sessions.reset_index(drop=True), listens=listens.reset_index(drop=True), catalog=catalog.name,
    )

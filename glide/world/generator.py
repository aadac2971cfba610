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
from glide.world.catalog import Catalog, synthetic_catalog
from glide.world.config import WorldConfig
from glide.world.schema import DAY_S, LIST_COLUMNS, TABLES, TIME_COLUMNS, check_table
from glide.world.simulate import Progress, simulate_listening

# WorldConfig is defined in config.py (the simulation needs it too) and stays importable from here,
# the world's entry point: WorldConfig -> generate_world -> World.
__all__ = ["FORMAT_VERSION", "MAX_STATE_CELLS", "World", "WorldConfig", "generate_world"]

FORMAT_VERSION = 1
MAX_STATE_CELLS = 300_000_000  # users x shows of per-user listening state the simulation keeps dense


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

"""Catalogs the SID commands run on, all as world-contract ``episodes`` frames:
a saved world folder, a small freshly generated synthetic world, the 2017 iTunes podcast sample,
and the Amazon-18 Scientific items (with the reference SID tables that ship with them)."""

from __future__ import annotations

import json
import re
from pathlib import Path

import numpy as np
import pandas as pd

SHARED_DATA = Path(__file__).resolve().parents[2] / ".." / "shared" / "data"
SCIENTIFIC_DIR = SHARED_DATA / "amazon18_scientific"
PODCASTS_DIR = SHARED_DATA / "podcasts_itunes_2017"
REPORT_WORLD = {"users": 50, "days": 7, "shows": 120, "seed": 0}  # ~4.8k episodes
_GIVEN_TOKEN = re.compile(r"<([a-z])_(\d+)>")


def world_episodes(directory: str | Path) -> pd.DataFrame:
    """Episodes of a saved world (World.load when world.json is there, else episodes.parquet)."""
    directory = Path(directory)
    if (directory / "world.json").exists():
        from glide.world import World

        return World.load(directory).episodes
    path = directory / "episodes.parquet"
    if not path.exists():
        raise FileNotFoundError(
            f"no world in {directory} (neither world.json nor episodes.parquet): "
            f"run `glide world generate --out {directory}` or pass --world"
        )
    return pd.read_parquet(path)


def synthetic_world_episodes(seed: int = REPORT_WORLD["seed"]) -> pd.DataFrame:
    """Episodes of a small synthetic world generated now (fixed size, given seed)."""
    from glide.world import WorldConfig, generate_world

    config = WorldConfig(**{**REPORT_WORLD, "seed": seed})
    return generate_world(config).episodes


def podcast_episodes(path: str | Path = PODCASTS_DIR, seed: int = 0) -> pd.DataFrame:
    """Episodes of the real 2017 iTunes sample (glide.world.itunes)."""
    from glide.world.itunes import load_itunes_catalog

    return load_itunes_catalog(path, seed=seed).episodes


def scientific_episodes(path: str | Path = SCIENTIFIC_DIR) -> pd.DataFrame:
    """Amazon-18 Scientific items as episodes: brand = show, last category = topic, popularity =
    number of interactions (a real tie-breaker signal)."""
    path = Path(path)
    items_path = path / "Scientific.item.json"
    if not items_path.exists():
        raise FileNotFoundError(f"{items_path} not found: point at ../shared/data/amazon18_scientific")
    items = json.loads(items_path.read_text())
    inter_path = path / "Scientific.inter.json"
    counts: dict[str, int] = {}
    if inter_path.exists():
        for seq in json.loads(inter_path.read_text()).values():
            for item in seq:
                counts[str(item)] = counts.get(str(item), 0) + 1
    rows = []
    for item_id, v in items.items():
        cats = [c.strip() for c in str(v.get("categories") or "").split(",") if c.strip()]
        rows.append(
            {
                "episode_id": str(item_id),
                "show_id": str(v.get("brand") or "unknown"),
                "title": v.get("title") or "",
                "description": v.get("description") or "",
                "topic": cats[-1] if cats else "unknown",
                "locale": "en-US",
                "playable": True,
                "popularity": float(counts.get(str(item_id), 0)),
            }
        )
    return pd.DataFrame(rows)


def scientific_given_tables(path: str | Path = SCIENTIFIC_DIR) -> dict[str, dict[str, tuple[int, ...]]]:
    """The reference SID tables shipped with the data set: name -> {item_id: codes}.

    Tokens look like ``<a_113>``: the letter is the level (a = 1), the number the code.
    """
    tables = {}
    for file in sorted((Path(path) / "indexes").glob("*.index.json")):
        name = "given_" + file.name.split(".")[0].removesuffix("_native")
        table = {}
        for item_id, tokens in json.loads(file.read_text()).items():
            parsed = [_GIVEN_TOKEN.fullmatch(t) for t in tokens]
            if not all(parsed) or [p.group(1) for p in parsed] != [chr(ord("a") + i) for i in range(len(parsed))]:
                raise ValueError(f"{file}: item {item_id} has tokens {tokens} not of the form <a_N><b_N>...")
            table[str(item_id)] = tuple(int(p.group(2)) for p in parsed)
        tables[name] = table
    return tables


def codes_for(table: dict[str, tuple[int, ...]], episode_ids: list[str]) -> np.ndarray:
    """(N, M) codes of these episodes from a {episode_id: codes} table (all must be present)."""
    missing = [e for e in episode_ids if e not in table]
    if missing:
        raise ValueError(f"{len(missing)} episodes have no SID in the table: {missing[:10]}")
    return np.asarray([table[e] for e in episode_ids], dtype=np.int64)

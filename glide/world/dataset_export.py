"""A world as an interaction dataset folder, the input of `glide evaluate --source DIR`
(glide_model/sequential/dataset.py): so every system and ablation that runs on real data runs on
the world too, through the same harness.

``<name>.inter.json``: {user_id: [episode_id, ...]}, each listener's episodes in the order first
heard (a second listen to an episode is a resume, not a new interaction); listeners with fewer than
``min_items`` episodes are left out (leave-one-out needs a training, a validation and a test item).
``<name>.item.json``: {episode_id: {title, description, brand, categories}} for every episode of
the catalog, brand = the show's title (its id where two shows share a title), categories = topic.
"""

from __future__ import annotations

import json
from pathlib import Path

import pandas as pd

from glide.world.generator import World


def interaction_sequences(listens: pd.DataFrame, min_items: int = 3) -> dict[str, list[str]]:
    """Per user, the episodes in the order first heard; users with fewer than ``min_items`` left out."""
    order = [c for c in ("ts", "event_id") if c in listens.columns]
    first = listens.sort_values(order, kind="stable").drop_duplicates(["user_id", "episode_id"])
    sequences = first.groupby("user_id", sort=True)["episode_id"].agg(list)
    return {str(u): [str(e) for e in eps] for u, eps in sequences.items() if len(eps) >= min_items}


def item_texts(episodes: pd.DataFrame, shows: pd.DataFrame) -> dict[str, dict[str, str]]:
    """The item file's fields per episode."""
    titles = shows.set_index("show_id")["title"].astype(str)
    shared = titles[titles.duplicated(keep=False)].index
    brand = {s: (f"{t} ({s})" if s in shared else t) for s, t in titles.items()}
    return {str(r.episode_id): {"title": str(r.title), "description": str(r.description),
                                "brand": brand.get(r.show_id, str(r.show_id)), "categories": str(r.topic)}
            for r in episodes.itertuples(index=False)}


def write_interaction_dataset(world: World, out_dir: Path, name: str = "world", min_items: int = 3) -> dict[str, int]:
    """Write ``<name>.inter.json`` and ``<name>.item.json`` into ``out_dir``; returns counts."""
    sequences = interaction_sequences(world.listens, min_items)
    if not sequences:
        raise ValueError(f"no listener heard {min_items} or more episodes: nothing to evaluate on")
    items = item_texts(world.episodes, world.shows)
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / f"{name}.inter.json").write_text(json.dumps(sequences))
    (out_dir / f"{name}.item.json").write_text(json.dumps(items))
    return {"users": len(sequences), "items": len(items),
            "interactions": sum(len(s) for s in sequences.values()),
            "users_left_out": int(world.listens["user_id"].nunique()) - len(sequences)}

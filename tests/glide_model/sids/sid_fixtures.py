"""Helpers shared by the Semantic ID tests (a module of its own: `conftest` names collide across folders)."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pandas as pd

SHARED = Path(__file__).resolve().parents[3] / ".." / "shared"

def clustered_embeddings(
    n: int = 600, dim: int = 32, clusters: int = 12, noise: float = 0.35, seed: int = 0, sample_seed: int | None = None
) -> np.ndarray:
    """Unit vectors around a few random topic directions, like content embeddings of a small catalog.
    ``sample_seed`` draws new items around the same topics as ``seed``."""
    centers = np.random.default_rng(seed).normal(size=(clusters, dim))
    rng = np.random.default_rng(seed if sample_seed is None else (seed, sample_seed))
    x = centers[rng.integers(clusters, size=n)] + noise * rng.normal(size=(n, dim)) * np.sqrt(dim) / 4
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    return x.astype(np.float32)


TOPIC_TEXTS = {
    "football": [
        ("Transfer deadline day", "Every Premier League signing and what it means for the title race."),
        ("Champions League preview", "Tactics, line-ups and predictions before the big European football nights."),
        ("Goalkeepers special", "Why modern soccer keepers must play with their feet."),
        ("Derby day debrief", "Fans react to the weekend's football derby and the referee's decisions."),
    ],
    "cooking": [
        ("Sourdough at home", "Feeding a starter, shaping loaves and baking bread in a home oven."),
        ("Weeknight pasta", "Five quick Italian pasta recipes and the sauces that go with them."),
        ("Spices 101", "How to toast, grind and cook with spices for better curries."),
        ("Knife skills", "Chopping onions, slicing herbs and other kitchen techniques for home cooks."),
    ],
    "astronomy": [
        ("Black holes explained", "What happens at the event horizon and how astronomers image black holes."),
        ("The James Webb telescope", "Infrared images of distant galaxies and the early universe."),
        ("Mars missions", "Rovers, landers and the search for water on the red planet."),
        ("Meteor showers", "When and where to watch shooting stars in the night sky."),
    ],
}


def toy_episodes(seed: int = 0) -> pd.DataFrame:
    """A world-contract episodes frame built from TOPIC_TEXTS."""
    rows = []
    i = 0
    for topic, items in TOPIC_TEXTS.items():
        for title, desc in items:
            i += 1
            rows.append(
                {
                    "episode_id": f"ep_{i:06d}",
                    "show_id": f"show_{topic}",
                    "title": title,
                    "description": desc,
                    "topic": topic,
                    "locale": "en-US" if i % 3 else "en-GB",
                    "published_at": pd.Timestamp("2025-01-01", tz="UTC") + pd.Timedelta(days=i),
                    "duration_s": 1800,
                    "playable": True,
                    "popularity": float(i),
                }
            )
    return pd.DataFrame(rows)

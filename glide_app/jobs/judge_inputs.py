"""What the judge jobs work on: a world, its profile cut-off, episode cards, candidates, a backend.

The world is the ground truth: profiles come from its listens before the cut-off (the last
``holdout_days`` are held out), true preference from glide.world.truth, and "the user would
listen" means the episode is among the user's held-out listens.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd

from glide.world.generator import World, WorldConfig, generate_world
from glide_model.judge.backend import ChatBackend
from glide_model.judge.config import JudgeSettings
from glide_model.judge.prompt import EpisodeCard

# The --quick world: small enough to generate in a second, big enough for varied tastes.
QUICK_WORLD = WorldConfig(users=150, days=28, shows=150, episodes_per_show=15)


@dataclass(frozen=True)
class JudgeWorld:
    world: World
    cutoff: pd.Timestamp  # profiles see listens at or before it; later ones are held out

    @property
    def history(self) -> pd.DataFrame:
        return self.world.listens[self.world.listens["ts"] <= self.cutoff]

    @property
    def heldout(self) -> pd.DataFrame:
        return self.world.listens[self.world.listens["ts"] > self.cutoff]


def load_judge_world(data_dir: Path, quick: bool, world_dir: str | None, seed: int, holdout_days: int) -> JudgeWorld:
    """--quick: a fresh small world; else ``world_dir`` or <data_dir>/world when it exists, else the default world."""
    if quick:
        world = generate_world(WorldConfig(**{**QUICK_WORLD.__dict__, "seed": seed}))
    else:
        folder = Path(world_dir) if world_dir else data_dir / "world"
        world = World.load(folder) if (folder / "world.json").exists() or world_dir else generate_world(WorldConfig(seed=seed))
    if holdout_days >= world.config.days:
        raise ValueError(f"holdout_days={holdout_days} leaves no history in a {world.config.days}-day world")
    return JudgeWorld(world, world.end - pd.Timedelta(days=holdout_days))


def episode_cards(world: World) -> dict[str, EpisodeCard]:
    return catalog_cards(world.episodes, world.shows)


def catalog_cards(episodes: pd.DataFrame, shows: pd.DataFrame) -> dict[str, EpisodeCard]:
    """What the judge and annotators see of each episode (``episodes``/``shows``: the world's columns,
    as the catalog DB's frames also have them)."""
    show_meta = shows.set_index("show_id")
    cards = {}
    for row in episodes.itertuples(index=False):
        show = show_meta.loc[row.show_id]
        cards[row.episode_id] = EpisodeCard(
            episode_id=row.episode_id, title=row.title, show=str(show["title"]), topic=row.topic,
            description=row.description, host=str(show["host"]), duration_min=int(round(row.duration_s / 60)),
        )
    return cards


def sample_candidates(jw: JudgeWorld, user_id: str, k: int, rng: np.random.Generator) -> list[str]:
    """Up to k // 2 of the user's held-out episodes (unheard before the cut-off) plus random playable
    episodes the user never heard: a mix of likely and unlikely listens, shuffled."""
    heard_before = set(jw.history.loc[jw.history["user_id"] == user_id, "episode_id"])
    later = jw.heldout.loc[jw.heldout["user_id"] == user_id, "episode_id"]
    positives = [e for e in dict.fromkeys(later) if e not in heard_before]
    positives = list(rng.permutation(positives)[: k // 2]) if positives else []
    ever = heard_before | set(later)
    pool = jw.world.episodes.loc[jw.world.episodes["playable"].astype(bool), "episode_id"].to_numpy()
    pool = pool[~np.isin(pool, list(ever))]
    negatives = list(rng.choice(pool, size=min(k - len(positives), len(pool)), replace=False))
    return [str(e) for e in rng.permutation(positives + negatives)]


def eligible_users(jw: JudgeWorld, min_history: int = 5) -> list[str]:
    """Users with some history before the cut-off and at least one new episode after it."""
    counts = jw.history["user_id"].value_counts()
    later = jw.heldout.merge(jw.history[["user_id", "episode_id"]].drop_duplicates(), how="left",
                             on=["user_id", "episode_id"], indicator=True)
    fresh = set(later.loc[later["_merge"] == "left_only", "user_id"])
    return sorted(u for u, n in counts.items() if n >= min_history and u in fresh)


def make_backend(js: JudgeSettings, data_dir: Path) -> ChatBackend:
    if js.backend == "openai":
        from glide_model.judge.openai_compat import OpenAIChatBackend

        key = js.api_key.get_secret_value() if js.api_key is not None else None
        if not js.base_url:
            raise ValueError("--backend openai needs GLIDE_JUDGE_BASE_URL (or --base-url), e.g. http://127.0.0.1:8000/v1")
        return OpenAIChatBackend(js.base_url, js.model, key, timeout_s=js.timeout_s, guided_json=js.guided_json)
    from glide_model.judge.hf import HFChatBackend

    return HFChatBackend.from_spec(js.model, data_dir, js.decoding)

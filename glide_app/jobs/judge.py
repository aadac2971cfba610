"""`glide judge`: the profile-aware judge scored against the world's ground truth (paper §5.2.6).

For N sampled users: a profile from their listens before the cut-off, K candidate episodes (half
held-out listens, half never-heard random episodes), one judgement per (profile, episode). Then the
judge's interest-aligned score is compared with the user's true preference (glide/world/truth.py):
pairwise agreement with a user-bootstrap CI, Spearman, and AUC against "the episode is among the
user's held-out listens". A judging budget (``max_seconds``) stops taking new users, so a slow
backend still returns a (smaller) result in time.

A reference row needs no LLM: the share of the user's profile-window listening on the episode's
topic. It shows how much the profile alone carries, i.e. what a judge could reach by reading it.
"""

from __future__ import annotations

import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glide.world.truth import true_preference
from glide_app.jobs.judge_inputs import (
    JudgeWorld, eligible_users, episode_cards, load_judge_world, make_backend, sample_candidates,
)
from glide_model.judge.cache import JudgeCache
from glide_model.judge.calibration import calibrate, pairwise_by_group
from glide_model.judge.config import JudgeSettings
from glide_model.judge.judge import Judge
from glide_model.judge.profile import PROFILE_DAYS, build_profile
from glide_model.judge.prompt import EPISODE_FIELDS, OVERALL, PROMPT_VERSION

LABEL_DEFINITION = "episode among the user's held-out listens (last holdout_days of the world)"


@dataclass(frozen=True)
class JudgeJobConfig:
    users: int = 40
    per_user: int = 8
    holdout_days: int = 7
    seed: int = 0
    max_seconds: float | None = None  # judging budget; None: no limit
    tie_tolerance: float = 0.05  # true preferences closer than this are a tie (not compared)
    n_boot: int = 2000
    cache: bool = True

    @classmethod
    def quick(cls, **overrides: Any) -> JudgeJobConfig:
        # ~10 min of SmolLM2 (constrained) on a shared 2-core CPU, inside the 15-min contract.
        return cls(**{"users": 24, "per_user": 8, "max_seconds": 540.0, **overrides})


def _topic_share(history: pd.DataFrame, episodes: pd.DataFrame, user_id: str, cutoff: pd.Timestamp,
                 episode_ids: list[str]) -> np.ndarray:
    topic_of = episodes.set_index("episode_id")["topic"]
    mine = history[(history["user_id"] == user_id) & (history["ts"] > cutoff - pd.Timedelta(days=PROFILE_DAYS))]
    secs = mine.groupby(mine["episode_id"].map(topic_of))["listened_seconds"].sum()
    share = secs / max(float(secs.sum()), 1.0)
    return np.array([float(share.get(topic_of[e], 0.0)) for e in episode_ids])


def _judge_users(jw: JudgeWorld, judge: Judge, cfg: JudgeJobConfig, progress) -> pd.DataFrame:
    world, rng = jw.world, np.random.default_rng(cfg.seed)
    cards = episode_cards(world)
    pool = eligible_users(jw)
    chosen = [str(u) for u in rng.permutation(pool)[: cfg.users]]
    users = world.users.set_index("user_id")
    heldout = jw.heldout
    rows, started = [], time.perf_counter()
    for n, user_id in enumerate(chosen):
        if cfg.max_seconds is not None and time.perf_counter() - started > cfg.max_seconds:
            break  # the budget is spent: report the users judged so far
        profile = build_profile(jw.history, world.episodes, world.shows, user_id, jw.cutoff,
                                locale=str(users.loc[user_id, "locale"]))
        candidates = sample_candidates(jw, user_id, cfg.per_user, rng)
        truth = true_preference(world.users, world.shows, world.episodes, world.topics, user_id, candidates)
        later = set(heldout.loc[heldout["user_id"] == user_id, "episode_id"])
        topic_share = _topic_share(jw.history, world.episodes, user_id, jw.cutoff, candidates)
        for e, t, share in zip(candidates, truth, topic_share):
            j = judge.judge_episode(profile.text, cards[e])
            row = {"user": user_id, "episode": e, "truth": float(t), "would_listen": e in later,
                   "topic_share": float(share), "cached": j.cached, "error": j.error}
            row.update({f: (j.scores or {}).get(f, np.nan) for f in EPISODE_FIELDS})
            rows.append(row)
        if progress is not None:
            progress(n + 1, len(chosen))
    return pd.DataFrame(rows)


def summarise(frame: pd.DataFrame, cfg: JudgeJobConfig) -> dict[str, Any]:
    """The calibration record of judged rows (columns of _judge_users)."""
    valid = frame.dropna(subset=[OVERALL]) if len(frame) else frame
    if valid.empty:
        nan = float("nan")
        return {"n_users": 0, "n_judged": 0, "n_pairs": 0, "pairwise_agreement": nan,
                "pairwise_agreement_ci": [nan, nan], "spearman": nan, "auc": nan, "positives": 0, "fields": {}}
    cal = calibrate(valid[OVERALL].to_numpy(float), valid["truth"].to_numpy(float), valid["would_listen"].to_numpy(bool),
                    valid["user"].to_numpy(), tol=cfg.tie_tolerance, n_boot=cfg.n_boot, seed=cfg.seed)
    record = cal.to_record()
    fields = {}
    for f in EPISODE_FIELDS:
        agreed, pairs = pairwise_by_group(valid[f].to_numpy(float), valid["truth"].to_numpy(float), valid["user"].to_numpy(),
                                          cfg.tie_tolerance)
        fields[f] = float(agreed.sum() / pairs.sum()) if pairs.sum() else float("nan")
    record["fields"] = fields
    return record


def run_judge_job(data_dir: Path, js: JudgeSettings, cfg: JudgeJobConfig, quick: bool = False,
                  world_dir: str | None = None, progress=None) -> dict[str, Any]:
    """Judge, calibrate, and return the record (keys of the `glide judge --json` contract and more)."""
    t0 = time.perf_counter()
    jw = load_judge_world(Path(data_dir), quick, world_dir, cfg.seed, cfg.holdout_days)
    backend = make_backend(js, Path(data_dir))
    load_s = time.perf_counter() - t0
    cache = JudgeCache.under(data_dir) if cfg.cache else None
    judge = Judge(backend, cache, max_tokens=js.max_new_tokens)
    try:
        frame = _judge_users(jw, judge, cfg, progress)
    finally:
        if cache is not None:
            cache.close()
    stats = judge.stats
    fresh = stats.judged - stats.cached
    record: dict[str, Any] = {"backend": backend.name, **summarise(frame, cfg), "malformed": stats.malformed}
    reference = summarise(frame.assign(**{OVERALL: frame["topic_share"]}) if len(frame) else frame, cfg)
    record.update({
        "reference_topic_share": {k: reference[k] for k in ("pairwise_agreement", "pairwise_agreement_ci", "spearman", "auc")},
        "judge_stats": stats.to_record(),
        "pairs_per_s": fresh / stats.seconds if stats.seconds > 0 else None,
        "generated_tokens": int(getattr(backend, "generated_tokens", 0)),
        "load_s": round(load_s, 1), "wall_s": round(time.perf_counter() - t0, 1),
        "label": LABEL_DEFINITION, "prompt_version": PROMPT_VERSION, "config": asdict(cfg),
        "world": {"users": jw.world.config.users, "shows": len(jw.world.shows), "days": jw.world.config.days,
                  "seed": jw.world.config.seed, "cutoff": jw.cutoff.isoformat()},
    })
    return record

"""`glide review export | import`: the human-review loop (paper §5.2.6).

Export samples listeners, builds their profile (as the judge sees it) and the top-K lists of two
systems (glide_app/jobs/review_lists.py: a registered GLIDE model against a baseline, or two
baselines when no model is trained), blinds them as lists A/B (random per listener) and writes, for
annotators, ``review.csv`` (one row per recommended episode, an empty ``label`` column) and
``review.html``; and, for whoever scores the review only, a key file (which letter is which system,
the real ids, and the judge's scores) that must not reach annotators.

Import reads the filled-in CSV and the key, and reports judge-human agreement (Cohen's kappa,
pairwise agreement) and which system reviewers prefer (glide_model/judge/review.py).
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd

from glide.config import GlideSettings
from glide_app.jobs.judge_inputs import catalog_cards, load_judge_world, make_backend
from glide_app.jobs.review_lists import ReviewLists, baseline_review_lists, glide_review_lists
from glide_app.jobs.review_page import render_page
from glide_model.judge.cache import JudgeCache
from glide_model.judge.config import JudgeSettings
from glide_model.judge.judge import Judge
from glide_model.judge.profile import build_profile
from glide_model.judge.prompt import OVERALL
from glide_model.judge.review import blind, judge_human_agreement, system_preference

CSV_COLUMNS = ("review_id", "listener", "list", "rank", "title", "show", "topic", "description", "profile", "label")


@dataclass(frozen=True)
class ReviewExportConfig:
    users: int = 10
    k: int = 5
    holdout_days: int = 7  # the baseline-only world's held-out days
    seed: int = 0
    judge: bool = True  # score every item with the judge now, kept in the key for `review import`
    glide: bool | None = None  # None: GLIDE when the registry holds a model, else two baselines
    version: str | None = None  # the GLIDE model [default: the promoted one, else the newest]
    baseline: str = "popularity"  # what GLIDE is compared with


def default_key_path(out_dir: Path) -> Path:
    """Beside the annotators' folder, never inside it, so sending the folder never sends the key."""
    return out_dir.parent / f"{out_dir.name}.key.json"


def review_lists(settings: GlideSettings, cfg: ReviewExportConfig, rng: np.random.Generator, quick: bool,
                 world_dir: str | None) -> ReviewLists:
    """GLIDE vs a baseline on the deployment's data, or two baselines on a world (--quick, --world,
    --baselines, or an empty registry when GLIDE was not asked for explicitly)."""
    from glide.catalog import CatalogDB

    with_glide = cfg.glide
    if with_glide and (quick or world_dir):
        raise ValueError("--glide reviews the deployment's registered model: drop --quick/--world")
    if with_glide is None:
        with_glide = not quick and not world_dir and _registry_has_model(CatalogDB.from_settings(settings))
    if with_glide:
        return glide_review_lists(settings, cfg.users, cfg.k, rng, version=cfg.version, baseline=cfg.baseline)
    jw = load_judge_world(settings.data_dir, quick, world_dir, cfg.seed, cfg.holdout_days)
    return baseline_review_lists(jw, cfg.users, cfg.k, rng)


def _registry_has_model(db) -> bool:
    db.migrate()
    return bool(db.list_models())


def export_review(settings: GlideSettings, out_dir: Path, key_path: Path | None, js: JudgeSettings | None,
                  cfg: ReviewExportConfig, quick: bool = False, world_dir: str | None = None) -> dict[str, Any]:
    """Write review.csv, review.html (in ``out_dir``) and the key file; returns a summary."""
    data_dir = settings.data_dir
    rng = np.random.default_rng(cfg.seed)
    rl = review_lists(settings, cfg, rng, quick, world_dir)
    cards = catalog_cards(rl.episodes, rl.shows)
    judge = None
    cache = None
    if cfg.judge and js is not None:
        cache = JudgeCache.under(data_dir)
        judge = Judge(make_backend(js, Path(data_dir)), cache, max_tokens=js.max_new_tokens)
    rows, key_items, key_users = [], {}, {}
    try:
        for n, (user, as_of) in enumerate(zip(rl.users, rl.as_of)):
            listener = f"listener_{n + 1:02d}"
            profile = build_profile(rl.listens, rl.episodes, rl.shows, user, as_of, locale=rl.locale[user] or None)
            letters = blind(rl.systems, rng)
            key_users[listener] = {"user_id": user, "as_of": as_of.isoformat(), "letters": letters, "list_scores": {}}
            for letter, system in letters.items():
                episodes = rl.lists[system][n]
                if judge is not None:
                    key_users[listener]["list_scores"][system] = judge.judge_list(profile.text, [cards[e] for e in episodes]).scores
                for rank, e in enumerate(episodes, start=1):
                    card = cards[e]
                    review_id = f"r{len(rows) + 1:04d}"
                    score = judge.judge_episode(profile.text, card).scores if judge is not None else None
                    key_items[review_id] = {"user_id": user, "system": system, "episode_id": e,
                                            "judge": (score or {}).get(OVERALL)}
                    rows.append({"review_id": review_id, "listener": listener, "list": letter, "rank": rank,
                                 "title": card.title, "show": card.show, "topic": card.topic,
                                 "description": card.description, "profile": profile.text, "label": ""})
    finally:
        if cache is not None:
            cache.close()
    # Rows of a listener are shuffled so neither list's position in the file gives it away.
    frame = pd.DataFrame(rows, columns=list(CSV_COLUMNS))
    frame = frame.sample(frac=1.0, random_state=cfg.seed).sort_values("listener", kind="stable")
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    frame.to_csv(out_dir / "review.csv", index=False)
    (out_dir / "review.html").write_text(render_page(frame))
    key_path = key_path or default_key_path(out_dir)
    key = {"systems": list(rl.systems), "systems_note": rl.note, "model_version": rl.model_version,
           "judge_backend": judge.backend.name if judge else None,
           "judge_malformed": judge.stats.malformed if judge else None, "users": key_users, "items": key_items}
    key_path.parent.mkdir(parents=True, exist_ok=True)
    key_path.write_text(json.dumps(key, indent=2, sort_keys=True) + "\n")
    return {"csv": str(out_dir / "review.csv"), "html": str(out_dir / "review.html"), "key": str(key_path),
            "users": len(rl.users), "items": len(rows), "systems": list(rl.systems), "systems_note": rl.note,
            "model_version": rl.model_version, "judge_backend": key["judge_backend"],
            "judge_malformed": key["judge_malformed"]}


def import_review(labels_csv: Path, key_path: Path) -> dict[str, Any]:
    """Judge-human agreement and the reviewers' preferred system from a filled-in review.csv."""
    key = json.loads(Path(key_path).read_text())
    frame = pd.read_csv(labels_csv, dtype={"review_id": str})
    if "review_id" not in frame.columns or "label" not in frame.columns:
        raise ValueError(f"{labels_csv} needs review_id and label columns (the CSV written by `glide review export`)")
    unknown = sorted(set(frame["review_id"]) - set(key["items"]))
    if unknown:
        raise ValueError(f"{len(unknown)} review_id(s) are not in {key_path} (e.g. {unknown[:3]}): wrong key file?")
    labels = pd.to_numeric(frame["label"], errors="coerce")
    bad = labels.notna() & ~labels.isin([1, 2, 3, 4, 5])
    if bad.any():
        raise ValueError(f"labels must be whole numbers 1-5; rows {frame.loc[bad, 'review_id'].tolist()[:5]} are not")
    items = pd.DataFrame.from_dict(key["items"], orient="index").rename_axis("review_id").reset_index()
    joined = frame.assign(label=labels)[["review_id", "label"]].merge(items, on="review_id")
    joined = joined.rename(columns={"user_id": "user"})
    joined["judge"] = pd.to_numeric(joined["judge"], errors="coerce")
    return {"labelled": int(joined["label"].notna().sum()), "items": len(joined),
            "agreement": judge_human_agreement(joined), "preference": system_preference(joined, key["systems"]),
            "judge_backend": key.get("judge_backend"), "systems_note": key.get("systems_note")}

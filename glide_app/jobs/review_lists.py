"""The two systems a human review compares, and the listeners it shows them for.

``glide_review_lists``: a registered GLIDE model (the promoted one by default) against one baseline,
on held-out listens of the deployment the model was trained on. The data window, SIDs, CF model and
serving rules are rebuilt exactly as ``glide evaluate`` rebuilds them (glide_app/jobs/train.py), so
the GLIDE list an annotator sees is the list the model is scored on, and the one serving would cache.
Each listener is shown at the time of their first held-out non-habitual listen, with the profile of
everything they heard before it.

``baseline_review_lists``: two baselines on a world, for a review before any model is trained
(``--quick``, or ``--baselines``): the packet and the import work the same; the note says so.
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console

from glide.config import ConfigError, GlideSettings
from glide_app.jobs.judge_inputs import JudgeWorld, eligible_users

BASELINES = ("popularity", "cf", "topic_popularity")


@dataclass
class ReviewLists:
    """Two systems' top-k lists for the same listeners, and what their profiles are built from."""

    systems: tuple[str, str]
    users: list[str]
    as_of: list[pd.Timestamp]  # each listener's profile sees listens at or before it
    locale: dict[str, str]
    lists: dict[str, list[list[str]]]  # system -> one list per user, in ``users`` order
    listens: pd.DataFrame  # user_id, show_id, episode_id, ts, listened_seconds
    episodes: pd.DataFrame
    shows: pd.DataFrame
    note: str
    model_version: str | None = None


def baseline_review_lists(jw: JudgeWorld, n_users: int, k: int, rng: np.random.Generator) -> ReviewLists:
    """Popularity vs topic x popularity for ``n_users`` random eligible world users at the cut-off."""
    from glide_model.evaluation.baselines import PopularityRecommender, TopicPopularityRecommender

    world, history = jw.world, jw.history
    users = [str(u) for u in rng.permutation(eligible_users(jw))[:n_users]]
    locale = world.users.set_index("user_id")["locale"]
    examples = pd.DataFrame({
        "user_id": users, "ts": [jw.cutoff] * len(users), "locale": [locale[u] for u in users],
        "history_episode_ids": [history.loc[history["user_id"] == u, "episode_id"].tolist() for u in users],
    })
    recommenders = [PopularityRecommender(history, episodes=world.episodes),
                    TopicPopularityRecommender(history, world.episodes)]
    return ReviewLists(
        systems=("popularity", "topic_popularity"), users=users, as_of=[jw.cutoff] * len(users),
        locale={u: str(locale[u]) for u in users}, lists={r.name: r.recommend(examples, k) for r in recommenders},
        listens=history, episodes=world.episodes, shows=world.shows,
        note=("two baselines (popularity, topic x popularity) on a world with no trained model: run `glide train` "
              "(or `make demo`) and export without --quick to review GLIDE against a baseline"),
    )


def glide_review_lists(settings: GlideSettings, n_users: int, k: int, rng: np.random.Generator, *,
                       version: str | None = None, baseline: str = "popularity",
                       console: Console | None = None) -> ReviewLists:
    """A registered GLIDE model vs ``baseline`` for ``n_users`` random listeners with held-out listens."""
    from glide.catalog import CatalogDB
    from glide_app.jobs.evaluate import pick_model
    from glide_app.jobs.train import catalog_version, glide_recommender, job_config_from_dict, prepare_job_data
    from glide_model.evaluation.baselines import baseline_recommenders
    from glide_model.llm.checkpoint import Manifest
    from glide_model.llm.decoding import HFBackend
    from glide_model.sids.trie import SidTrie

    if baseline not in BASELINES:
        raise ConfigError(f"unknown baseline {baseline!r}: one of {', '.join(BASELINES)}")
    console = console or Console(quiet=True)
    db = CatalogDB.from_settings(settings)
    db.migrate()
    row = pick_model(db, version)
    cfg = job_config_from_dict(row["params"], f"train config of model {row['version']}")
    manifest = Manifest.read(row["artifact_path"])
    data = prepare_job_data(settings, cfg, db, console, write_features=False,
                            quantizer_version=manifest.quantizer_version)
    examples = first_heldout_example(data.val_ex, n_users, rng)
    trie = SidTrie(np.asarray(list(data.assignments.values())), manifest.codebook_size)
    backend = HFBackend.from_checkpoint(row["artifact_path"], trie, quantizer_version=data.quantizer_version,
                                        catalog_version=catalog_version(data.episodes), num_beams=max(k, cfg.window.k),
                                        allow_catalog_update=True)
    others = {r.name: r for r in baseline_recommenders(data.known, data.episodes, data.cf_model, data.listens)}
    if baseline not in others:
        raise ConfigError(f"baseline {baseline!r} needs episode topics, which this catalog lacks")
    lists = {"glide": glide_recommender(data, backend).recommend(examples, k),
             baseline: others[baseline].recommend(examples, k)}
    users = [str(u) for u in examples["user_id"]]
    # Strictly before the example: its own listen is what is being predicted.
    as_of = [pd.Timestamp(ts) - pd.Timedelta(microseconds=1) for ts in examples["ts"]]
    locale = {u: (loc if isinstance(loc, str) and loc else "") for u, loc in zip(users, examples["locale"])}
    return ReviewLists(
        systems=("glide", baseline), users=users, as_of=as_of, locale=locale, lists=lists,
        listens=data.listens, episodes=data.episodes, shows=db.shows_frame(), model_version=row["version"],
        note=(f"GLIDE model {row['version']} vs {baseline}, each listener at their first held-out non-habitual "
              f"listen ({Path(row['artifact_path']).name})"),
    )


def first_heldout_example(val_ex: pd.DataFrame, n_users: int, rng: np.random.Generator) -> pd.DataFrame:
    """One held-out example per listener (their earliest), for ``n_users`` listeners drawn at random."""
    if val_ex.empty:
        raise ConfigError("the model's data window holds no held-out listens to review")
    first = val_ex.sort_values("ts", kind="stable").drop_duplicates("user_id").sort_values("user_id", kind="stable")
    pick = rng.permutation(len(first))[:n_users]
    return first.iloc[np.sort(pick)].reset_index(drop=True)

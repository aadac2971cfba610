"""A fresh loop's catalog (the demo, the simulated A/B): shows and episodes into the catalog DB, their
Semantic IDs (fitted when no registered quantizer covers them), the listeners' profiles online."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

import pandas as pd
from rich.console import Console

from glide.config import GlideSettings

CONFIGS = Path(__file__).resolve().parents[2] / "configs"


@dataclass
class CatalogSetup:
    db: object  # glide.catalog.CatalogDB
    job: object  # glide_app.jobs.job_config.TrainJobConfig
    quantizer_version: str
    assignments: dict[str, tuple[int, ...]]


def load_catalog(settings: GlideSettings, shows: pd.DataFrame, episodes: pd.DataFrame, users: pd.DataFrame,
                 profiles_at: pd.Timestamp, train_config: Path, console: Console) -> CatalogSetup:
    """``episodes`` (with their shows) into the catalog DB and SIDs of the train config's quantizer;
    ``users``' profiles into the online store stamped ``profiles_at``."""
    from glide.catalog import CatalogDB
    from glide_app.jobs.train import load_job_config, sids_for_catalog
    from streams.replay import push_profiles

    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows(shows)
    db.upsert_episodes(episodes)
    job = load_job_config(train_config)
    version, assignments = sids_for_catalog(settings, db, episodes, job.sids, console)
    push_profiles(settings, users, profiles_at)
    return CatalogSetup(db, job, version, assignments)

"""`glide evaluate`: re-score a registered GLIDE model against the baselines on held-out listens.

Reads the model-registry row (its merged export and the train config it was trained with),
rebuilds the same data window from the world and the Feast offline store as the train job left
them, and scores GLIDE, popularity, CF and topic x popularity on the held-out non-habitual
listens, with the paired bootstrap CI of GLIDE - popularity and a plot. The train job scores a
sample (``window.max_val_examples``); ``max_examples`` widens it (all held-out listens give the
tightest CI) without retraining.
"""

from __future__ import annotations

import json
import time
from dataclasses import replace
from pathlib import Path
from typing import Any

import numpy as np
from rich.console import Console

from glide.config import ConfigError, GlideSettings
from glide_app.jobs.train import (
    TrainJobConfig,
    catalog_version,
    compare_to_baselines,
    job_config_from_dict,
    prepare_job_data,
)


def pick_model(db, version: str | None) -> dict[str, Any]:
    """The registry row to evaluate: ``version``, else the promoted model, else the newest one."""
    if version:
        row = db.get_model(version)
        if row is None:
            known = [m["version"] for m in db.list_models()[:5]]
            raise ConfigError(f"no model {version!r} in the registry (newest: {known or 'none'})")
        return row
    row = db.promoted_model() or next(iter(db.list_models()), None)
    if row is None:
        raise ConfigError("the model registry is empty: run `glide train` first")
    return row


def free_stem(folder: Path, stem: str) -> str:
    """``stem``, or ``stem-2``, ``stem-3``...: the first name with no report (.json/.png) in ``folder`` yet,
    so two evaluations of one model in the same second keep both reports."""
    candidate, n = stem, 1
    while any((folder / f"{candidate}{ext}").exists() for ext in (".json", ".png")):
        n += 1
        candidate = f"{stem}-{n}"
    return candidate


def run_evaluate_job(settings: GlideSettings, version: str | None = None, max_examples: int | None = None,
                     console: Console | None = None, *, cfg: TrainJobConfig | None = None,
                     allow_catalog_update: bool = False, dtype: str | None = None) -> dict[str, Any]:
    """Evaluate one registered model; returns the record (also written beside its export).

    ``cfg``: the data window to score on (default: the one the model was trained with), e.g. a
    newer model's, so that two models are scored on the same listens (``glide retrain``).
    ``allow_catalog_update``: score a model trained before episodes were added (same quantizer).
    ``dtype``: score in this serving precision instead of the export's ``serving_dtype``.
    """
    from glide.catalog import CatalogDB
    from glide_model.llm.checkpoint import Manifest
    from glide_model.llm.decoding import HFBackend
    from glide_model.sids.trie import SidTrie

    console = console or Console()
    started = time.perf_counter()
    db = CatalogDB.from_settings(settings)
    db.migrate()
    row = pick_model(db, version)
    if cfg is None:
        cfg = job_config_from_dict(row["params"], f"train config of model {row['version']}")
    if max_examples is not None:
        if max_examples < 1:
            raise ConfigError(f"--max-examples must be >= 1, got {max_examples}")
        cfg = replace(cfg, window=replace(cfg.window, max_val_examples=max_examples))
    console.print(f"[bold]evaluate[/] model {row['version']} ({row['artifact_path']})")
    with db.job_run("evaluate", params={"model": row["version"], "max_examples": max_examples}):
        manifest = Manifest.read(row["artifact_path"])
        data = prepare_job_data(settings, cfg, db, console, write_features=False,
                                quantizer_version=manifest.quantizer_version)
        k = cfg.window.k
        trie = SidTrie(np.asarray(list(data.assignments.values())), manifest.codebook_size)
        backend = HFBackend.from_checkpoint(row["artifact_path"], trie, quantizer_version=data.quantizer_version,
                                            catalog_version=catalog_version(data.episodes), num_beams=k,
                                            allow_catalog_update=allow_catalog_update, dtype=dtype)
        out_dir = settings.data_dir / "runs" / row["version"]
        out_dir.mkdir(parents=True, exist_ok=True)
        stem = free_stem(out_dir, f"evaluate-{time.strftime('%Y%m%d-%H%M%S')}")
        comparison = compare_to_baselines(data, backend, "glide", k, console, out_dir / f"{stem}.png")
        record = {
            "model": row["version"], "serving_dtype": dtype or manifest.serving_dtype, "examples": len(data.val_ex),
            **comparison,
            "window": {name: str(ts) for name, ts in data.window.items()},
            "seconds": round(time.perf_counter() - started, 1),
        }
        (out_dir / f"{stem}.json").write_text(json.dumps(record, indent=2, default=str))
    return record

"""`glide retrain`: the periodic offline job. Train a challenger on the latest data (the same
feature definitions the online path reads), score it and the promoted model on the same held-out
listens, and promote the challenger only if it beats popularity and the incumbent by ``min_gain``.
Only a promoted challenger's CF vectors are written online, just before its promotion; otherwise the
online vectors stay the incumbent's.

One pass per call (for cron / Airflow), or ``every_hours`` for a long-lived loop.
"""

from __future__ import annotations

import time
from dataclasses import dataclass, replace
from typing import Any

from rich.console import Console

from glide.config import GlideSettings
from glide_app.jobs.train import TrainJobConfig, run_train_job


@dataclass(frozen=True)
class Decision:
    promote: bool
    reason: str


def decide(challenger: float, popularity: float, incumbent: float | None, min_gain: float = 0.0) -> Decision:
    """Promotion rule on held-out Recall@k: beat popularity, and the incumbent when there is one."""
    if challenger <= popularity + min_gain:
        return Decision(False, f"challenger {challenger:.4f} does not beat popularity {popularity:.4f} "
                               f"by more than {min_gain:+.4f}")
    if incumbent is not None and challenger <= incumbent + min_gain:
        return Decision(False, f"challenger {challenger:.4f} does not beat the incumbent {incumbent:.4f} "
                               f"by more than {min_gain:+.4f}")
    against = "popularity" if incumbent is None else f"popularity {popularity:.4f} and the incumbent {incumbent:.4f}"
    return Decision(True, f"challenger {challenger:.4f} beats {against}")


def run_retrain_job(settings: GlideSettings, cfg: TrainJobConfig, console: Console | None = None,
                    min_gain: float = 0.0) -> dict[str, Any]:
    """One retraining pass; returns the challenger's run record plus the promotion decision."""
    from glide.catalog import CatalogDB
    from glide_app.jobs.cf_publish import publish_cf_vectors
    from glide_app.jobs.evaluate import run_evaluate_job
    from glide_model.cf import CFModel
    from glide_model.llm.checkpoint import CheckpointMismatchError

    console = console or Console()
    db = CatalogDB.from_settings(settings)
    db.migrate()
    incumbent = db.promoted_model()
    name = f"{cfg.run_name or 'glide'}-{time.strftime('%Y%m%d-%H%M%S')}"
    # Online CF vectors stay the incumbent's while the challenger trains and is scored.
    # The challenger fine-tunes the promoted model when it speaks the same SIDs (else trains fresh).
    record = run_train_job(settings, replace(cfg, run_name=name, promote=False), console, publish_cf=False,
                           init_from=incumbent["artifact_path"] if incumbent else None)
    k = cfg.window.k
    incumbent_recall = None
    if incumbent is not None:
        try:  # the incumbent on the challenger's held-out listens: same window, same sample
            scored = run_evaluate_job(settings, incumbent["version"], console=console, cfg=cfg,
                                      allow_catalog_update=True)
            incumbent_recall = scored[f"glide_recall@{k}"]
        except CheckpointMismatchError as exc:  # e.g. SIDs refitted: the old model cannot serve this catalog
            console.print(f"[yellow]incumbent {incumbent['version']} cannot be scored on this catalog[/]: {exc}")
    decision = decide(record[f"glide_recall@{k}"], record[f"popularity_recall@{k}"], incumbent_recall, min_gain)
    if decision.promote:
        # The challenger's CF vectors go online BEFORE the registry promotes it: a worker that (re)starts
        # on the promoted model (streams/serving.py) would otherwise serve the new model against the
        # incumbent's vectors, another CF space than its projector was trained on. Written first, the
        # vectors carry the challenger's cf_version, which the incumbent's worker detects as a mismatch
        # and serves with its default vector until it restarts on the new model (streams/candidates.py).
        record = {**record, "online_cf_users": publish_cf_vectors(settings, CFModel.load(record["cf_model"]))}
        db.promote_model(record["run"])
    console.print(f"[bold]{'promoted' if decision.promote else 'kept'}[/] "
                  f"{record['run'] if decision.promote else (incumbent or {}).get('version', 'no model')}: "
                  f"{decision.reason}")
    return {**record, "incumbent": incumbent["version"] if incumbent else None,
            f"incumbent_recall@{k}": incumbent_recall, "promoted": decision.promote, "decision": decision.reason}

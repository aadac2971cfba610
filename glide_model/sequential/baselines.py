"""The four non-LLM systems as the harness sees them (glide_model/sequential/systems.py).

What ``quick`` changes: popularity, item-kNN and SASRec train exactly as in a full run (the first
two take seconds; SASRec needs its full schedule to reach its bar, and takes a few minutes on one
core); TIGER gets a shorter schedule (:data:`QUICK_TIGER`: fewer epochs, a smaller validation
probe). The harness's other quick cut, a sample of test users on datasets with more than
``harness.QUICK_USERS`` of them, applies to every system alike.
"""

from __future__ import annotations

from dataclasses import asdict, replace

from glide_model.sequential.systems import Fitted, TrainingData

# Quick-mode TIGER: at most 6 epochs (~30 s each on Scientific, one thread) and a 500-user validation probe.
QUICK_TIGER = {"max_epochs": 6, "patience": 2, "valid_users": 500}


class PopularitySystem:
    name = "popularity"

    def skip_reason(self, data: TrainingData) -> str | None:
        return None

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.popularity import PopularityRanker

        return Fitted(PopularityRanker(data.popularity), {"counts": "training-split interactions"})


class ItemKNNSystem:
    name = "itemknn"

    def skip_reason(self, data: TrainingData) -> str | None:
        return None

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.itemknn import tune_itemknn

        ranker, tried = tune_itemknn(data.split.train, data.split.valid, data.dataset.n_items)
        return Fitted(ranker, {"config": asdict(ranker.cfg), "valid_recall@10_by_config": tried})


class SASRecSystem:
    name = "sasrec"

    def skip_reason(self, data: TrainingData) -> str | None:
        return None

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.sasrec import SASRecConfig, fit_sasrec

        cfg = SASRecConfig(seed=data.seed, threads=data.threads)
        ranker, log = fit_sasrec(data.split.train, data.split.valid, data.dataset.n_items, cfg, data.progress)
        return Fitted(ranker, {"config": asdict(cfg), "fit": log.as_dict()})


class TigerSystem:
    name = "tiger"

    def skip_reason(self, data: TrainingData) -> str | None:
        reason = data.sid_skip_reason()
        return None if reason is None else f"no Semantic IDs: {reason}"

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.tiger import TigerConfig
        from glide_model.sequential.tiger_train import fit_tiger

        sids = data.sids()
        cfg = TigerConfig(seed=data.seed, threads=data.threads)
        if data.quick:
            cfg = replace(cfg, **QUICK_TIGER)
        ranker, log = fit_tiger(data.split.train, data.split.valid, sids.codes, data.popularity, cfg, data.progress)
        return Fitted(ranker, {"config": asdict(cfg), "fit": log.as_dict(),
                               "sids": {"source": sids.source, "levels": sids.levels,
                                        "codebook_size": sids.codebook_size,
                                        "collided_items": sids.collided_items()}})

"""Offline evaluation (§5.1): Recall/HitRate/NDCG@K per familiarity segment, baselines, reports.

Submodules: ``metrics`` (metric functions, evaluate, prefix ceiling), ``baselines`` (Recommender
protocol, popularity and CF baselines; imports the CF model), ``report`` (rich table, bar plot).
"""

from glide_model.evaluation.metrics import (
    SEGMENTS,
    episodes_to_sids,
    evaluate,
    future_targets,
    hit_rate_at_k,
    ndcg_at_k,
    prefix_ceiling,
    prefix_ceilings,
    recall_at_k,
    score_examples,
    summarize,
)

__all__ = [
    "SEGMENTS",
    "episodes_to_sids",
    "evaluate",
    "future_targets",
    "hit_rate_at_k",
    "ndcg_at_k",
    "prefix_ceiling",
    "prefix_ceilings",
    "recall_at_k",
    "score_examples",
    "summarize",
]

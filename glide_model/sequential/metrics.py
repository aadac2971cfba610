"""Leave-one-out metrics per user, per familiarity segment, and paired comparisons between systems.

The metric functions are the project's (glide_model/evaluation/metrics.py), so a Recall@10 here is
the Recall@10 of every other GLIDE table. With one held-out item per user, Recall@K equals HR@K;
both are reported because the paper's tables name both.

Segments: an example is ``familiar`` when its target's brand (show) appears among the brands of the
items in its history, ``unfamiliar`` otherwise, including a target with no brand (nothing of it can
be familiar). Without item text there are no brands and only ``overall`` is reported.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np

from glide_model.evaluation.metrics import SEGMENTS, hit_rate_at_k, ndcg_at_k, paired_bootstrap, recall_at_k
from glide_model.sequential.split import EvalSet

KS = (5, 10, 30)
METRICS = tuple(f"recall@{k}" for k in KS) + tuple(f"ndcg@{k}" for k in KS) + ("hr@30",)
MAX_K = max(KS)
PROTOCOLS = ("history_excluded", "history_kept")  # the first is GLIDE's: consumed items never recommended


def per_user_metrics(top: np.ndarray, targets: np.ndarray) -> dict[str, np.ndarray]:
    """Each metric of :data:`METRICS` for each row of a (n, >= MAX_K) top list against its one target."""
    if len(top) != len(targets):
        raise ValueError(f"{len(top)} ranked lists for {len(targets)} targets")
    if len(top) and top.shape[1] < MAX_K:
        raise ValueError(f"ranked lists have {top.shape[1]} items; the metrics need {MAX_K}")
    rows = [(row.tolist(), {int(t)}) for row, t in zip(top, targets)]
    out = {}
    for k in KS:
        out[f"recall@{k}"] = np.array([recall_at_k(r, rel, k) for r, rel in rows])
        out[f"ndcg@{k}"] = np.array([ndcg_at_k(r, rel, k) for r, rel in rows])
    out["hr@30"] = np.array([hit_rate_at_k(r, rel, 30) for r, rel in rows])
    return {m: out[m] for m in METRICS}


def familiarity(eval_set: EvalSet, brand_codes: np.ndarray | None) -> np.ndarray | None:
    """Per example ``"familiar"`` or ``"unfamiliar"`` (module docstring); None without brands."""
    if brand_codes is None:
        return None
    labels = []
    for history, target in zip(eval_set.histories, eval_set.targets):
        brand = brand_codes[target]
        seen = brand >= 0 and bool(np.any(brand_codes[np.asarray(history, dtype=np.int64)] == brand))
        labels.append("familiar" if seen else "unfamiliar")
    return np.array(labels, dtype=object)


def summarize(per_user: Mapping[str, Sequence[float]], segments: np.ndarray | None) -> dict[str, dict[str, float]]:
    """{segment: {metric: mean, "n": count}} for overall and, with segments, familiar/unfamiliar."""
    values = {m: np.asarray(v, dtype=np.float64) for m, v in per_user.items()}
    n = len(next(iter(values.values()))) if values else 0
    out = {}
    for segment in SEGMENTS if segments is not None else ("overall",):
        mask = np.ones(n, dtype=bool) if segment == "overall" else np.asarray(segments) == segment
        row = {m: float(v[mask].mean()) if mask.any() else float("nan") for m, v in values.items()}
        row["n"] = int(mask.sum())
        out[segment] = row
    return out


def compare(a: Mapping[str, Sequence[float]], b: Mapping[str, Sequence[float]],
            metrics: Sequence[str] = ("recall@10", "ndcg@10", "recall@30"), seed: int = 0) -> dict[str, dict]:
    """Paired bootstrap of a - b (same examples, same order) for each metric: diff, 95% lo/hi, p."""
    return {m: paired_bootstrap(a[m], b[m], seed=seed) for m in metrics}

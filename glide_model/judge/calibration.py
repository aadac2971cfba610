"""Statistics that calibrate a judge: against ground truth (the world) and against human labels.

- Pairwise agreement: over pairs of items *of the same user* whose true preference differs (by more
  than ``tol``), the share the judge orders the same way; a judge tie counts half. 0.5 is chance.
- Its CI: percentile bootstrap over users (a user's pairs share a profile, so they are not
  independent), resampling each user's (agreed, pairs) counts and taking the pooled ratio.
- Spearman: rank correlation of judge score and true preference over all judged pairs (average
  ranks for ties; NaN when either side is constant).
- AUC: P(score of a positive > score of a negative), ties half (Mann-Whitney); NaN without both classes.
- Cohen's kappa, unweighted or quadratic-weighted, between two raters' labels on the same items.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import numpy as np
from scipy.stats import rankdata


def pair_counts(scores: Sequence[float], truth: Sequence[float], tol: float = 0.0) -> tuple[float, int]:
    """(agreed, pairs) within one user: pairs with |truth_i - truth_j| > tol; judge ties count half."""
    s, t = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64)
    i, j = np.triu_indices(len(s), k=1)
    dt, ds = t[i] - t[j], s[i] - s[j]
    keep = np.abs(dt) > tol
    dt, ds = dt[keep], ds[keep]
    agreed = np.sum(np.sign(ds) == np.sign(dt)) + 0.5 * np.sum(ds == 0)
    return float(agreed), int(keep.sum())


def pairwise_by_group(scores: Sequence[float], truth: Sequence[float], groups: Sequence,
                      tol: float = 0.0) -> tuple[np.ndarray, np.ndarray]:
    """Per group (user), in first-seen order: agreed counts and pair counts."""
    s, t, g = np.asarray(scores, dtype=np.float64), np.asarray(truth, dtype=np.float64), np.asarray(groups)
    agreed, pairs = [], []
    for key in dict.fromkeys(g.tolist()):
        rows = g == key
        a, n = pair_counts(s[rows], t[rows], tol)
        agreed.append(a)
        pairs.append(n)
    return np.array(agreed, dtype=np.float64), np.array(pairs, dtype=np.int64)


def bootstrap_ratio_ci(num: np.ndarray, den: np.ndarray, n_boot: int = 2000, level: float = 0.95,
                       seed: int = 0) -> tuple[float, float]:
    """Percentile CI of sum(num) / sum(den) with groups resampled with replacement."""
    num, den = np.asarray(num, dtype=np.float64), np.asarray(den, dtype=np.float64)
    if len(num) == 0 or den.sum() == 0:
        return float("nan"), float("nan")
    rng = np.random.default_rng(seed)
    idx = rng.integers(0, len(num), size=(n_boot, len(num)))
    d = den[idx].sum(axis=1)
    ratios = num[idx].sum(axis=1)[d > 0] / d[d > 0]
    alpha = (1 - level) / 2
    return float(np.quantile(ratios, alpha)), float(np.quantile(ratios, 1 - alpha))


def spearman(x: Sequence[float], y: Sequence[float]) -> float:
    x, y = np.asarray(x, dtype=np.float64), np.asarray(y, dtype=np.float64)
    if len(x) < 2 or np.ptp(x) == 0 or np.ptp(y) == 0:
        return float("nan")
    return float(np.corrcoef(rankdata(x), rankdata(y))[0, 1])


def auc(scores: Sequence[float], labels: Sequence[bool]) -> float:
    s, y = np.asarray(scores, dtype=np.float64), np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(y.sum()), int((~y).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(s)  # average ranks: a tie between a positive and a negative counts half
    return float((ranks[y].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def cohen_kappa(a: Sequence, b: Sequence, categories: Sequence | None = None, weights: str | None = None) -> float:
    """Cohen's kappa of two raters; ``weights="quadratic"`` for ordinal labels (categories in order)."""
    if len(a) != len(b):
        raise ValueError(f"raters labelled {len(a)} and {len(b)} items")
    cats = list(categories) if categories is not None else sorted(set(a) | set(b))
    index = {c: i for i, c in enumerate(cats)}
    k = len(cats)
    observed = np.zeros((k, k))
    for x, y in zip(a, b):
        observed[index[x], index[y]] += 1
    n = observed.sum()
    if n == 0:
        return float("nan")
    expected = np.outer(observed.sum(axis=1), observed.sum(axis=0)) / n
    if weights is None:
        w = 1.0 - np.eye(k)
    elif weights == "quadratic":
        grid = np.arange(k)
        w = (grid[:, None] - grid[None, :]) ** 2 / max((k - 1) ** 2, 1)
    else:
        raise ValueError(f"weights must be None or 'quadratic', got {weights!r}")
    disagreement_expected = (w * expected).sum()
    if disagreement_expected == 0:
        return 1.0 if (w * observed).sum() == 0 else float("nan")
    return float(1.0 - (w * observed).sum() / disagreement_expected)


@dataclass
class Calibration:
    n_users: int
    n_judged: int  # (user, episode) pairs with a valid judge score
    n_pairs: int  # episode pairs compared for pairwise agreement
    pairwise_agreement: float
    pairwise_agreement_ci: tuple[float, float]
    spearman: float
    auc: float
    positives: int  # items labelled "the user would listen"

    def to_record(self) -> dict:
        out = asdict(self)
        out["pairwise_agreement_ci"] = list(self.pairwise_agreement_ci)
        return out


def calibrate(scores: Sequence[float], truth: Sequence[float], would_listen: Sequence[bool], users: Sequence,
              tol: float = 0.05, n_boot: int = 2000, seed: int = 0) -> Calibration:
    """Every ground-truth statistic of one judge over parallel arrays (one entry per judged item)."""
    agreed, pairs = pairwise_by_group(scores, truth, users, tol)
    total = int(pairs.sum())
    return Calibration(
        n_users=len(pairs), n_judged=len(scores), n_pairs=total,
        pairwise_agreement=float(agreed.sum() / total) if total else float("nan"),
        pairwise_agreement_ci=bootstrap_ratio_ci(agreed, pairs, n_boot=n_boot, seed=seed),
        spearman=spearman(scores, truth), auc=auc(scores, would_listen), positives=int(np.sum(would_listen)),
    )

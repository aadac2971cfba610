"""Pure pieces of the human-review loop: blinding two systems as "A"/"B", and scoring reviewers.

Reviewers label each recommended episode 1-5 for "would this listener want it?". From their labels:
- judge-human agreement: Cohen's kappa (unweighted and quadratic) between the labels and the
  judge's interest-aligned scores rounded to the same 1-5 scale, and pairwise agreement (within a
  user, for pairs the reviewer labelled differently, does the judge order them the same way);
- which system reviewers prefer: per user, the list with the higher mean label wins (ties half);
  the share of users preferring each system, and each system's mean label.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import numpy as np
import pandas as pd

from glide_model.judge.calibration import cohen_kappa, pairwise_by_group
from glide_model.judge.prompt import SCORE_MAX, SCORE_MIN

LETTERS = ("A", "B")


def blind(systems: Sequence[str], rng: np.random.Generator) -> dict[str, str]:
    """letter -> system, drawn per user so the reviewer cannot learn which letter is which system."""
    if len(systems) != len(LETTERS):
        raise ValueError(f"review compares exactly {len(LETTERS)} systems, got {list(systems)}")
    order = rng.permutation(len(systems))
    return {letter: systems[i] for letter, i in zip(LETTERS, order)}


def to_scale(score: float) -> int:
    """A judge score (possibly an expected value) as a 1-5 label."""
    return int(np.clip(np.rint(score), SCORE_MIN, SCORE_MAX))


def judge_human_agreement(labels: pd.DataFrame) -> dict[str, float]:
    """``labels``: user, label (1-5, human), judge (judge score or NaN). Rows without either are skipped."""
    both = labels.dropna(subset=["label", "judge"])
    if both.empty:
        return {"n_items": 0, "kappa": float("nan"), "kappa_quadratic": float("nan"),
                "pairwise_agreement": float("nan"), "n_pairs": 0}
    human = both["label"].astype(int).tolist()
    judge = [to_scale(s) for s in both["judge"]]
    cats = list(range(SCORE_MIN, SCORE_MAX + 1))
    # Pairs ordered by the human; the judge's own (unrounded) scores decide its order.
    agreed, pairs = pairwise_by_group(both["judge"].to_numpy(float), both["label"].to_numpy(float), both["user"].to_numpy())
    return {
        "n_items": len(both),
        "kappa": cohen_kappa(human, judge, cats),
        "kappa_quadratic": cohen_kappa(human, judge, cats, weights="quadratic"),
        "pairwise_agreement": float(agreed.sum() / pairs.sum()) if pairs.sum() else float("nan"),
        "n_pairs": int(pairs.sum()),
    }


def system_preference(labels: pd.DataFrame, systems: Sequence[str]) -> dict[str, object]:
    """``labels``: user, system, label. Mean label per system and the share of users preferring each."""
    rated = labels.dropna(subset=["label"])
    means = rated.groupby(["user", "system"])["label"].mean().unstack()
    out: dict[str, object] = {"n_users": 0, "mean_label": {}, "preferred_share": {}, "preferred": None}
    if means.empty or any(s not in means.columns for s in systems):
        return out
    means = means.dropna(subset=list(systems))
    a, b = systems
    wins_a = float((means[a] > means[b]).sum() + 0.5 * (means[a] == means[b]).sum())
    n = len(means)
    share: Mapping[str, float] = {a: wins_a / n, b: 1 - wins_a / n} if n else {}
    out.update(n_users=n, mean_label={s: float(rated.loc[rated["system"] == s, "label"].mean()) for s in systems},
               preferred_share=dict(share))
    if n:
        out["preferred"] = a if share[a] > 0.5 else b if share[b] > 0.5 else "tie"
    return out

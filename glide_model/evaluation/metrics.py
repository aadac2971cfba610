"""Retrieval metrics on held-out non-habitual listens (§5.1), overall and per familiarity segment.

Each example (a row of the example frame, see glide_model/data/examples.py) is one query. Its
relevant set is ``{target_episode_id}`` by default, or a column of sets (e.g. from
:func:`future_targets`: every non-habitual episode the user went on to play within a horizon).
Recommendations are matched either by episode id (``match="episode"``) or by Semantic ID
(``match="sid"``: a hit when a generated SID equals the target's SID, i.e. before collision
resolution maps it to an episode).

With one relevant item, Recall@K == HitRate@K; they differ with relevant sets.
"""

from __future__ import annotations

from collections.abc import Collection, Hashable, Mapping, Sequence
from typing import Literal

import numpy as np
import pandas as pd

from glide.habits import codes_by_episode

SEGMENTS = ("overall", "familiar", "unfamiliar")


def _first_hits(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> list[int]:
    """0-based ranks (within the top k) where a relevant item first appears; repeats count once."""
    seen: set[Hashable] = set()
    ranks = []
    for rank, item in enumerate(list(recommended)[:k]):
        if item in relevant and item not in seen:
            seen.add(item)
            ranks.append(rank)
    return ranks


def recall_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """|top-k ∩ relevant| / |relevant| (0 for an empty relevant set)."""
    return len(_first_hits(recommended, relevant, k)) / len(relevant) if relevant else 0.0


def hit_rate_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """1 if any relevant item is in the top k."""
    return 1.0 if _first_hits(recommended, relevant, k) else 0.0


def ndcg_at_k(recommended: Sequence[Hashable], relevant: Collection[Hashable], k: int) -> float:
    """Binary-relevance NDCG: sum 1/log2(rank+2) over hits, over the ideal ordering's value."""
    if not relevant:
        return 0.0
    dcg = sum(1.0 / np.log2(r + 2) for r in _first_hits(recommended, relevant, k))
    ideal = sum(1.0 / np.log2(r + 2) for r in range(min(len(relevant), k)))
    return float(dcg / ideal)


def _as_sid(codes: Sequence[int]) -> tuple[int, ...]:
    return tuple(int(c) for c in codes)


def relevant_sets(examples: pd.DataFrame, match: Literal["episode", "sid"] = "episode",
                  relevant_col: str | None = None) -> list[frozenset]:
    """The relevant items of each example, as episode ids or SID tuples."""
    if relevant_col is not None:
        if match == "sid":
            return [frozenset(_as_sid(c) for c in items) for items in examples[relevant_col]]
        return [frozenset(items) for items in examples[relevant_col]]
    if match == "sid":
        return [frozenset([_as_sid(c)]) for c in examples["target_codes"]]
    return [frozenset([e]) for e in examples["target_episode_id"]]


def score_examples(
    recommendations: Sequence[Sequence[Hashable]],
    examples: pd.DataFrame,
    k: int | Sequence[int] = 30,
    match: Literal["episode", "sid"] = "episode",
    relevant_col: str | None = None,
) -> pd.DataFrame:
    """Per-example metrics: columns mode, recall@k, hit_rate@k, ndcg@k for each k."""
    if len(recommendations) != len(examples):
        raise ValueError(f"{len(recommendations)} recommendation lists for {len(examples)} examples")
    if match not in ("episode", "sid"):
        raise ValueError(f"match must be 'episode' or 'sid', got {match!r}")
    ks = [k] if isinstance(k, int) else list(k)
    relevant = relevant_sets(examples, match, relevant_col)
    recs = [[_as_sid(c) for c in r] for r in recommendations] if match == "sid" else recommendations
    out = {"mode": examples["mode"].to_numpy() if "mode" in examples.columns else np.full(len(examples), None)}
    for kk in ks:
        out[f"recall@{kk}"] = [recall_at_k(r, rel, kk) for r, rel in zip(recs, relevant)]
        out[f"hit_rate@{kk}"] = [hit_rate_at_k(r, rel, kk) for r, rel in zip(recs, relevant)]
        out[f"ndcg@{kk}"] = [ndcg_at_k(r, rel, kk) for r, rel in zip(recs, relevant)]
    return pd.DataFrame(out, index=examples.index)


def summarize(per_example: pd.DataFrame) -> pd.DataFrame:
    """Mean of each metric per segment (overall, familiar, unfamiliar), with the example count n."""
    metrics = [c for c in per_example.columns if c != "mode"]
    rows = []
    for segment in SEGMENTS:
        part = per_example if segment == "overall" else per_example[per_example["mode"] == segment]
        row = {"segment": segment, "n": len(part)}
        row.update({m: float(part[m].mean()) if len(part) else float("nan") for m in metrics})
        rows.append(row)
    return pd.DataFrame(rows).set_index("segment")


def evaluate(
    recommendations: Sequence[Sequence[Hashable]],
    examples: pd.DataFrame,
    k: int | Sequence[int] = 30,
    match: Literal["episode", "sid"] = "episode",
    relevant_col: str | None = None,
) -> pd.DataFrame:
    """Recall/HitRate/NDCG@k per segment (rows overall, familiar, unfamiliar)."""
    return summarize(score_examples(recommendations, examples, k, match, relevant_col))


def paired_bootstrap(a: Sequence[float], b: Sequence[float], n_boot: int = 2000, seed: int = 0) -> dict[str, float]:
    """Mean of a - b over paired per-example values with a 95% bootstrap interval (examples resampled).

    Use to say whether one method beats another on the same held-out examples, e.g. per-example
    recall@30 of GLIDE and popularity from :func:`score_examples`. ``p_not_better`` is the share of
    resamples where a does not beat b (a one-sided bootstrap p-value).
    """
    diff = np.asarray(a, dtype=np.float64) - np.asarray(b, dtype=np.float64)
    if diff.ndim != 1 or len(diff) != len(np.asarray(b)):
        raise ValueError(f"paired values need equal lengths, got {len(np.asarray(a))} and {len(np.asarray(b))}")
    if len(diff) == 0:
        return {"diff": float("nan"), "lo": float("nan"), "hi": float("nan"), "p_not_better": float("nan"), "n": 0}
    idx = np.random.default_rng(seed).integers(0, len(diff), size=(n_boot, len(diff)))
    means = diff[idx].mean(axis=1)
    return {"diff": float(diff.mean()), "lo": float(np.quantile(means, 0.025)), "hi": float(np.quantile(means, 0.975)),
            "p_not_better": float((means <= 0).mean()), "n": int(len(diff))}


def episodes_to_sids(
    recommendations: Sequence[Sequence[str]], assignments: pd.DataFrame | Mapping[str, Sequence[int]]
) -> list[list[tuple[int, ...]]]:
    """Episode lists -> SID lists (unknown episodes dropped, repeated SIDs kept once, order kept)."""
    lookup = codes_by_episode(assignments)
    out = []
    for recs in recommendations:
        sids = [lookup[e] for e in recs if e in lookup]
        out.append(list(dict.fromkeys(sids)))
    return out


def prefix_ceiling(
    generated: Sequence[Sequence[Sequence[int]]], targets: Sequence[Sequence[int]], n: int, k: int = 30
) -> float:
    """Max achievable Recall@k given only the first ``n`` tokens of the generated SIDs (Table 3).

    An example counts when some top-k generated SID agrees with the target on its first n codes:
    a perfect choice of the remaining tokens would then have recovered the target.
    """
    if len(generated) != len(targets):
        raise ValueError(f"{len(generated)} generated lists for {len(targets)} targets")
    if n < 1:
        raise ValueError("n must be >= 1")
    if not targets:
        return float("nan")
    hits = 0
    for gen, target in zip(generated, targets):
        prefixes = {tuple(int(c) for c in g[:n]) for g in list(gen)[:k]}
        hits += tuple(int(c) for c in target[:n]) in prefixes
    return hits / len(targets)


def prefix_ceilings(generated: Sequence[Sequence[Sequence[int]]], targets: Sequence[Sequence[int]],
                    k: int = 30) -> dict[int, float]:
    """:func:`prefix_ceiling` for every prefix length 1..M (n = M is the full-SID recall)."""
    levels = len(targets[0]) if len(targets) else 0
    return {n: prefix_ceiling(generated, targets, n, k) for n in range(1, levels + 1)}


def future_targets(examples: pd.DataFrame, horizon: pd.Timedelta, same_mode: bool = True) -> pd.Series:
    """Per example: the target episodes of the same user (and mode) with ts in [ts, ts + horizon].

    Use as a relevant set (``relevant_col``) to score "what the user went on to discover" rather
    than the single next listen.
    """
    keys = ["user_id", "mode"] if same_mode else ["user_id"]
    result = pd.Series([frozenset()] * len(examples), index=examples.index, dtype=object)
    for _, group in examples.groupby(keys, sort=False):
        group = group.sort_values("ts", kind="stable")
        ts = group["ts"].dt.as_unit("ns").to_numpy(dtype="datetime64[ns]").view("int64")
        eps = group["target_episode_id"].to_numpy()
        ends = np.searchsorted(ts, ts + pd.Timedelta(horizon).value, side="right")
        starts = np.searchsorted(ts, ts, side="left")
        for idx, s, e in zip(group.index, starts, ends):
            result.at[idx] = frozenset(eps[s:e])
    return result

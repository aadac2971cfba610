"""glide_model.evaluation.metrics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pandas as pd
import pytest

from glide_model.evaluation.metrics import (
    episodes_to_sids,
    evaluate,
    future_targets,
    hit_rate_at_k,
    ndcg_at_k,
    paired_bootstrap,
    prefix_ceiling,
    prefix_ceilings,
    recall_at_k,
)

T0 = pd.Timestamp("2026-01-01", tz="UTC")


def test_single_target():
    recs = ["a", "b", "c", "d"]
    assert recall_at_k(recs, {"c"}, 3) == 1.0 and hit_rate_at_k(recs, {"c"}, 3) == 1.0
    assert ndcg_at_k(recs, {"c"}, 3) == pytest.approx(1 / math.log2(4))
    assert recall_at_k(recs, {"c"}, 2) == 0.0 and ndcg_at_k(recs, {"c"}, 2) == 0.0
    assert ndcg_at_k(recs, {"a"}, 1) == 1.0


def test_relevant_sets_and_repeats():
    recs = ["a", "b", "c", "d"]
    rel = {"a", "d", "x"}
    assert recall_at_k(recs, rel, 4) == pytest.approx(2 / 3)
    assert hit_rate_at_k(recs, rel, 4) == 1.0
    ideal = 1 + 1 / math.log2(3) + 1 / math.log2(4)
    assert ndcg_at_k(recs, rel, 4) == pytest.approx((1 + 1 / math.log2(5)) / ideal)
    # a relevant item repeated in the list counts once
    assert recall_at_k(["a", "a", "b"], {"a", "b"}, 2) == 0.5
    assert recall_at_k(recs, set(), 4) == 0.0


def examples_frame() -> pd.DataFrame:
    return pd.DataFrame({
        "user_id": ["u1", "u2", "u3", "u4"],
        "ts": [T0] * 4,
        "target_episode_id": ["a", "b", "c", "d"],
        "target_codes": [(1, 2), (1, 3), (2, 2), (3, 3)],
        "mode": ["familiar", "familiar", "unfamiliar", "unfamiliar"],
    })


def test_evaluate_by_segment():
    ex = examples_frame()
    recs = [["a", "x"], ["x", "b"], ["x", "y"], ["d"]]
    res = evaluate(recs, ex, k=[1, 2])
    assert res.loc["overall", "n"] == 4 and res.loc["familiar", "n"] == 2
    assert res.loc["overall", "recall@2"] == 0.75 and res.loc["overall", "recall@1"] == 0.5
    assert res.loc["familiar", "hit_rate@2"] == 1.0 and res.loc["unfamiliar", "hit_rate@2"] == 0.5
    assert res.loc["familiar", "ndcg@2"] == pytest.approx((1 + 1 / math.log2(3)) / 2)
    with pytest.raises(ValueError, match="recommendation lists"):
        evaluate(recs[:3], ex)


def test_sid_matching():
    ex = examples_frame()
    # the LLM's output before collision resolution: SIDs, as lists or tuples
    gen = [[[1, 2]], [(9, 9), (1, 3)], [(2, 3)], []]
    res = evaluate(gen, ex, k=2, match="sid")
    assert res.loc["overall", "recall@2"] == 0.5 and res.loc["unfamiliar", "recall@2"] == 0.0
    assignments = {"a": (1, 2), "a2": (1, 2), "b": (1, 3)}
    assert episodes_to_sids([["a", "a2", "zz", "b"]], assignments) == [[(1, 2), (1, 3)]]


def test_prefix_ceiling():
    gen = [[(1, 2, 3), (1, 5, 6)], [(4, 4, 4)]]
    targets = [(1, 5, 9), (4, 4, 4)]
    assert prefix_ceilings(gen, targets) == {1: 1.0, 2: 1.0, 3: 0.5}
    assert prefix_ceiling(gen, targets, 2, k=1) == 0.5  # only (1, 2, 3) is in the top 1
    # the ceiling never decreases as fewer tokens are required
    assert prefix_ceiling(gen, targets, 1) >= prefix_ceiling(gen, targets, 2) >= prefix_ceiling(gen, targets, 3)


def test_future_targets_as_relevant_sets():
    ex = pd.DataFrame({
        "user_id": ["u", "u", "u", "u", "v"],
        "ts": [T0, T0 + pd.Timedelta(days=1), T0 + pd.Timedelta(days=3), T0 + pd.Timedelta(days=1), T0],
        "target_episode_id": ["a", "b", "c", "f", "z"],
        "mode": ["unfamiliar", "unfamiliar", "unfamiliar", "familiar", "unfamiliar"],
    })
    rel = future_targets(ex, pd.Timedelta(days=2))
    assert rel.tolist() == [{"a", "b"}, {"b", "c"}, {"c"}, {"f"}, {"z"}]
    res = evaluate([["b"], [], [], [], []], ex.assign(relevant=rel), k=1, relevant_col="relevant")
    assert res.loc["overall", "recall@1"] == pytest.approx(0.5 / 5)
    assert res.loc["overall", "hit_rate@1"] == pytest.approx(1 / 5)


def test_paired_bootstrap_separates_a_real_gap_from_noise():
    rng = np.random.default_rng(1)
    b = (rng.random(400) < 0.2).astype(float)
    better = np.maximum(b, (rng.random(400) < 0.15).astype(float))  # b's hits plus more
    gap = paired_bootstrap(better, b)
    assert gap["n"] == 400 and gap["diff"] == pytest.approx(better.mean() - b.mean())
    assert 0 < gap["lo"] <= gap["diff"] <= gap["hi"] and gap["p_not_better"] == 0.0
    same = paired_bootstrap(b, b)
    assert same["diff"] == same["lo"] == same["hi"] == 0.0 and same["p_not_better"] == 1.0
    coin = paired_bootstrap((rng.random(100) < 0.3).astype(float), (rng.random(100) < 0.3).astype(float))
    assert coin["lo"] < 0 < coin["hi"]  # two coins of the same bias: no winner
    with pytest.raises(ValueError, match="equal lengths"):
        paired_bootstrap([1.0, 0.0], [1.0])

"""Per-user metrics (hand-computed), familiarity segments, summaries and full-ranking top-k."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glide_model.sequential.metrics import METRICS, compare, familiarity, per_user_metrics, summarize
from glide_model.sequential.ranking import PAD, ScoreRanker, top_k_from_scores
from glide_model.sequential.split import EvalSet


def test_per_user_metrics_by_hand():
    top = np.full((3, 30), PAD)
    top[0, :3] = [7, 4, 9]  # target 9 at rank 3
    top[1, 12] = 5  # target 5 at rank 13
    top[2, 0] = 1  # target 2 missing
    values = per_user_metrics(top, np.array([9, 5, 2]))
    assert list(values) == list(METRICS)
    assert values["recall@5"].tolist() == [1, 0, 0] and values["recall@10"].tolist() == [1, 0, 0]
    assert values["recall@30"].tolist() == [1, 1, 0] and values["hr@30"].tolist() == [1, 1, 0]
    assert values["ndcg@5"][0] == pytest.approx(1 / math.log2(4))
    assert values["ndcg@30"][1] == pytest.approx(1 / math.log2(14)) and values["ndcg@10"][1] == 0


def test_per_user_metrics_needs_30():
    with pytest.raises(ValueError, match="need 30"):
        per_user_metrics(np.zeros((1, 10), dtype=int), np.array([0]))


def test_familiarity_and_summary():
    brands = np.array([0, 0, 1, -1, 2])
    ev = EvalSet(users=np.arange(4), histories=(np.array([0]), np.array([2]), np.array([3]), np.array([1, 2])),
                 targets=np.array([1, 0, 3, 2]))
    segments = familiarity(ev, brands)
    # same brand seen / not seen / target without brand / brand seen later in the history
    assert segments.tolist() == ["familiar", "unfamiliar", "unfamiliar", "familiar"]
    assert familiarity(ev, None) is None
    summary = summarize({"recall@10": [1, 0, 0, 1]}, segments)
    assert summary["overall"] == {"recall@10": 0.5, "n": 4}
    assert summary["familiar"] == {"recall@10": 1.0, "n": 2} and summary["unfamiliar"]["recall@10"] == 0.0
    assert list(summarize({"recall@10": [1, 0]}, None)) == ["overall"]
    empty = summarize({"recall@10": [1.0]}, np.array(["familiar"], dtype=object))
    assert empty["unfamiliar"]["n"] == 0 and math.isnan(empty["unfamiliar"]["recall@10"])


def test_compare_is_paired():
    a = {"recall@10": [1, 1, 0, 1]}
    b = {"recall@10": [0, 1, 0, 0]}
    ci = compare(a, b, metrics=["recall@10"])["recall@10"]
    assert ci["diff"] == pytest.approx(0.5) and ci["n"] == 4 and ci["lo"] <= 0.5 <= ci["hi"]


def test_top_k_orders_ties_excludes_history_and_pads():
    scores = np.array([[0.1, 0.9, 0.5, 0.9], [3.0, 2.0, 1.0, 0.0]])
    assert top_k_from_scores(scores, [[], []], 3, exclude_history=False).tolist() == [[1, 3, 2], [0, 1, 2]]
    assert top_k_from_scores(scores, [[1], [0, 2]], 3, exclude_history=True).tolist() == [[3, 2, 0], [1, 3, PAD]]
    assert top_k_from_scores(scores, [[], []], 6, exclude_history=False)[0].tolist() == [1, 3, 2, 0, PAD, PAD]
    assert scores[0, 1] == 0.9  # the caller's scores are not masked in place


def test_score_ranker_batches():
    class Fixed(ScoreRanker):
        batch_size = 2

        def scores(self, histories):
            return np.tile(np.arange(5.0), (len(histories), 1))

    top = Fixed().top_k([np.array([4])] * 5, 2, exclude_history=True)
    assert top.tolist() == [[3, 2]] * 5

"""The calibration statistics on hand-computed cases."""

from __future__ import annotations

import math

import numpy as np
import pytest

from glide_model.judge.calibration import (
    auc, bootstrap_ratio_ci, calibrate, cohen_kappa, pair_counts, pairwise_by_group, spearman,
)


def test_pairwise_agreement_by_hand() -> None:
    # truth 3 > 2 > 1; judge orders (a, b) right, (a, c) right, (b, c) tied -> 2.5 of 3.
    assert pair_counts([5, 2, 2], [3, 2, 1]) == (2.5, 3)
    # (a, b) is a truth tie within tol and not compared; (a, c) disagrees, (b, c) agrees.
    assert pair_counts([1, 5, 3], [1.0, 1.01, 0.0], tol=0.05) == (1.0, 2)
    agreed, pairs = pairwise_by_group([5, 2, 2, 1, 4], [3, 2, 1, 0, 1], ["u", "u", "u", "v", "v"])
    assert agreed.tolist() == [2.5, 1.0] and pairs.tolist() == [3, 1]


def test_auc_by_hand() -> None:
    # positives 0.9, 0.4; negatives 0.4, 0.1: pairs (0.9>0.4, 0.9>0.1, 0.4=0.4 half, 0.4>0.1) -> 3.5 / 4.
    assert auc([0.9, 0.4, 0.4, 0.1], [True, True, False, False]) == pytest.approx(0.875)
    assert math.isnan(auc([1, 2], [True, True]))


def test_spearman_by_hand() -> None:
    assert spearman([1, 2, 3, 4], [10, 20, 30, 40]) == pytest.approx(1.0)
    assert spearman([1, 2, 3, 4], [4, 3, 2, 1]) == pytest.approx(-1.0)
    # ranks x = (1, 2, 3), y = (1, 3, 2): 1 - 6 * (0 + 1 + 1) / (3 * 8) = 0.5
    assert spearman([1, 2, 3], [5, 9, 7]) == pytest.approx(0.5)
    assert math.isnan(spearman([1, 1, 1], [1, 2, 3]))


def test_cohen_kappa_by_hand() -> None:
    a = [1, 1, 2, 2]
    b = [1, 2, 2, 2]
    # p_o = 3/4, p_e = (2/4 * 1/4) + (2/4 * 3/4) = 1/2 -> kappa = (0.75 - 0.5) / 0.5 = 0.5
    assert cohen_kappa(a, b) == pytest.approx(0.5)
    assert cohen_kappa([1, 2, 3], [1, 2, 3], categories=[1, 2, 3], weights="quadratic") == pytest.approx(1.0)
    # One-step disagreements cost less under quadratic weights than unweighted.
    x, y = [1, 2, 3, 4, 5, 1], [2, 2, 3, 4, 4, 1]
    assert cohen_kappa(x, y, range(1, 6), weights="quadratic") > cohen_kappa(x, y, range(1, 6))


def test_bootstrap_ci_over_users() -> None:
    ci = bootstrap_ratio_ci(np.array([3.0, 3.0, 3.0]), np.array([3, 3, 3]))
    assert ci == (1.0, 1.0)
    lo, hi = bootstrap_ratio_ci(np.array([10.0, 0.0, 5.0, 5.0]), np.array([10, 10, 10, 10]), n_boot=4000)
    assert 0.0 <= lo < 0.5 < hi <= 1.0


def test_calibrate_record() -> None:
    rng = np.random.default_rng(0)
    truth = rng.random(60)
    users = np.repeat(np.arange(10), 6)
    perfect = calibrate(truth * 4 + 1, truth, truth > 0.5, users)
    assert perfect.pairwise_agreement == 1.0 and perfect.pairwise_agreement_ci == (1.0, 1.0)
    assert perfect.spearman == pytest.approx(1.0) and perfect.auc == 1.0 and perfect.n_users == 10
    constant = calibrate(np.full(60, 3.0), truth, truth > 0.5, users)
    assert constant.pairwise_agreement == 0.5 and constant.auc == 0.5  # all ties: chance
    rec = perfect.to_record()
    assert set(rec) >= {"n_pairs", "pairwise_agreement", "pairwise_agreement_ci", "spearman", "auc"}

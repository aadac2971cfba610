import math

import numpy as np
import pytest

from glide_model.sids.metrics import (
    codebook_usage,
    collision_stats,
    intra_bucket_similarity,
    items_per_prefix,
    random_pair_similarity,
    sid_report,
)


def test_collision_stats_counts_items_in_shared_sids():
    codes = np.array([[0, 0], [0, 0], [0, 0], [1, 0], [1, 1], [1, 1]])
    s = collision_stats(codes)
    assert s["collision_rate"] == pytest.approx(5 / 6)
    assert s["unique_sids"] == 3 and s["colliding_sids"] == 2
    assert s["mean_items_per_colliding_sid"] == pytest.approx(2.5) and s["max_items_per_sid"] == 3


def test_intra_bucket_similarity_is_mean_pairwise_cosine_per_bucket():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(6, 8))
    codes = np.array([[0], [0], [0], [1], [2], [2]])
    unit = emb / np.linalg.norm(emb, axis=1, keepdims=True)
    b0 = np.mean([unit[i] @ unit[j] for i in range(3) for j in range(3) if i != j])
    b2 = unit[4] @ unit[5]
    assert intra_bucket_similarity(codes, emb) == pytest.approx((b0 + b2) / 2)
    assert math.isnan(intra_bucket_similarity(np.arange(6)[:, None], emb))


def test_codebook_usage_and_entropy():
    codes = np.array([[0, 0], [1, 0], [2, 0], [3, 0]])
    u = codebook_usage(codes, 8)
    assert u["codebook_usage"] == [0.5, 0.125]
    assert u["codebook_entropy_bits"] == [2.0, 0.0] and u["max_entropy_bits"] == 3.0


def test_report_and_random_baseline():
    rng = np.random.default_rng(0)
    emb = rng.normal(size=(100, 16))
    assert abs(random_pair_similarity(emb)) < 0.05
    rep = sid_report(rng.integers(0, 4, size=(100, 2)), emb, 4)
    assert {"collision_rate", "intra_bucket_similarity", "codebook_usage", "unique_sids"} <= set(rep)


def test_items_per_prefix_shows_where_the_hierarchy_stops_sharing():
    # 6 items: 2 level-1 codes, 4 two-token prefixes, 5 full SIDs
    codes = np.array([[0, 0, 0], [0, 0, 1], [0, 1, 0], [1, 0, 0], [1, 1, 0], [1, 1, 0]])
    assert items_per_prefix(codes) == pytest.approx([3.0, 1.5, 1.2])
    assert sid_report(codes, np.eye(6), 2)["items_per_prefix"] == pytest.approx([3.0, 1.5, 1.2])

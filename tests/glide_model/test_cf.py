"""glide_model.cf: weighted ALS user embeddings on a log with planted taste groups."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glide_model.cf import CFModel, interaction_matrix, train_cf
from tests.glide_model.planted_world import T0, planted_world


@pytest.fixture(scope="module")
def world():
    return planted_world(seed=1)


@pytest.fixture(scope="module")
def split(world):
    cut = T0 + pd.Timedelta(days=45)
    return world.listens[world.listens.ts < cut], world.listens[world.listens.ts >= cut]


def test_confidence_matrix_is_log1p_of_summed_seconds():
    listens = pd.DataFrame(
        {"user_id": ["b", "a", "a", "a"], "show_id": ["x", "x", "x", "y"], "listened_seconds": [0, 100, 50, 9]}
    )
    m, users, items = interaction_matrix(listens, alpha=2.0)
    # zero-second plays carry no preference: b, with nothing else, gets no row
    assert users.tolist() == ["a"] and items.tolist() == ["x", "y"]
    dense = m.toarray()
    assert dense[0, 0] == pytest.approx(1 + 2 * np.log1p(150))
    assert dense[0, 1] == pytest.approx(1 + 2 * np.log1p(9))


def test_training_is_deterministic_by_seed(split):
    train, _ = split
    a = train_cf(train, factors=8, iterations=5, seed=3)
    b = train_cf(train, factors=8, iterations=5, seed=3)
    c = train_cf(train, factors=8, iterations=5, seed=4)
    assert np.array_equal(a.user_factors, b.user_factors) and np.array_equal(a.item_factors, b.item_factors)
    assert not np.allclose(a.user_factors, c.user_factors)
    emb = a.user_embeddings()
    assert list(emb.columns) == ["user_id", "embedding"] and len(emb) == train.user_id.nunique()
    assert emb.embedding.iloc[0].dtype == np.float32 and emb.embedding.iloc[0].shape == (8,)


def test_save_load_roundtrip(tmp_path, split):
    model = train_cf(split[0], factors=8, iterations=3, level="episode")
    loaded = CFModel.load(model.save(tmp_path / "cf"))
    assert loaded.config == model.config
    assert np.array_equal(loaded.user_factors, model.user_factors)
    assert loaded.item_ids.tolist() == model.item_ids.tolist()
    assert loaded.recommend("user_00001", 5) == model.recommend("user_00001", 5)
    with pytest.raises(FileNotFoundError, match="CFModel.save"):
        CFModel.load(tmp_path / "nothing")


def test_user_embeddings_recover_planted_groups(world, split):
    model = train_cf(split[0], factors=16, seed=0)
    emb = model.user_embeddings()
    x = np.stack(emb.embedding.to_numpy())
    x /= np.linalg.norm(x, axis=1, keepdims=True)
    groups = emb.user_id.map(world.user_group).to_numpy()
    sim = x @ x.T
    same = sim[groups[:, None] == groups[None, :]].mean()
    other = sim[groups[:, None] != groups[None, :]].mean()
    assert same > other + 0.3, (same, other)


def test_cf_beats_popularity_on_held_out_new_shows(split):
    """Sanity metric: recall@5 of shows a user first listens to after the cut."""
    train, test = split
    model = train_cf(train, factors=16, seed=0)
    seen = train.groupby("user_id").show_id.apply(set)
    popular = train.groupby("show_id").user_id.nunique().sort_values(ascending=False, kind="stable").index
    recall_cf, recall_pop = [], []
    for user, shows in test.groupby("user_id").show_id:
        new = set(shows) - seen.get(user, set())
        if not new or user not in seen:
            continue
        recall_cf.append(len(new & set(model.recommend(user, 5, exclude=seen[user]))) / len(new))
        recall_pop.append(len(new & set([s for s in popular if s not in seen[user]][:5])) / len(new))
    assert len(recall_cf) > 100
    assert np.mean(recall_cf) > np.mean(recall_pop) + 0.15, (np.mean(recall_cf), np.mean(recall_pop))


def test_fold_in_reproduces_a_training_user(split):
    train, _ = split
    model = train_cf(train, factors=16, seed=0)
    user = model.user_ids[7]
    seconds = train[train.user_id == user].groupby("show_id").listened_seconds.sum().to_dict()
    v, x = model.fold_in(seconds), model.user_vector(user)
    assert v @ x / np.linalg.norm(v) / np.linalg.norm(x) > 0.95
    assert not model.fold_in({"no_such_show": 100}).any()

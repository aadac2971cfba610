"""Popularity and item-kNN: counts, co-occurrence by hand, and kNN learning the ring."""

from __future__ import annotations

import numpy as np

from glide_model.sequential.itemknn import ItemKNNConfig, cooccurrence, fit_itemknn, tune_itemknn
from glide_model.sequential.popularity import fit_popularity, item_counts
from glide_model.sequential.ranking import validation_recall


def test_popularity_ranks_by_training_counts():
    train = [np.array([2, 1, 2]), np.array([2, 0])]
    assert item_counts(train, 4).tolist() == [1, 1, 3, 0]
    top = fit_popularity(train, 4).top_k([np.array([2])], 3, exclude_history=True)
    assert top.tolist() == [[0, 1, 3]]  # ties by index, the consumed item 2 excluded


def test_cooccurrence_by_hand():
    train = [np.array([0, 1, 2]), np.array([2, 1])]
    near = cooccurrence(train, 3, window=1).toarray()
    assert near.tolist() == [[0, 1, 0], [1, 0, 2], [0, 2, 0]]
    anywhere = cooccurrence(train, 3, window=None).toarray()
    assert anywhere[0, 2] == anywhere[2, 0] == 1 and anywhere[1, 2] == 2


def test_scores_follow_the_recent_history():
    train = [np.array([0, 1]), np.array([0, 1]), np.array([2, 3])]
    ranker = fit_itemknn(train, 4, ItemKNNConfig(window=1, shrink=0.0, recent=1))
    assert ranker.top_k([np.array([3, 0])], 1, exclude_history=True).tolist() == [[1]]


def test_tuned_knn_beats_popularity_on_the_ring(ring, popularity_recall):
    dataset, split = ring
    ranker, tried = tune_itemknn(split.train, split.valid, dataset.n_items)
    assert len(tried) > 1
    assert validation_recall(ranker, split.test) > popularity_recall + 0.4

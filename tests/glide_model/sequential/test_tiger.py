"""TIGER-style generation: only catalog SIDs come out of the beam search, collisions map to items by
popularity, and the model learns the ring from SID tokens alone."""

from __future__ import annotations

import numpy as np
import torch

from glide_model.sequential.ranking import PAD, validation_recall
from glide_model.sequential.tiger import TigerConfig, TigerNet, history_tokens
from glide_model.sequential.tiger_decode import TigerRanker, TrieMasks, beam_search, items_by_sid
from glide_model.sequential.tiger_train import fit_tiger, length_batches, training_pairs
from glide_model.sids.trie import SidTrie
from tests.glide_model.sequential.conftest import counts

SMALL = dict(hidden=32, heads=2, layers=1, batch_size=32, lr=3e-3, max_epochs=15, patience=15, threads=1)


def test_history_tokens_layout():
    codes = np.array([[0, 1], [2, 0], [1, 1]])
    inputs = history_tokens([np.array([0, 2]), np.array([1])], codes, codebook_size=3, history=5)
    # token = 1 + level * K + code; padding 0 on the right; age 0 = newest item
    assert inputs["tokens"].tolist() == [[1, 5, 2, 5], [3, 4, 0, 0]]
    assert inputs["ages"].tolist() == [[1, 1, 0, 0], [0, 0, 0, 0]]
    assert inputs["levels"].tolist() == [[0, 1, 0, 1], [0, 1, 0, 0]]


def test_training_pairs_and_batches():
    prefixes, targets = training_pairs([np.array([1, 2, 3]), np.array([4])], history=1)
    assert [p.tolist() for p in prefixes] == [[1], [2]] and targets.tolist() == [2, 3]
    batches = length_batches(np.arange(100) % 7, 8, np.random.default_rng(0))
    assert sorted(np.concatenate(batches).tolist()) == list(range(100))


def test_beam_search_only_yields_catalog_sids():
    torch.manual_seed(0)
    codes = np.array([[0, 1, 2], [0, 1, 3], [2, 2, 2], [3, 0, 1]])
    net = TigerNet(3, 4, TigerConfig(hidden=16, heads=2, layers=1)).eval()
    inputs = history_tokens([np.array([0]), np.array([2, 3])], codes, 4, history=5)
    with torch.no_grad():
        found = beam_search(net, inputs, TrieMasks(SidTrie(codes, 4)), beams=6)
    valid = {tuple(c) for c in codes.tolist()}
    for row in found:
        sids = [tuple(s) for s in row.tolist() if s[0] >= 0]
        assert set(sids) == valid and len(sids) == 4  # every catalog SID once, no invented one
        assert (row[len(sids):] == -1).all()


def test_collisions_go_to_the_most_popular_item():
    codes = np.array([[0, 0], [1, 1], [0, 0], [0, 0]])
    assert items_by_sid(codes, np.array([1.0, 5.0, 3.0, 3.0])) == {(0, 0): [2, 3, 0], (1, 1): [1]}
    net = TigerNet(2, 2, TigerConfig(hidden=16, heads=2, layers=1))
    ranker = TigerRanker(net, codes, np.array([1.0, 5.0, 3.0, 3.0]), beams=4)
    top = ranker.top_k([np.array([3])], 4, exclude_history=True)[0].tolist()
    assert sorted(i for i in top if i != PAD) == [0, 1, 2] and top[-1] == PAD  # consumed 3 dropped
    assert top.index(2) < top.index(0)


def test_tiger_beats_popularity_on_the_ring(ring, popularity_recall):
    dataset, split = ring
    ranker, log = fit_tiger(split.train, split.valid, dataset.sids.codes, counts(split, dataset.n_items),
                            TigerConfig(**SMALL))
    assert validation_recall(ranker, split.test) > popularity_recall + 0.4
    assert log.best_valid == max(e["valid_recall@10"] for e in log.epochs)

"""SASRec learns "what follows what" where popularity cannot, and keeps its best epoch."""

from __future__ import annotations

import numpy as np
import torch

from glide_model.sequential.ranking import validation_recall
from glide_model.sequential.sasrec import SASRecConfig, SASRecNet, fit_sasrec, left_padded, training_windows

SMALL = dict(hidden=32, max_len=10, batch_size=32, lr=3e-3, max_epochs=25, patience=25, threads=1)


def test_windows_are_shifted_and_left_padded():
    inputs, targets = training_windows([np.array([4, 5, 6]), np.array([7])], max_len=3)
    assert inputs.tolist() == [[0, 5, 6]] and targets.tolist() == [[0, 6, 7]]  # tokens are item + 1
    assert left_padded([np.arange(5)], 3).tolist() == [[3, 4, 5]]


def test_attention_is_causal():
    net = SASRecNet(10, SASRecConfig(hidden=16, max_len=4, dropout=0.0)).eval()
    a = torch.tensor([[1, 2, 3, 4]])
    b = torch.tensor([[1, 2, 3, 9]])  # only the last item differs
    with torch.no_grad():
        assert torch.allclose(net(a)[:, :3], net(b)[:, :3], atol=1e-6)
        assert not torch.allclose(net(a)[:, 3], net(b)[:, 3])
        assert torch.isfinite(net(torch.tensor([[0, 0, 1, 2]]))).all()  # padding rows are not NaN


def test_sasrec_beats_popularity_on_the_ring(ring, popularity_recall):
    dataset, split = ring
    ranker, log = fit_sasrec(split.train, split.valid, dataset.n_items, SASRecConfig(**SMALL))
    assert validation_recall(ranker, split.test) > popularity_recall + 0.4
    assert log.best_valid == max(e["valid_recall@10"] for e in log.epochs)
    assert 1 <= log.best_epoch <= len(log.epochs)


def test_without_validation_trains_all_epochs(ring):
    dataset, split = ring
    empty = split.valid.subset([])
    _, log = fit_sasrec(split.train, empty, dataset.n_items, SASRecConfig(**{**SMALL, "max_epochs": 2}))
    assert len(log.epochs) == 2 and log.best_epoch == 2

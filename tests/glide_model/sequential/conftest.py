"""The ring dataset, split once per module: what the model tests learn from."""

from __future__ import annotations

import numpy as np
import pytest

from glide_model.sequential.dataset import load_dataset
from glide_model.sequential.popularity import fit_popularity
from glide_model.sequential.ranking import validation_recall
from glide_model.sequential.split import leave_one_out
from tests.glide_model.sequential.synthetic import ring_items, ring_sids, write_dataset


@pytest.fixture(scope="module")
def ring(tmp_path_factory):
    folder = write_dataset(tmp_path_factory.mktemp("ring"), items=ring_items(), sids=ring_sids())
    dataset = load_dataset(folder, folder / "Ring.sids.json")
    return dataset, leave_one_out(dataset.sequences)


@pytest.fixture(scope="module")
def popularity_recall(ring):
    """Test Recall@10 (history excluded) of popularity on the ring: the floor the models must clear."""
    dataset, split = ring
    recall = validation_recall(fit_popularity(split.train, dataset.n_items), split.test)
    assert recall < 0.3  # the ring is popularity-proof: every item about equally frequent
    return recall


def counts(split, n_items: int) -> np.ndarray:
    return np.bincount(np.concatenate(split.train), minlength=n_items).astype(float)

"""Fixtures for the Semantic ID tests: clustered toy embeddings and the real text encoder (loaded once)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.glide_model.sids.sid_fixtures import clustered_embeddings


@pytest.fixture(scope="session")
def emb() -> np.ndarray:
    return clustered_embeddings()


@pytest.fixture(scope="session")
def text_encoder():
    from glide_model.sids.encoder import TextEncoder

    encoder = TextEncoder()
    encoder.model  # load once per session (~5-8 s)
    return encoder

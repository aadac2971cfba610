"""Fixtures for the Semantic ID tests: clustered toy embeddings (the real text encoder is in tests/conftest.py)."""

from __future__ import annotations

import numpy as np
import pytest
from tests.glide_model.sids.sid_fixtures import clustered_embeddings


@pytest.fixture(scope="session")
def emb() -> np.ndarray:
    return clustered_embeddings()

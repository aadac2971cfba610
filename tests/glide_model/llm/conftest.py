"""Shared fixtures: the tiny world and one trained run.

Tiny-model ops are far too small for intra-op threads: on this shared 2-core machine two OpenMP
threads made the shared training run ~25x slower (100 s vs 4 s) under load, so every test here
runs single-threaded (and restores the setting afterwards).
"""

from __future__ import annotations

from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import torch

from glide_model.llm.pipeline import GlideTrainConfig, GlideTrainResult, train_glide
from tests.glide_model.llm.tiny_world import make_world, run_config


@contextmanager
def one_thread() -> Iterator[None]:
    before = torch.get_num_threads()
    torch.set_num_threads(1)
    try:
        yield
    finally:
        torch.set_num_threads(before)


@pytest.fixture(autouse=True)
def _single_threaded() -> Iterator[None]:
    with one_thread():
        yield


@pytest.fixture(scope="session")
def world():
    return make_world()


@pytest.fixture(scope="session")
def trained(world, tmp_path_factory) -> tuple[GlideTrainConfig, GlideTrainResult]:
    """One full train_glide run (grounding stage 1 + 2, instruction tuning) shared by several tests."""
    catalog, codes, examples = world
    cfg = run_config(tmp_path_factory.mktemp("glide_run"))
    with one_thread():
        return cfg, train_glide(cfg, catalog, codes, examples)

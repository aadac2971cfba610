"""Shared fixtures: a real embedded stack (tansu + Feast) per test module, torn down after."""

from __future__ import annotations

import os
import uuid
from pathlib import Path

import pytest

REPO_ROOT = Path(__file__).resolve().parent.parent
SHARED = REPO_ROOT.parent / "shared"

# Nothing in the test suite may reach a model hub.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")


def pytest_collection_modifyitems(config, items):
    if SHARED.joinpath("data").is_dir():
        return
    skip = pytest.mark.skip(reason=f"{SHARED}/data is absent")
    for item in items:
        if "shared_data" in item.keywords:
            item.add_marker(skip)


@pytest.fixture
def unique_project(monkeypatch) -> str:
    """A Feast project name of its own, so tests sharing Redis/Postgres never see each other's rows."""
    name = f"t{uuid.uuid4().hex[:10]}"
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", name)
    return name


@pytest.fixture(scope="module")
def embedded_stack(tmp_path_factory):
    """A running embedded stack (broker + topics + Feast applied) for one test module."""
    from glide.config import load_settings
    from infra import stack

    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("glide")))
    status = stack.up(settings)
    yield settings, status
    stack.down(settings)


@pytest.fixture(scope="session")
def text_encoder():
    """The real all-MiniLM text encoder, loaded once per session (~5-8 s)."""
    from glide_model.sids.encoder import TextEncoder

    encoder = TextEncoder()
    encoder.model
    return encoder

"""benchmarks/ingest.py runs on a fresh Feast project: carried by its settings, exported only while it runs."""

from __future__ import annotations

import os

from glide.config import load_settings


def test_the_feast_project_is_a_setting(monkeypatch):
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "from_env")
    assert load_settings().feast_project == "from_env"
    assert load_settings(feast_project="bench1").feast_project == "bench1"


def test_ingest_bench_exports_its_feast_project_only_for_the_block(monkeypatch):
    from benchmarks.ingest import _exported_feast_project

    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "before")
    with _exported_feast_project("bench1"):
        assert os.environ["GLIDE_FEAST_PROJECT"] == "bench1"
    assert os.environ["GLIDE_FEAST_PROJECT"] == "before"
    monkeypatch.delenv("GLIDE_FEAST_PROJECT")
    with _exported_feast_project("bench2"):
        assert os.environ["GLIDE_FEAST_PROJECT"] == "bench2"
    assert "GLIDE_FEAST_PROJECT" not in os.environ

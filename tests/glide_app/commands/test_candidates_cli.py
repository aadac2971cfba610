"""`glide candidates USER...` through the real `glide` click group, over a real Feast store (embedded
profile) holding sets written as the GLIDE worker writes them, and a catalog DB for the titles."""

from __future__ import annotations

import json
import time

import pandas as pd
import pytest
from click.testing import CliRunner

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide_app.cli import cli
from glide_model.sids.trie import SidTrie
from streams.candidates import CandidateService, CandidateSet
from streams.feature_store import apply_definitions, open_store
from tests.streams.fakes import EchoBackend, catalog_table

EPISODES = {"e1": "Morning headlines", "e2": "Deep dive: rivers", "e3": "Chess openings"}


@pytest.fixture
def data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_PROFILE", "embedded")
    monkeypatch.delenv("GLIDE_CATALOG_URL", raising=False)
    settings = load_settings(data_dir=str(tmp_path))
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": "s1", "title": "Show 1", "locale": "en-US"}])
    db.upsert_episodes(pd.DataFrame([
        {"episode_id": e, "show_id": "s1", "title": title, "description": "", "locale": "en-US", "playable": True,
         "popularity": 1.0, "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 60, "topic": "news"}
        for e, title in EPISODES.items()]))
    store = open_store(settings)
    apply_definitions(store, settings)
    codes, table, sids = catalog_table({"e1": ((0, 0), "s1", 1.0, "en-US")})
    service = CandidateService(store, EchoBackend(SidTrie(codes, 2), sids), table, {"e1": "s1"}, "m1")
    now_ms = int(time.time() * 1000)
    service.publish([
        CandidateSet("u1", "x", "familiar", ["e1", "e2"], [-0.5, -1.5], "m1", now_ms, 1.0, quantizer_version="q1",
                     surface="search"),
        CandidateSet("u1", "x", "unfamiliar", ["e3"], [-0.25], "m1", now_ms - 7_200_000, 1.0, quantizer_version="q1",
                     surface="home"),
    ])
    return tmp_path


def _invoke(args: list[str]):
    return CliRunner().invoke(cli, ["candidates", *args], catch_exceptions=False)


def test_the_table_shows_both_modes_with_titles(data_dir):
    result = _invoke(["u1", "u-none", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    out = " ".join(result.output.split())
    assert "u1: familiar candidates (model m1, quantizer q1, surface search" in out
    assert "u1: unfamiliar candidates" in out
    for title in EPISODES.values():
        assert title in out
    assert "u-none: no familiar set cached" in out and "u-none: no unfamiliar set cached" in out


def test_json_is_one_object_on_the_last_line(data_dir):
    result = _invoke(["u1", "u-none", "--json", "--max-age-s", "3600", "--data-dir", str(data_dir)])
    assert result.exit_code == 0, result.output
    got = json.loads(result.stdout.strip().splitlines()[-1])
    u1 = got["users"]["u1"]
    assert u1["sets"]["familiar"]["episode_ids"] == ["e1", "e2"] and u1["sets"]["familiar"]["scores"] == [-0.5, -1.5]
    assert u1["sets"]["familiar"]["model_version"] == "m1" and u1["sets"]["familiar"]["surface"] == "search"
    assert list(u1["stale"]) == ["unfamiliar"] and u1["stale"]["unfamiliar"] > 7000  # two hours old
    assert got["users"]["u-none"] == {"sets": {}, "stale": {}, "missing": ["familiar", "unfamiliar"]}
    assert (got["sets"], got["stale"], got["missing"]) == (1, 1, 2)


def test_one_mode(data_dir):
    result = _invoke(["u1", "--mode", "unfamiliar", "--json", "--data-dir", str(data_dir)])
    got = json.loads(result.stdout.strip().splitlines()[-1])
    assert list(got["users"]["u1"]["sets"]) == ["unfamiliar"]
    assert got["users"]["u1"]["sets"]["unfamiliar"]["episode_ids"] == ["e3"]

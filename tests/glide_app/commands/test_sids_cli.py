"""`glide sids fit | refresh | report` end to end, through the real `glide` click group.

The embedding cache is filled with the session's encoder first, so the commands find every text
cached and never load the model again (that path is what re-runs rely on)."""

import json

import numpy as np
import pandas as pd
import pytest
from click.testing import CliRunner
from tests.glide_model.sids.sid_fixtures import toy_episodes

from glide_app.cli import cli
from glide_model.sids.encoder import EmbeddingCache, cache_dir_for, embed_episodes, episode_texts, text_key
from glide_model.sids.store import current_version, read_assignments, version_dir


REPORT_ARGS = ["--source", "world", "--max-items", "24", "--seed", "0"]


@pytest.fixture(scope="module")
def cached_texts(text_encoder):
    """Texts the commands below will embed (toy world + the report's world sample), embedded once."""
    from glide_app.jobs.sid_sources import synthetic_world_episodes

    sample = synthetic_world_episodes(0).sample(n=24, random_state=0)
    texts = episode_texts(toy_episodes()) + episode_texts(sample)
    return texts, embed_episodes(text_encoder, [{"title": t} for t in texts], progress=False)


@pytest.fixture
def data_dir(tmp_path, text_encoder, cached_texts, monkeypatch):
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path))
    monkeypatch.delenv("GLIDE_CATALOG_URL", raising=False)
    monkeypatch.setenv("GLIDE_PROFILE", "embedded")
    world = tmp_path / "world"
    world.mkdir()
    toy_episodes().to_parquet(world / "episodes.parquet", index=False)
    texts, vectors = cached_texts
    EmbeddingCache(cache_dir_for(tmp_path, text_encoder.name)).put([text_key(text_encoder.name, t) for t in texts], vectors)
    return tmp_path


def _invoke(args):
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    return result


def test_fit_saves_versioned_artifacts_and_current(data_dir):
    result = _invoke(["sids", "fit", "--codebook", "3", "--levels", "2", "--seed", "1"])
    assert result.exit_code == 0, result.output
    version = current_version(data_dir)
    assert version.startswith("rkmeans-2x3-") and version in result.stdout
    directory = version_dir(data_dir)
    meta = json.loads((directory / "quantizer.json").read_text())
    assert meta["encoder"] == "all-MiniLM-L6-v2" and meta["n_items"] == 12 and meta["seed"] == 1
    assert len(read_assignments(directory)) == 12


def test_fit_with_k_larger_than_catalog_is_a_clean_cli_error(data_dir):
    result = _invoke(["sids", "fit", "--codebook", "64"])
    assert result.exit_code != 0
    assert "larger than the catalog (N=12)" in result.output


def test_fit_without_world_names_the_fix(data_dir, tmp_path):
    result = _invoke(["sids", "fit", "--world", str(tmp_path / "nowhere")])
    assert result.exit_code != 0 and "glide world generate" in result.output


def test_refresh_writes_assignments_to_the_catalog(data_dir, text_encoder):
    from glide.catalog.db import CatalogDB
    from glide.config import load_settings

    assert _invoke(["sids", "fit", "--codebook", "4", "--levels", "2"]).exit_code == 0
    db = CatalogDB.from_settings(load_settings())
    db.migrate()
    episodes = toy_episodes()
    shows = pd.DataFrame(
        {"show_id": sorted(set(episodes["show_id"])), "title": "t", "description": "", "host": "h",
         "topics": [["x"]] * 3, "locale": "en-US", "popularity": 1.0}
    )
    db.upsert_shows(shows)
    db.upsert_episodes(episodes)
    result = _invoke(["sids", "refresh"])
    assert result.exit_code == 0, result.output
    version = current_version(data_dir)
    stored = db.sid_assignments(version)
    assert stored == read_assignments(version_dir(data_dir))  # same quantizer, same text -> same SIDs
    registered = db.get_quantizer(version)
    assert registered["kind"] == "rkmeans" and registered["levels"] == 2 and registered["codebook_size"] == 4
    assert db.job_runs("sids-refresh")[0]["status"] == "succeeded"

    # serving picks up the stored SIDs and encodes an episode published after the refresh
    from glide_model.sids.live import SidIndex

    new = episodes.iloc[[0]].assign(episode_id="ep_new", title="Penalty shoot-out drama", popularity=99.0)
    db.upsert_episodes(new)
    index = SidIndex.from_catalog(db, data_dir, encoder=text_encoder)
    assert len(index.table) == 13 and "ep_new" in index
    assert all(index.table.codes_of(e) == c for e, c in stored.items())
    assert index.resolve(index.table.codes_of("ep_new")) == "ep_new"


def test_refresh_without_a_fit_says_so(data_dir):
    result = _invoke(["sids", "refresh"])
    assert result.exit_code != 0 and "glide sids fit" in result.output


def test_report_json_contract_and_plot(data_dir, tmp_path):
    plot = tmp_path / "r.png"
    result = _invoke(
        ["sids", "report", *REPORT_ARGS, "--json", "--codebook", "4", "--levels", "2", "--quantizers", "rkmeans",
         "--plot", str(plot)]
    )
    assert result.exit_code == 0, result.output
    last = result.stdout.strip().splitlines()[-1]
    data = json.loads(last)
    assert set(data) == {"rkmeans"}
    for key in ("collision_rate", "intra_bucket_similarity", "codebook_usage", "fit_seconds"):
        assert key in data["rkmeans"]
    assert 0.0 <= data["rkmeans"]["collision_rate"] <= 1.0 and len(data["rkmeans"]["codebook_usage"]) == 2
    assert plot.stat().st_size > 1000 and plot.read_bytes()[:4] == b"\x89PNG"


def test_report_rejects_unknown_quantizer(data_dir):
    result = _invoke(["sids", "report", "--source", "world", "--quantizers", "rkmeans,pq"])
    assert result.exit_code != 0 and "pq" in result.output


@pytest.mark.slow
def test_report_all_quantizers_on_a_small_world(data_dir):
    result = _invoke(["sids", "report", "--source", "world", "--json", "--max-items", "300", "--codebook", "16", "--levels", "3"])
    assert result.exit_code == 0, result.output
    data = json.loads(result.stdout.strip().splitlines()[-1])
    assert set(data) == {"rkmeans", "rqvae", "rlfq"}
    for r in data.values():
        assert min(r["codebook_usage"]) > 0.5 and np.isfinite(r["fit_seconds"])


def test_world_folder_is_read_through_world_load(tmp_path):
    from glide.world import WorldConfig, generate_world
    from glide_app.jobs.sid_sources import world_episodes

    w = generate_world(WorldConfig(users=5, days=2, shows=3, episodes_per_show=4, seed=3))
    w.save(tmp_path / "w")
    pd.testing.assert_frame_equal(world_episodes(tmp_path / "w"), w.episodes)

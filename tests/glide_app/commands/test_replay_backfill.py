"""`glide replay --backfill`: a world's history written where the streams would have, so `glide train`
(which reads only the event log and the catalog DB) can run without a broker."""

from __future__ import annotations

from click.testing import CliRunner

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide.event_log import open_event_log
from glide.world.generator import World
from glide_app.cli import cli


def test_backfill_generates_the_configs_world_and_logs_it_once(tmp_path):
    config = tmp_path / "job.yaml"
    config.write_text("world: {users: 12, days: 6, seed: 4, shows: 8, episodes_per_show: 5}\n")
    args = ["replay", "--backfill", "--config", str(config), "--data-dir", str(tmp_path / "d")]
    first = CliRunner().invoke(cli, args)
    assert first.exit_code == 0, first.output
    again = CliRunner().invoke(cli, args)  # idempotent: the log counts the batch once
    assert again.exit_code == 0, again.output
    settings = load_settings(data_dir=str(tmp_path / "d"))
    world = World.load(settings.data_dir / "world")
    logged = open_event_log(settings).read("listens")
    assert len(world.users) == 12 and sorted(logged["event_id"]) == sorted(world.listens["event_id"])
    assert len(CatalogDB.from_settings(settings).episodes_frame()) == len(world.episodes)


def test_train_on_an_empty_log_says_what_to_run(tmp_path):
    result = CliRunner().invoke(cli, ["train", "--data-dir", str(tmp_path)], standalone_mode=False)
    assert "empty training window" in str(result.exception) and "glide replay" in str(result.exception)

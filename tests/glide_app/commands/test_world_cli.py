"""`glide world generate|summary` through click's runner."""

from __future__ import annotations

from click.testing import CliRunner

from glide.world import World
from glide_app.commands.world import world


def test_generate_writes_a_world_and_prints_a_summary(tmp_path):
    out = tmp_path / "w"
    result = CliRunner().invoke(world, ["generate", "--users", "40", "--days", "5", "--seed", "3", "--shows", "60",
                                        "--out", str(out)])
    assert result.exit_code == 0, result.output
    for line in ("listens", "habitual listens", "non-habitual familiar", "non-habitual unfamiliar"):
        assert line in result.output
    w = World.load(out)
    assert len(w.users) == 40 and len(w.shows) == 60 and w.config.seed == 3
    assert f"{len(w.listens):,}" in result.output
    again = CliRunner().invoke(world, ["summary", str(out)])
    assert again.exit_code == 0 and f"{len(w.listens):,}" in again.output


def test_generate_defaults_to_the_data_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path))
    result = CliRunner().invoke(world, ["generate", "--users", "10", "--days", "2", "--shows", "30"])
    assert result.exit_code == 0, result.output
    assert (tmp_path / "world" / "world.json").exists()


def test_bad_arguments_fail_with_the_reason(tmp_path):
    result = CliRunner().invoke(world, ["generate", "--users", "0", "--out", str(tmp_path / "w")])
    assert result.exit_code != 0
    assert "users must be >= 1" in result.output
    assert not (tmp_path / "w").exists()


def test_dataset_writes_a_folder_glide_evaluate_reads(tmp_path):
    import json

    world_dir, out = tmp_path / "w", tmp_path / "ds"
    assert CliRunner().invoke(world, ["generate", "--users", "30", "--days", "5", "--shows", "30",
                                      "--out", str(world_dir)]).exit_code == 0
    result = CliRunner().invoke(world, ["dataset", str(out), "--world", str(world_dir)])
    assert result.exit_code == 0, result.output
    sequences = json.loads((out / "world.inter.json").read_text())
    assert f"{len(sequences):,} listeners" in result.output and "glide evaluate --source" in result.output
    assert set(json.loads((out / "world.item.json").read_text())) == set(World.load(world_dir).episodes["episode_id"])
    bad = CliRunner().invoke(world, ["dataset", str(out), "--world", str(tmp_path / "nowhere")])
    assert bad.exit_code != 0 and "Traceback" not in bad.output

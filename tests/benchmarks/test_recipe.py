"""benchmarks/recipe.py, the GPU-host path: a bundle prepared here trains and is scored there with the
job's own comparison (same baselines, same rules, paired CI), on the tiny model."""

from __future__ import annotations

import json

import pytest

from benchmarks.recipe import main, prepare, run
from glide_app.jobs.config_io import from_dict
from glide_app.jobs.train import TrainJobConfig

SMALL = {
    "world": {"users": 60, "days": 24, "seed": 0, "shows": 20, "episodes_per_show": 6},
    "sids": {"codebook_size": 16},
    "window": {"cf_days": 5, "val_days": 4, "max_val_examples": 12},
    "model": {"base_model": "tiny", "grounding": {"stage1": {"max_steps": 2, "batch_size": 4},
                                                  "stage2": {"max_steps": 2, "batch_size": 4}, "eval_episodes": 8},
              "instruct": {"max_steps": 9, "batch_size": 4}, "val_loss_examples": 0},
}


def test_prepared_bundle_trains_and_is_scored_against_every_baseline(tmp_path):
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    cfg = from_dict(TrainJobConfig, SMALL)
    prepare(bundle, cfg)
    assert json.loads((bundle / "meta.json").read_text())["quantizer_version"]
    record = run(bundle, out, cfg, device="cpu", instruct_steps=2)
    # The override changes only the step count; the config's batch size stays.
    assert record["instruct"]["max_steps"] == 2 and record["instruct"]["batch_size"] == 4
    assert record["stages"]["instruct"]["steps"] == 2
    assert record["examples"]["train"] > 0 and 0 < record["examples"]["val"] <= 12
    assert {"glide", "popularity", "cf", "topic_popularity"} <= set(record["metrics"])
    gap = record["glide_minus_popularity"]
    assert gap["n"] == record["examples"]["val"]
    assert gap["diff"] == pytest.approx(record["glide_recall@30"] - record["popularity_recall@30"])


def test_command_line_reads_the_job_config_file(tmp_path, capsys):
    import yaml

    config = tmp_path / "job.yaml"
    config.write_text(yaml.safe_dump(SMALL))
    bundle = tmp_path / "bundle"
    main(["prepare", str(bundle), "--config", str(config)])
    main(["run", str(bundle), str(tmp_path / "out"), "--config", str(config), "--device", "cpu",
          "--batch-size", "2", "--max-val", "5"])
    record = json.loads(capsys.readouterr().out.strip().splitlines()[-1])
    assert record["instruct"]["batch_size"] == 2 and record["instruct"]["max_steps"] == 9
    assert record["examples"]["val"] == 5 and record["device"] == "cpu"

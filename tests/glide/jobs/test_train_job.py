"""The offline training job end to end on a tiny model: every stage runs from the feature store,
the run is recorded in the model registry and the merged export serves with plain transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide.jobs.config_io import ConfigFileError
from glide.jobs.train import load_job_config, run_train_job

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "train_tiny.yaml"


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("train")
    settings = load_settings(data_dir=str(data_dir))
    cfg = load_job_config(CONFIG)
    cfg.world = {"users": 60, "days": 30, "seed": 1, "shows": 40, "episodes_per_show": 8}
    cfg.model["instruct"] = {"max_steps": 6, "batch_size": 8, "ckpt_every": 3}
    cfg.model["grounding"] = {"stage1": {"max_steps": 4}, "stage2": {"max_steps": 4}, "eval_episodes": 16}
    cfg.window.max_val_examples = 20
    record = run_train_job(settings, cfg, Console(quiet=True))
    return settings, record


def test_job_records_every_stage_and_registers_the_model(trained):
    settings, record = trained
    assert record["examples"]["train"] > 0 and record["examples"]["val"] > 0
    assert set(record["grounding"]) >= {"before", "after_stage1", "after_stage2"}
    assert {"grounding_stage1", "grounding_stage2", "instruct"} <= set(record["stages"])
    assert {"glide (glide)", "popularity", "cf", "topic_popularity"} <= set(record["metrics"])
    assert record["sampling"]["habit_threshold_seconds"] == 600
    gap = record["glide_minus_popularity"]
    assert gap["n"] == record["examples"]["val"] and gap["lo"] <= gap["diff"] <= gap["hi"]
    assert gap["diff"] == pytest.approx(record["glide_recall@30"] - record["popularity_recall@30"])
    db = CatalogDB(settings.catalog_db_url)
    model = db.get_model(record["run"])
    assert model is not None and model["artifact_path"] == record["export"]
    assert db.job_runs("train")[0]["status"] == "succeeded"
    run_json = json.loads((settings.data_dir / "runs" / record["run"] / "run.json").read_text())
    assert run_json["quantizer_version"] == record["quantizer_version"]
    assert (settings.data_dir / "runs" / record["run"] / "metrics.png").stat().st_size > 0


def test_merged_export_loads_with_plain_transformers_and_speaks_sids(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, record = trained
    model = AutoModelForCausalLM.from_pretrained(record["export"])
    tokenizer = AutoTokenizer.from_pretrained(record["export"])
    ids = tokenizer.convert_tokens_to_ids(["<SID_1=0>", "<SID_4=31>"])
    assert all(i != tokenizer.unk_token_id for i in ids)
    assert model.get_input_embeddings().num_embeddings >= len(tokenizer)
    assert np.isfinite(model.get_input_embeddings().weight[ids].detach().numpy()).all()


def test_config_file_with_an_unknown_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("window: {cf_dayz: 3}\n")
    with pytest.raises(ConfigFileError, match="cf_dayz"):
        load_job_config(bad)

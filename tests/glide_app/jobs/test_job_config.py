"""The job config file is checked when it loads: a key a section does not have (at any depth) is a
one-line ConfigFileError naming the key, the section and the file, before any data is prepared."""

from __future__ import annotations

from pathlib import Path

import pytest

from glide_app.jobs.config_io import ConfigFileError, from_dict
from glide_app.jobs.job_config import TrainJobConfig, job_config_from_dict, load_job_config

CONFIGS = Path(__file__).resolve().parents[3] / "configs"


def _load(tmp_path, text: str):
    path = tmp_path / "job.yaml"
    path.write_text(text)
    return load_job_config(path), path


@pytest.mark.parametrize("name", sorted(p.name for p in CONFIGS.glob("train_*.yaml")))
def test_shipped_job_configs_load(name):
    cfg = load_job_config(CONFIGS / name)
    assert cfg.model and cfg.world


def test_typo_under_model_fails_at_load_naming_the_key_and_the_section(tmp_path):
    path = tmp_path / "job.yaml"
    path.write_text("model: {base_model: tiny, variantt: glide}\n")
    with pytest.raises(ConfigFileError) as err:
        load_job_config(path)
    message = str(err.value)
    assert "variantt" in message and "'model'" in message and str(path) in message
    assert "did you mean 'variant'" in message and "\n" not in message


@pytest.mark.parametrize(
    ("text", "key", "section"),
    [
        ("model: {instruct: {max_stepz: 3}}\n", "max_stepz", "model.instruct"),
        ("model: {grounding: {stage1: {lrr: 0.1}}}\n", "lrr", "model.grounding.stage1"),
        ("model: {lora: {rank: 4}}\n", "rank", "model.lora"),
        ("cf: {factor: 8}\n", "factor", "cf"),
        ("examples: {history_length: 5}\n", "history_length", "examples"),
        ("world: {user: 10}\n", "user", "world"),
        ("sids: {levls: 3}\n", "levls", "sids"),
        ("window: {cf_dayz: 3}\n", "cf_dayz", "window"),
    ],
)
def test_every_section_and_nested_section_is_strict(tmp_path, text, key, section):
    with pytest.raises(ConfigFileError, match=rf"\['{key}'\] in section '{section}'"):
        _load(tmp_path, text)


def test_unknown_top_level_key(tmp_path):
    with pytest.raises(ConfigFileError, match=r"\['modle'\] in the top level of TrainJobConfig.*did you mean 'model'"):
        _load(tmp_path, "modle: {base_model: tiny}\n")


def test_a_value_the_section_rejects_fails_at_load_too(tmp_path):
    with pytest.raises(ConfigFileError, match=r"bad section 'model.instruct'.*bf16"):
        _load(tmp_path, "model: {instruct: {bf16: maybe}}\n")


def test_sections_stay_the_dicts_the_file_set(tmp_path):
    cfg, _ = _load(tmp_path, "model: {base_model: tiny, instruct: {max_steps: 3}}\ncf: {factors: 8}\n")
    assert cfg.model == {"base_model": "tiny", "instruct": {"max_steps": 3}} and cfg.cf == {"factors": 8}
    assert from_dict(TrainJobConfig, {"model": cfg.model}).model == cfg.model


def test_a_registered_models_params_are_checked_the_same_way():
    with pytest.raises(ConfigFileError, match=r"^train config of model m1: .*'examples'"):
        job_config_from_dict({"examples": {"history_lenn": 3}}, "train config of model m1")

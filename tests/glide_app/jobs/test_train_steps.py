"""The train job's named steps, which benchmarks/recipe.py calls too (one copy of each)."""

from __future__ import annotations

import pandas as pd
import pytest

from glide_app.jobs.job_config import TrainJobConfig, WindowSettings
from glide_app.jobs.train import data_window, glide_model_config


def _listens(days: int) -> pd.DataFrame:
    return pd.DataFrame({"ts": pd.date_range("2026-01-01", periods=days + 1, freq="D", tz="UTC")})


def test_data_window_splits_the_days_and_rejects_a_window_that_does_not_fit():
    window = data_window(_listens(20), WindowSettings(cf_days=5, val_days=4))
    assert list(window) == ["t0", "t_cf", "t_val", "t1"]
    assert window["t_cf"] - window["t0"] == pd.Timedelta(days=5)
    assert window["t1"] - window["t_val"] == pd.Timedelta(days=4)
    with pytest.raises(ValueError, match="do not fit in the data's 8 days"):
        data_window(_listens(8), WindowSettings(cf_days=5, val_days=4))


def test_model_config_takes_the_catalogs_sid_shape_and_layers_defaults_section_overrides():
    cfg = TrainJobConfig(model={"base_model": "tiny", "device": "cpu", "levels": 9, "instruct": {"max_steps": 3}})
    cfg.sids.levels, cfg.sids.codebook_size = 3, 16
    model_cfg = glide_model_config(cfg, "q1", "c1", defaults={"out_dir": "runs/a", "device": "cuda"},
                                   overrides={"base_model": "smollm2"})
    assert (model_cfg.levels, model_cfg.codebook_size) == (3, 16)
    assert (model_cfg.quantizer_version, model_cfg.catalog_version) == ("q1", "c1")
    assert str(model_cfg.out_dir) == "runs/a" and model_cfg.device == "cpu" and model_cfg.base_model == "smollm2"
    assert model_cfg.instruct.max_steps == 3 and model_cfg.instruct.validate_at_end is False
    assert cfg.model["instruct"] == {"max_steps": 3}  # the job config's own section is left as the file set it

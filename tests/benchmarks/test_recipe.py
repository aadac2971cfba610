"""benchmarks/recipe.py, the GPU-host path: a bundle prepared here trains and is scored there with the
job's own comparison (same baselines, same rules, paired CI), on the tiny model."""

from __future__ import annotations

import json

import pytest

from benchmarks.recipe import prepare, run


def test_prepared_bundle_trains_and_is_scored_against_every_baseline(tmp_path):
    bundle, out = tmp_path / "bundle", tmp_path / "out"
    prepare(bundle, users=60, days=24, shows=20, episodes_per_show=6, codebook=16, cf_days=5, val_days=4)
    meta = json.loads((bundle / "meta.json").read_text())
    assert meta["codebook"] == 16
    record = run(bundle, out, instruct_steps=2, grounding_steps=2, batch=4, max_val=12, device="cpu",
                 base_model="tiny")
    assert record["examples"]["train"] > 0 and 0 < record["examples"]["val"] <= 12
    assert {"glide", "popularity", "cf", "topic_popularity"} <= set(record["metrics"])
    gap = record["glide_minus_popularity"]
    assert gap["n"] == record["examples"]["val"]
    assert gap["diff"] == pytest.approx(record["glide_recall@30"] - record["popularity_recall@30"])

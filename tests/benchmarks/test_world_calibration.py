"""`glide bench world-calibration`: the Amazon-format reader and the command's JSON contract."""

from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.world_calibration import amazon_taste_lift, world_calibration


def _amazon_folder(tmp_path):
    items = {
        "0": {"brand": "A", "categories": "Industrial & Scientific,Tapes, Adhesives & Sealants,Duct Tape"},
        "1": {"brand": "A", "categories": "Industrial & Scientific,Tapes, Adhesives & Sealants,Masking"},
        "2": {"brand": "B", "categories": "Industrial & Scientific,Fasteners,Staples"},
        "3": {"brand": "C", "categories": "Industrial & Scientific,Tapes, Adhesives & Sealants,Glue"},
        "4": {"brand": None, "categories": ""},
    }
    sequences = {
        "u1": [0, 0, 2, 3],  # Tapes twice, then a new brand (C) in Tapes: unfamiliar top-1 hit
        "u2": [2, 2, 1],     # Fasteners only, then brand A in Tapes: an unfamiliar miss
        "u3": [0, 2, 1],     # brand A again: familiar
        "u4": [4, 4],        # no brand, no category: topic "?", never familiar
    }
    (tmp_path / "Scientific.item.json").write_text(json.dumps(items))
    (tmp_path / "Scientific.inter.json").write_text(json.dumps(sequences))
    return tmp_path


def test_amazon_reader_uses_second_level_categories_and_brands(tmp_path):
    lift = amazon_taste_lift(_amazon_folder(tmp_path))
    assert lift.loc["all", "n"] == 4 and lift.loc["familiar", "n"] == 1
    # u1: Tapes is top-1; u2: history {Fasteners} -> Tapes missed; u3: {Tapes, Fasteners} -> hit; u4: "?" hit
    assert lift.loc["all", "top_share"] == 0.75
    assert lift.loc["unfamiliar", "top1_share"] == 2 / 3


def test_command_prints_tables_and_json_last(tmp_path):
    result = CliRunner().invoke(world_calibration, [
        "--users", "60", "--days", "14", "--shows", "30", "--episodes-per-show", "6", "--seeds", "0",
        "--val", "40", "--amazon", str(_amazon_folder(tmp_path)), "--json",
    ])
    assert result.exit_code == 0, result.output
    out = json.loads(result.output.strip().splitlines()[-1])
    assert set(out["taste_lift"]) == {"amazon-scientific", "world v1", "world default"}
    assert set(out["headroom"]) == {"v1", "default"}
    assert set(out["headroom"]["default"]) == {"popularity", "cf", "topic_popularity"}
    assert out["worlds"]["v1"]["taste_concentration"] == 0.3 and out["worlds"]["default"]["taste_concentration"] == 0.1
    for segs in out["headroom"]["default"].values():
        assert 0.0 <= segs["overall"] <= 1.0

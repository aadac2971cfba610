"""`glide evaluate --source DIR --quick --json` through the real click group: the last stdout line
is the JSON summary; bad input is one clear line; without --source the command is unchanged."""

from __future__ import annotations

import json

from click.testing import CliRunner

from glide_app.cli import cli
from tests.glide_model.sequential.synthetic import ring_items, ring_sids, write_dataset

KEYS = {"recall@10", "ndcg@10", "recall@30", "ndcg@30", "hr@30", "recall@30_familiar", "recall@30_unfamiliar", "n"}


def test_quick_json_run(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path / "glide"))
    folder = write_dataset(tmp_path / "ring", items=ring_items(), sids=ring_sids())
    args = ["evaluate", "--source", str(folder), "--sids", str(folder / "Ring.sids.json"), "--quick", "--json",
            "--systems", "popularity,itemknn,tiger"]
    result = CliRunner().invoke(cli, args, catch_exceptions=False)
    assert result.exit_code == 0, result.output
    summary = json.loads(result.stdout.strip().splitlines()[-1])
    assert summary["protocol"] == "history_excluded" and summary["source"] == str(folder)
    for name in ("popularity", "itemknn", "tiger"):
        assert set(summary[name]) == KEYS and summary[name]["n"] == 150
    assert summary["tiger"]["recall@10"] > summary["popularity"]["recall@10"]
    out = tmp_path / "glide" / "evaluate_source" / "ring-quick-seed0"
    assert (out / "report.md").exists() and (out / "systems" / "tiger.json").exists()
    assert "history kept" in result.stderr  # the rich tables go to stderr with --json


def test_bad_input_is_one_line(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path / "glide"))
    folder = write_dataset(tmp_path / "bad", sequences={"u1": [1, 2], "u2": []})
    result = CliRunner().invoke(cli, ["evaluate", "--source", str(folder), "--out", str(tmp_path / "o")])
    assert result.exit_code == 1 and "u2' has an empty sequence" in result.output
    result = CliRunner().invoke(cli, ["evaluate", "--source", str(folder), "--systems", "popularity,nope"])
    assert result.exit_code == 2 and "unknown system(s) nope" in result.output


def test_source_options_need_source(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path / "glide"))
    result = CliRunner().invoke(cli, ["evaluate", "--quick"])
    assert result.exit_code == 2 and "need --source" in result.output
    result = CliRunner().invoke(cli, ["evaluate", "--source", "x", "--model", "v1"])
    assert result.exit_code == 2 and "do not go with --source" in result.output

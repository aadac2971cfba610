"""`glide judge` end to end on a tiny setup: the quick world, a tiny random LM, a few users."""

from __future__ import annotations

import json

from click.testing import CliRunner

from glide_app.cli import cli

CONTRACT = {"backend", "n_pairs", "pairwise_agreement", "pairwise_agreement_ci", "spearman", "auc", "malformed"}


def test_quick_run_prints_a_table_and_the_contract_json_last(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GLIDE_JUDGE_API_KEY", raising=False)
    args = ["judge", "--quick", "--model", "tiny", "--users", "3", "--per-user", "4", "--json",
            "--data-dir", str(tmp_path)]
    result = CliRunner().invoke(cli, args)
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    record = json.loads(lines[-1])
    assert CONTRACT <= set(record)
    assert record["backend"] == "hf:tiny:constrained" and record["malformed"] == 0
    assert record["n_judged"] == 12 and record["n_pairs"] > 0
    lo, hi = record["pairwise_agreement_ci"]
    assert 0.0 <= lo <= record["pairwise_agreement"] <= hi <= 1.0
    assert "judge vs ground truth" in result.stdout and "reference: profile topic share" in result.stdout
    assert (tmp_path / "judge" / "cache.sqlite").is_file()
    # A second run answers every pair from the cache.
    again = json.loads(CliRunner().invoke(cli, args).stdout.strip().splitlines()[-1])
    assert again["judge_stats"]["cached"] == 12 and again["pairwise_agreement"] == record["pairwise_agreement"]


def test_openai_backend_without_a_base_url_is_one_clear_error(tmp_path, monkeypatch) -> None:
    monkeypatch.delenv("GLIDE_JUDGE_BASE_URL", raising=False)
    monkeypatch.setenv("GLIDE_JUDGE_API_KEY", "sk-secret-value")
    result = CliRunner().invoke(cli, ["judge", "--quick", "--backend", "openai", "--users", "1", "--data-dir", str(tmp_path)])
    assert result.exit_code != 0
    assert "GLIDE_JUDGE_BASE_URL" in result.output and "sk-secret-value" not in result.output

"""`glide bench e2e` on the tiny model with a few sessions: `glide serve` on a fresh embedded stack,
session start -> candidates readable through the client, per serving dtype; the JSON contract and the table."""

from __future__ import annotations

import json

from click.testing import CliRunner

from benchmarks.e2e import e2e


def test_e2e_bench_times_sessions_through_the_worker(tmp_path):
    result = CliRunner().invoke(e2e, ["--model", "tiny", "--sessions", "3", "--json", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert "glide bench e2e" in result.stdout  # the table
    assert {"p50_ms", "p99_ms", "n", "model"} <= set(record)
    assert record["model"] == "tiny" and record["n"] == 3
    assert 0 < record["p50_ms"] <= record["p99_ms"]
    run = record["models"]["tiny"]
    assert (run["p50_ms"], run["p99_ms"], run["n"]) == (record["p50_ms"], record["p99_ms"], record["n"])
    assert run["serve_start_s"] > 0 and run["serving_dtype"] == "float32"
    # Then the same model exported with serving_dtype bfloat16, served by `glide serve` as deployed.
    half = record["models"]["tiny bf16"]
    assert half["serving_dtype"] == "bfloat16" and half["n"] == 3 and 0 < half["p50_ms"] <= half["p99_ms"]

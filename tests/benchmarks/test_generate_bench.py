"""`glide bench generate` on the tiny model: every engine in one run, the JSON contract, consistent
ratios, the contended run beside the quiet one, and the worker's thread setting."""

from __future__ import annotations

import json

import pytest
from click.testing import CliRunner

from benchmarks.generate import generate
from benchmarks.generate_setup import flops_per_request, vllm_available
from glide.config import ConfigError
from glide_model.llm.threads import THREADS_ENV, default_threads, parse_threads, usable_cores
from streams.serving import serve_threads

KEYS = {"model", "device", "ours_rps", "hf_rps", "vllm_rps", "speedup", "speedup_vllm", "same_top1_fraction",
        "same_set_fraction", "flop_utilization"}


def _run(tmp_path, *extra: str) -> tuple[dict, str]:
    result = CliRunner().invoke(generate, ["--model", "tiny", "--requests", "4", "--batch", "4", "--catalog", "300",
                                           "--json", "--data-dir", str(tmp_path), *extra])
    assert result.exit_code == 0, result.output
    lines = result.stdout.strip().splitlines()
    return json.loads(lines[-1]), result.stdout


def _ratio(a: float, b: float):
    return pytest.approx(round(a / b, 2), abs=0.011, rel=0.01)  # rates are rounded to 4 places


def test_generate_bench_reports_every_engine_and_consistent_ratios(tmp_path):
    record, out = _run(tmp_path, "--vllm", "off")
    assert KEYS <= set(record)
    assert "glide bench generate" in out and "ours_b4" in out  # the table, before the JSON line
    assert record["model"] == "tiny" and record["device"].startswith("CPU")
    for key in ("ours_rps", "hf_rps", "ours_batch1_rps", "flop_utilization", "matmul_peak_gflops"):
        assert record[key] > 0, key
    assert record["vllm_rps"] is None and record["speedup_vllm"] is None
    assert record["speedup"] == _ratio(record["ours_rps"], record["hf_rps"])
    assert record["speedup_batch1"] == _ratio(record["ours_batch1_rps"], record["hf_rps"])
    assert record["rps"]["ours_b4"] == record["ours_rps"] and record["rps"]["hf"] == record["hf_rps"]
    # Same untrained weights, same prompts, same trie: our engine and generate find the same beams.
    assert record["same_top1_fraction"] == 1.0 and record["same_set_fraction"] >= 0.75
    assert record["agreement"]["ours_b4"]["same_set"] == 1.0  # batching changes nothing
    # The same engine on the model held in bfloat16, timed in the same run, compared with float32.
    assert record["rps"]["ours_bf16_b1"] == record["bf16_batch1_rps"] > 0
    assert record["speedup_bf16_batch1"] == _ratio(record["bf16_batch1_rps"], record["ours_batch1_rps"])
    assert set(record["agreement"]["ours_bf16_b1"]) == {"same_top1", "same_set"} and "ours_bf16_b1" in out
    assert record["threads"] == default_threads()
    contended = record["contended"]
    assert contended["ours_rps"] > 0 and contended["ours_batch1_rps"] > 0
    if usable_cores() > 1:  # the other thread count, timed beside the same neighbour
        assert contended["alt_threads"] != record["threads"] and contended["ours_rps_alt"] > 0
    utilization = record["flops_per_request"] * record["ours_rps"] / (record["matmul_peak_gflops"] * 1e9)
    assert record["flop_utilization"] == pytest.approx(utilization, rel=0.02)


def test_flops_per_request_counts_prefill_and_beam_steps():
    from transformers import LlamaConfig

    cfg = LlamaConfig(hidden_size=64, intermediate_size=128, num_hidden_layers=2, num_attention_heads=4,
                      num_key_value_heads=2, vocab_size=1000)
    one = flops_per_request(cfg, 100, beams=30)
    assert flops_per_request(cfg, 200, beams=30) > one > flops_per_request(cfg, 100, beams=1) > 0


def test_worker_threads_default_to_one_less_than_the_cores_and_reject_bad_values(monkeypatch):
    monkeypatch.delenv(THREADS_ENV, raising=False)
    assert serve_threads() == max(1, usable_cores() - 1) == default_threads() == parse_threads("auto")
    assert serve_threads(environ={THREADS_ENV: str(usable_cores())}) == usable_cores()  # all of them, if asked
    assert serve_threads(environ={THREADS_ENV: "1"}) == 1
    assert serve_threads(1) == 1
    for bad in ("two", "-1", str(usable_cores() + 1)):
        with pytest.raises(ConfigError, match=THREADS_ENV):
            serve_threads(environ={THREADS_ENV: bad})


@pytest.mark.slow
@pytest.mark.vllm
@pytest.mark.skipif(not vllm_available(), reason="no infra/vllm/.venv (make vllm-env)")
def test_generate_bench_with_vllm(tmp_path):
    record, _ = _run(tmp_path, "--vllm", "on", "--no-contended")
    assert record["vllm_rps"] > 0 and record["vllm_path"] == "beam_search"
    assert record["speedup_vllm"] == _ratio(record["ours_rps"], record["vllm_rps"])
    assert record["agreement"]["vllm"]["same_top1"] == 1.0

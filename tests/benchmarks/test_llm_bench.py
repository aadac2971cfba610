"""`glide bench llm` on the tiny model: both precisions timed in one run, decoding timed per engine."""

from __future__ import annotations

import json

import pytest
import torch
from click.testing import CliRunner

from benchmarks.llm import llm
from glide_model.llm.trainer import use_bf16


def test_llm_bench_reports_fp32_baseline_and_bf16_ratio(tmp_path):
    result = CliRunner().invoke(llm, ["--requests", "2", "--train-steps", "2", "--train-batch", "2",
                                      "--engines", "sid", "--data-dir", str(tmp_path)])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout[result.stdout.index("{"):])

    def ratio(a: float, b: float):
        # The record's ratios come from unrounded rates, the record's rates are rounded to 0.1:
        # slow rates on a loaded machine move the recomputed ratio by a rounding step.
        return pytest.approx(round(a / b, 2), rel=0.01, abs=0.011)

    by_precision = record["train_tokens_per_s_by_precision"]
    assert by_precision["fp32"] > 0
    if use_bf16("auto", torch.device("cpu")):
        assert by_precision["bf16"] > 0
        assert record["train_tokens_per_s"] == pytest.approx(by_precision["bf16"], abs=0.1)
        assert record["bf16_train_speedup"] == ratio(by_precision["bf16"], by_precision["fp32"])
    else:
        assert set(by_precision) == {"fp32"} and record["bf16_train_speedup"] is None
    assert record["decode_ms_per_request"]["sid_batch1"] > 0
    assert record["train_tokens_per_s_whole_rows"] > 0
    assert record["shared_prefix_speedup"] == ratio(record["train_tokens_per_s"], record["train_tokens_per_s_whole_rows"])
    assert record["train_attention"] == "eager"  # the CPU trainer's default; sdpa is the baseline row
    assert record["attention_speedup"] == ratio(record["train_tokens_per_s"], record["train_tokens_per_s_other_attention"])
    assert record["lora_dropout_speedup"] == ratio(record["train_tokens_per_s"], record["train_tokens_per_s_lora_dropout"])

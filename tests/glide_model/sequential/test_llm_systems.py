"""The GLIDE LLM systems through the harness, on the ring dataset with item text and the tiny Llama:
every system fits and ranks, the decoding ablations reuse GLIDE's model, prefix ceilings and the
per-system test sample are reported, and the systems say why they skip without text or SIDs."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest

from glide_model.sequential import llm_config, llm_train
from glide_model.sequential.harness import evaluate_source
from glide_model.sequential.llm_data import RowBuilder, history_mode, training_transitions
from glide_model.sequential.llm_ranker import interleave
from glide_model.sequential.metrics import PROTOCOLS
from glide_model.sequential.report import json_summary, write_markdown
from glide_model.sequential.systems import LLM_SYSTEMS, SYSTEMS, default_systems
from tests.glide_model.llm.conftest import one_thread
from tests.glide_model.sequential.synthetic import ring_items, ring_sequences, ring_sids, write_dataset

TINY_QUICK = replace(llm_config.QUICK, stage1=llm_config.Schedule(6, 8, 5e-3), stage2=llm_config.Schedule(6, 8, 1e-3),
                     instruct=llm_config.Schedule(8, 8, 1e-3), test_users=40, train_users=60, cf_factors=8)


@pytest.fixture(autouse=True)
def tiny_backbone(monkeypatch):
    monkeypatch.setenv(llm_config.BACKBONE_ENV, "tiny")
    monkeypatch.setattr(llm_config, "QUICK", TINY_QUICK)
    with one_thread():
        yield
    llm_train.clear_cache()


@pytest.fixture(scope="module")
def ring_folder(tmp_path_factory):
    return write_dataset(tmp_path_factory.mktemp("ring_llm"), items=ring_items(), sids=ring_sids())


def test_llm_systems_are_registered_but_not_in_the_harness_default():
    assert set(LLM_SYSTEMS) <= set(SYSTEMS)
    assert default_systems(include_llm=True)[-len(LLM_SYSTEMS):] == list(LLM_SYSTEMS)
    assert not set(LLM_SYSTEMS) & set(default_systems(include_llm=False))


def test_every_llm_system_fits_and_ranks(ring_folder, monkeypatch):
    calls = []
    real = llm_train._Run.train
    monkeypatch.setattr(llm_train._Run, "train", lambda self, v, g: calls.append((v, g)) or real(self, v, g))
    out = ring_folder / "out"
    systems = ["popularity", *LLM_SYSTEMS]
    record = evaluate_source(ring_folder, systems=systems, quick=True, sids_file=ring_folder / "Ring.sids.json",
                             out_dir=out)
    assert list(record["systems"]) == systems and record["skipped"] == {}
    # the decoding ablations decode GLIDE's model: five trainings for seven LLM systems
    assert sorted(calls) == sorted([("sid_only", True), ("sid_text", True), ("glide", True),
                                    ("glide_single_task", True), ("glide", False)])
    assert record["systems"]["popularity"]["metrics"]["history_excluded"]["overall"]["n"] == 150
    for name in LLM_SYSTEMS:
        result = record["systems"][name]
        for protocol in PROTOCOLS:
            overall = result["metrics"][protocol]["overall"]
            assert overall["n"] == 40 and 0 <= overall["recall@30"] <= 1
        ceiling = result["diagnostics"]["prefix_ceiling@30"]
        assert list(ceiling) == ["1", "2"] and ceiling["1"] >= ceiling["2"]
        assert result["info"]["instruct"]["steps"] == 8 and result["info"]["instruct"]["curve"]
    assert record["systems"]["glide_greedy"]["diagnostics"]["sids_per_user"] == 1.0
    assert record["systems"]["glide_no_grounding"]["info"]["grounding"] is False
    assert "cf" not in record["systems"]["sid_text"]["info"] and "cf" in record["systems"]["glide"]["info"]
    # paired CIs on the examples both systems were scored on
    assert record["comparisons"]["popularity"]["vs sid_only"]["history_excluded"]["recall@10"]["n"] == 40
    assert record["comparisons"]["glide"]["vs sid_only"]["history_excluded"]["recall@10"]["n"] == 40
    summary = json_summary(record)
    assert summary["glide_sampling"]["n"] == 40
    text = write_markdown(record, out).read_text()
    assert "## Decoding" in text and "prefix ceiling" in text
    assert (out / "decoding.png").exists() and (out / "learning-curve.png").exists()
    again = evaluate_source(ring_folder, systems=systems, quick=True, sids_file=ring_folder / "Ring.sids.json",
                            out_dir=out)
    assert all(r["resumed"] for r in again["systems"].values())
    assert again["comparisons"] == record["comparisons"]


def test_without_text_only_sid_only_runs_ungrounded(tmp_path):
    folder = write_dataset(tmp_path, items=None, sids=ring_sids())
    record = evaluate_source(folder, systems=list(LLM_SYSTEMS), quick=True, sids_file=folder / "Ring.sids.json")
    assert list(record["systems"]) == ["sid_only"]
    assert "skipped" in record["systems"]["sid_only"]["info"]["grounding"]
    for name in LLM_SYSTEMS[1:]:
        assert "no item text" in record["skipped"][name] and "titles" in record["skipped"][name]


def test_without_text_or_sids_every_llm_system_is_skipped(tmp_path):
    folder = write_dataset(tmp_path, sequences=ring_sequences(n_users=40))
    record = evaluate_source(folder, systems=list(LLM_SYSTEMS), quick=True)
    assert record["systems"] == {} and set(record["skipped"]) == set(LLM_SYSTEMS)
    assert all(reason.startswith("no Semantic IDs") for reason in record["skipped"].values())


def test_rows_transitions_and_modes():
    train = (np.array([0, 1, 2, 3]), np.array([5]), np.array([4, 6]))
    assert [(t.history.tolist(), t.target) for t in training_transitions(train, None)] == [
        ([0], 1), ([0, 1], 2), ([0, 1, 2], 3), ([4], 6)]
    latest = training_transitions(train, 5)
    assert sorted((t.history.tolist(), t.target) for t in latest) == [([0, 1, 2], 3), ([4], 6)]
    brands = np.array([0, 0, 0, 1, 2, 2, 3])
    assert history_mode(np.array([0, 1, 2]), brands, "unfamiliar") == "familiar"
    assert history_mode(np.array([0, 3, 4]), brands, "familiar") == "unfamiliar"
    assert history_mode(np.array([0]), brands, "familiar") == "familiar"
    codes = np.arange(14).reshape(7, 2)
    row = RowBuilder(codes, max_history=2, titles=[f"t{i}" for i in range(7)]).row(np.array([0, 1, 2]), "familiar", 3)
    assert row == {"history_codes": [(2, 3), (4, 5)], "mode": "familiar", "history_titles": ["t1", "t2"],
                   "target_codes": (6, 7)}


def test_interleave_keeps_first_occurrence():
    a = [((0, 0), -1.0), ((0, 1), -2.0), ((1, 1), -3.0)]
    b = [((0, 1), -0.5), ((2, 2), -4.0)]
    assert [c for c, _ in interleave([a, b])] == [(0, 0), (0, 1), (2, 2), (1, 1)]


def test_quantizer_ablation_is_opt_in_and_needs_text(tmp_path):
    from glide_model.sequential.systems import QUANTIZER_SYSTEMS

    assert not set(QUANTIZER_SYSTEMS) & set(default_systems(include_llm=True))
    folder = write_dataset(tmp_path, items=None, sids=ring_sids())
    record = evaluate_source(folder, systems=list(QUANTIZER_SYSTEMS), sids_file=folder / "Ring.sids.json")
    assert record["systems"] == {} and all("computed from item text" in r for r in record["skipped"].values())


@pytest.mark.slow  # ~70 s: the text encoder, three quantizer fits, TIGER
def test_quantizer_ablation_runs_when_named(ring_folder):
    out = ring_folder / "quantizers"
    record = evaluate_source(ring_folder, systems=["tiger_rkmeans", "sid_only_rqvae"], quick=True, out_dir=out)
    assert list(record["systems"]) == ["tiger_rkmeans", "sid_only_rqvae"]
    for name, result in record["systems"].items():
        assert result["info"]["quantizer"] == name.rsplit("_", 1)[1]
        assert result["info"]["sids"]["source"].startswith(result["info"]["quantizer"])
    assert record["systems"]["sid_only_rqvae"]["metrics"]["history_excluded"]["overall"]["n"] == 40
    assert "## Quantizers" in write_markdown(record, out).read_text()

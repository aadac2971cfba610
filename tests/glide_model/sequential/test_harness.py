"""The harness end to end on a dataset folder written here: every system, both protocols, segments,
CIs against SASRec, checkpoints that a rerun resumes from, and systems skipped with a reason."""

from __future__ import annotations

import json

import numpy as np
import pytest

from glide_model.sequential.harness import evaluate_source
from glide_model.sequential.metrics import METRICS, PROTOCOLS
from glide_model.sequential.popularity import PopularityRanker
from glide_model.sequential.report import json_summary, write_markdown
from glide_model.sequential.systems import SYSTEMS, Fitted, register_system
from tests.glide_model.sequential.synthetic import ring_items, ring_sequences, ring_sids, write_dataset


class ReverseCountSystem:
    """A system registered from outside the package: least popular first."""

    name = "reverse"

    def skip_reason(self, data):
        return None

    def fit(self, data):
        return Fitted(PopularityRanker(-data.popularity), {"note": "registered by a test"})


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    folder = write_dataset(tmp_path_factory.mktemp("ring"), items=ring_items(), sids=ring_sids())
    out = folder / "out"
    record = evaluate_source(folder, quick=True, sids_file=folder / "Ring.sids.json", out_dir=out, quick_users=100)
    return folder, out, record


def test_every_system_both_protocols_and_segments(run):
    _, out, record = run
    assert list(record["systems"]) == ["popularity", "itemknn", "sasrec", "tiger"] and record["skipped"] == {}
    assert record["dataset"]["test_users"] == 100 and record["protocols"] == list(PROTOCOLS)
    for name, result in record["systems"].items():
        for protocol in PROTOCOLS:
            segments = result["metrics"][protocol]
            assert set(segments) == {"overall", "familiar", "unfamiliar"}
            assert segments["overall"]["n"] == 100 == segments["familiar"]["n"] + segments["unfamiliar"]["n"]
            assert set(METRICS) <= set(segments["overall"])
    excluded = {n: r["metrics"]["history_excluded"]["overall"]["recall@10"] for n, r in record["systems"].items()}
    assert min(excluded["sasrec"], excluded["tiger"], excluded["itemknn"]) > excluded["popularity"] + 0.3
    ci = record["comparisons"]["popularity"]["vs sasrec"]["history_excluded"]["recall@10"]
    assert ci["hi"] < 0 and ci["n"] == 100
    assert sorted(p.name for p in (out / "systems").iterdir()) == [f"{n}.json" for n in sorted(record["systems"])]


def test_rerun_resumes_from_checkpoints(run):
    folder, out, record = run
    again = evaluate_source(folder, quick=True, sids_file=folder / "Ring.sids.json", out_dir=out, quick_users=100)
    assert all(r["resumed"] for r in again["systems"].values())
    for name in record["systems"]:
        assert again["systems"][name]["metrics"] == record["systems"][name]["metrics"]
    assert again["comparisons"] == record["comparisons"]
    # another test sample is another experiment: nothing is reused
    other = evaluate_source(folder, systems=["popularity"], quick=True, sids_file=folder / "Ring.sids.json",
                            out_dir=out, quick_users=50)
    assert other["systems"]["popularity"]["resumed"] is False


def test_report_and_json_summary(run):
    _, out, record = run
    summary = json_summary(record)
    assert summary["protocol"] == "history_excluded" and summary["source"] == record["source"]
    assert set(summary["sasrec"]) == {"recall@10", "ndcg@10", "recall@30", "ndcg@30", "hr@30",
                                      "recall@30_familiar", "recall@30_unfamiliar", "n"}
    json.dumps(summary)
    text = write_markdown(record, out).read_text()
    assert "## history excluded" in text and "## history kept" in text and "tiger vs sasrec" in text
    assert (out / "segments-history_excluded.png").stat().st_size > 1000


def test_without_text_or_sids_tiger_is_skipped(tmp_path):
    folder = write_dataset(tmp_path, sequences=ring_sequences(n_users=60))
    record = evaluate_source(folder, systems=["popularity", "tiger"], out_dir=tmp_path / "out")
    assert list(record["systems"]) == ["popularity"]
    assert "no Semantic IDs" in record["skipped"]["tiger"] and "item.json" in record["skipped"]["tiger"]
    assert set(record["systems"]["popularity"]["metrics"]["history_kept"]) == {"overall"}
    summary = json_summary(record)
    assert summary["popularity"]["recall@30_familiar"] is None and "tiger" in summary["skipped"]
    again = evaluate_source(folder, systems=["popularity", "tiger"], out_dir=tmp_path / "out")
    assert again["skipped"] == record["skipped"]


def test_a_registered_system_runs(tmp_path):
    register_system("reverse", "tests.glide_model.sequential.test_harness:ReverseCountSystem")
    try:
        folder = write_dataset(tmp_path, sequences=ring_sequences(n_users=40))
        record = evaluate_source(folder, systems=["reverse", "popularity"])
        assert record["systems"]["reverse"]["info"] == {"note": "registered by a test"}
        assert np.isfinite(record["systems"]["reverse"]["metrics"]["history_excluded"]["overall"]["ndcg@10"])
    finally:
        SYSTEMS.pop("reverse", None)
    with pytest.raises(ValueError, match="unknown system"):
        evaluate_source(folder, systems=["nope"])
    with pytest.raises(ValueError, match="module:attribute"):
        register_system("bad", "no_colon")

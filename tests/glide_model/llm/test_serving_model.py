"""The model a server decodes with (glide_model/llm/serving_model.py): one loader for the worker,
evaluation and the job's scoring, holding the LM in the export's own serving dtype."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from glide_model.llm.checkpoint import CheckpointError, Manifest, export_merged
from glide_model.llm.decoding import HFBackend
from glide_model.llm.pipeline import GlideTrainConfig, _Run
from glide_model.llm.serving_model import load_for_serving, merge_for_serving
from glide_model.serving.contract import requests_from_examples
from glide_model.sids.trie import SidTrie
from tests.glide_model.llm.tiny_world import K, make_glm


def _with_dtype(export: Path, dtype: str) -> Path:
    manifest = json.loads((export / "glide_manifest.json").read_text())
    manifest["serving_dtype"] = dtype
    (export / "glide_manifest.json").write_text(json.dumps(manifest))
    return export


def _lists(results) -> list[list[tuple[int, ...]]]:
    return [[c for c, _ in r] for r in results]


def test_a_trained_export_is_served_in_its_manifest_dtype_and_ranks_like_float32(trained, world, tmp_path):
    _, codes, examples = world
    _, result = trained
    export = export_merged(result.checkpoint, tmp_path / "export")
    trie = SidTrie(np.array(list(codes.values())), K)
    full, manifest = load_for_serving(export, device="cpu")
    assert manifest.serving_dtype == "float32" and full.model.dtype == torch.float32  # the default

    _with_dtype(export, "bfloat16")
    half, manifest = load_for_serving(export, device="cpu")
    assert manifest.serving_dtype == "bfloat16" and half.model.dtype == torch.bfloat16
    assert {p.dtype for p in half.projector.parameters()} == {torch.float32}  # vectors are cast on injection
    served = HFBackend.from_checkpoint(export, trie, quantizer_version="q-test", catalog_version="c-test",
                                       device="cpu", num_beams=10)
    assert served.glm.model.dtype == torch.bfloat16  # evaluation's loader is the same one
    assert load_for_serving(export, device="cpu", dtype="float32")[0].model.dtype == torch.float32  # override

    reqs = requests_from_examples(examples)
    ours_fp32 = _lists(HFBackend(full, trie, num_beams=10).generate(reqs))
    ours_bf16 = _lists(served.generate(reqs))
    assert all(len(r) == 10 and len(set(r)) == 10 and all(c in trie for c in r) for r in ours_bf16)
    # A trained model's best SID is clear of the rest: bfloat16 keeps it nearly always.
    same_top1 = np.mean([a[0] == b[0] for a, b in zip(ours_fp32, ours_bf16)])
    assert same_top1 >= 0.9, same_top1
    targets = [tuple(t) for t in examples["target_codes"]]
    hits = lambda lists: np.mean([r[0] == t for r, t in zip(lists, targets)])  # noqa: E731
    assert abs(hits(ours_bf16) - hits(ours_fp32)) <= 0.1


def test_the_training_config_sets_the_manifest_dtype_and_bad_dtypes_are_refused(tmp_path):
    cfg = GlideTrainConfig(out_dir=tmp_path, serving_dtype="bfloat16")
    run = _Run(cfg=cfg, glm=None, trie=None, out_dir=tmp_path, base_path=tmp_path, result=None)
    assert run.manifest("done", 0).serving_dtype == "bfloat16"
    with pytest.raises(ValueError, match="serving_dtype must be one of"):
        GlideTrainConfig(serving_dtype="float16")
    with pytest.raises(ValueError, match="serving_dtype must be one of"):
        merge_for_serving(make_glm(), "int8")
    manifest = Manifest(base_model=".", variant="glide", levels=2, codebook_size=K, quantizer_version="q",
                        catalog_version="c", serving_dtype="float16")
    manifest.write(tmp_path)
    with pytest.raises(CheckpointError, match="serving_dtype must be one of .*, got 'float16'"):
        Manifest.read(tmp_path)
    old = json.loads((tmp_path / "glide_manifest.json").read_text())
    del old["serving_dtype"]  # written before manifests had it
    (tmp_path / "glide_manifest.json").write_text(json.dumps(old))
    assert Manifest.read(tmp_path).serving_dtype == "float32"


@pytest.mark.parametrize("native", [False, True])
def test_bf16_on_a_cpu_that_emulates_it_is_served_with_a_warning(monkeypatch, caplog, native):
    import glide_model.llm.serving_model as serving_model

    monkeypatch.setattr(serving_model, "cpu_has_native_bf16", lambda: native)
    with caplog.at_level("WARNING", logger="glide.serving_model"):
        half = merge_for_serving(make_glm(), "bfloat16")
    assert half.model.dtype == torch.bfloat16
    warned = [r for r in caplog.records if "without AVX512-BF16 or AMX" in r.getMessage()]
    assert len(warned) == (0 if native else 1)

"""End to end on the tiny world: grounding + instruction tuning overfit, resume, checkpoints, export."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest
import torch
from safetensors.torch import load_file
from transformers import AutoModelForCausalLM, AutoTokenizer

from glide_model.llm.checkpoint import (
    CheckpointError,
    CheckpointMismatchError,
    Manifest,
    check_compatible,
    export_merged,
    load_checkpoint,
    save_checkpoint,
)
from glide_model.llm.decoding import HFBackend
from glide_model.llm.serving_model import merge_for_serving
from glide_model.llm.grounding import LoraSettings, add_lora
from glide_model.llm.instruct import instruct_data
from glide_model.llm.pipeline import train_glide
from glide_model.llm.soft_prompt import SoftPromptProjector, inject_soft_prompt
from glide_model.llm.vocab import UnknownSidError
from glide_model.serving.contract import requests_from_examples
from glide_model.sids.trie import SidTrie
from tests.glide_model.llm.tiny_world import K, M, make_glm, run_config


def exact_match(backend: HFBackend, examples: pd.DataFrame) -> float:
    results = backend.generate(requests_from_examples(examples))
    return float(np.mean([bool(r) and r[0][0] == tuple(t) for r, t in zip(results, examples["target_codes"])]))


def trie_of(codes) -> SidTrie:
    return SidTrie(np.array(list(codes.values())), K)


def test_grounding_metrics_are_reported_and_losses_fall(trained):
    _, result = trained
    g = result.grounding
    assert set(g) == {"before", "after_stage1", "after_stage2"}
    for metrics in g.values():
        for key in ("text_to_sid_exact", "text_to_sid_prefix1", "text_to_sid_prefix2"):
            assert 0.0 <= metrics[key] <= 1.0
        assert metrics["text_to_sid_prefix1"] >= metrics["text_to_sid_prefix2"] >= metrics["text_to_sid_exact"]
    assert g["after_stage1"]["text_to_sid_loss"] < g["before"]["text_to_sid_loss"] - 1.0
    assert g["after_stage2"]["text_to_sid_loss"] < g["after_stage1"]["text_to_sid_loss"]
    assert g["after_stage2"]["sid_to_text_loss"] < g["before"]["sid_to_text_loss"]
    for stage in ("grounding_stage1", "grounding_stage2", "instruct"):
        assert result.stages[stage]["tokens_per_s"] > 0


def test_end_to_end_overfit_beats_chance(trained, world):
    _, codes, examples = world
    _, result = trained
    untrained = exact_match(HFBackend(make_glm(), trie_of(codes), num_beams=10), examples)
    glm, _ = load_checkpoint(result.checkpoint)
    trained_exact = exact_match(HFBackend(merge_for_serving(glm), trie_of(codes), num_beams=10), examples)
    chance = 1 / len(codes)
    assert untrained <= 0.15
    assert trained_exact >= max(0.5, 10 * chance), f"exact match {trained_exact} after training"


def test_resume_continues_exactly(trained, world, tmp_path):
    catalog, codes, examples = world
    cfg, result = trained
    mid = cfg.out_dir / "checkpoints" / "instruct-step000045"
    assert Manifest.read(mid).stage == "instruct" and Manifest.read(mid).step == 45
    resumed = train_glide(run_config(tmp_path), catalog, codes, examples, resume_from=mid)
    assert resumed.stages["instruct"]["steps"] == 90
    a = load_file(str(result.checkpoint / "adapter" / "adapter_model.safetensors"))
    b = load_file(str(resumed.checkpoint / "adapter" / "adapter_model.safetensors"))
    assert a.keys() == b.keys()
    for k in a:
        torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)
    pa = load_file(str(result.checkpoint / "projector.safetensors"))
    pb = load_file(str(resumed.checkpoint / "projector.safetensors"))
    for k in pa:
        torch.testing.assert_close(pa[k], pb[k], rtol=0, atol=1e-6)


def test_resume_inside_grounding_stages_is_exact(world, tmp_path):
    catalog, codes, examples = world

    def config(name):
        cfg = run_config(tmp_path / name)
        cfg.grounding.stage1.ckpt_every = cfg.grounding.stage2.ckpt_every = 10
        cfg.grounding.eval_episodes = 0
        cfg.instruct.max_steps, cfg.instruct.ckpt_every = 5, 0
        return cfg

    full = train_glide(config("full"), catalog, codes, examples)
    stage1 = full.checkpoint.parent / "checkpoints" / "grounding_stage1-step000010"
    adapter = load_file(str(stage1 / "adapter" / "adapter_model.safetensors"))
    assert adapter and all("trainable_tokens_delta" in k for k in adapter)  # only the SID rows, never the matrix
    for mid in (stage1, full.checkpoint.parent / "checkpoints" / "grounding_stage2-step000010"):
        resumed = train_glide(config(mid.name), catalog, codes, examples, resume_from=mid)
        for f in ("adapter/adapter_model.safetensors", "new_embeddings.safetensors", "projector.safetensors"):
            a, b = load_file(str(full.checkpoint / f)), load_file(str(resumed.checkpoint / f))
            for k in a:
                torch.testing.assert_close(a[k], b[k], rtol=0, atol=1e-6)


def _logits(glm, examples):
    items = glm.prompts.encode_rec(examples.to_dict("records"))
    batch = glm.collate(items, list(examples["cf_embedding"])).to(glm.device)
    with torch.no_grad():
        return glm.model(inputs_embeds=glm.embed(batch), attention_mask=batch.attention_mask).logits


def test_checkpoint_round_trip_gives_identical_outputs(world, tmp_path):
    catalog, codes, examples = world
    glm = make_glm()
    glm.model.save_pretrained(tmp_path / "base")
    glm.tokenizer.save_pretrained(tmp_path / "base")  # extended tokenizer is fine as a base too
    add_lora(glm, LoraSettings(r=4, alpha=8))
    with torch.no_grad():  # make the adapter non-trivial (LoRA B starts at zero)
        for n, p in glm.model.named_parameters():
            if "lora_B" in n:
                p.normal_(0, 0.05)
    glm.eval()
    manifest = Manifest(str(tmp_path / "base"), "glide", M, K, "q1", "c1")
    save_checkpoint(tmp_path / "ckpt", glm, manifest)
    assert all("lora_" in k for k in load_file(str(tmp_path / "ckpt" / "adapter" / "adapter_model.safetensors")))
    loaded, m2 = load_checkpoint(tmp_path / "ckpt")
    assert (m2.levels, m2.codebook_size, m2.quantizer_version) == (M, K, "q1")
    head = examples.iloc[:6]
    torch.testing.assert_close(_logits(glm, head), _logits(loaded, head), rtol=0, atol=0)
    trie = trie_of(codes)
    before = HFBackend(glm, trie).generate(requests_from_examples(head))
    after = HFBackend(loaded, trie).generate(requests_from_examples(head))
    for a, b in zip(before, after):
        assert [c for c, _ in a] == [c for c, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-5)  # matmul order noise only


def test_merged_export_loads_with_plain_transformers_and_matches(trained, world, tmp_path):
    _, codes, examples = world
    _, result = trained
    out = export_merged(result.checkpoint, tmp_path / "export")
    adapter_glm, _ = load_checkpoint(result.checkpoint)
    head = examples.iloc[:5]
    ref = _logits(adapter_glm, head)

    # Plain transformers: no GLIDE code beyond the projector saved beside the weights.
    model = AutoModelForCausalLM.from_pretrained(out).eval()
    tok = AutoTokenizer.from_pretrained(out)
    assert len(tok) == model.get_input_embeddings().num_embeddings
    manifest = Manifest.read(out)
    proj = SoftPromptProjector(**manifest.projector)
    proj.load_state_dict(load_file(str(out / "projector.safetensors")))
    batch = adapter_glm.collate(adapter_glm.prompts.encode_rec(head.to_dict("records")), list(head["cf_embedding"]))
    with torch.no_grad():
        embeds = inject_soft_prompt(
            model.get_input_embeddings()(batch.input_ids), batch.input_ids, proj(batch.cf, batch.has_cf),
            tok.convert_tokens_to_ids("<user_emb>"),
        )
        plain = model(inputs_embeds=embeds, attention_mask=batch.attention_mask).logits
    torch.testing.assert_close(plain, ref, rtol=1e-4, atol=1e-4)

    backend = HFBackend.from_checkpoint(out, trie_of(codes), quantizer_version="q-test", catalog_version="c-test")
    merged = backend.generate(requests_from_examples(head))
    unmerged = HFBackend(adapter_glm, trie_of(codes)).generate(requests_from_examples(head))
    assert [[c for c, _ in r] for r in merged] == [[c for c, _ in r] for r in unmerged]


def test_version_mismatch_is_refused(trained, world):
    _, codes, _ = world
    _, result = trained
    manifest = Manifest.read(result.checkpoint)
    with pytest.raises(CheckpointMismatchError, match="quantizer"):
        check_compatible(manifest, quantizer_version="q-other", catalog_version="c-test")
    with pytest.raises(CheckpointMismatchError, match="allow_catalog_update"):
        check_compatible(manifest, quantizer_version="q-test", catalog_version="c-other")
    check_compatible(manifest, quantizer_version="q-test", catalog_version="c-other", allow_catalog_update=True)
    with pytest.raises(CheckpointMismatchError):
        HFBackend.from_checkpoint(result.checkpoint, trie_of(codes), quantizer_version="q-other", catalog_version=None)


def test_manifest_records_the_cf_version_and_old_manifests_still_load(trained, tmp_path):
    import json

    _, result = trained
    assert Manifest.read(result.checkpoint).cf_version == "cf-test"
    assert Manifest.read(export_merged(result.checkpoint, tmp_path / "export")).cf_version == "cf-test"
    old = json.loads((result.checkpoint / "glide_manifest.json").read_text())
    del old["cf_version"]  # written before manifests had it
    (tmp_path / "old").mkdir()
    (tmp_path / "old" / "glide_manifest.json").write_text(json.dumps(old))
    assert Manifest.read(tmp_path / "old").cf_version is None


def test_bad_inputs_get_clear_errors(world, tmp_path):
    catalog, codes, examples = world
    glm = make_glm()
    bad = examples.copy()
    bad.at[0, "target_codes"] = (1, K, 2)
    with pytest.raises(UnknownSidError, match="different quantizer"):
        instruct_data(glm, bad)
    bad = examples.copy()
    bad["history_codes"] = [[(0, 0, K + 5)]] * len(bad)
    with pytest.raises(UnknownSidError):
        instruct_data(glm, bad)
    outside = examples.copy()
    outside.at[0, "target_codes"] = next(
        (a, b, c) for a in range(K) for b in range(K) for c in range(K) if (a, b, c) not in codes.values()
    )
    with pytest.raises(UnknownSidError, match="not in the catalog"):
        instruct_data(glm, outside, trie=trie_of(codes))
    with pytest.raises(ValueError, match="lacks columns"):
        instruct_data(glm, examples.drop(columns=["history_codes"]))
    wrong_dim = examples.copy()
    wrong_dim["cf_embedding"] = [np.zeros(5, np.float32)] * len(wrong_dim)
    with pytest.raises(ValueError, match="dim"):
        glm.collate(instruct_data(glm, wrong_dim).items[:2], list(wrong_dim["cf_embedding"][:2]))
    with pytest.raises(CheckpointError, match="not a GLIDE checkpoint"):
        load_checkpoint(tmp_path)
    no_cf = examples.assign(cf_embedding=None)
    with pytest.raises(ValueError, match="cf_embedding"):
        train_glide(run_config(tmp_path / "x"), catalog, codes, no_cf)

"""Which parameters each stage may change, the soft prompt's effect and gradients, the sampler."""

from __future__ import annotations

from dataclasses import replace

import numpy as np
import pytest
import torch

from glide_model.llm.grounding import (
    LoraSettings,
    add_lora,
    add_trainable_tokens,
    grounding_data,
    merge_adapter,
    train_grounding_stage,
)
from glide_model.llm.instruct import instruct_data, instruct_params, train_instruct
from glide_model.llm.backbone import set_training_attention
from glide_model.llm.trainer import BatchSampler, FrozenLinears, LoopConfig, cpu_has_native_bf16, train_loop, use_bf16
from tests.glide_model.llm.tiny_world import make_glm

FAST = LoopConfig(max_steps=3, batch_size=8, lr=1e-2, warmup_steps=1)


def snapshot(module: torch.nn.Module) -> dict[str, torch.Tensor]:
    return {k: v.detach().clone() for k, v in module.state_dict().items()}


@pytest.mark.parametrize("tied", [True, False])
def test_stage1_changes_only_new_sid_rows(world, tied):
    catalog, codes, _ = world
    glm = make_glm(tied)
    before = snapshot(glm.model)
    data = grounding_data(glm, catalog, codes)
    add_trainable_tokens(glm)
    train_grounding_stage("grounding_stage1", glm, data, FAST, progress=False)
    merge_adapter(glm)
    after = snapshot(glm.model)
    assert after.keys() == before.keys()
    sid_rows = torch.from_numpy(glm.vocab.sid_ids.reshape(-1))
    emb_keys = {"model.embed_tokens.weight", "lm_head.weight"}  # tied: the same tensor under two names
    assert (glm.model.get_output_embeddings().weight is glm.model.get_input_embeddings().weight) == tied
    for key in before:
        if key in emb_keys:
            changed = (after[key] != before[key]).any(1)
            assert changed[sid_rows].any(), f"{key}: no SID row trained"
            changed[sid_rows] = False
            assert not changed.any(), f"{key}: rows other than SID tokens changed"
        else:
            assert torch.equal(after[key], before[key]), f"{key} changed in stage 1"


def test_stage2_changes_only_lora_params(world):
    catalog, codes, _ = world
    glm = make_glm()
    data = grounding_data(glm, catalog, codes)
    add_lora(glm, LoraSettings(r=4, alpha=8))
    before = snapshot(glm.model)
    train_grounding_stage("grounding_stage2", glm, data, FAST, progress=False)
    after = snapshot(glm.model)
    lora_keys = [k for k in before if "lora_" in k]
    assert lora_keys
    assert any(not torch.equal(after[k], before[k]) for k in lora_keys)
    for k in before:
        if "lora_" not in k:
            assert torch.equal(after[k], before[k]), f"{k} changed in stage 2"
    trainable = {n for n, p in glm.model.named_parameters() if p.requires_grad}
    assert trainable and all("lora_" in n for n in trainable)


def test_soft_prompt_changes_output_and_gets_gradients(world):
    _, _, examples = world
    glm = make_glm()
    add_lora(glm, LoraSettings(r=4, alpha=8))
    items = glm.prompts.encode_rec(examples.iloc[:2].to_dict("records"))
    rng = np.random.default_rng(0)
    cf_a = [rng.normal(size=8).astype(np.float32), None]
    cf_b = [rng.normal(size=8).astype(np.float32), None]
    glm.eval()
    with torch.no_grad():
        la = glm.model(inputs_embeds=glm.embed(b := glm.collate(items, cf_a)), attention_mask=b.attention_mask).logits
        lb = glm.model(inputs_embeds=glm.embed(b2 := glm.collate(items, cf_b)), attention_mask=b2.attention_mask).logits
    assert not torch.allclose(la[0], lb[0])  # row 0's CF vector differs -> its output differs
    assert torch.equal(la[1], lb[1])  # row 1 has no CF vector: the default vector both times
    glm.train()
    loss = glm.loss(glm.collate(items, cf_a))
    loss.backward()
    for name, p in glm.projector.named_parameters():
        assert p.grad is not None and p.grad.abs().sum() > 0, f"no gradient reached projector.{name}"


def test_instruct_trains_lora_and_projector_only(world):
    _, _, examples = world
    glm = make_glm()
    add_lora(glm, LoraSettings(r=4, alpha=8))
    base = {k: v for k, v in snapshot(glm.model).items() if "lora_" not in k}
    proj = snapshot(glm.projector)
    data = instruct_data(glm, examples)
    result = train_instruct(glm, data, FAST, progress=False)
    assert result.steps == 3 and result.tokens > 0 and result.tokens_per_s > 0
    after = snapshot(glm.model)
    assert all(torch.equal(after[k], v) for k, v in base.items())
    assert any(not torch.equal(glm.projector.state_dict()[k], v) for k, v in proj.items())
    assert len(instruct_params(glm)) == sum(1 for p in glm.model.parameters() if p.requires_grad) + len(list(glm.projector.parameters()))


def test_weighted_sampler_follows_weights_and_resumes():
    s = BatchSampler(3, 1000, weights=[0.0, 1.0, 3.0], seed=1)
    draws = np.bincount(s.next(), minlength=3)
    assert draws[0] == 0 and 2.2 < draws[2] / draws[1] < 4.0
    u = BatchSampler(5, 3, seed=2)
    first_epoch = u.next() + u.next()[:2]
    assert sorted(first_epoch) == list(range(5))  # uniform weights: shuffled epochs, no repeats
    state = u.state_dict()
    expected = [u.next() for _ in range(3)]
    u.load_state_dict(state)
    assert [u.next() for _ in range(3)] == expected
    with pytest.raises(ValueError, match="weights"):
        BatchSampler(2, 1, weights=[1.0, float("nan")])


def test_length_grouped_batches_pad_less_and_keep_the_sampling():
    rng = np.random.default_rng(0)
    lengths = rng.integers(78, 123, size=1024)  # 8 groups of 16 x 8

    def padding(sampler, steps=400):
        batches = [sampler.next() for _ in range(steps)]
        waste = sum(len(b) * lengths[b].max() - lengths[b].sum() for b in batches)
        return waste / sum(len(b) * lengths[b].max() for b in batches), batches

    plain, _ = padding(BatchSampler(1024, 8, seed=3, lengths=lengths, group=1))
    grouped, batches = padding(BatchSampler(1024, 8, seed=3, lengths=lengths, group=16))
    assert plain > 0.1 and grouped < plain / 4
    # Uniform weights: still shuffled epochs, every example once per epoch.
    assert sorted(i for b in batches[:128] for i in b) == list(range(1024))
    # Weighted draws keep their distribution; only the grouping changes.
    w = BatchSampler(3, 8, weights=[0.0, 1.0, 3.0], seed=1, lengths=[5, 9, 7], group=16)
    draws = np.bincount([i for _ in range(250) for i in w.next()], minlength=3)
    assert draws[0] == 0 and 2.2 < draws[2] / draws[1] < 4.0
    # Exact resume mid-group.
    g = BatchSampler(1024, 8, seed=4, lengths=lengths, group=16)
    [g.next() for _ in range(5)]
    state = g.state_dict()
    expected = [g.next() for _ in range(30)]
    g.load_state_dict(state)
    assert [g.next() for _ in range(30)] == expected
    with pytest.raises(ValueError, match="lengths"):
        BatchSampler(3, 2, lengths=[1, 2])


def test_left_padded_tail_loss_equals_full_loss(world):
    """Training collates left-padded and runs the LM head on the target tail only; the loss must be
    the same number as the full right-padded forward pass with HF's own label shift."""
    catalog, codes, examples = world
    glm = make_glm(seed=1)
    from glide_model.llm.instruct import instruct_data

    data = instruct_data(glm, examples.head(6))
    items, cf = data.items, data.cf
    right = glm.collate(items, cf)
    left = glm.collate(items, cf, left_pad=True)
    assert len({len(e.input_ids) for e in items}) > 1  # rows of different length: padding matters
    glm.eval()
    with torch.no_grad():
        torch.testing.assert_close(glm.loss(left), glm.loss(right), rtol=1e-4, atol=1e-5)


def test_shared_prefix_gives_the_same_loss_and_gradients(world):
    """Training runs the prompt prefix every row shares (system prompt, chat header) once per batch;
    loss and gradients must be those of the rows run whole."""
    catalog, codes, examples = world
    glm = make_glm(seed=2)
    add_lora(glm, LoraSettings(r=4, alpha=8, dropout=0.0))
    data = instruct_data(glm, examples.head(6))
    items, cf = data.items, data.cf
    shared = glm.collate(items, cf, left_pad=True, share_prefix=True)
    whole = glm.collate(items, cf, left_pad=True)
    assert shared.prefix_ids is not None and len(shared.prefix_ids) >= 8
    # The prefix stops before the soft-prompt placeholder: each row's CF vector goes there.
    assert glm.vocab.placeholder_id not in shared.prefix_ids.tolist()
    assert shared.num_tokens == whole.num_tokens
    params = instruct_params(glm)
    glm.eval()  # no dropout: the two passes must be the same function

    def loss_and_grads(batch):
        for p in params:
            p.grad = None
        loss = glm.loss(batch)
        loss.backward()
        return loss.detach(), [p.grad.clone() for p in params]

    loss_s, grads_s = loss_and_grads(shared)
    loss_w, grads_w = loss_and_grads(whole)
    torch.testing.assert_close(loss_s, loss_w, rtol=1e-4, atol=1e-5)
    assert any(g.abs().sum() > 0 for g in grads_w)
    for gs, gw in zip(grads_s, grads_w):
        torch.testing.assert_close(gs, gw, rtol=1e-3, atol=1e-5)
    # Grounding prompts (both directions) share their prefix the same way.
    g_items = grounding_data(glm, catalog, codes).items[:6]
    g_shared = glm.collate(g_items, left_pad=True, share_prefix=True)
    assert g_shared.prefix_ids is not None
    with torch.no_grad():
        torch.testing.assert_close(glm.loss(g_shared), glm.loss(glm.collate(g_items, left_pad=True)),
                                   rtol=1e-4, atol=1e-5)


def test_bf16_switch_trains_under_autocast_and_is_recorded(world):
    catalog, codes, _ = world
    runs = {}
    for mode in ("off", "on"):
        glm = make_glm(seed=0)
        data = grounding_data(glm, catalog, codes)
        add_lora(glm, LoraSettings(r=4, alpha=8))
        runs[mode] = train_grounding_stage("grounding_stage2", glm, data, replace(FAST, bf16=mode), progress=False)
    assert runs["on"].bf16 and not runs["off"].bf16
    assert np.isfinite(runs["on"].losses).all()
    # Same weights, same first batch: only the matmul precision differs.
    assert runs["on"].losses[0] != runs["off"].losses[0]
    assert runs["on"].losses[0] == pytest.approx(runs["off"].losses[0], rel=0.05)
    assert use_bf16("auto", torch.device("cpu")) == cpu_has_native_bf16()
    assert use_bf16("auto", torch.device("cuda")) and not use_bf16("off", torch.device("cuda"))
    with pytest.raises(ValueError, match="bf16"):
        LoopConfig(bf16="yes")


def test_bf16_stages_hold_frozen_linears_in_bf16_only_during_steps(world):
    """Frozen weights are bf16 inside a step's forward/backward and bit-identical fp32 afterwards
    (and at validation), with the loss autocast alone would give."""
    catalog, codes, _ = world
    losses, seen = {}, {}
    for cast in (False, True):
        glm = make_glm(seed=0)
        data = grounding_data(glm, catalog, codes)
        add_lora(glm, LoraSettings(r=4, alpha=8))
        base = glm.model.get_base_model().model.layers[0].mlp.down_proj.base_layer
        before = base.weight.detach().clone()
        step = glm.step_fn(data.items, share_prefix=False)

        def watched(indices, step=step, base=base, cast=cast):
            seen.setdefault(cast, []).append(base.weight.dtype)
            return step(indices)

        at_validation = []
        result = train_loop("stage", [p for p in glm.model.parameters() if p.requires_grad], watched,
                            BatchSampler(len(data.items), 8, seed=0), replace(FAST, bf16="on", eval_every=2),
                            device=glm.device, progress=False, model=glm.model if cast else None,
                            validate=lambda s, base=base: at_validation.append(base.weight.dtype) or {})
        losses[cast] = result.losses
        assert base.weight.dtype == torch.float32 and torch.equal(base.weight.detach(), before)
        assert at_validation and all(d == torch.float32 for d in at_validation)
    assert seen[True] == [torch.bfloat16] * FAST.max_steps and seen[False] == [torch.float32] * FAST.max_steps
    assert losses[True][0] == pytest.approx(losses[False][0], rel=1e-3)
    assert glm.model.get_output_embeddings().weight.dtype == torch.float32


def test_frozen_linears_skip_trainable_and_tied_weights():
    glm = make_glm(tied=True)
    add_lora(glm, LoraSettings(r=4, alpha=8))
    frozen = FrozenLinears(glm.model, torch.bfloat16)
    frozen.low()
    try:
        names = {n for n, p in glm.model.named_parameters() if p.dtype == torch.bfloat16}
        assert names and all("base_layer" in n for n in names)  # LoRA A/B and lm_head/embeddings stay fp32
    finally:
        frozen.original()
    assert all(p.dtype == torch.float32 for p in glm.model.parameters())


def test_training_attention_is_eager_on_cpu_by_default():
    glm = make_glm()
    assert set_training_attention(glm.model, "auto", torch.device("cpu")) == "eager"
    assert glm.model.config._attn_implementation == "eager"
    assert set_training_attention(glm.model, "sdpa", torch.device("cpu")) == "sdpa"
    with pytest.raises(ValueError, match="attention"):
        set_training_attention(glm.model, "flash", torch.device("cpu"))

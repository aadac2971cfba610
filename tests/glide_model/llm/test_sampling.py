"""Trie-constrained sampling: only catalog SIDs, temperature and top-p do what they say, greedy = 1 beam."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from glide_model.llm.decoding import constrained_beam_search
from glide_model.llm.sampling import SamplingConfig, constrained_sample, nucleus_probs, rank_draws
from glide_model.sids.trie import SidTrie
from tests.glide_model.llm.tiny_world import K, M, make_glm


@pytest.fixture(scope="module")
def glm():
    return make_glm(seed=3)


CODES = np.unique(np.random.default_rng(0).integers(0, K, size=(120, M)), axis=0)


@pytest.fixture(scope="module")
def trie():
    return SidTrie(CODES, K)


def prompts(glm, n: int = 5):
    rng = np.random.default_rng(5)
    rows = [{"history_codes": [tuple(int(x) for x in rng.integers(0, K, M)) for _ in range(i % 3)],
             "mode": ("familiar", "unfamiliar")[i % 2]} for i in range(n)]
    return glm.prompts.encode_rec(rows, with_target=False), [None] * n


def test_samples_are_distinct_catalog_sids_ranked_by_count(glm, trie):
    items, cf = prompts(glm)
    out = constrained_sample(glm, items, trie, SamplingConfig(num_samples=40, temperature=1.5), cf=cf, batch_size=2)
    assert len(out) == len(items)
    for cands in out:
        sids = [c for c, _ in cands]
        assert sids and len(sids) == len(set(sids)) <= 40
        assert all(c in trie for c in sids)
        assert all(np.isfinite(s) and s <= 0 for _, s in cands)


def test_greedy_equals_one_beam(glm, trie):
    items, cf = prompts(glm)
    greedy = constrained_sample(glm, items, trie, SamplingConfig(temperature=0.0), cf=cf)
    beam = constrained_beam_search(glm, items, trie, cf=cf, num_beams=1)
    for g, b in zip(greedy, beam):
        assert len(g) == 1
        assert g[0][0] == b[0][0]
        assert g[0][1] == pytest.approx(b[0][1], abs=1e-4)


def test_low_temperature_concentrates_and_high_temperature_spreads(glm, trie):
    items, cf = prompts(glm, 3)
    cold = constrained_sample(glm, items, trie, SamplingConfig(num_samples=30, temperature=1e-5), cf=cf)
    hot = constrained_sample(glm, items, trie, SamplingConfig(num_samples=30, temperature=5.0), cf=cf)
    greedy = constrained_sample(glm, items, trie, SamplingConfig(temperature=0.0), cf=cf)
    assert [c[0][0] for c in cold] == [g[0][0] for g in greedy]
    assert sum(len(c) for c in cold) < sum(len(h) for h in hot)


def test_tiny_top_p_keeps_only_the_most_likely_code(glm, trie):
    items, cf = prompts(glm, 3)
    nucleus = constrained_sample(glm, items, trie, SamplingConfig(num_samples=20, temperature=3.0, top_p=1e-6), cf=cf)
    greedy = constrained_sample(glm, items, trie, SamplingConfig(temperature=0.0), cf=cf)
    for n, g in zip(nucleus, greedy):
        assert [c for c, _ in n] == [g[0][0]]  # every draw took the top code at every level


def test_nucleus_probs_truncates_to_top_p_mass():
    logp = torch.log(torch.tensor([[0.5, 0.3, 0.15, 0.05], [0.25, 0.25, 0.25, 0.25]]))
    logp[1, 3] = -torch.inf  # a code the trie does not allow
    p = nucleus_probs(logp, 1.0, 0.7)
    assert torch.allclose(p[0], torch.tensor([0.5 / 0.8, 0.3 / 0.8, 0.0, 0.0]))
    assert p[1, 3] == 0 and (p[1, :3] > 0).sum() == 3  # 1/3 + 1/3 < 0.7: the third code is needed
    assert torch.allclose(nucleus_probs(logp, 1.0, 1.0).sum(-1), torch.ones(2))
    flat = nucleus_probs(logp[:1], 100.0, 1.0)[0]
    assert float(flat.max() - flat.min()) < 0.02  # high temperature: near uniform


def test_same_seed_same_draws(glm, trie):
    items, cf = prompts(glm, 2)
    cfg = SamplingConfig(num_samples=10, temperature=1.0, top_p=0.9, seed=7)
    assert constrained_sample(glm, items, trie, cfg, cf=cf) == constrained_sample(glm, items, trie, cfg, cf=cf)


def test_rank_draws_counts_then_log_prob(trie):
    a, b = (tuple(x) for x in CODES[:2].tolist())
    ranked = rank_draws([a, b, b, (K + 5,) * M, a], [-1.0, -3.0, -2.0, -0.1, -float("inf")], trie)
    assert ranked == [(b, -2.0), (a, -1.0)]  # b drawn twice; the outside SID and the -inf draw are dropped

"""Trie-constrained beam search: validity, distinctness, engines agree, batching is transparent."""

from __future__ import annotations

import numpy as np
import pytest

from glide_model.llm.decoding import HFBackend, constrained_beam_search
from glide_model.serving.contract import GenerationBackend, RecRequest
from glide_model.sids.trie import SidTrie
from tests.glide_model.llm.tiny_world import K, M, make_glm


@pytest.fixture(scope="module")
def glm():
    return make_glm(seed=3)


def catalog_trie(n: int, seed: int = 0) -> SidTrie:
    rng = np.random.default_rng(seed)
    return SidTrie(np.unique(rng.integers(0, K, size=(n, M)), axis=0), K)


def requests(n: int = 4) -> list[RecRequest]:
    rng = np.random.default_rng(5)
    return [
        RecRequest(
            history_codes=[tuple(int(x) for x in rng.integers(0, K, M)) for _ in range(i % 3)],
            mode=("familiar", "unfamiliar")[i % 2],
            locale="en-US" if i % 2 else None,
            affinity_topics=["news"][: i % 2],
            cf_embedding=rng.normal(size=8).astype(np.float32) if i % 3 else None,
        )
        for i in range(n)
    ]


def test_beam_search_returns_30_distinct_trie_valid_sids(glm):
    trie = catalog_trie(200)
    backend = HFBackend(glm, trie, num_beams=30)
    assert isinstance(backend, GenerationBackend)
    for cands in backend.generate(requests()):
        sids = [c for c, _ in cands]
        assert len(sids) == 30 and len(set(sids)) == 30
        assert all(c in trie for c in sids)
        scores = [s for _, s in cands]
        assert scores == sorted(scores, reverse=True) and all(np.isfinite(scores))


def test_small_catalog_gives_every_sid_once(glm):
    trie = catalog_trie(12, seed=1)
    (cands,) = HFBackend(glm, trie, num_beams=30).generate(requests(1))
    assert sorted(c for c, _ in cands) == sorted(tuple(c) for c in np.unique(np.random.default_rng(1).integers(0, K, size=(12, M)), axis=0).tolist())


@pytest.mark.parametrize("beams", [1, 5, 30])
def test_sid_engine_matches_transformers_generate(glm, beams):
    trie = catalog_trie(150)
    reqs = requests()
    ours = HFBackend(glm, trie, num_beams=beams, engine="sid").generate(reqs)
    ref = HFBackend(glm, trie, num_beams=beams, engine="hf").generate(reqs)
    for a, b in zip(ours, ref):
        assert [c for c, _ in a] == [c for c, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-4)


def test_batching_does_not_change_results(glm):
    trie = catalog_trie(150)
    reqs = requests(5)
    batched = HFBackend(glm, trie, batch_size=8).generate(reqs)
    single = [HFBackend(glm, trie, batch_size=1).generate([r])[0] for r in reqs]
    for a, b in zip(batched, single):
        assert [c for c, _ in a] == [c for c, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-4)


def test_wrong_trie_shape_is_refused(glm):
    with pytest.raises(ValueError, match="quantizer"):
        constrained_beam_search(glm, [], SidTrie(np.zeros((1, M + 1), dtype=int), K))


@pytest.mark.parametrize("engine", ["sid", "hf"])
def test_per_request_allowed_tries_restrict_each_request(glm, engine):
    """Eligibility-aware decoding: each request only gets SIDs of its own sub-trie, and a request
    without one still searches the whole catalog; an unrestricted request in the same batch is
    unchanged by its neighbours' restrictions."""
    from dataclasses import replace

    codes = np.unique(np.random.default_rng(2).integers(0, K, size=(150, M)), axis=0)
    trie = SidTrie(codes, K)
    small, medium = SidTrie(codes[:7], K), SidTrie(codes[40:100], K)
    reqs = requests(3)
    restricted = [replace(reqs[0], allowed=small), reqs[1], replace(reqs[2], allowed=medium)]
    backend = HFBackend(glm, trie, num_beams=30, engine=engine)
    got = backend.generate(restricted)
    assert sorted(c for c, _ in got[0]) == sorted(map(tuple, codes[:7].tolist()))  # all 7, nothing else
    assert len(got[2]) == 30 and all(c in medium for c, _ in got[2])
    free = backend.generate([reqs[1]])[0]
    assert [c for c, _ in got[1]] == [c for c, _ in free]
    assert any(c not in medium for c, _ in free)  # the restriction is what kept request 2 inside
    # the restricted beams are the unrestricted model's best SIDs inside the sub-trie, same scores
    whole = HFBackend(glm, trie, num_beams=150, engine="sid").generate([reqs[2]])[0]
    inside = [(c, s) for c, s in whole if c in medium][:30]
    assert [c for c, _ in got[2]][:10] == [c for c, _ in inside][:10]


def test_tree_decoding_matches_transformers_generate_under_eager_attention():
    """The sid engine's 4D tree mask is additive, which eager attention (the CPU training default) takes too."""
    glm = make_glm(seed=4)
    glm.model.set_attn_implementation("eager")
    trie = catalog_trie(150, seed=2)
    reqs = requests(3)
    ours = HFBackend(glm, trie, num_beams=30, engine="sid").generate(reqs)
    ref = HFBackend(glm, trie, num_beams=30, engine="hf").generate(reqs)
    for a, b in zip(ours, ref):
        assert [c for c, _ in a] == [c for c, _ in b]
        np.testing.assert_allclose([s for _, s in a], [s for _, s in b], atol=1e-4)

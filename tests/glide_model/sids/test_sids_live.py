import time

import numpy as np
import pytest
from tests.glide_model.sids.sid_fixtures import toy_episodes

from glide_model.sids.collisions import Eligibility
from glide_model.sids.encoder import embed_episodes
from glide_model.sids.live import SidIndex
from glide_model.sids.rkmeans import RKMeans


@pytest.fixture(scope="module")
def fitted(text_encoder):
    episodes = toy_episodes()
    emb = embed_episodes(text_encoder, episodes, progress=False)
    quantizer = RKMeans(levels=3, codebook_size=4, seed=0).fit(emb, encoder=text_encoder.name)
    assignments = dict(zip(episodes["episode_id"], map(tuple, quantizer.encode(emb).tolist())))
    return quantizer, assignments


@pytest.fixture
def index(text_encoder, fitted):
    """A fresh index per test (tests add episodes), sharing the fitted quantizer."""
    quantizer, assignments = fitted
    episodes = toy_episodes()
    return SidIndex.build(quantizer, episodes, encoder=text_encoder, assignments=assignments), episodes


def test_build_without_assignments_encodes_the_catalog(text_encoder, fitted):
    quantizer, assignments = fitted
    idx = SidIndex.build(quantizer, toy_episodes(), encoder=text_encoder)
    assert {e: idx.table.codes_of(e) for e in assignments} == assignments


def test_encoder_mismatch_is_refused(fitted, text_encoder):
    from glide_model.sids.encoder import EncoderConfig, TextEncoder, default_model_path

    quantizer, assignments = fitted
    other = TextEncoder(EncoderConfig(model_path=str(default_model_path())))
    other.name = "some-other-encoder"
    with pytest.raises(ValueError, match="wrong SID space"):
        SidIndex.build(quantizer, toy_episodes(), encoder=other, assignments=assignments)


def test_build_assigns_every_episode(index):
    idx, episodes = index
    assert len(idx.table) == len(episodes)
    for eid in episodes["episode_id"]:
        assert idx.table.codes_of(eid) in idx.trie


def test_new_episode_is_recommendable_without_refit(index):
    idx, _ = index
    centroids = idx.quantizer.centroids.copy()
    new = {
        "episode_id": "ep_999999",
        "title": "Offside rule controversy",
        "description": "Referees, VAR and the football offside debate after a wild weekend of Premier League games.",
        "locale": "en-US",
        "playable": True,
        "popularity": 1000.0,
    }
    start = time.perf_counter()
    codes = idx.add_episode(new)
    seconds = time.perf_counter() - start
    assert codes in idx.trie
    assert idx.resolve(codes, Eligibility.for_user("en-US")) == "ep_999999"  # most popular in its bucket
    np.testing.assert_array_equal(idx.quantizer.centroids, centroids)
    # its first-level code is that of the football episodes, not cooking or astronomy
    football = [idx.table.codes_of(f"ep_{i:06d}")[0] for i in range(1, 5)]
    assert codes[0] == max(set(football), key=football.count)
    print(f"cold start: {seconds * 1000:.1f} ms from add_episode() to recommendable")
    assert seconds < 2.0


def test_add_episode_bad_input(index):
    idx, _ = index
    with pytest.raises(ValueError, match="ep_x"):
        idx.add_episode({"episode_id": "ep_x", "title": " ", "description": None})
    with pytest.raises(ValueError, match="episode_id"):
        idx.add_episode({"title": "t"})
    assert "ep_x" not in idx

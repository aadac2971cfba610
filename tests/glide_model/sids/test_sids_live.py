import time

import numpy as np
import pytest
from sid_fixtures import toy_episodes

from glide_model.sids.collisions import Eligibility
from glide_model.sids.encoder import embed_episodes
from glide_model.sids.live import SidIndex
from glide_model.sids.rkmeans import RKMeans


@pytest.fixture
def index(text_encoder):
    episodes = toy_episodes()
    quantizer = RKMeans(levels=3, codebook_size=4, seed=0).fit(
        embed_episodes(text_encoder, episodes, progress=False), encoder=text_encoder.name
    )
    return SidIndex.build(quantizer, episodes, encoder=text_encoder), episodes


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

"""GlideRecommender: GLIDE's beams (a real tiny model, trie-constrained) mapped to episodes under
the same rules as the baselines; eligibility-aware decoding spends every beam on servable SIDs."""

from __future__ import annotations

import numpy as np
import pandas as pd
import pytest

from glide_model.evaluation.glide import GlideRecommender
from glide_model.llm.decoding import HFBackend
from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from tests.glide_model.llm.tiny_world import K, M, make_glm

T0 = pd.Timestamp("2026-03-01", tz="UTC")
SHOWS = ("fam", "hab", "other1", "other2")


@pytest.fixture(scope="module")
def setup():
    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, K, size=(200, M)), axis=0)[:120]
    rng.shuffle(codes)
    eps = pd.DataFrame({
        "episode_id": [f"e{i:03d}" for i in range(120)],
        "show_id": [SHOWS[i % 4] for i in range(120)],
        "locale": ["en-US" if i % 3 else "de-DE" for i in range(120)],
        "playable": [i % 17 != 0 for i in range(120)],
        "popularity": rng.integers(0, 50, 120).astype(float),
        # half of "fam" and of "other1" are published after the request: never eligible
        "published_at": [T0 + pd.Timedelta(days=20 if i % 8 in (4, 6) else -5) for i in range(120)],
    })
    assignments = dict(zip(eps["episode_id"], map(tuple, codes.tolist())))
    listens = pd.DataFrame({  # "fam": heard, non-habitual (5 min); "hab": habitual (20 min)
        "user_id": ["u", "u"], "episode_id": ["e000", "e001"], "show_id": ["fam", "hab"],
        "listened_seconds": [300, 1200], "ts": [T0 - pd.Timedelta(days=2)] * 2, "locale": ["en-US"] * 2,
    })
    glm = make_glm(seed=2)
    backend = HFBackend(glm, SidTrie(codes, K), num_beams=30)
    table = CollisionTable.from_frame(eps, assignments)
    rows = [{"user_id": "u", "ts": T0, "mode": mode, "locale": "en-US", "history_episode_ids": ["e000", "e001"],
             "history_codes": [assignments["e000"], assignments["e001"]], "affinity_topics": ["news"],
             "cf_embedding": np.ones(8, dtype=np.float32)} for mode in ("familiar", "unfamiliar")]
    return eps.set_index("episode_id"), backend, table, listens, pd.DataFrame(rows)


def _eligible(eps: pd.DataFrame, shows: set[str]) -> pd.DataFrame:
    ok = eps["show_id"].isin(shows) & eps["playable"] & (eps["published_at"] <= T0)
    return eps[ok & ~eps.index.isin(["e000", "e001"])]


def test_eligible_decoding_fills_every_slot_with_servable_episodes(setup):
    eps, backend, table, listens, examples = setup
    show_of = eps["show_id"].to_dict()
    pub = eps["published_at"].to_dict()
    rec = GlideRecommender(backend, table, show_of, listens, published_at=pub, locale_rule="none")
    familiar, unfamiliar = rec.recommend(examples, 30)

    fam_pool = _eligible(eps, {"fam"})
    assert 0 < len(fam_pool) < 30  # the familiar request can be served every eligible episode
    assert sorted(familiar) == sorted(fam_pool.index)
    assert len(unfamiliar) == 30 and set(unfamiliar) <= set(_eligible(eps, {"other1", "other2"}).index)

    post = GlideRecommender(backend, table, show_of, listens, published_at=pub, eligible_decoding=False,
                            locale_rule="none")
    post_fam, post_unfam = post.recommend(examples, 30)
    assert set(post_fam) <= set(fam_pool.index)
    assert set(post_unfam) <= set(_eligible(eps, {"other1", "other2"}).index)
    # over the whole catalog most beams land on ineligible SIDs and are dropped afterwards
    assert len(post_fam) < len(familiar) and len(post_unfam) < len(unfamiliar)


def test_locale_rule(setup):
    eps, backend, table, listens, examples = setup
    rec = GlideRecommender(backend, table, eps["show_id"].to_dict(), listens,
                           published_at=eps["published_at"].to_dict(), locale_rule="locale")
    for recs in rec.recommend(examples, 30):
        assert recs and (eps.loc[recs, "locale"] == "en-US").all()
    with pytest.raises(ValueError, match="locale_rule"):
        GlideRecommender(backend, table, {}, listens, locale_rule="country")

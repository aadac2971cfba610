import numpy as np
import pandas as pd
import pytest
from tests.glide_model.sids.sid_fixtures import TOPIC_TEXTS, toy_episodes

from glide_model.sids.encoder import (
    EmbeddingCache,
    EncoderConfig,
    TextEncoder,
    embed_episodes,
    embed_texts,
    episode_text,
    episode_texts,
)


def test_same_topic_texts_are_closer_than_cross_topic(text_encoder):
    episodes = toy_episodes()
    emb = embed_episodes(text_encoder, episodes, progress=False)
    assert emb.shape == (12, 384) and emb.dtype == np.float32
    np.testing.assert_allclose(np.linalg.norm(emb, axis=1), 1.0, atol=1e-5)
    sim = emb @ emb.T
    topic = episodes["topic"].to_numpy()
    same = (topic[:, None] == topic[None, :]) & ~np.eye(len(topic), dtype=bool)
    cross = topic[:, None] != topic[None, :]
    assert sim[same].mean() > sim[cross].mean() + 0.15
    # and per item: its nearest other item shares its topic
    np.fill_diagonal(sim, -1)
    assert (topic[sim.argmax(1)] == topic).mean() >= 0.9


def test_empty_text_names_the_episodes():
    episodes = toy_episodes()
    episodes.loc[2, ["title", "description"]] = ["   ", None]
    episodes.loc[5, ["title", "description"]] = [np.nan, ""]
    with pytest.raises(ValueError, match=r"2 episode\(s\).*\['ep_000003', 'ep_000006'\]"):
        episode_texts(episodes)


def test_encode_rejects_empty_strings_without_loading_garbage(text_encoder):
    with pytest.raises(ValueError, match="positions \\[1\\]"):
        text_encoder.encode(["fine", "  "], progress=False)


def test_huge_text_is_truncated_not_fatal(text_encoder):
    head = "A long history of the Roman empire and its emperors. "
    huge = head * (1_000_000 // len(head))
    assert len(huge) > 990_000
    v = text_encoder.encode([huge, head * 40], progress=False)
    assert np.isfinite(v).all()
    # only the first max_seq_length tokens count, so the huge text embeds like its head
    assert float(v[0] @ v[1]) > 0.99


def test_episode_text_joins_title_and_description():
    assert episode_text(" Title ", " Desc ") == "Title\nDesc"
    assert episode_text("Title", float("nan")) == "Title"
    assert episode_text(None, "Desc") == "Desc"


def test_cache_avoids_recomputing_and_survives_reload(text_encoder, tmp_path):
    texts = [f"{t}\n{d}" for items in TOPIC_TEXTS.values() for t, d in items][:5]
    cache = EmbeddingCache(tmp_path / "emb")
    first = embed_texts(text_encoder, texts + texts[:2], cache=cache, progress=False)
    assert len(cache) == 5
    np.testing.assert_array_equal(first[5], first[0])
    reloaded = EmbeddingCache(tmp_path / "emb")
    assert len(reloaded) == 5

    class NoEncoder(TextEncoder):  # a cache hit must not touch the model
        def encode(self, texts, progress=True):
            raise AssertionError(f"recomputed {len(texts)} texts")

    again = embed_texts(NoEncoder(), texts, cache=reloaded, progress=False)
    np.testing.assert_allclose(again, first[:5])


def test_missing_model_folder_is_a_clear_error(tmp_path):
    with pytest.raises(FileNotFoundError, match="never downloaded"):
        TextEncoder(EncoderConfig(model_path=str(tmp_path / "nope")))


def test_embed_catalog_skips_empty_episodes_and_names_them(text_encoder):
    from glide_model.sids.encoder import embed_catalog

    episodes = toy_episodes()
    episodes.loc[3, ["title", "description"]] = ["", "  "]
    kept, emb, dropped = embed_catalog(episodes, text_encoder, progress=False)
    assert dropped == ["ep_000004"] and len(kept) == len(emb) == 11
    assert "ep_000004" not in set(kept["episode_id"])

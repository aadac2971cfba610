"""glide.world.generator: determinism, referential sanity, behaviour mix, text topics, save/load."""

from __future__ import annotations

import re
from dataclasses import replace

import numpy as np
import pandas as pd
import pytest

from glide.world import World, WorldConfig, classify_listens, generate_world
from glide.world.schema import COLUMNS, TABLES
from glide.world.vocab import TOPIC_VOCAB

SMALL = WorldConfig(users=200, days=14, seed=7)


@pytest.fixture(scope="module")
def world() -> World:
    return generate_world(SMALL)


@pytest.fixture(scope="module")
def labels(world: World) -> pd.Series:
    return classify_listens(world.listens)


def test_same_seed_gives_byte_identical_files(tmp_path):
    a = generate_world(replace(SMALL, users=60)).save(tmp_path / "a")
    b = generate_world(replace(SMALL, users=60)).save(tmp_path / "b")
    for name in [*TABLES, "world"]:
        suffix = ".json" if name == "world" else ".parquet"
        assert (a / f"{name}{suffix}").read_bytes() == (b / f"{name}{suffix}").read_bytes(), name


def test_different_seed_gives_a_different_world():
    a = generate_world(replace(SMALL, users=60))
    b = generate_world(replace(SMALL, users=60, seed=SMALL.seed + 1))
    assert not a.episodes["title"].equals(b.episodes["title"])
    assert not a.listens[["user_id", "episode_id"]].equals(b.listens[["user_id", "episode_id"]])


def test_tables_follow_the_contract(world: World):
    for name in TABLES:
        df = getattr(world, name)
        assert list(df.columns)[: len(COLUMNS[name])] == list(COLUMNS[name]), name
    for df, col in ((world.episodes, "published_at"), (world.sessions, "ts"), (world.listens, "ts")):
        assert str(df[col].dtype) == "datetime64[ns, UTC]"
    assert world.shows["show_id"].str.fullmatch(r"show_\d{4}").all()
    assert world.episodes["episode_id"].str.fullmatch(r"ep_\d{6}").all()
    assert world.users["user_id"].str.fullmatch(r"user_\d{5}").all()
    assert world.listens["event_id"].is_unique and world.sessions["session_id"].is_unique
    assert set(world.sessions["surface"]) == {"home", "search", "show_page", "exploration"}
    assert len(world.topics) == 25


def test_timestamps_lie_in_the_window_and_after_publication(world: World):
    for ts in (world.sessions["ts"], world.listens["ts"]):
        assert ts.min() >= world.start and ts.max() < world.end
    joined = world.listens.merge(world.episodes, on="episode_id", suffixes=("", "_ep"))
    assert len(joined) == len(world.listens)
    assert (joined["ts"] >= joined["published_at"]).all()
    assert (joined["show_id"] == joined["show_id_ep"]).all()
    assert joined["playable"].all()
    assert (joined["listened_seconds"] > 0).all()
    assert (joined["listened_seconds"] <= joined["duration_s"]).all()
    # New episodes keep arriving during the window, and users favour fresh ones.
    assert (world.episodes["published_at"] >= world.start).sum() > 100
    age_days = (joined["ts"] - joined["published_at"]).dt.total_seconds() / 86_400
    catalog_age = (world.end - world.episodes["published_at"]).dt.total_seconds() / 86_400
    assert age_days.median() < catalog_age.median() / 3


def test_ids_are_referentially_intact(world: World):
    ls, ss = world.listens, world.sessions
    assert ls["user_id"].isin(world.users["user_id"]).all()
    assert ss["user_id"].isin(world.users["user_id"]).all()
    assert ls["show_id"].isin(world.shows["show_id"]).all()
    assert world.episodes["show_id"].isin(world.shows["show_id"]).all()
    fav = {s for favs in world.users["favourite_show_ids"] for s in favs}
    assert fav <= set(world.shows["show_id"])
    per_session = ls.merge(ss, on="session_id", suffixes=("", "_s"))
    assert len(per_session) == len(ls)
    assert (per_session["user_id"] == per_session["user_id_s"]).all()
    assert (per_session["surface"] == per_session["surface_s"]).all()
    assert (per_session["ts"] >= per_session["ts_s"]).all()
    sizes = ls.groupby("session_id").size()
    assert set(sizes.index) == set(ss["session_id"]) and sizes.between(1, 5).all()
    locale = ls.merge(world.users, on="user_id", suffixes=("", "_u"))
    assert (locale["locale"] == locale["locale_u"]).all()


def test_users_carry_ground_truth(world: World):
    users = world.users
    assert users["favourite_show_ids"].map(len).between(2, 4).all()
    weights = np.stack(users["topic_weights"].to_numpy())
    assert weights.shape == (len(users), len(world.topics))
    assert np.allclose(weights.sum(axis=1), 1.0, atol=1e-4)
    top = [[world.topics[i] for i in np.argsort(-w, kind="stable")[:3]] for w in weights]
    assert users["affinity_topics"].tolist() == top
    assert users["explore_rate"].between(0, 1).all()
    assert users["country"].tolist() == [loc.split("-")[1] for loc in users["locale"]]
    assert world.sessions["intent_topic"].isin(world.topics).all()


def test_behaviour_mix_gives_a_recommender_targets(world: World, labels: pd.Series):
    shares = labels.value_counts(normalize=True)
    for kind in ("habitual", "familiar", "unfamiliar"):
        assert shares[kind] >= 0.05, shares.to_dict()
    by_surface = pd.crosstab(world.listens["surface"], labels, normalize="index")
    assert by_surface.loc["exploration", "unfamiliar"] > by_surface.loc["home", "unfamiliar"] + 0.2
    secs = world.listens["listened_seconds"]
    assert 0.1 < (secs < 120).mean() < 0.6  # sampling listens
    long_full = world.listens.merge(world.episodes, on="episode_id")
    long_full = long_full[long_full["duration_s"] > 1800]
    assert (long_full["listened_seconds"] >= 0.9 * long_full["duration_s"]).mean() > 0.2


def test_intent_drifts_and_steers_listening(world: World):
    ss = world.sessions.sort_values(["user_id", "ts"])
    same_user = ss["user_id"].eq(ss["user_id"].shift())
    stay = (ss["intent_topic"].eq(ss["intent_topic"].shift()) & same_user).sum() / same_user.sum()
    assert 0.5 < stay < 0.9  # sticky but drifting
    joined = world.listens.merge(world.sessions[["session_id", "intent_topic"]], on="session_id")
    joined = joined.merge(world.episodes[["episode_id", "topic"]], on="episode_id")
    assert (joined["topic"] == joined["intent_topic"]).mean() > 0.3  # 25 topics: chance is ~0.04


def test_episode_text_carries_its_topic(world: World):
    vocab_words = {t: {w for phrase in TOPIC_VOCAB[t] for w in phrase.split()} for t in world.topics}
    eps = world.episodes.sample(2000, random_state=0)
    hits = 0
    for text, topic in zip(eps["title"] + " " + eps["description"], eps["topic"]):
        words = set(re.findall(r"[a-z-]+", text.lower()))
        scores = {t: len(words & v) for t, v in vocab_words.items()}
        hits += max(scores, key=scores.get) == topic and scores[topic] >= 3
    assert hits / len(eps) > 0.95
    assert world.episodes["description"].str.contains("From ").all()  # show names are in the text


def test_episode_popularity_counts_listens(world: World):
    counts = world.listens["episode_id"].value_counts()
    pop = world.episodes.set_index("episode_id")["popularity"]
    assert (pop.loc[counts.index] == counts.astype(float)).all()
    assert pop.drop(counts.index).eq(0).all()
    assert world.shows["popularity"].between(0, 1).all() and world.shows["popularity"].max() == 1.0


def test_save_load_round_trip(world: World, tmp_path):
    loaded = World.load(world.save(tmp_path / "w"))
    assert loaded.config == world.config
    assert loaded.topics == world.topics and loaded.start == world.start and loaded.end == world.end
    for name in TABLES:
        pd.testing.assert_frame_equal(getattr(loaded, name), getattr(world, name), check_dtype=True)
    assert isinstance(loaded.users["favourite_show_ids"].iloc[0], list)


def test_load_of_a_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="glide world generate"):
        World.load(tmp_path / "nowhere")


@pytest.mark.parametrize(
    "change, message",
    [
        ({"users": 0}, "users must be >= 1"),
        ({"days": 0}, "days must be >= 1"),
        ({"shows": 1}, "shows must be >= 2"),
        ({"topics": 26}, "topics must be in 1..25"),
        ({"start": "2026-01-01"}, "needs a UTC offset"),
        ({"start": "yesterday-ish"}, "not an ISO-8601 time"),
        ({"discovery_popularity_exponent": -0.1}, "discovery_popularity_exponent must be >= 0"),
        ({"favourite_popularity_exponent": -1.0}, "favourite_popularity_exponent must be >= 0"),
        ({"secondary_topic_weight": 1.5}, "secondary_topic_weight must be in"),
        ({"exploration_random_topic": -0.2}, "exploration_random_topic must be in"),
    ],
)
def test_bad_config_is_a_clear_value_error(change, message):
    with pytest.raises(ValueError, match=message):
        generate_world(replace(SMALL, **change))


def test_small_catalogs_still_work():
    w = generate_world(WorldConfig(users=20, days=3, shows=5, episodes_per_show=2, topics=3, seed=1))
    assert len(w.shows) == 5 and len(w.listens) > 0
    assert set(w.episodes["topic"]) <= set(w.topics)


def test_generation_meets_its_speed_target():
    import time

    t0 = time.perf_counter()
    generate_world(WorldConfig(users=200, days=14, seed=3))
    assert time.perf_counter() - t0 < 5.0


@pytest.mark.slow
def test_large_world_meets_its_speed_target():
    import time

    t0 = time.perf_counter()
    w = generate_world(WorldConfig(users=5000, days=30, seed=3))
    assert time.perf_counter() - t0 < 60.0
    assert len(w.listens) > 200_000

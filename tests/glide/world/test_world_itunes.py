"""glide.world.itunes: the real 2017 iTunes sample as a world catalog (needs ../shared/data)."""

from __future__ import annotations

from pathlib import Path

import pytest

from glide.world import WorldConfig, classify_listens, generate_world
from glide.world.itunes import load_itunes_catalog, parse_show_text

ITUNES = Path(__file__).resolve().parents[3] / ".." / "shared" / "data" / "podcasts_itunes_2017"
needs_data = pytest.mark.skipif(not ITUNES.is_dir(), reason=f"{ITUNES} is absent")


def test_parse_show_text_reads_titles_then_descriptions():
    text = (
        "\nMy Show\nMy Show\nEp 2: Dragons\nEp 1: Knights\n"
        "A show about castles, dragons and knights that goes on for long enough to count as the show "
        "description rather than as an episode title, because it is well over two hundred characters long, which it now surely is.\n\n"
        "Dragons explained by people who have met several of them in person.\n"
    )
    title, description, episodes = parse_show_text(text)
    assert title == "My Show"
    assert description.startswith("A show about castles")
    assert episodes == [
        ("Ep 2: Dragons", "Dragons explained by people who have met several of them in person."),
        ("Ep 1: Knights", ""),
    ]


@pytest.fixture(scope="module")
def catalog():
    return load_itunes_catalog(ITUNES)


@pytest.mark.shared_data
@needs_data
def test_loads_154_real_shows_with_episodes(catalog):
    shows, eps = catalog.shows, catalog.episodes
    assert len(shows) == 154
    assert shows["show_id"].is_unique and eps["episode_id"].is_unique
    assert set(eps["show_id"]) == set(shows["show_id"])  # every show has episodes
    assert len(eps) > 15_000
    assert "Sword and Scale" in set(shows["title"])
    assert not shows["title"].str.contains("__MACOSX").any()
    assert (eps["title"].str.len() > 0).all()
    assert (eps["description"].str.len() > 0).mean() > 0.5


@pytest.mark.shared_data
@needs_data
def test_genres_become_topics(catalog):
    by_title = catalog.shows.set_index("title")["topics"].map(lambda t: t[0])
    assert by_title["Sword and Scale"] in catalog.topics
    assert by_title["The Ringer NFL Show"] == "sports & recreation"
    assert by_title["Transformation Church - Audio Podcast"] == "religion & spirituality"
    assert by_title["This Week in Microbiology"] == "science & medicine"
    assert by_title["The Thirsty Developer - Podcast"] == "technology"
    assert catalog.shows["topics"].map(len).between(1, 3).all()
    assert set(catalog.episodes["topic"]) <= set(catalog.topics)
    assert catalog.shows["topics"].map(lambda t: t[0]).nunique() >= 12


@pytest.mark.shared_data
@needs_data
def test_locales_follow_the_text(catalog):
    by_id = catalog.shows.set_index("itunes_id")["locale"]
    assert by_id["10073"] == "ar-SA" and by_id["10030"] == "ru-RU" and by_id["10128"] == "ko-KR"
    assert (catalog.shows["locale"] == "en-US").mean() > 0.8


@pytest.mark.shared_data
@needs_data
def test_publication_times_give_a_back_catalog_and_new_episodes(catalog):
    start = WorldConfig().start_ts
    first = catalog.episodes.groupby("show_id")["published_at"].min()
    assert (first < start).all()
    assert (catalog.episodes["published_at"] >= start).sum() > 154  # new episodes during the window
    again = load_itunes_catalog(ITUNES)
    assert again.episodes.equals(catalog.episodes)  # deterministic


@pytest.mark.shared_data
@needs_data
def test_simulated_users_listen_to_real_shows(catalog):
    w = generate_world(WorldConfig(users=150, days=14, seed=2), catalog=catalog)
    assert w.catalog == "itunes" and w.topics == catalog.topics
    assert w.listens["episode_id"].isin(catalog.episodes["episode_id"]).all()
    assert w.listens["show_id"].nunique() > 50
    shares = classify_listens(w.listens).value_counts(normalize=True)
    assert (shares[["habitual", "familiar", "unfamiliar"]] >= 0.05).all()


def test_missing_folder_names_the_fix(tmp_path):
    with pytest.raises(FileNotFoundError, match="podcasts_itunes_2017"):
        load_itunes_catalog(tmp_path)

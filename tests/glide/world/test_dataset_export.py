"""The world as an interaction dataset folder: first-heard order, resumes not repeated, short
listeners left out, brands that stay unique; and the folder loads in the evaluation harness."""

from __future__ import annotations

import pandas as pd

from glide.world.dataset_export import interaction_sequences, item_texts, write_interaction_dataset
from glide.world.generator import WorldConfig, generate_world
from glide_model.sequential.dataset import load_dataset


def test_sequences_keep_first_heard_order_and_drop_resumes_and_short_listeners():
    ts = pd.to_datetime(["2026-01-01 08:00", "2026-01-01 09:00", "2026-01-02 07:00", "2026-01-02 08:00",
                         "2026-01-03 08:00", "2026-01-01 10:00", "2026-01-01 11:00"])
    listens = pd.DataFrame({
        "user_id": ["a", "a", "a", "a", "a", "b", "b"],
        "episode_id": ["e2", "e1", "e2", "e3", "e1", "e1", "e4"],  # a resumes e2 and e1
        "ts": ts, "event_id": [f"x{i}" for i in range(7)],
    }).sample(frac=1.0, random_state=0)  # row order must not matter, only time
    assert interaction_sequences(listens) == {"a": ["e2", "e1", "e3"]}  # b heard only 2
    assert interaction_sequences(listens, min_items=2) == {"a": ["e2", "e1", "e3"], "b": ["e1", "e4"]}


def test_items_carry_show_title_as_brand_unique_per_show_and_topic_as_category():
    shows = pd.DataFrame({"show_id": ["s1", "s2", "s3"], "title": ["Daily", "Daily", "Deep Dive"]})
    episodes = pd.DataFrame({"episode_id": ["e1", "e2", "e3"], "show_id": ["s1", "s2", "s3"],
                             "title": ["t1", "t2", "t3"], "description": ["d1", "d2", "d3"],
                             "topic": ["news", "news", "science"]})
    items = item_texts(episodes, shows)
    assert items["e3"] == {"title": "t3", "description": "d3", "brand": "Deep Dive", "categories": "science"}
    assert items["e1"]["brand"] != items["e2"]["brand"]  # two shows titled alike stay two brands


def test_a_generated_world_loads_in_the_evaluation_harness(tmp_path):
    world = generate_world(WorldConfig(users=30, days=7, shows=30, episodes_per_show=6, seed=2))
    counts = write_interaction_dataset(world, tmp_path)
    data = load_dataset(tmp_path)
    assert len(data.user_ids) == counts["users"] > 0 and data.n_interactions == counts["interactions"]
    assert data.n_items == counts["items"] == len(world.episodes)
    assert all(len(s) >= 3 and len(set(s.tolist())) == len(s) for s in data.sequences)
    show_of = dict(zip(world.episodes["episode_id"], world.episodes["show_id"]))
    brands = data.brand_codes()
    # Same brand exactly when same show.
    pairs = {(show_of[data.item_ids[i]], int(brands[i])) for i in range(data.n_items)}
    assert len(pairs) == len({s for s, _ in pairs}) == len({b for _, b in pairs})

"""Offline features written from events and read back through Feast's offline store give, for every
listen, exactly the labels the habit rule computes directly: train/serve parity at the source."""

from __future__ import annotations

import numpy as np
import pandas as pd

from glide import habits
from glide_app.jobs.offline_features import feature_tables, write_tables
from glide_app.jobs.training_set import historical_inputs
from streams.feature_store import apply_definitions, open_store


def _random_listens(seed: int = 7, n: int = 400) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    t0 = pd.Timestamp("2026-01-01", tz="UTC")
    # Whole seconds over 60 days, a few exact collisions, durations around the 600 s threshold.
    ts = t0 + pd.to_timedelta(np.sort(rng.integers(0, 60 * 86400, n)), unit="s")
    return pd.DataFrame({
        "event_id": [f"ev{i:05d}" for i in range(n)],
        "user_id": rng.choice(["u1", "u2", "u3"], n),
        "show_id": rng.choice(["s1", "s2", "s3", "s4"], n),
        "episode_id": rng.choice([f"e{i}" for i in range(12)], n),
        "listened_seconds": rng.choice([30, 120, 300, 599, 600, 1800], n),
        "ts": ts,
        "surface": "home",
    })


def test_feast_point_in_time_join_matches_the_habit_rule(tmp_path, unique_project):
    from glide.config import load_settings

    settings = load_settings(data_dir=str(tmp_path))
    listens = _random_listens()
    episodes = pd.DataFrame({
        "episode_id": [f"e{i}" for i in range(12)], "show_id": [f"s{1 + i % 4}" for i in range(12)],
        "popularity": 1.0, "locale": "en-US", "playable": True,
        "published_at": pd.Timestamp("2025-12-01", tz="UTC"),
    })
    users = pd.DataFrame({"user_id": ["u1", "u2", "u3"], "locale": "en-US", "country": "US",
                          "affinity_topics": [["news"]] * 3})
    assignments = {f"e{i}": (i % 3, i % 5, i, 0) for i in range(12)}
    tables = feature_tables(listens, users, episodes, assignments, "q-test",
                            context_timestamp=pd.Timestamp("2025-12-01", tz="UTC"))
    write_tables(settings, tables)
    store = open_store(settings)
    apply_definitions(store)

    got = historical_inputs(store, listens)
    expected = habits.label_listens(listens).set_index("event_id").loc[got["event_id"]]
    assert (got["habitual"].to_numpy() == expected["habitual_before"].to_numpy()).all()
    assert (got["ever_listened"].to_numpy() == expected["ever_before"].to_numpy()).all()
    assert (got["listen_seconds_28d"].to_numpy() == expected["listen_seconds_28d_before"].to_numpy()).all()
    # Recent history seen by training never includes the target listen itself.
    for row in got.itertuples():
        ids = row.recent_episode_ids if isinstance(row.recent_episode_ids, (list, np.ndarray)) else []
        earlier = listens[(listens["user_id"] == row.user_id) & (listens["ts"] < row.ts)]
        assert list(ids) == earlier.sort_values(["ts", "event_id"])["episode_id"].tolist()[-50:]
    assert set(got["locale"]) == {"en-US"}

"""glide_model.data.examples: targets, modes, history and every sampling knob."""

from __future__ import annotations

import json

import numpy as np
import pandas as pd
import pytest

from glide import habits
from glide_model.data.examples import (
    EXAMPLE_COLUMNS,
    ExampleSamplingConfig,
    build_examples,
    examples_from_features,
    feature_entity_frame,
)
from tests.glide_model.planted_world import T0, planted_world

DAY = pd.Timedelta(days=1)
ALL = ExampleSamplingConfig(exploration_weight=1.0, max_examples_per_episode=None, min_listen_seconds=0)


def log(rows) -> pd.DataFrame:
    """rows: (user, episode, show, seconds, day offset, surface)."""
    frame = pd.DataFrame(rows, columns=["user_id", "episode_id", "show_id", "listened_seconds", "day", "surface"])
    frame["ts"] = T0 + pd.to_timedelta(frame.pop("day"), unit="D")
    frame.insert(0, "event_id", [f"ev{i:03d}" for i in range(len(frame))])
    return frame


ASSIGN = {f"{s}{e}": (k, e, 0) for k, s in enumerate("abcd") for e in range(5)}


@pytest.fixture(scope="module")
def world():
    return planted_world(seed=2, users=120)


def test_modes_follow_the_habit_rule():
    listens = log([
        ("u", "a0", "a", 100, 0, "home"),     # never before -> unfamiliar
        ("u", "a1", "a", 600, 1, "home"),     # 100 s before -> familiar
        ("u", "a2", "a", 50, 2, "home"),      # 700 s before -> habitual, not a target
        ("u", "a3", "a", 50, 31, "search"),   # the 700 s left the window -> familiar again
        ("u", "b0", "b", 40, 31, "search"),   # never before -> unfamiliar
        ("u", "b1", "b", 40, 31, "search"),   # simultaneous with b0: still unfamiliar
        ("u", "zz", "z", 900, 32, "home"),    # no SID: never a target
    ])
    ex = build_examples(listens, ASSIGN, config=ALL)
    got = dict(zip(ex.target_episode_id, ex["mode"]))
    assert got == {"a0": "unfamiliar", "a1": "familiar", "a3": "familiar", "b0": "unfamiliar", "b1": "unfamiliar"}
    assert ex.attrs["sampling"]["counts"]["listens"] == 7


def test_output_contract_and_history():
    listens = log([
        ("u", "a0", "a", 100, 0, "home"),
        ("u", "b0", "b", 100, 1, "home"),
        ("u", "c0", "c", 100, 2, "home"),
        ("u", "d0", "d", 100, 2, "exploration"),  # simultaneous with c0
        ("v", "d1", "d", 100, 3, "home"),
    ])
    users = pd.DataFrame({"user_id": ["u"], "locale": ["en-GB"], "country": ["GB"], "affinity_topics": [["news", "sport"]]})
    cf = pd.DataFrame({"user_id": ["u"], "embedding": [np.arange(4, dtype=np.float64)]})
    ex = build_examples(listens, ASSIGN, users, cf, ExampleSamplingConfig(history_len=1, min_listen_seconds=0))
    assert set(EXAMPLE_COLUMNS) <= set(ex.columns)
    row = ex.set_index("target_episode_id").loc["c0"]
    assert row.user_id == "u" and row.ts == T0 + 2 * DAY and row.target_show_id == "c"
    assert row.target_codes == (2, 0, 0) and isinstance(row.target_codes, tuple)
    assert row.history_codes == [(1, 0, 0)] and row.history_episode_ids == ["b0"]  # not d0 (same ts)
    assert row.locale == "en-GB" and row.country == "GB" and row.affinity_topics == ["news", "sport"]
    assert row.cf_embedding.dtype == np.float32 and row.cf_embedding.tolist() == [0, 1, 2, 3]
    other = ex.set_index("target_episode_id").loc["d1"]
    assert other.cf_embedding is None and other.locale is None and other.affinity_topics == [] and other.history_codes == []
    assert ex.set_index("target_episode_id").loc["a0"].history_codes == []
    # full history, newest last
    ex = build_examples(listens, ASSIGN, config=ExampleSamplingConfig(history_len=5, min_listen_seconds=0))
    assert ex.set_index("target_episode_id").loc["c0"].history_episode_ids == ["a0", "b0"]
    assert list(ex.ts) == sorted(ex.ts)


def _sampled(world, **knobs) -> pd.DataFrame:
    base = dict(exploration_weight=1.0, max_examples_per_episode=None, min_listen_seconds=0)
    return build_examples(world.listens, world.assignments, world.users, None, ExampleSamplingConfig(**{**base, **knobs}))


def test_min_listen_seconds_and_modes(world):
    full = _sampled(world)
    longer = _sampled(world, min_listen_seconds=600)
    assert 0 < len(longer) < len(full)
    merged = longer.merge(world.listens, left_on=["user_id", "ts", "target_episode_id"], right_on=["user_id", "ts", "episode_id"])
    assert (merged.listened_seconds >= 600).all()
    only = _sampled(world, modes=("unfamiliar",))
    assert set(only["mode"]) == {"unfamiliar"} and len(only) == (full["mode"] == "unfamiliar").sum()


def test_surface_quotas_set_the_mix(world):
    full = _sampled(world)
    quotas = {"home": 0.25, "search": 0.25, "exploration": 0.5}
    mixed = _sampled(world, surface_quotas=quotas)
    share = mixed.surface.value_counts(normalize=True)
    assert set(share.index) == set(quotas)  # show_page is not named: dropped
    for s, q in quotas.items():
        assert share[s] == pytest.approx(q, abs=0.01)
    # exploration is the scarcest surface relative to its quota, so all of it is kept
    assert (mixed.surface == "exploration").sum() == (full.surface == "exploration").sum()


def test_weights_from_surface_and_exploration(world):
    ex = _sampled(world, exploration_weight=3.0, surface_weights={"search": 0.5})
    w = ex.groupby("surface").weight.unique().map(list).to_dict()
    assert w == {"exploration": [3.0], "search": [0.5], "home": [1.0], "show_page": [1.0]}


def test_popularity_and_user_caps(world):
    full = _sampled(world)
    assert full.target_episode_id.value_counts().max() > 5
    capped = _sampled(world, max_examples_per_episode=5)
    counts = capped.target_episode_id.value_counts()
    assert counts.max() == 5 and len(capped) < len(full)
    # episodes under the cap keep all their examples
    small = full.target_episode_id.value_counts()
    small = small[small <= 5].index
    assert (capped.target_episode_id.isin(small).sum()) == full.target_episode_id.isin(small).sum()
    per_user = _sampled(world, max_examples_per_user=3)
    assert per_user.user_id.value_counts().max() == 3


def test_history_len(world):
    ex = _sampled(world, history_len=3)
    assert ex.history_codes.map(len).max() == 3
    assert (ex.history_codes.map(len) == ex.history_episode_ids.map(len)).all()
    assert _sampled(world, history_len=0).history_codes.map(len).max() == 0


def test_seeded_sampling_is_reproducible_and_order_free(world):
    a = _sampled(world, max_examples_per_episode=3, seed=1)
    shuffled = world.listens.sample(frac=1.0, random_state=5)
    cfg = ExampleSamplingConfig(exploration_weight=1.0, max_examples_per_episode=3, min_listen_seconds=0, seed=1)
    b = build_examples(shuffled, world.assignments, world.users, None, cfg)
    c = _sampled(world, max_examples_per_episode=3, seed=2)
    assert a.event_id.tolist() == b.event_id.tolist()
    assert set(a.event_id) != set(c.event_id)


def test_config_record_is_complete_and_json():
    cfg = ExampleSamplingConfig(surface_quotas={"home": 1.0}, surface_weights={"search": 2.0})
    record = json.loads(json.dumps(cfg.to_record()))
    for knob in ("history_len", "min_listen_seconds", "modes", "surface_quotas", "surface_weights",
                 "exploration_weight", "max_examples_per_episode", "max_examples_per_user", "seed"):
        assert knob in record
    assert record["habit_threshold_seconds"] == 600 and record["habit_window_days"] == 28
    with pytest.raises(ValueError, match="modes"):
        ExampleSamplingConfig(modes=("habitual",))


def feast_like_frame(listens, assignments, users, cf) -> pd.DataFrame:
    """What Feast's point-in-time join returns, simulated from the offline tables in glide.habits."""
    entity = feature_entity_frame(listens, ExampleSamplingConfig(min_listen_seconds=0))
    entity = entity.sample(frac=1.0, random_state=0)  # Feast does not keep row order
    out = entity.sort_values("event_timestamp")
    for table, by in (
        (habits.user_show_feature_history(listens), ["user_id", "show_id"]),
        (habits.user_recent_sids_history(listens, assignments), ["user_id"]),
    ):
        table = table.rename(columns={"event_timestamp": "_at"}).sort_values("_at")
        out = pd.merge_asof(out, table, left_on="event_timestamp", right_on="_at", by=by).drop(columns="_at")
    out = out.merge(users[["user_id", "locale", "country", "affinity_topics"]], on="user_id", how="left")
    out = out.merge(cf.rename(columns={"embedding": "cf_embedding"}), on="user_id", how="left")
    out["cf_embedding"] = out["cf_embedding"].map(lambda v: None if not isinstance(v, np.ndarray) else v.tolist())
    return out.drop(columns=["last_listened_at"])


def test_feature_frame_path_equals_raw_listen_path(world):
    cf = pd.DataFrame({"user_id": world.users.user_id[::2], "embedding": [np.full(4, i, dtype=np.float32) for i in range(60)]})
    cfg = ExampleSamplingConfig(max_examples_per_episode=4, history_len=7, surface_quotas={"home": 0.5, "search": 0.3, "exploration": 0.2})
    direct = build_examples(world.listens, world.assignments, world.users, cf, cfg)
    frame = feast_like_frame(world.listens, world.assignments, world.users, cf)
    assert frame.listen_seconds_28d.isna().any()  # never-listened shows come back as nulls
    via = examples_from_features(frame, cfg, world.assignments)
    assert len(direct) > 100
    pd.testing.assert_frame_equal(
        direct.drop(columns="cf_embedding"), via.drop(columns="cf_embedding"), check_dtype=False
    )
    same_cf = [(a is None and b is None) or (a is not None and b is not None and np.array_equal(a, b))
               for a, b in zip(direct.cf_embedding, via.cf_embedding)]
    assert all(same_cf)
    # the frame may carry the target SID itself (episode_catalog view) instead of assignments
    frame["sid_codes"] = frame.episode_id.map(lambda e: list(world.assignments[e]))
    assert examples_from_features(frame, cfg).target_codes.tolist() == via.target_codes.tolist()


def test_features_looked_up_at_the_listen_are_refused(world):
    frame = feast_like_frame(world.listens.head(50), world.assignments, world.users, pd.DataFrame({"user_id": [], "embedding": []}))
    frame["event_timestamp"] = frame["ts"]
    with pytest.raises(ValueError, match="feature_lookup_time"):
        examples_from_features(frame, ExampleSamplingConfig(), world.assignments)
    with pytest.raises(ValueError, match="assignments"):
        examples_from_features(frame.assign(event_timestamp=frame.ts - DAY))


def test_real_feast_point_in_time_frame_gives_the_same_examples(tmp_path, unique_project, world):
    """The integrator's path: offline tables -> Feast duckdb get_historical_features -> examples."""
    from glide.config import load_settings
    from glide_app.jobs.offline_features import feature_tables, write_tables
    from glide_app.jobs.training_set import historical_inputs
    from glide_model.cf import train_cf
    from streams.feature_store import apply_definitions, open_store

    listens = world.listens[world.listens.user_id < "user_00040"]
    episodes = world.episodes.assign(published_at=T0 - 30 * DAY)
    cf = train_cf(listens[listens.user_id < "user_00025"], factors=4, iterations=3).user_embeddings()
    cfg = ExampleSamplingConfig(max_examples_per_episode=4, history_len=7,
                                surface_quotas={"home": 0.5, "search": 0.3, "exploration": 0.2})
    settings = load_settings(data_dir=str(tmp_path))
    write_tables(settings, feature_tables(listens, world.users, episodes, world.assignments, "q-test",
                                          cf_embeddings=cf, cf_timestamp=T0 - DAY, context_timestamp=T0 - DAY))
    store = open_store(settings)
    apply_definitions(store)
    frame = historical_inputs(store, feature_entity_frame(listens, cfg).drop(columns="event_timestamp"))

    via = examples_from_features(frame, cfg, world.assignments)
    direct = build_examples(listens, world.assignments, world.users, cf, cfg)
    assert len(direct) > 100 and direct.cf_embedding.isna().any() and direct.cf_embedding.notna().any()
    pd.testing.assert_frame_equal(direct.drop(columns="cf_embedding"), via.drop(columns="cf_embedding"), check_dtype=False)
    for a, b in zip(direct.cf_embedding, via.cf_embedding):
        assert (a is None and b is None) or np.array_equal(a, b)

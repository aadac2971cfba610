"""Push -> get_online_features round trips through real Feast stores on both profiles."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta, timezone

import pandas as pd
import pytest
import sqlalchemy

from glide.config import load_settings
from infra import stack
from streams.feature_store import online_features, open_store, push


def _now() -> datetime:
    return datetime.now(timezone.utc).replace(microsecond=0)


def _round_trip(store) -> None:
    ts = _now()
    push(store, "user_recent_sids", pd.DataFrame({
        "user_id": ["u1", "u2"],
        "recent_episode_ids": [["e1", "e2"], []],
        "recent_sid_codes": [[1, 2, 3, 4, 5, 6, 7, 8], []],
        "sid_levels": [4, 4],
        "event_timestamp": [ts, ts],
    }))
    push(store, "user_context", pd.DataFrame({
        "user_id": ["u1"], "locale": ["en-GB"], "country": ["GB"],
        "affinity_topics": [["science", "history"]], "event_timestamp": [ts],
    }))
    push(store, "user_cf_embedding", pd.DataFrame({
        "user_id": ["u1"], "cf_embedding": [[0.5, -0.25, 1.0]], "cf_version": ["cf-3-abc"], "event_timestamp": [ts],
    }))
    got = online_features(store, store.get_feature_service("glide_inputs"), [{"user_id": "u1"}, {"user_id": "u3"}])
    assert got["recent_episode_ids"][0] == ["e1", "e2"]
    assert got["recent_sid_codes"][0] == [1, 2, 3, 4, 5, 6, 7, 8]
    assert got["locale"] == ["en-GB", None]
    assert got["affinity_topics"][0] == ["science", "history"]
    assert got["cf_embedding"][0] == pytest.approx([0.5, -0.25, 1.0])
    assert got["cf_embedding"][1] is None  # unknown user: missing, not garbage
    assert got["cf_version"] == ["cf-3-abc", None]

    # A newer push replaces the value; user+show keyed view works too.
    push(store, "user_show_listening_28d", pd.DataFrame({
        "user_id": ["u1", "u1"], "show_id": ["s1", "s2"], "listen_seconds_28d": [650, 30],
        "ever_listened": [True, True], "last_listened_at": [ts, ts], "habitual": [True, False],
        "event_timestamp": [ts, ts],
    }))
    push(store, "user_show_listening_28d", pd.DataFrame({
        "user_id": ["u1"], "show_id": ["s1"], "listen_seconds_28d": [100], "ever_listened": [True],
        "last_listened_at": [ts], "habitual": [False], "event_timestamp": [ts + timedelta(seconds=1)],
    }))
    got = online_features(
        store,
        ["user_show_listening_28d:listen_seconds_28d", "user_show_listening_28d:habitual"],
        [{"user_id": "u1", "show_id": "s1"}, {"user_id": "u1", "show_id": "s2"}],
    )
    assert got["listen_seconds_28d"] == [100, 30]
    assert got["habitual"] == [False, False]


def test_sqlite_online_store_round_trip(embedded_stack, unique_project):
    settings, _ = embedded_stack
    store = open_store(settings)
    from streams.feature_store import apply_definitions

    apply_definitions(store)
    _round_trip(store)
    ranker = store.get_feature_service("ranker_candidates")
    assert [p.name for p in ranker.feature_view_projections] == ["glide_candidates"]


@pytest.fixture
def postgres_schema():
    """A throwaway schema in the machine's PostgreSQL (db `test`), dropped afterwards."""
    name = f"glide_t{uuid.uuid4().hex[:8]}"
    engine = sqlalchemy.create_engine("postgresql+psycopg://postgres@127.0.0.1:5432/test")
    yield name
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{name}" CASCADE'))
    engine.dispose()


def test_cluster_profile_redis_online_postgres_registry_and_offline(tmp_path, embedded_stack, unique_project,
                                                                       postgres_schema):
    _, embedded = embedded_stack  # tansu stands in for the Apache Kafka bootstrap list
    settings = load_settings(data_dir=str(tmp_path), profile="cluster", kafka_bootstrap=embedded.bootstrap,
                             postgres_schema=postgres_schema)
    status = stack.up(settings)
    assert "glide_candidates" in status.feature_views and status.broker_pid is None
    store = open_store(settings)
    _round_trip(store)

    # The offline store reads the same view point-in-time from PostgreSQL.
    engine = sqlalchemy.create_engine(settings.postgres_url)
    t0 = datetime(2026, 1, 1, tzinfo=timezone.utc)
    pd.DataFrame({
        "user_id": ["u1", "u1"], "locale": ["en-US", "de-DE"], "country": ["US", "DE"],
        "affinity_topics": [["news"], ["sports"]], "event_timestamp": [t0, t0 + timedelta(days=2)],
    }).to_sql("user_context", engine, schema=postgres_schema, index=False)
    engine.dispose()
    entity_df = pd.DataFrame({"user_id": ["u1", "u1"], "event_timestamp": [t0 + timedelta(days=1), t0 + timedelta(days=3)]})
    hist = store.get_historical_features(entity_df=entity_df, features=["user_context:locale"]).to_df()
    assert hist.sort_values("event_timestamp")["locale"].tolist() == ["en-US", "de-DE"]
    assert stack.down(settings) is False  # cluster profile starts no broker of its own

"""The bulk writer writes Feast's own bytes (Feast reads them back) and keeps the newest row."""

from __future__ import annotations

import uuid
from datetime import datetime, timezone

import pytest
import sqlalchemy

from glide.config import load_settings
from infra import stack
from streams.online_encoding import ENCODERS, ViewLayout
from streams.online_rows import SKIP
from streams.online_writer import OnlineWriter

T0_MS = 1_767_225_600_000  # 2026-01-01


def test_value_bytes_match_feast_protobufs():
    from feast.protos.feast.types.Value_pb2 import FloatList, Int64List, StringList
    from feast.protos.feast.types.Value_pb2 import Value as V

    cases = [
        ("INT64", 0, V(int64_val=0)), ("INT64", -5, V(int64_val=-5)), ("INT64", 2**62, V(int64_val=2**62)),
        ("BOOL", True, V(bool_val=True)), ("BOOL", False, V(bool_val=False)),
        ("FLOAT", 0.3, V(float_val=0.3)), ("STRING", "", V(string_val="")), ("STRING", "héllo", V(string_val="héllo")),
        ("UNIX_TIMESTAMP", T0_MS + 999, V(unix_timestamp_val=T0_MS // 1000)),
        ("STRING_LIST", [], V(string_list_val=StringList(val=[]))),
        ("STRING_LIST", ["a", "ep_1"], V(string_list_val=StringList(val=["a", "ep_1"]))),
        ("INT64_LIST", [], V(int64_list_val=Int64List(val=[]))),
        ("INT64_LIST", [0, 255, 300, -1], V(int64_list_val=Int64List(val=[0, 255, 300, -1]))),
        ("FLOAT_LIST", [0.5, -2.0], V(float_list_val=FloatList(val=[0.5, -2.0]))),
    ]
    for kind, value, proto in cases:
        assert ENCODERS[kind](value) == proto.SerializeToString(), (kind, value)


def test_entity_keys_match_feast_serialization():
    from feast.infra.key_encoding_utils import serialize_entity_key
    from feast.protos.feast.types.EntityKey_pb2 import EntityKey
    from feast.protos.feast.types.Value_pb2 import Value as V

    view = ViewLayout("v", ["user_id", "show_id"], [("x", "INT64")])
    ek = EntityKey(join_keys=["user_id", "show_id"], entity_values=[V(string_val="user_9"), V(string_val="show_é")])
    assert view.entity_key(("user_9", "show_é")) == serialize_entity_key(ek, entity_key_serialization_version=3)


def _write_and_read(settings) -> None:
    from streams.feature_store import online_features, open_store

    store = open_store(settings)
    writer = OnlineWriter(settings)
    rows = [(("u1", "s1"), [700, True, T0_MS, True], 2_000_000), (("u1", "s2"), [5, True, T0_MS + 1000, False], 2_000_000)]
    writer.write("user_show_listening_28d", rows)
    # Older (same second, fewer µs) and equal timestamps lose; a newer one wins.
    writer.write("user_show_listening_28d", [(("u1", "s1"), [1, True, T0_MS, False], 1_999_999)])
    writer.write("user_show_listening_28d", [(("u1", "s2"), [6, True, T0_MS, False], 2_000_000)])
    writer.write("user_show_listening_28d", [(("u1", "s2"), [7, True, T0_MS + 2000, False], 2_000_001)])
    writer.write("user_recent_sids", [(("u1",), [["e1", "e2"], [1, 2, 3, 4], 2], 5)])
    # SKIP leaves a feature as stored while the others move on.
    writer.write("user_recent_sids", [(("u1",), [["e1", "e2", "e3"], [1, 2, 3, 4, 5, 6], SKIP], 6)])
    got = online_features(store, ["user_show_listening_28d:listen_seconds_28d", "user_show_listening_28d:habitual",
                                  "user_show_listening_28d:last_listened_at", "user_show_listening_28d:ever_listened"],
                          [{"user_id": "u1", "show_id": "s1"}, {"user_id": "u1", "show_id": "s2"},
                           {"user_id": "u2", "show_id": "s1"}])
    assert got["listen_seconds_28d"] == [700, 7, None]
    assert got["habitual"] == [True, False, None]
    assert got["ever_listened"] == [True, True, None]
    assert got["last_listened_at"][1] == datetime(2026, 1, 1, 0, 0, 2, tzinfo=timezone.utc)
    got = online_features(store, store.get_feature_service("glide_inputs"), [{"user_id": "u1"}])
    assert got["recent_episode_ids"] == [["e1", "e2", "e3"]] and got["recent_sid_codes"] == [[1, 2, 3, 4, 5, 6]]
    assert got["sid_levels"] == [2]
    writer.write("user_context", [(("u1",), ["en-GB", "GB", ["news"]], 1)])
    assert writer.existing("user_context", [("u1",), ("u2",)]) == [True, False]
    writer.close()


def test_sqlite_round_trip_through_feast(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "glide")
    settings = load_settings(data_dir=str(tmp_path), profile="embedded")
    stack.up(settings)
    try:
        _write_and_read(settings)
    finally:
        stack.down(settings)


def test_redis_round_trip_through_feast(tmp_path, embedded_stack, unique_project):
    _, embedded = embedded_stack
    schema = f"glide_t{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=str(tmp_path), profile="cluster", kafka_bootstrap=embedded.bootstrap,
                             postgres_schema=schema)
    try:
        stack.up(settings)
        _write_and_read(settings)
    finally:
        engine = sqlalchemy.create_engine(settings.postgres_url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()

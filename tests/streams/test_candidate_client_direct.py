"""The client's direct read path (streams/online_reader.py) returns exactly what Feast's
get_online_features returns for the same keys, on SQLite (embedded) and on Redis (cluster profile:
127.0.0.1:6379 under a Feast project of its own, registry in PostgreSQL under a throwaway schema):
the decoded columns, and the client's UserCandidates for both modes, one mode, stale and missing sets."""

from __future__ import annotations

import math
import time
import uuid
from datetime import datetime, timezone

import pandas as pd
import pytest

from glide.config import load_settings
from streams.candidate_client import FEATURES, SERVICE, VIEW, CandidateClient
from streams.feature_store import apply_definitions, online_features, open_store, push
from streams.online_encoding import ENCODERS, decode_value
from streams.online_reader import OnlineReader
from streams.online_rows import SKIP
from streams.online_writer import OnlineWriter

NOW_S = time.time()
USERS = ["u1", "u2", "u-none", "u-empty", "u-writer", "u-skip", "u-é"]


def test_decode_value_returns_what_feast_returns_for_every_encoded_type():
    from feast.protos.feast.types.Value_pb2 import FloatList, Int64List, StringList
    from feast.protos.feast.types.Value_pb2 import Value as V
    from feast.type_map import feast_value_type_to_python_type

    long = "x" * 300  # a length past one varint byte
    cases = [
        ("INT64", 0), ("INT64", -5), ("INT64", 2**62), ("INT32", -7), ("BOOL", True), ("BOOL", False),
        ("FLOAT", 0.3), ("DOUBLE", -1e-300), ("STRING", ""), ("STRING", "héllo"), ("STRING", long),
        ("UNIX_TIMESTAMP", 1_767_225_600_999), ("STRING_LIST", []), ("STRING_LIST", ["a", "ép_1", long]),
        ("STRING_LIST", [f"e{j:05d}" for j in range(30)]), ("STRING_LIST", ["abcdefghij"] * 3),  # one width
        ("STRING_LIST", ["a\nb", "c\nd", "e\nfg"]), ("STRING_LIST", ["", ""]), ("STRING_LIST", ["é", "e"]),
        ("INT64_LIST", []), ("INT64_LIST", [0, 255, 300, -1, 2**40]), ("FLOAT_LIST", []),
        ("FLOAT_LIST", [0.5, -2.0, 0.1] * 50),
    ]
    for kind, value in cases:
        blob = ENCODERS[kind](value)
        assert decode_value(blob) == feast_value_type_to_python_type(V.FromString(blob)), (kind, value)
    # Bytes Feast's own serializer writes (also an empty Value, and null_val) decode the same way.
    protos = [V(), V(null_val=0), V(string_list_val=StringList(val=["a", "b"])), V(int64_list_val=Int64List(val=[-3])),
              V(float_list_val=FloatList(val=[1.5])), V(unix_timestamp_val=-(1 << 63)), V(unix_timestamp_val=5)]
    for proto in protos:
        assert decode_value(proto.SerializeToString()) == feast_value_type_to_python_type(proto), proto
    assert decode_value(None) is None
    with pytest.raises(ValueError, match="not a type"):
        decode_value(V(bytes_val=b"x").SerializeToString())
    assert math.isclose(decode_value(ENCODERS["FLOAT"](0.3)), 0.3, rel_tol=1e-7)


def _frame(rows: list[tuple[str, str, list[str], float]]) -> pd.DataFrame:
    """(user, mode, episode ids, age s) -> the frame the worker pushes (CandidateService.publish)."""
    at = [pd.Timestamp(int((NOW_S - age) * 1e6), unit="us", tz="UTC") for _, _, _, age in rows]
    return pd.DataFrame({
        "user_id": [r[0] for r in rows], "mode": [r[1] for r in rows],
        "candidate_episode_ids": [r[2] for r in rows],
        "candidate_scores": [[-0.1 * j for j in range(len(r[2]))] for r in rows],
        "model_version": "m1", "quantizer_version": "q1", "surface": "home",
        "generated_at": at, "history_as_of": [a if i % 2 else pd.NaT for i, a in enumerate(at)],
        "event_timestamp": at,
    })


def _fill(settings, store) -> None:
    apply_definitions(store, settings)
    push(store, VIEW, _frame([
        ("u1", "familiar", ["f1", "f2"], 0), ("u1", "unfamiliar", ["n1", "n2", "n3"], 7200),
        ("u2", "unfamiliar", [f"episode-{j:04d}" for j in range(30)], 10), ("u-empty", "familiar", [], 0),
        ("u-é", "familiar", ["ép"], 0),
    ]))
    # The stream side's writer too, with one feature never written (SKIP): Feast reads it as None.
    writer = OnlineWriter(settings)
    at_ms = int(NOW_S * 1000)
    writer.write(VIEW, [(("u-writer", "unfamiliar"), [["w1"], [0.25], "m2", "q2", "search", at_ms, at_ms],
                         at_ms * 1000)])
    writer.write(VIEW, [(("u-skip", "familiar"), [["s1"], [1.0], "m1", "q1", "home", at_ms, SKIP], at_ms * 1000)])
    writer.close()


@pytest.fixture(scope="module", params=["sqlite", "redis"])
def stores(request, tmp_path_factory):
    """(settings, store) of a filled store of the param's kind."""
    tmp = tmp_path_factory.mktemp(f"direct-{request.param}")
    project, schema = f"t{uuid.uuid4().hex[:10]}", f"glide_t{uuid.uuid4().hex[:8]}"
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("GLIDE_FEAST_PROJECT", project)
        if request.param == "sqlite":
            settings = load_settings(data_dir=str(tmp), profile="embedded")
        else:
            from infra import stack

            settings = load_settings(data_dir=str(tmp), profile="cluster", postgres_schema=schema,
                                     kafka_bootstrap="127.0.0.1:9")
            try:
                stack.check_cluster_services(settings)  # creates the schema
            except Exception as exc:  # noqa: BLE001 - no Redis / PostgreSQL here: no Redis test
                pytest.skip(f"Redis or PostgreSQL unreachable: {exc}")
        try:
            store = open_store(settings)
            _fill(settings, store)
            yield settings, store
        finally:
            if request.param == "redis":
                stack.drop_cluster_leftovers(settings, project, schema)


def _rows(users=USERS, modes=("familiar", "unfamiliar")) -> list[dict]:
    return [{"user_id": u, "mode": m} for u in users for m in modes]


def test_the_direct_path_is_taken_and_reads_what_feast_reads(stores):
    settings, store = stores
    client = CandidateClient(settings, store)
    assert isinstance(client.reader, OnlineReader) and client.reader.kind == store.config.online_store.type
    assert CandidateClient(settings, store, direct=False).reader is None
    rows = _rows()
    feast = online_features(store, store.get_feature_service(SERVICE), rows)
    direct = client.reader.read(VIEW, rows, FEATURES)
    assert direct == {f: feast[f] for f in FEATURES}
    # Spot checks, so that both paths agreeing on nothing could not pass.
    at = {(r["user_id"], r["mode"]): i for i, r in enumerate(rows)}
    assert direct["candidate_episode_ids"][at["u2", "unfamiliar"]] == [f"episode-{j:04d}" for j in range(30)]
    assert direct["candidate_episode_ids"][at["u-empty", "familiar"]] == []
    assert direct["surface"][at["u-writer", "unfamiliar"]] == "search"
    assert direct["history_as_of"][at["u-skip", "familiar"]] is None
    assert all(direct[f][at["u-none", "familiar"]] is None for f in FEATURES)
    assert isinstance(direct["generated_at"][at["u1", "familiar"]], datetime)
    assert direct["generated_at"][at["u1", "familiar"]].tzinfo == timezone.utc
    assert client.reader.read(VIEW, [], FEATURES) == {f: [] for f in FEATURES}


@pytest.mark.parametrize("mode", [None, "familiar", "unfamiliar"])
@pytest.mark.parametrize("max_age_s", [None, 3600])
def test_the_client_answers_the_same_on_both_paths(stores, mode, max_age_s):
    settings, store = stores
    asked = ["u2", *USERS, "u1"]
    direct = CandidateClient(settings, store).get(asked, mode=mode, max_age_s=max_age_s, now_s=NOW_S)
    feast = CandidateClient(settings, store, direct=False).get(asked, mode=mode, max_age_s=max_age_s, now_s=NOW_S)
    assert list(direct) == list(feast) == list(dict.fromkeys(asked))
    assert direct == feast
    u1 = direct["u1"]
    if mode is None and max_age_s:
        assert list(u1.sets) == ["familiar"] and 7199 <= u1.stale["unfamiliar"] <= 7201
    assert direct["u-none"].sets == {} and direct["u-none"].missing == ((mode,) if mode else ("familiar", "unfamiliar"))
    if mode != "familiar":
        assert direct["u-writer"].sets["unfamiliar"].scores == [0.25]


def test_a_store_configured_otherwise_keeps_feasts_path(stores, tmp_path):
    settings, store = stores
    elsewhere = settings.model_copy(update={"data_dir": tmp_path, "redis_url": "redis://127.0.0.1:1/0"})
    assert OnlineReader.for_store(elsewhere, store, [VIEW]) is None
    assert OnlineReader.for_store(settings, store, ["no_such_view"]) is None
    assert OnlineReader.for_store(settings, object(), [VIEW]) is None

"""Replay: event-time order, keys, watermarks, and every record reaching the broker."""

from __future__ import annotations

import orjson
import pytest
from kafka import KafkaConsumer, TopicPartition

from glide.world.generator import WorldConfig, generate_world
from streams import schemas as S
from streams.replay import plan, replay_world


@pytest.fixture(scope="module")
def world():
    return generate_world(WorldConfig(users=30, days=3, shows=20, episodes_per_show=5, seed=3))


def _ts(r) -> int:
    obj = orjson.loads(r.value)
    return obj["ts"]


def test_plan_is_event_time_ordered_and_keyed(world):
    records, stats = plan(world, partitions=4)
    assert stats.listens == len(world.listens) and stats.watermarks == 4
    assert stats.catalog == len(world.episodes[world.episodes.published_at <= world.listens.ts.max()])
    body = [r for r in records if not r.headers]
    times = [_ts(r) for r in body]
    assert times == sorted(times)
    first_listen = {}
    for i, r in enumerate(body):
        obj = orjson.loads(r.value)
        if r.topic == S.LISTEN_TOPIC:
            assert r.key == obj["user_id"].encode()
            first_listen.setdefault(obj["episode_id"], i)
            S.decode_listen(r.value)
        elif r.topic == S.CATALOG_TOPIC:
            assert r.key == obj["episode"]["episode_id"].encode()
            S.decode_catalog_update(r.value)
            assert first_listen.get(obj["episode"]["episode_id"], 10**9) > i  # published before listened
        else:
            S.decode_session_start(r.value)
    tail = records[-4:]
    assert [r.partition for r in tail] == [0, 1, 2, 3] and all(S.is_watermark(r.headers) for r in tail)
    assert S.decode_watermark(tail[0].value).ts == stats.final_ts_ms


def test_limit_cuts_listens_and_what_follows(world):
    records, stats = plan(world, limit=10, partitions=2)
    assert stats.listens == 10
    assert max(_ts(r) for r in records if not r.headers) == stats.final_ts_ms


def test_replay_reaches_the_broker(world, embedded_stack):
    settings, status = embedded_stack
    stats = replay_world(world, status.bootstrap, limit=200)
    consumer = KafkaConsumer(bootstrap_servers=status.bootstrap, consumer_timeout_ms=3000)
    tps = [TopicPartition(t, p) for t in (S.LISTEN_TOPIC, S.SESSION_TOPIC, S.CATALOG_TOPIC) for p in range(4)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)  # no group, no ListOffsets: tansu's memory storage starts at offset 0
    seen: dict[str, int] = {}
    last_ts: dict[tuple[str, int], int] = {}
    for m in consumer:
        seen[m.topic] = seen.get(m.topic, 0) + 1
        if m.headers:
            continue
        ts = _ts(m)
        assert ts >= last_ts.get((m.topic, m.partition), 0)  # in order within each partition
        last_ts[(m.topic, m.partition)] = ts
    consumer.close()
    assert seen == {S.LISTEN_TOPIC: stats.listens + stats.watermarks, S.SESSION_TOPIC: stats.sessions,
                    S.CATALOG_TOPIC: stats.catalog}

"""Records the broker accepts but that are far over every limit (a ~1.2 MB poison pill) through the real
broker into both workers: the stream worker (listen-events) and the GLIDE worker (session-start).
Neither crashes; records over their topic's size are `too_large` (before any JSON is parsed); dead
letters are cut to the cap with the original's size and sha256; the good records around them are
applied / served exactly once and the offsets move past the big ones. Records just under, at and
over the topic limit and the dead-letter cap pin the boundaries."""

from __future__ import annotations

import asyncio
import hashlib
import time
import urllib.request

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

import streams.candidates as candidates
from glide.config import load_settings
from glide.world.generator import WorldConfig, generate_world
from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from infra import stack
from streams import deadletter
from streams import schemas as S
from streams.candidate_worker import SESSIONS, run_candidate_worker
from streams.candidates import CandidateConfig, CandidateService
from streams.config import DEAD_LETTER_MAX_BYTES as CAP
from streams.replay import push_profiles, replay_world
from tests.streams.fakes import EchoBackend, FakeStore
from tests.streams.helpers import (
    assert_features_match_oracle, free_port, metric, register_sids, start_worker, stop_worker, wait_processed,
)

HUGE = 1_200_000  # > the producer's 1 MiB max request size once copied with headers


def sized(event: dict, size: int) -> bytes:
    """``event`` with a padding field (unknown fields are ignored) so it is exactly ``size`` bytes."""
    base = len(orjson.dumps(event | {"pad": ""}))
    raw = orjson.dumps(event | {"pad": "x" * (size - base)})
    assert len(raw) == size
    return raw


@pytest.fixture(scope="module")
def world_stack(tmp_path_factory):
    mp = pytest.MonkeyPatch()
    mp.setenv("GLIDE_FEAST_PROJECT", "glide")
    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("poison")), profile="embedded")
    status = stack.up(settings)
    try:
        yield settings, status
    finally:
        stack.down(settings)
        mp.undo()


def _dead_letters(settings, source_topic: str) -> list:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), consumer_timeout_ms=2000)
    tps = [TopicPartition(S.DEAD_LETTER_TOPIC, p) for p in range(settings.topic_partitions)]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    out = [m for m in consumer if deadletter.parse_headers(m.headers).get(deadletter.SOURCE_TOPIC) == source_topic]
    consumer.close()
    return out


def _check_letter(m, original: bytes, key: bytes, reason: str) -> None:
    h = deadletter.parse_headers(m.headers)
    assert h[deadletter.REASON] == reason
    assert m.value == original[:CAP] and m.key == key
    assert h[deadletter.SIZE] == str(len(original))
    assert h[deadletter.SHA256] == hashlib.sha256(original).hexdigest()
    assert h[deadletter.TRUNCATED] == ("true" if len(original) > CAP else "false")


def test_the_stream_worker_dead_letters_a_poison_pill_and_moves_on(world_stack):
    settings, status = world_stack
    world = generate_world(WorldConfig(users=4, days=3, shows=3, episodes_per_show=3, seed=3))
    sids = register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    stats = replay_world(world, status.bootstrap, sessions=False)
    port = free_port()
    worker = start_worker(settings, name="poison-worker", metrics_port=port, catalog_wait_s=2)
    try:
        end = dict(stats.end_offsets)
        producer = KafkaProducer(bootstrap_servers=status.bootstrap, max_request_size=4 * 1024 * 1024)
        row = world.listens.iloc[-1]
        w = stats.final_ts_ms
        key = row.user_id.encode()

        def listen(i: int) -> dict:
            return {"event_id": f"pp_{i}", "user_id": row.user_id, "episode_id": row.episode_id,
                    "show_id": row.show_id, "listened_seconds": 60, "ts": w - 60_000 + i, "surface": "home",
                    "locale": "en-US"}

        limit = S.MAX_BYTES[S.LISTEN_TOPIC]
        good = {0: orjson.dumps(listen(0)), 1: sized(listen(1), limit - 1), 2: sized(listen(2), limit),
                4: orjson.dumps(listen(4)), 9: orjson.dumps(listen(9))}
        bad = {3: sized(listen(3), limit + 1), 5: sized(listen(5), CAP - 1), 6: sized(listen(6), CAP),
               7: sized(listen(7), CAP + 1), 8: sized(listen(8), HUGE)}  # all valid JSON, all too large
        for i in range(10):
            meta = producer.send(S.LISTEN_TOPIC, value=good.get(i) or bad[i], key=key).get(timeout=30)
            end[(meta.topic, meta.partition)] = max(end.get((meta.topic, meta.partition), 0), meta.offset + 1)
        producer.close()
        wait_processed(settings, end, timeout=120, procs=[worker])  # offsets past the poison pill
        time.sleep(0.5)
        assert worker.poll() is None, "the stream worker exited"

        letters = {orjson.loads(m.value)["event_id"] if m.value.endswith(b"}") else None: m
                   for m in _dead_letters(settings, S.LISTEN_TOPIC)}
        cut = [m for m in _dead_letters(settings, S.LISTEN_TOPIC)
               if deadletter.parse_headers(m.headers)[deadletter.TRUNCATED] == "true"]
        assert len(cut) == 2 and len(_dead_letters(settings, S.LISTEN_TOPIC)) == 5
        for i in (3, 5, 6):
            _check_letter(letters[f"pp_{i}"], bad[i], key, S.TOO_LARGE)
        for i, m in zip((7, 8), sorted(cut, key=lambda m: int(deadletter.parse_headers(m.headers)[deadletter.SIZE]))):
            _check_letter(m, bad[i], key, S.TOO_LARGE)

        accepted = pd.concat([world.listens, pd.DataFrame([listen(i) for i in good]).assign(
            ts=lambda d: pd.to_datetime(d["ts"], unit="ms", utc=True))], ignore_index=True)
        assert_features_match_oracle(_store(settings), accepted, sids, w)
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            text = r.read().decode()
        assert metric(text, "glide_stream_dead_letter_total", topic=S.LISTEN_TOPIC, reason=S.TOO_LARGE) == 5
        assert metric(text, "glide_stream_events_total", topic=S.LISTEN_TOPIC, outcome="applied") == len(accepted)
    finally:
        stop_worker(worker)
    assert worker.returncode == 0 or worker.returncode == -15, f"worker exit {worker.returncode}"


def _store(settings):
    from streams.feature_store import open_store

    return open_store(settings)


def _service(monkeypatch, published: list) -> CandidateService:
    """A real CandidateService over fake online reads and backend; publish() records the candidates."""
    def inputs(store, refs, rows):
        known = [r["user_id"] == "u-known" for r in rows]
        return {"user_id": [r["user_id"] for r in rows], "sid_levels": [2 if k else None for k in known],
                "recent_sid_codes": [[0, 0] if k else None for k in known],
                "recent_episode_ids": [["e0"] if k else None for k in known],
                "cf_embedding": [None] * len(rows), "cf_version": [None] * len(rows),
                "locale": ["en-US" if k else None for k in known], "affinity_topics": [None] * len(rows)}

    monkeypatch.setattr(candidates, "online_features", inputs)
    monkeypatch.setattr(candidates, "read_user_show_features", lambda store, user, shows, as_of: pd.DataFrame(
        {"show_id": shows, "habitual": [False] * len(shows), "ever_listened": [True] * len(shows)}))
    monkeypatch.setattr(candidates, "push", lambda store, view, frame: published.extend(frame["user_id"]))
    ids = [f"e{i}" for i in range(6)]
    codes = np.array([(i // 2, i % 2) for i in range(6)])
    table = CollisionTable.from_arrays(ids, codes, [float(i) for i in range(6)], locale=["en-US"] * 6)
    # One mode per session and no cache reads (TTL 0): the fake store holds no cached sets.
    config = CandidateConfig(session_modes="session", refresh_ttl_s=0)
    service = CandidateService(FakeStore(), EchoBackend(SidTrie(codes, 4), sorted({tuple(c) for c in codes})),
                               table, {e: f"s{i // 2}" for i, e in enumerate(ids)}, "v", config)
    served = []
    refresh = service.refresh

    def recording(sessions, *args, **kwargs):
        out = refresh(sessions, *args, **kwargs)
        served.extend(c.session_event_id for sets in out for c in sets)
        return out

    service.refresh = recording
    service.served = served
    return service


def test_the_glide_worker_dead_letters_a_poison_pill_and_serves_the_rest_once(world_stack, monkeypatch):
    settings, status = world_stack
    published: list = []
    service = _service(monkeypatch, published)
    now = int(time.time() * 1000)
    limit = S.MAX_BYTES[S.SESSION_TOPIC]

    def session(i: int, user: str = "u-known", ts: int = now) -> dict:
        return {"event_id": f"ss_{i}", "user_id": user, "ts": ts, "surface": "home", "context": {}}

    good = {0: orjson.dumps(session(0)), 1: sized(session(1), limit - 1), 2: sized(session(2), limit),
            4: orjson.dumps(session(4, ts=now + 60_000)),  # within the 5-minute clock skew
            5: orjson.dumps(session(5, user="u-nobody")),  # no features online: cold start
            11: orjson.dumps(session(11))}
    bad = {3: (sized(session(3), limit + 1), S.TOO_LARGE),
           6: (orjson.dumps(session(6, ts=now + 10 * 60_000)), S.FUTURE),
           7: (sized(session(7), CAP - 1), S.TOO_LARGE), 8: (sized(session(8), CAP), S.TOO_LARGE),
           9: (sized(session(9), CAP + 1), S.TOO_LARGE), 10: (sized(session(10), HUGE), S.TOO_LARGE)}
    key = b"k-poison"
    producer = KafkaProducer(bootstrap_servers=status.bootstrap, max_request_size=4 * 1024 * 1024)
    end = 0
    for i in range(12):
        meta = producer.send(S.SESSION_TOPIC, value=good[i] if i in good else bad[i][0], key=key).get(timeout=30)
        end, part = meta.offset + 1, meta.partition
    producer.close()
    before = {o: SESSIONS.labels(o)._value.get() for o in ("served", "cold_start", "dead_letter")}
    wanted = {f"ss_{i}" for i in good}

    async def serve() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, group_id="poison-glide",
                                                        session_timeout_ms=6000))
        deadline = time.monotonic() + 90
        while not wanted <= set(service.served) and time.monotonic() < deadline and not task.done():
            await asyncio.sleep(0.2)
        await asyncio.sleep(1.0)  # the batch after the last served one commits too
        stop.set()
        await task  # a crash would raise here

    asyncio.run(serve())
    assert sorted(service.served) == sorted(wanted)  # each good session once
    assert sorted(published) == sorted(["u-known"] * 5 + ["u-nobody"])
    assert {o: SESSIONS.labels(o)._value.get() - v for o, v in before.items()} == {
        "served": 5, "cold_start": 1, "dead_letter": 6}

    committed = KafkaConsumer(bootstrap_servers=status.bootstrap, group_id="poison-glide", enable_auto_commit=False)
    assert committed.committed(TopicPartition(S.SESSION_TOPIC, part)) == end  # past the poison pill
    committed.close()

    letters = _dead_letters(settings, S.SESSION_TOPIC)
    assert len(letters) == len(bad)
    by_size = {int(deadletter.parse_headers(m.headers)[deadletter.SIZE]): m for m in letters}
    for raw, reason in bad.values():
        _check_letter(by_size[len(raw)], raw, key, reason)

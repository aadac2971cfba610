"""Redis outages on the cluster profile, against a redis-server of the test's own (SIGKILLed and
restarted on the same port; `--appendonly yes` so the online rows survive the restart):

- the GLIDE worker keeps every session of a 20 s outage waiting and serves it once Redis is back
  (nothing dead-lettered); with a retry deadline shorter than the outage the sessions of the window
  are dead-lettered as `retry_exhausted` (none lost), and the worker serves the sessions after it;
- the stream worker rides out a 10 s outage mid-replay without exiting, and its online features
  still equal the batch oracle exactly.
"""

from __future__ import annotations

import asyncio
import shutil
import signal
import subprocess
import threading
import time
import uuid

import numpy as np
import orjson
import pandas as pd
import pytest
import redis
import sqlalchemy
from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.structs import OffsetAndMetadata

from glide.config import load_settings
from glide.world.generator import WorldConfig, generate_world
from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from infra import stack
from streams import deadletter
from streams import schemas as S
from streams.candidate_worker import CANDIDATES_TOPIC, run_candidate_worker
from streams.candidates import CandidateConfig, CandidateService
from streams.config import StreamSettings
from streams.replay import plan, produce, push_profiles
from tests.streams.fakes import EchoBackend
from tests.streams.helpers import (
    assert_features_match_oracle,
    dead_letters,
    RedisServer,
    free_port,
    processed_offsets,
    register_sids,
    start_worker,
    stop_worker,
    wait_processed,
)

pytestmark = pytest.mark.skipif(shutil.which("redis-server") is None, reason="redis-server is not installed")


@pytest.fixture
def own_redis(tmp_path):
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    yield server
    server.kill()


@pytest.fixture
def outage_settings(tmp_path, embedded_stack, unique_project, own_redis, monkeypatch):
    """Cluster profile on the test's own Redis (also for worker subprocesses: GLIDE_REDIS_URL)."""
    _, embedded = embedded_stack
    monkeypatch.setenv("GLIDE_REDIS_URL", own_redis.url)
    schema = f"glide_t{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=str(tmp_path / "data"), profile="cluster", kafka_bootstrap=embedded.bootstrap,
                             postgres_schema=schema, redis_url=own_redis.url)
    stack.up(settings)
    yield settings
    engine = sqlalchemy.create_engine(settings.postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()


# -- the GLIDE worker ----------------------------------------------------------------------------------

K = 4
CATALOG = {f"e{i}": ((i % 4, i // 4), f"s{i % 3}", 10 + i) for i in range(12)}  # episode: (sid, show, popularity)
USERS = [f"u{i}" for i in range(8)]


def _service(settings) -> CandidateService:
    from streams.feature_store import open_store, push

    store = open_store(settings)
    now = pd.Timestamp.now(tz="UTC")
    push(store, "user_context", pd.DataFrame({
        "user_id": USERS, "locale": ["en-US"] * len(USERS), "country": ["US"] * len(USERS),
        "affinity_topics": [["news"]] * len(USERS), "event_timestamp": [now] * len(USERS)}))
    push(store, "user_show_listening_28d", pd.DataFrame({
        "user_id": USERS, "show_id": ["s0"] * len(USERS), "listen_seconds_28d": [60] * len(USERS),
        "ever_listened": [True] * len(USERS), "last_listened_at": [now] * len(USERS),
        "habitual": [False] * len(USERS), "event_timestamp": [now] * len(USERS)}))
    ids = list(CATALOG)
    codes = np.array([CATALOG[e][0] for e in ids])
    table = CollisionTable.from_arrays(ids, codes, [CATALOG[e][2] for e in ids], locale=["en-US"] * len(ids))
    sids = sorted({CATALOG[e][0] for e in ids})
    return CandidateService(store, EchoBackend(SidTrie(codes, K), sids), table,
                            {e: v[1] for e, v in CATALOG.items()}, "v-outage", CandidateConfig())


def _skip_to_end(bootstrap: str, group: str) -> None:
    """Commit the group at the end of session-start and catalog-updates: the module's broker holds the
    other tests' records, which this worker must not serve."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=group, enable_auto_commit=False)
    tps = [TopicPartition(t, p) for t in (S.SESSION_TOPIC, S.CATALOG_TOPIC)
           for p in sorted(consumer.partitions_for_topic(t) or ())]
    ends = consumer.end_offsets(tps)
    consumer.commit({tp: OffsetAndMetadata(o, "", -1) for tp, o in ends.items()})
    consumer.close()


class WorkerThread:
    """run_candidate_worker on its own event loop in a thread; ``close()`` stops it."""

    def __init__(self, settings, service, streams: StreamSettings, group: str):
        self.error: BaseException | None = None
        self._ready = threading.Event()

        async def main() -> None:
            self.loop, self.stop = asyncio.get_running_loop(), asyncio.Event()
            self._ready.set()
            await run_candidate_worker(settings, service, self.stop, group_id=group, session_timeout_ms=6000,
                                       streams=streams)

        def run() -> None:
            try:
                asyncio.run(main())
            except BaseException as exc:  # noqa: BLE001 - reported by the test
                self.error = exc

        self.thread = threading.Thread(target=run, daemon=True)
        self.thread.start()
        assert self._ready.wait(10)

    def alive(self) -> bool:
        return self.thread.is_alive()

    def close(self) -> None:
        if self.thread.is_alive():
            self.loop.call_soon_threadsafe(self.stop.set)
            self.thread.join(60)


class Outcomes:
    """Candidate events and session dead letters of the sessions this test sent."""

    def __init__(self, bootstrap: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(t, p) for t in (CANDIDATES_TOPIC, S.DEAD_LETTER_TOPIC)
               for p in sorted(self.consumer.partitions_for_topic(t) or ())]
        self.consumer.assign(tps)
        for tp, o in self.consumer.end_offsets(tps).items():
            self.consumer.seek(tp, o)
        self.served: dict[str, dict] = {}
        self.dead: dict[str, str] = {}  # session event_id -> reason

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=200).values():
            for r in records:
                if r.topic == CANDIDATES_TOPIC:
                    event = orjson.loads(r.value)
                    self.served[event["session_event_id"]] = event
                else:
                    headers = deadletter.parse_headers(r.headers)
                    if headers.get(deadletter.SOURCE_TOPIC) == S.SESSION_TOPIC:
                        self.dead[orjson.loads(r.value)["event_id"]] = headers[deadletter.REASON]

    def wait(self, ids, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline and not set(ids) <= set(self.served) | set(self.dead):
            self.poll()


class Sessions:
    def __init__(self, bootstrap: str, tag: str):
        self.producer = KafkaProducer(bootstrap_servers=bootstrap)
        self.tag, self.sent = tag, []

    def send_for(self, seconds: float, every: float = 0.25) -> list[str]:
        ids, end = [], time.monotonic() + seconds
        while time.monotonic() < end:
            eid = f"{self.tag}-{len(self.sent)}"
            user = USERS[len(self.sent) % len(USERS)]
            self.producer.send(S.SESSION_TOPIC, key=user.encode(), value=orjson.dumps(
                {"event_id": eid, "user_id": user, "ts": int(time.time() * 1000), "surface": "home", "context": {}}))
            self.producer.flush()
            self.sent.append(eid)
            ids.append(eid)
            time.sleep(every)
        return ids


def _outage_run(settings, own_redis, streams: StreamSettings, outage_s: float):
    service = _service(settings)
    group = f"glide-worker-{uuid.uuid4().hex[:8]}"
    _skip_to_end(settings.bootstrap_servers(), group)
    outcomes = Outcomes(settings.bootstrap_servers())
    sessions = Sessions(settings.bootstrap_servers(), group)
    worker = WorkerThread(settings, service, streams, group)
    try:
        before = sessions.send_for(3)
        outcomes.wait(before, timeout=60)
        assert set(before) <= set(outcomes.served), "sessions before the outage were not served"
        own_redis.kill()
        during = sessions.send_for(outage_s)
        own_redis.start()
        after = sessions.send_for(3)
        outcomes.wait(sessions.sent, timeout=90)
        assert worker.alive(), f"the worker stopped: {worker.error!r}"
        return service, outcomes, sessions, before, during, after
    finally:
        worker.close()


def _retries() -> float:
    from streams.metrics import RETRIES

    return sum(RETRIES.labels("glide", op)._value.get() for op in ("online_read", "candidates_push"))


def test_glide_worker_serves_every_session_of_a_redis_outage(outage_settings, own_redis):
    retried = _retries()
    service, outcomes, sessions, *_ = _outage_run(
        outage_settings, own_redis, StreamSettings(metrics_port=-1, retry_max_s=2.0), outage_s=20)
    assert _retries() > retried, "the outage was not noticed"
    missing = [e for e in sessions.sent if e not in outcomes.served]
    assert not missing and not outcomes.dead, f"not served: {missing}; dead-lettered: {outcomes.dead}"
    # The last candidates of every user are in Feast too.
    from streams.feature_store import online_features

    got = online_features(service.store, ["glide_candidates:candidate_episode_ids"],
                          [{"user_id": u, "mode": "unfamiliar"} for u in USERS])
    assert all(got["candidate_episode_ids"])


def test_glide_worker_dead_letters_the_outage_past_the_deadline_and_serves_after(outage_settings, own_redis):
    from streams.metrics import RETRY_EXHAUSTED

    exhausted = sum(RETRY_EXHAUSTED.labels("glide", op)._value.get() for op in ("online_read", "candidates_push"))
    _, outcomes, sessions, before, during, after = _outage_run(
        outage_settings, own_redis, StreamSettings(metrics_port=-1, retry_deadline_s=2.0, retry_max_s=0.5),
        outage_s=12)
    lost = [e for e in sessions.sent if e not in outcomes.served and e not in outcomes.dead]
    assert not lost, f"sessions neither served nor dead-lettered: {lost}"
    assert not set(outcomes.served) & set(outcomes.dead)
    assert outcomes.dead and set(outcomes.dead.values()) == {S.RETRY_EXHAUSTED}
    assert set(outcomes.dead) <= set(during), "only sessions of the outage window may be dead-lettered"
    assert set(after) <= set(outcomes.served), "the worker did not serve the sessions after the outage"
    assert sum(RETRY_EXHAUSTED.labels("glide", op)._value.get()
               for op in ("online_read", "candidates_push")) > exhausted


# -- the stream worker ---------------------------------------------------------------------------------


def test_stream_worker_rides_out_a_redis_outage_exactly(outage_settings, own_redis):
    settings = outage_settings
    world = generate_world(WorldConfig(users=60, days=35, shows=40, episodes_per_show=10, seed=21))
    sids = register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    records, stats = plan(world, partitions=4)
    rate = max(50.0, len(records) / 30)  # the replay lasts ~30 s: the outage falls in its middle
    proc = start_worker(settings)
    try:
        thread = threading.Thread(target=lambda: asyncio.run(
            produce(records, settings.bootstrap_servers(), rate=rate, end_offsets=stats.end_offsets)), daemon=True)
        thread.start()
        deadline = time.monotonic() + 90
        while sum(processed_offsets(settings).values()) <= 0 and time.monotonic() < deadline:
            assert proc.poll() is None, "the worker exited before the outage"
            time.sleep(0.2)
        time.sleep(2)
        own_redis.kill()
        end = time.monotonic() + 10
        while time.monotonic() < end:
            assert proc.poll() is None, f"the worker exited during the outage ({proc.returncode})"
            time.sleep(0.2)
        own_redis.start()
        thread.join(180)
        assert not thread.is_alive(), "replay did not finish"
        wait_processed(settings, stats.end_offsets, timeout=120, procs=[proc])
        assert proc.poll() is None, "the worker exited"
    finally:
        stop_worker(proc)
    log = (settings.data_dir / "worker.log").read_text()
    assert "retrying in" in log, "the outage was not noticed: no retry logged"
    from streams.feature_store import open_store

    assert assert_features_match_oracle(open_store(settings), world.listens, sids, stats.final_ts_ms) > 100


def _new_episode(episode_id: str, show_id: str, ts: int) -> bytes:
    return orjson.dumps({"event_id": f"cat-{episode_id}", "ts": ts, "show": None,
                         "episode": {"episode_id": episode_id, "show_id": show_id, "title": episode_id,
                                     "published_at": ts, "duration_s": 1800, "popularity": 0.0}})


def test_a_listen_whose_catalog_update_an_outage_holds_up_is_applied(outage_settings, own_redis):
    """Redis goes down while the catalog stream writes episode A online; B's catalog update queues
    behind it, and a listen of B is parked. The outage lasts 3x the catalog wait, but the catalog
    stream was never caught up meanwhile: the listen is applied once B lands, not dead-lettered."""
    from glide.event_log import open_event_log

    settings = outage_settings
    world = generate_world(WorldConfig(users=4, days=7, shows=3, episodes_per_show=3, seed=5))
    register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    records, stats = plan(world, partitions=4)
    proc = start_worker(settings, catalog_wait_s=2)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all")
    bootstrap = settings.bootstrap_servers()
    try:
        asyncio.run(produce(records, bootstrap, rate=2000, end_offsets=stats.end_offsets))
        wait_processed(settings, stats.end_offsets, timeout=120, procs=[proc])
        # Now, not the world's clock: this module's broker holds other tests' listens, later than this world's.
        show, user, ts = world.shows.show_id.iloc[0], world.users.user_id.iloc[0], S.now_ms()
        listen = {"schema_version": 1, "event_id": "ev-held-up", "user_id": user, "episode_id": "ep_held_b",
                  "show_id": show, "listened_seconds": 300, "ts": ts, "surface": "home", "locale": "en-US"}
        own_redis.kill()
        producer.send(S.CATALOG_TOPIC, key=b"ep_held_a", value=_new_episode("ep_held_a", show, ts)).get(10)
        time.sleep(1.5)  # the catalog stream is inside A's batch now, retrying its online write
        producer.send(S.CATALOG_TOPIC, key=b"ep_held_b", value=_new_episode("ep_held_b", show, ts)).get(10)
        sent = producer.send(S.LISTEN_TOPIC, key=user.encode(), value=orjson.dumps(listen)).get(10)
        time.sleep(6)
        assert proc.poll() is None, f"the worker exited during the outage ({proc.returncode})"
        own_redis.start()
        deadline, where = time.monotonic() + 180, (sent.partition, sent.offset)
        while "ev-held-up" not in set(open_event_log(settings).read("listens")["event_id"]):
            reason = dead_letters(bootstrap, S.LISTEN_TOPIC).get(where)
            assert reason is None, f"the held-up listen was dead-lettered: {reason}"
            assert time.monotonic() < deadline, "the held-up listen was neither applied nor dead-lettered"
            assert proc.poll() is None, "the worker exited"
    finally:
        producer.close()
        stop_worker(proc)
    assert where not in dead_letters(bootstrap, S.LISTEN_TOPIC)

"""Model lifecycle of the GLIDE worker on a real broker, Feast and catalog DB: a model promoted while
sessions flow is swapped in without a restart, every session is served exactly once and the later ones
by the new version; the collision tie-breaker is recounted from the event log on a schedule."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter
from datetime import datetime, timezone

import orjson
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from glide.catalog import CatalogDB
from glide.config import ConfigError
from glide.event_log import open_event_log
from glide_model.sids.collisions import Eligibility
from streams.candidate_worker import CANDIDATES_TOPIC, run_candidate_worker
from streams.candidates import CandidateConfig
from streams.feature_store import apply_definitions, open_store, push
from streams.config import WorkerSettings, load_worker_settings
from streams.model_watch import MODEL_SWAPS, ModelWatch
from streams.serving import build_service
from streams.service_lifecycle import POPULARITY_REFRESHES, ServiceLifecycle
from tests.streams.helpers import tiny_glide_export

M, K = 3, 8
QUANTIZER = "q-reload"
USERS = [f"ru{i}" for i in range(6)]
TIE = (7, 7, 7)  # the SID two episodes share: the tie-breaker decides between them
CONFIG = CandidateConfig(session_modes="session", refresh_ttl_s=0)  # one set per session, always generated


def _export(folder, seed: int):
    return tiny_glide_export(folder, M, K, QUANTIZER, seed=seed)


@pytest.fixture(scope="module")
def world(embedded_stack, tmp_path_factory):
    """A 40-episode catalog (ep-tie-a and ep-tie-b share a SID), two registered models, v1 promoted."""
    settings, _ = embedded_stack
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"rs{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(5)])
    ids = [f"ep{i:03d}" for i in range(38)] + ["ep-tie-a", "ep-tie-b"]
    db.upsert_episodes(pd.DataFrame([{
        "episode_id": e, "show_id": f"rs{i % 5}", "title": f"Episode {i}", "description": f"About {i}",
        "locale": "en-US", "playable": True, "popularity": {"ep-tie-a": 90.0, "ep-tie-b": 10.0}.get(e, float(i)),
        "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 1800, "topic": "news"}
        for i, e in enumerate(ids)]))
    codes = {e: (i % K, (i // K) % K, i % 3) for i, e in enumerate(ids[:-2])} | {"ep-tie-a": TIE, "ep-tie-b": TIE}
    db.register_quantizer(QUANTIZER, "test", "/nonexistent", M, K)
    db.save_sid_assignments(QUANTIZER, codes)
    window = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 2, tzinfo=timezone.utc))
    for version, seed in (("v1", 1), ("v2", 2)):
        export = _export(tmp_path_factory.mktemp(version), seed)
        db.register_model(version, export, {}, {}, window)
    db.promote_model("v1")

    store = open_store(settings)
    apply_definitions(store)
    now = pd.Timestamp.now(tz="UTC")
    push(store, "user_context", pd.DataFrame({"user_id": USERS, "locale": ["en-US"] * len(USERS),
                                              "country": ["US"] * len(USERS), "affinity_topics": [["news"]] * len(USERS),
                                              "event_timestamp": [now] * len(USERS)}))
    return settings, db


def _listens(settings, episodes: list[str], first_offset: int) -> None:
    """Listens as the listen processor logs them, each by a user of its own (a distinct listener)."""
    ts = int(time.time() * 1000)
    rows = [{"event_id": f"l-{first_offset + i}", "user_id": f"lu{first_offset + i}", "episode_id": e, "show_id": "rs0",
             "listened_seconds": 600, "ts": ts, "surface": "home", "locale": "en-US", "offset": first_offset + i}
            for i, e in enumerate(episodes)]
    open_event_log(settings).append("listens", rows, 0, first_offset, first_offset + len(rows))


class Answers:
    """session_event_id -> the candidate events answering it, of the sessions whose id starts with
    ``prefix`` (read from the beginning: tansu's end offsets are not to be trusted)."""

    def __init__(self, bootstrap: str, prefix: str):
        self.prefix = prefix
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(CANDIDATES_TOPIC, p) for p in sorted(self.consumer.partitions_for_topic(CANDIDATES_TOPIC))]
        self.consumer.assign(tps)
        self.consumer.seek_to_beginning(*tps)
        self.events: dict[str, list[dict]] = {}

    def poll(self) -> None:
        for records in self.consumer.poll(timeout_ms=200).values():
            for r in records:
                event = orjson.loads(r.value)
                if event["session_event_id"].startswith(self.prefix):
                    self.events.setdefault(event["session_event_id"], []).append(event)


def _session(producer: KafkaProducer, event_id: str, user: str) -> None:
    producer.send("session-start", key=user.encode(), value=orjson.dumps(
        {"event_id": event_id, "user_id": user, "ts": int(time.time() * 1000), "surface": "home", "context": {}}))
    producer.flush()


def test_a_model_promoted_while_sessions_flow_serves_every_later_session_exactly_once(world):
    settings, db = world
    loaded = []

    def load():
        loaded.append(build_service(settings, None, num_beams=K, config=CONFIG))
        return loaded[-1]

    service = build_service(settings, None, num_beams=K, config=CONFIG)
    assert service.model_version == "v1"
    lifecycle = ServiceLifecycle.for_registry(settings, WorkerSettings(model_poll_s=0.3, popularity_refresh_s=0),
                                              load)
    prefix = f"rs-{uuid.uuid4().hex[:8]}-"
    answers = Answers(settings.bootstrap_servers(), prefix)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    swaps = MODEL_SWAPS.labels("swapped")._value.get()
    sent: list[str] = []
    # Indexes into `sent`: the first session not yet answered when v2 was promoted (one still queued
    # then may meet either model), and how many had been sent when v2 was first seen serving.
    promoted_at = swapped_at = None

    async def flow() -> None:
        nonlocal promoted_at, swapped_at
        stop = asyncio.Event()
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, group_id=f"reload-{uuid.uuid4().hex}",
                                                        session_timeout_ms=6000, lifecycle=lifecycle))
        deadline = time.monotonic() + 150
        try:
            while time.monotonic() < deadline and not task.done():
                if swapped_at is None or len(sent) < swapped_at + 12:
                    sent.append(f"{prefix}{len(sent)}")
                    await asyncio.to_thread(_session, producer, sent[-1], USERS[len(sent) % len(USERS)])
                await asyncio.to_thread(answers.poll)
                versions = [answers.events[e][0]["model_version"] for e in sent if e in answers.events]
                if promoted_at is None and versions.count("v1") >= 8:
                    promoted_at = next((i for i, e in enumerate(sent) if e not in answers.events), len(sent))
                    await asyncio.to_thread(db.promote_model, "v2")
                if swapped_at is None and "v2" in versions:
                    swapped_at = len(sent)
                if swapped_at is not None and len(sent) >= swapped_at + 12 and set(sent) <= set(answers.events):
                    break
                await asyncio.sleep(0.05)
        finally:
            stop.set()
            await task

    try:
        asyncio.run(flow())
    finally:
        db.promote_model("v1")  # as the module started, for the next test
    assert promoted_at is not None and swapped_at is not None, f"no swap to v2 ({len(answers.events)} answered)"
    assert set(answers.events) == set(sent), "a session was dropped (or an unknown one answered)"
    assert Counter({e: len(v) for e, v in answers.events.items()}) == Counter({e: 1 for e in sent}), \
        "a session was served twice"
    versions = [answers.events[e][0]["model_version"] for e in sent]
    # In send order: v1 for all answered before the promotion, then v1 until the swap, v2 from then on
    # (never back), and v2 for all sent once it served.
    k = versions.index("v2")
    assert promoted_at <= k <= swapped_at and versions == ["v1"] * k + ["v2"] * (len(sent) - k), versions
    first_v2 = min(ev[0]["generated_at"] for ev in answers.events.values() if ev[0]["model_version"] == "v2")
    assert max(ev[0]["generated_at"] for ev in answers.events.values() if ev[0]["model_version"] == "v1") <= first_v2
    assert MODEL_SWAPS.labels("swapped")._value.get() - swaps == 1
    assert [s.model_version for s in loaded] == ["v2"]


def test_popularity_is_recounted_from_the_event_log_on_a_schedule(world):
    """The catalog ranks ep-tie-a (90) over ep-tie-b (10). The log's listeners reverse that (the count
    at start), then reverse it back and again (counts on the schedule), each changing what the shared
    SID resolves to; a model swapped in afterwards gets the latest count, not the catalog's order."""
    settings, db = world
    service = build_service(settings, None, num_beams=K, config=CONFIG)
    loaded = []
    lifecycle = ServiceLifecycle.for_registry(
        settings, WorkerSettings(model_poll_s=0.3, popularity_refresh_s=0.5),
        lambda: loaded.append(build_service(settings, None, num_beams=K, config=CONFIG)) or loaded[-1])
    en = Eligibility.for_user("en-US")
    assert service.table.episodes(TIE) == ["ep-tie-a", "ep-tie-b"]
    _listens(settings, ["ep-tie-b"] * 3 + ["ep-tie-a"], first_offset=0)
    applied = POPULARITY_REFRESHES.labels("applied")._value.get()
    swaps = MODEL_SWAPS.labels("swapped")._value.get()
    steps = []

    async def serve() -> None:
        stop = asyncio.Event()
        task = asyncio.create_task(run_candidate_worker(settings, service, stop, group_id=f"pop-{uuid.uuid4().hex}",
                                                        session_timeout_ms=6000, lifecycle=lifecycle))
        try:
            for want, then in (("ep-tie-b", lambda: _listens(settings, ["ep-tie-a"] * 6, first_offset=100)),
                               ("ep-tie-a", lambda: _listens(settings, ["ep-tie-b"] * 10, first_offset=200)),
                               ("ep-tie-b", lambda: db.promote_model("v2"))):
                deadline = time.monotonic() + 60
                while service.table.resolve(TIE, en) != want and time.monotonic() < deadline and not task.done():
                    await asyncio.sleep(0.1)
                steps.append(service.table.resolve(TIE, en))
                await asyncio.to_thread(then)
            deadline = time.monotonic() + 60
            while MODEL_SWAPS.labels("swapped")._value.get() == swaps and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            stop.set()
            await task

    try:
        asyncio.run(serve())
    finally:
        db.promote_model("v1")
    assert steps == ["ep-tie-b", "ep-tie-a", "ep-tie-b"], "a refresh did not change the tie-break"
    assert POPULARITY_REFRESHES.labels("applied")._value.get() - applied >= 3
    assert MODEL_SWAPS.labels("swapped")._value.get() - swaps == 1
    assert [s.model_version for s in loaded] == ["v2"]
    assert loaded[0].table.episodes(TIE) == ["ep-tie-b", "ep-tie-a"]  # the count (13 vs 7), not the catalog's


class _Service:
    def __init__(self, version: str):
        self.model_version = version
        self.table = {}
        self.sid_index = None
        self._last_push_us = 0
        self.retry = None


def test_a_promoted_model_that_fails_to_load_is_not_retried_and_the_old_one_serves_on():
    promoted, calls = ["v1"], []

    def load():
        calls.append(promoted[0])
        raise OSError("export folder gone")

    watch = ModelWatch(lambda: promoted[0], load)
    assert watch.check("v1") is None and calls == []  # nothing new
    promoted[0] = "v3"
    failed = MODEL_SWAPS.labels("failed")._value.get()
    assert watch.check("v1") is None and watch.check("v1") is None
    assert calls == ["v3"] and MODEL_SWAPS.labels("failed")._value.get() - failed == 1
    promoted[0] = "v4"  # another promotion is tried
    watch.load = lambda: _Service("v4")
    assert watch.check("v1").model_version == "v4"


def test_lifecycle_settings_are_validated_at_load(monkeypatch):
    assert load_worker_settings().popularity_refresh_s == 86400.0  # daily by default
    monkeypatch.setenv("GLIDE_WORKER_MODEL_POLL_S", "-1")
    with pytest.raises(ConfigError, match="GLIDE_WORKER_MODEL_POLL_S"):
        load_worker_settings()
    monkeypatch.setenv("GLIDE_WORKER_MODEL_POLL_S", "5")
    monkeypatch.setenv("GLIDE_WORKER_CATALOG_REPLAY_S", "0")
    with pytest.raises(ConfigError, match="GLIDE_WORKER_CATALOG_REPLAY_S"):
        load_worker_settings()

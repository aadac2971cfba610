"""The GLIDE worker's refresh policy, through a real broker and the real Feast store (embedded
profile): a session start whose cached sets are fresh is answered from the cache, counted as
`skipped_fresh` and generates nothing; a listen after the set was generated, or the TTL, makes the
next session start regenerate. Generation itself is a stand-in (EchoBackend): the policy is under
test, not the model."""

from __future__ import annotations

import asyncio
import threading
import time
import uuid

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from streams import schemas as S
from streams.candidate_client import CandidateClient
from streams.candidate_worker import CANDIDATES_TOPIC, SESSIONS, run_candidate_worker
from streams.candidates import CandidateConfig, CandidateService
from streams.config import StreamSettings
from streams.feature_store import open_store, push
from tests.streams.fakes import EchoBackend

K = 4
CATALOG = {f"e{i}": ((i % 4, i // 4), f"s{i % 3}") for i in range(12)}  # episode: (sid, show)
TTL_S = 60.0
OUTCOMES = ("served", "cold_start", "skipped_fresh")


def _history(store, user: str, episodes: list[str], at: pd.Timestamp) -> None:
    """The user's user_recent_sids row as the listen processor writes it: event time = newest listen."""
    push(store, "user_recent_sids", pd.DataFrame({
        "user_id": [user], "recent_episode_ids": [episodes],
        "recent_sid_codes": [[c for e in episodes for c in CATALOG[e][0]]], "sid_levels": [2],
        "event_timestamp": [at]}))


@pytest.fixture(scope="module")
def worker(embedded_stack):
    """A running GLIDE worker (its own consumer group, from the end of session-start) with a refresh
    TTL of TTL_S; yields (settings, service, ask) where ask(user, ts_ms) sends a session start and
    returns its answers on glide-candidates."""
    settings, _ = embedded_stack
    store = open_store(settings)
    now = pd.Timestamp.now(tz="UTC")
    push(store, "user_context", pd.DataFrame({"user_id": ["u1"], "locale": ["en-US"], "country": ["US"],
                                              "affinity_topics": [["news"]], "event_timestamp": [now]}))
    _history(store, "u1", ["e0"], now - pd.Timedelta(hours=1))
    ids = list(CATALOG)
    codes = np.array([CATALOG[e][0] for e in ids])
    table = CollisionTable.from_arrays(ids, codes, [float(i) for i in range(len(ids))], locale=["en-US"] * len(ids))
    backend = EchoBackend(SidTrie(codes, K), sorted({CATALOG[e][0] for e in ids}))
    service = CandidateService(store, backend, table, {e: v[1] for e, v in CATALOG.items()}, "v-refresh",
                               CandidateConfig(refresh_ttl_s=TTL_S), quantizer_version="q-refresh")
    group = f"glide-refresh-{uuid.uuid4().hex[:8]}"
    answers = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers(), enable_auto_commit=False)
    parts = [TopicPartition(CANDIDATES_TOPIC, p) for p in sorted(answers.partitions_for_topic(CANDIDATES_TOPIC))]
    answers.assign(parts)
    answers.seek_to_end(*parts)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    loop_ready, state = threading.Event(), {}

    async def main() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        loop_ready.set()
        await run_candidate_worker(settings, service, state["stop"], group_id=group, session_timeout_ms=6000,
                                   streams=StreamSettings(metrics_port=-1))

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert loop_ready.wait(10)

    def ask(user: str, ts_ms: int, timeout: float = 60) -> list[dict]:
        event_id = uuid.uuid4().hex
        producer.send(S.SESSION_TOPIC, key=user.encode(), value=orjson.dumps(
            {"event_id": event_id, "user_id": user, "ts": ts_ms, "surface": "home", "context": {}}))
        producer.flush()
        got, deadline = [], time.monotonic() + timeout
        while len(got) < 2 and time.monotonic() < deadline:  # one answer per mode
            for records in answers.poll(timeout_ms=200).values():
                got.extend(e for e in (orjson.loads(r.value) for r in records) if e["session_event_id"] == event_id)
        assert len(got) == 2, f"session {event_id} got {got}"
        return sorted(got, key=lambda e: e["mode"])

    yield settings, service, ask
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(60)
    producer.close()
    answers.close()


def now() -> int:
    return int(time.time() * 1000)


def _shows(answer: dict) -> set[str]:
    return {CATALOG[e][1] for e in answer["episode_ids"]}


def _counts() -> dict[str, float]:
    return {o: SESSIONS.labels(o)._value.get() for o in OUTCOMES}


def _delta(before: dict[str, float]) -> dict[str, float]:
    return {o: v - before[o] for o, v in _counts().items() if v != before[o]}


def test_a_fresh_set_is_skipped_and_counted_and_a_listen_or_the_ttl_regenerates(worker):
    settings, service, ask = worker
    client = CandidateClient(settings, service.store)
    seen = service.backend.seen

    before, generated = _counts(), len(seen)
    first = ask("u1", now())
    assert [e["cached"] for e in first] == [False, False] and len(seen) == generated + 2  # both modes, one call
    assert _delta(before) == {"served": 1}
    cached = client.get(["u1"])["u1"].sets
    assert [e["episode_ids"] for e in first] == [cached[m].episode_ids for m in ("familiar", "unfamiliar")]

    # Fresh: nothing listened since, well within the TTL -> the cached sets answer, nothing generated.
    before, generated = _counts(), len(seen)
    again = ask("u1", now())
    assert [e["cached"] for e in again] == [True, True] and len(seen) == generated
    assert [e["episode_ids"] for e in again] == [e["episode_ids"] for e in first]
    assert [e["generated_at"] for e in again] == [cached[m].generated_at_ms for m in ("familiar", "unfamiliar")]
    assert _delta(before) == {"skipped_fresh": 1}
    assert client.get(["u1"])["u1"].sets == cached  # not rewritten

    # A listen after generation (a newer user_recent_sids row) -> regenerated, from the new history.
    _history(service.store, "u1", ["e0", "e4"], pd.Timestamp.now(tz="UTC") + pd.Timedelta(seconds=1))
    before, generated = _counts(), len(seen)
    listened = ask("u1", now())
    assert [e["cached"] for e in listened] == [False, False] and len(seen) == generated + 2
    assert _delta(before) == {"served": 1}
    assert "s1" in _shows(first[1]) and "s1" not in _shows(listened[1])  # unfamiliar: s1 is listened to now
    refreshed = client.get(["u1"])["u1"].sets
    assert all(refreshed[m].history_as_of_ms > cached[m].history_as_of_ms for m in refreshed)

    # The TTL: a session TTL_S after the sets were generated -> regenerated.
    before, generated = _counts(), len(seen)
    later = ask("u1", refreshed["familiar"].generated_at_ms + int(TTL_S * 1000) + 1000)
    assert [e["cached"] for e in later] == [False, False] and len(seen) == generated + 2
    assert _delta(before) == {"served": 1}


def test_a_set_older_than_the_ttl_is_regenerated_at_a_session_now(worker):
    """Real elapsed time: the cached sets of u-old were generated two hours ago (written as the
    worker writes them), so a session start now regenerates both."""
    settings, service, ask = worker
    old = now() - 2 * 3600 * 1000
    sets = service.recommend([S.SessionStart("old", "u-old", old, "home", {})], modes=("familiar", "unfamiliar"))
    for c in sets:
        c.generated_at_ms = old
    service.publish(sets)
    assert all(s.age_s() > 7000 for s in CandidateClient(settings, service.store).get(["u-old"])["u-old"].sets.values())
    before = _counts()
    answer = ask("u-old", now())
    assert [e["cached"] for e in answer] == [False, False]
    assert _delta(before) == {"cold_start": 1}  # u-old has no features online
    assert all(s.age_s() < 60 for s in CandidateClient(settings, service.store).get(["u-old"])["u-old"].sets.values())

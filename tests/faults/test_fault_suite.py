"""The fault suite (`pytest -m faults`): each worker under hostile input and infrastructure faults at
once, with every record accounted for.

The stream worker replays a world while it is SIGKILLed and Redis is SIGKILLed; then it gets the
hostile generator's listens (tests/faults/hostile.py) while the broker is cut off and it is killed
again. The GLIDE worker (`glide serve` on a tiny model) gets hostile session starts and a flood of
good ones while Redis and the broker go down and it is SIGKILLed. Afterwards every record sent is
looked up (event log, dead-letter topic, candidates topic) and must have exactly the outcome the
generator expected: sent = applied (or served) + dead-lettered by reason + duplicates / stale;
anything else is `lost`. The online features must equal the batch oracle over the applied listens.
The table is printed at the end of the run (tests/faults/conftest.py).
"""

from __future__ import annotations

import asyncio
import threading
import time
from collections import Counter

import pandas as pd
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from glide.event_log import open_event_log
from glide.world.generator import WorldConfig, generate_world
from streams import deadletter
from streams import schemas as S
from streams.replay import plan, produce, push_profiles
from tests.faults.hostile import APPLIED, DUPLICATE, Sent, hostile_listens
from tests.faults.report import ROWS, FaultRow
from tests.streams.helpers import assert_features_match_oracle, processed_offsets, register_sids, start_worker, \
    stop_worker

pytestmark = pytest.mark.faults

OUTAGE_S = 8


class Supervisor:
    """One worker process: planned SIGKILLs restart it; any other exit is a crash (counted, restarted)."""

    def __init__(self, start, row: FaultRow):
        self._start, self.row = start, row
        self.proc = start()

    def check(self) -> None:
        if self.proc.poll() is not None:
            self.row.crashes += 1
            self.proc = self._start()

    def kill(self) -> None:
        self.check()
        stop_worker(self.proc, kill=True)
        self.row.faults.append("SIGKILL")
        self.proc = self._start()

    def wait(self, done, timeout: float, what: str) -> None:
        deadline = time.monotonic() + timeout
        while not done():
            self.check()
            assert time.monotonic() < deadline, f"timed out waiting for {what}"
            time.sleep(0.2)

    def hold(self, seconds: float) -> None:
        self.wait(lambda t=time.monotonic() + seconds: time.monotonic() >= t, seconds + 5, "the pause")


def dead_letters(bootstrap: str, source_topic: str) -> dict[tuple[int, int], str]:
    """(source partition, source offset) -> reason of every dead letter of ``source_topic``; a record
    dead-lettered twice (a batch repeated after a kill) must carry the same reason both times."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=3000)
    tps = [TopicPartition(S.DEAD_LETTER_TOPIC, p) for p in sorted(consumer.partitions_for_topic(S.DEAD_LETTER_TOPIC))]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    out: dict[tuple[int, int], str] = {}
    for m in consumer:
        h = deadletter.parse_headers(m.headers)
        if h.get(deadletter.SOURCE_TOPIC) != source_topic:
            continue
        pos = (int(h[deadletter.SOURCE_PARTITION]), int(h[deadletter.SOURCE_OFFSET]))
        assert out.setdefault(pos, h[deadletter.REASON]) == h[deadletter.REASON], f"two reasons for {pos}"
    consumer.close()
    return out


def send_all(bootstrap: str, topic: str, records: list[Sent]) -> dict[tuple[int, int], Sent]:
    """Produce ``records`` in order; (partition, offset) -> record."""
    producer = KafkaProducer(bootstrap_servers=bootstrap, max_request_size=4 * 1024 * 1024, acks="all")
    futures = [producer.send(topic, key=r.key, value=r.value) for r in records]
    producer.flush()
    out = {}
    for r, f in zip(records, futures):
        meta = f.get(timeout=30)
        out[(meta.partition, meta.offset)] = r
    producer.close()
    return out


def account(row: FaultRow, sent: dict[tuple[int, int], Sent], positive: set, letters: dict) -> list[str]:
    """Fill ``row`` with what happened to each sent record; returns the mismatches."""
    wrong = []
    for pos, r in sent.items():
        got = APPLIED if pos in positive else letters.get(pos)
        if got is None and r.expect == DUPLICATE:
            got = DUPLICATE
        row.outcomes[got or "nothing"] += 1
        if got in letters.values() and got == letters.get(pos):
            row.dead_lettered[got] += 1
        if got != r.expect:
            wrong.append(f"{r.kind} record at {pos}: expected {r.expect}, got {got or 'nothing'}")
    row.sent += len(sent)
    row.lost += len(wrong)
    return wrong


# -- the stream worker ---------------------------------------------------------------------------------


def test_stream_worker_under_hostile_input_outages_and_kills(fault_stack):
    settings, bootstrap = fault_stack.settings, fault_stack.settings.bootstrap_servers()
    world = generate_world(WorldConfig(users=50, days=35, shows=30, episodes_per_show=8, seed=31))
    sids = register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    records, stats = plan(world, sessions=False, partitions=settings.topic_partitions)
    row = FaultRow("stream worker")
    ROWS.append(row)
    worker = Supervisor(lambda: start_worker(settings, name="stream-worker", catalog_wait_s=2), row)
    try:
        # 1. A world replay (~25 s) while Redis goes down and the worker is SIGKILLed.
        replay = threading.Thread(target=lambda: asyncio.run(produce(
            records, bootstrap, rate=max(50.0, len(records) / 25), end_offsets=stats.end_offsets)), daemon=True)
        replay.start()
        worker.wait(lambda: sum(processed_offsets(settings).values()) > 0, 90, "the first batch")
        worker.hold(1)
        fault_stack.redis.kill()
        worker.hold(OUTAGE_S)
        fault_stack.redis.start()
        row.faults.append(f"Redis down {OUTAGE_S} s")
        worker.hold(1)
        worker.kill()
        replay.join(180)
        assert not replay.is_alive(), "the replay did not finish"
        want = {p: o for (t, p), o in stats.end_offsets.items() if t == S.LISTEN_TOPIC}
        worker.wait(lambda: all(processed_offsets(settings).get(p, 0) >= o for p, o in want.items()), 180,
                    "the world replay")

        # 2. Hostile listens; the broker is cut off while they are processed, then the worker is killed.
        last = world.listens.sort_values("ts").iloc[-1]
        template = {"user_id": last.user_id, "episode_id": last.episode_id, "show_id": last.show_id,
                    "listened_seconds": 60, "surface": "home", "locale": "en-US"}
        other_show = next(s for s in world.shows.show_id if s != last.show_id)
        hostile = hostile_listens(template, stats.final_ts_ms, 3_600_000, other_show=other_show, seed=5)
        sent = send_all(bootstrap, S.LISTEN_TOPIC, hostile)
        fault_stack.proxy.outage(OUTAGE_S)
        row.faults.append(f"broker cut off {OUTAGE_S} s")
        worker.hold(2)
        worker.kill()
        ends = Counter()
        for p, o in sent:
            ends[p] = max(ends[p], o + 1)
        worker.wait(lambda: all(processed_offsets(settings).get(p, 0) >= o for p, o in ends.items()), 180,
                    "the hostile listens")
        worker.check()
    finally:
        stop_worker(worker.proc)
    row.retried = (settings.data_dir / "stream-worker.log").read_text().count("retrying in")

    # Every record: the event log holds what was applied, the dead-letter topic what was refused.
    logged = open_event_log(settings).read("listens")
    assert logged["event_id"].is_unique, "a listen was logged twice"
    world_ids = set(world.listens["event_id"])
    assert world_ids <= set(logged["event_id"]), "world listens missing from the log"
    letters = dead_letters(bootstrap, S.LISTEN_TOPIC)
    assert not set(letters) - set(sent), "a world listen was dead-lettered"
    hostile_pos = {(p, o) for p, o, e in zip(logged["partition"], logged["offset"], logged["event_id"])
                   if e not in world_ids}
    wrong = account(row, sent, hostile_pos, letters)
    row.sent += len(world_ids)
    row.outcomes[APPLIED] += len(world_ids)
    assert not wrong, "\n".join(wrong)
    row.check()

    applied = pd.DataFrame([r.event for r in hostile if r.expect == APPLIED])[list(template) + ["event_id", "ts"]]
    accepted = pd.concat([world.listens, applied.assign(ts=pd.to_datetime(applied["ts"], unit="ms", utc=True))],
                         ignore_index=True)
    from streams.feature_store import open_store

    assert assert_features_match_oracle(open_store(settings), accepted, sids, stats.final_ts_ms) > 100
    assert row.retried > 0, "no outage was noticed"

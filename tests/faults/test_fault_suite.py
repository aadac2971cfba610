"""The fault suite (`pytest -m faults`): each worker under hostile input and infrastructure faults at
once, with every record accounted for.

The stream worker replays a world while it is SIGKILLed and Redis is SIGKILLed; then it gets the
hostile generator's listens (tests/faults/hostile.py) while the broker is cut off and it is killed
again. The GLIDE worker (`glide serve` on a tiny model) gets hostile session starts and a flood of
good ones while Redis and the broker go down and it is SIGKILLed; its /metrics is scraped meanwhile
(the session-start lag must be reported during the flood, and be 0 once all is served). Afterwards
every record sent is looked up (event log, dead-letter topic, candidates topic) and must have exactly the outcome the
generator expected: sent = applied (or served) + dead-lettered by reason + duplicates / stale;
anything else is `lost`. The online features must equal the batch oracle over the applied listens.
The table is printed at the end of the run (tests/faults/conftest.py).
"""

from __future__ import annotations

import asyncio
import subprocess
import sys
import threading
import time
import urllib.request
from collections import Counter
from pathlib import Path

import orjson
import pandas as pd
import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer, TopicPartition

from glide.event_log import open_event_log
from glide.world.generator import WorldConfig, generate_world
from streams import schemas as S
from streams.candidate_worker import CANDIDATES_TOPIC
from streams.replay import plan, produce, push_profiles
from tests.faults.hostile import APPLIED, COLD_START, DUPLICATE, SERVED, STALE, Sent, hostile_listens, hostile_sessions
from tests.faults.report import ROWS, FaultRow
from tests.streams.helpers import (
    REPO, assert_features_match_oracle, dead_letters, free_port, processed_offsets, read_topic, register_sids,
    start_worker, stop_worker, tiny_glide_export, worker_env,
)

pytestmark = pytest.mark.faults

OUTAGE_S = 8
FLOOD = 300  # good session starts sent at once to the GLIDE worker


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


class Replay(threading.Thread):
    """The world's records produced in the background, paced over ~25 s; :meth:`join` fails the test
    if producing failed or did not finish, since a partial replay would leave the world's accounting
    nothing to compare against."""

    def __init__(self, records, bootstrap: str, end_offsets: dict):
        super().__init__(daemon=True)
        self.records, self.bootstrap, self.end_offsets = records, bootstrap, end_offsets
        self.error: BaseException | None = None
        self.start()

    def run(self) -> None:
        try:
            asyncio.run(produce(self.records, self.bootstrap, rate=max(50.0, len(self.records) / 25),
                                end_offsets=self.end_offsets))
        except BaseException as exc:  # reported by join()
            self.error = exc

    def join(self, timeout: float | None = None) -> None:
        super().join(timeout)
        assert not self.is_alive(), "the replay did not finish"
        assert self.error is None, f"the replay failed: {self.error!r}"


def where_missing(bootstrap: str, missing: set[str], letters: dict, processed: dict) -> str:
    """Why world listens are not in the log: each one's position, its dead-letter reason if any, and
    whether the worker's state had passed it (a lost append) or not (never processed)."""
    found = []
    for m in read_topic(bootstrap, S.LISTEN_TOPIC):
        try:
            event_id = orjson.loads(m.value).get("event_id")
        except (orjson.JSONDecodeError, AttributeError, TypeError):
            continue  # a hostile record, not a world listen
        if event_id in missing:
            state = "passed" if processed.get(m.partition, 0) > m.offset else "not reached"
            reason = letters.get((m.partition, m.offset), "no dead letter")
            found.append(f"{event_id}@{m.partition}:{m.offset} {reason}, state {state}")
    return f"{len(missing)} world listens missing from the log: " + "; ".join(found[:8])


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


def account(row: FaultRow, sent: dict[tuple[int, int], Sent], positive: set, letters: dict,
            positive_outcome=lambda r: APPLIED, silent: str = DUPLICATE) -> list[str]:
    """Fill ``row`` with what happened to each sent record; returns the mismatches. ``positive``: the
    positions with a trace of success (logged, served); ``silent``: the outcome that leaves no trace."""
    wrong = []
    for pos, r in sent.items():
        got = positive_outcome(r) if pos in positive else letters.get(pos)
        if got is None and r.expect == silent:
            got = silent
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
        replay = Replay(records, bootstrap, stats.end_offsets)
        worker.wait(lambda: sum(processed_offsets(settings).values()) > 0, 90, "the first batch")
        worker.hold(1)
        fault_stack.redis.kill()
        down_at, log = time.monotonic(), settings.data_dir / "stream-worker.log"
        # As for the GLIDE worker below: down until the worker has noticed, at least OUTAGE_S.
        worker.wait(lambda: "retrying in" in log.read_text(errors="replace"), 40, "the worker to notice Redis down")
        worker.hold(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        fault_stack.redis.start()
        row.faults.append(f"Redis down {time.monotonic() - down_at:.0f} s")
        worker.hold(1)
        worker.kill()
        replay.join(180)
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
    letters = dead_letters(bootstrap, S.LISTEN_TOPIC)
    missing = world_ids - set(logged["event_id"])
    assert not missing, where_missing(bootstrap, missing, letters, processed_offsets(settings))
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


# -- the GLIDE worker ----------------------------------------------------------------------------------

M, K = 3, 8
USERS = [f"fu{i}" for i in range(16)]
QUANTIZER = "fault-q"


def _glide_catalog(settings, folder) -> Path:
    """A 48-episode catalog with SIDs, users with features online, and a tiny untrained GLIDE export."""
    from glide.catalog import CatalogDB
    from streams.feature_store import open_store, push

    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"fs{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(6)])
    db.upsert_episodes(pd.DataFrame([{
        "episode_id": f"fe{i:03d}", "show_id": f"fs{i % 6}", "title": f"Episode {i}", "description": f"About {i}",
        "locale": "en-US", "playable": True, "popularity": float(i), "published_at": pd.Timestamp("2026-01-01", tz="UTC"),
        "duration_s": 1800, "topic": "news"} for i in range(48)]))
    codes = {f"fe{i:03d}": (i % K, (i // K) % K, i % 3) for i in range(48)}
    db.register_quantizer(QUANTIZER, "test", "/nonexistent", M, K)
    db.save_sid_assignments(QUANTIZER, codes)
    db.close()

    now = pd.Timestamp.now(tz="UTC")
    store = open_store(settings)
    push(store, "user_context", pd.DataFrame({"user_id": USERS, "locale": ["en-US"] * len(USERS),
                                              "country": ["US"] * len(USERS), "affinity_topics": [["news"]] * len(USERS),
                                              "event_timestamp": [now] * len(USERS)}))
    push(store, "user_recent_sids", pd.DataFrame({
        "user_id": USERS, "recent_episode_ids": [["fe000", "fe001"]] * len(USERS),
        "recent_sid_codes": [list(codes["fe000"] + codes["fe001"])] * len(USERS), "sid_levels": [M] * len(USERS),
        "event_timestamp": [now] * len(USERS)}))

    return tiny_glide_export(folder, M, K, QUANTIZER, seed=2)


def _start_serve(settings, export: Path, metrics_port: int) -> subprocess.Popen:
    log = open(settings.data_dir / "glide-serve.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "glide_app.cli", "serve", "--model", str(export), "--beams", str(K),
                             "--metrics-port", str(metrics_port)],
                            cwd=REPO, env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def session_lag(port: int) -> float | None:
    """The worker's session-start consumer lag summed over its partitions (None: no answer, or no
    partition fetched from yet)."""
    from prometheus_client.parser import text_string_to_metric_families

    try:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=2) as r:
            text = r.read().decode()
    except OSError:  # down between a SIGKILL and the restart
        return None
    lags = [s.value for f in text_string_to_metric_families(text) for s in f.samples
            if s.name == "glide_worker_consumer_lag" and s.labels["topic"] == S.SESSION_TOPIC]
    return sum(lags) if lags else None


class LagProbe:
    """The largest session-start lag the worker's /metrics reported, scraped every 0.2 s."""

    def __init__(self, port: int):
        self.peak, self._stop = 0.0, threading.Event()

        def scrape() -> None:
            while not self._stop.wait(0.2):
                self.peak = max(self.peak, session_lag(port) or 0.0)

        threading.Thread(target=scrape, daemon=True).start()

    def stop(self) -> float:
        self._stop.set()
        return self.peak


class Served:
    """The session event ids that reached `glide-candidates`."""

    def __init__(self, bootstrap: str):
        self.consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False)
        tps = [TopicPartition(CANDIDATES_TOPIC, p) for p in sorted(self.consumer.partitions_for_topic(CANDIDATES_TOPIC))]
        self.consumer.assign(tps)
        for tp in tps:
            self.consumer.seek(tp, 0)
        self.ids: Counter = Counter()

    def poll(self) -> Counter:
        for records in self.consumer.poll(timeout_ms=200).values():
            self.ids.update(orjson.loads(r.value)["session_event_id"] for r in records)
        return self.ids


class PeakRss:
    """The largest resident set of the supervised process, sampled every 0.2 s."""

    def __init__(self, supervisor: Supervisor):
        self.peak, self._stop = 0, threading.Event()

        def sample() -> None:
            while not self._stop.wait(0.2):
                try:
                    self.peak = max(self.peak, psutil.Process(supervisor.proc.pid).memory_info().rss)
                except psutil.Error:
                    pass

        threading.Thread(target=sample, daemon=True).start()

    def stop(self) -> int:
        self._stop.set()
        return self.peak


def test_glide_worker_under_hostile_input_a_flood_outages_and_kills(fault_stack, tmp_path):
    settings, bootstrap = fault_stack.settings, fault_stack.settings.bootstrap_servers()
    export = _glide_catalog(settings, tmp_path)
    row = FaultRow("GLIDE worker")
    ROWS.append(row)
    served = Served(bootstrap)
    port = free_port()
    worker = Supervisor(lambda: _start_serve(settings, export, port), row)
    now = S.now_ms()
    flood = [Sent("flood", u.encode(), orjson.dumps(e), SERVED, e) for i in range(FLOOD)
             for u in [USERS[i % len(USERS)]]
             for e in [{"event_id": f"flood-{i}", "user_id": u, "ts": now, "surface": "home", "context": {}}]]
    try:
        probe = flood.pop()
        sent = send_all(bootstrap, S.SESSION_TOPIC, [probe])
        worker.wait(lambda: probe.event["event_id"] in served.poll(), 180, "the first candidates")
        baseline = psutil.Process(worker.proc.pid).memory_info().rss
        rss, lag = PeakRss(worker), LagProbe(port)

        hostile = hostile_sessions({"user_id": USERS[0], "surface": "home", "context": {}}, now,
                                   unknown_user="fu-nobody", seed=7)
        third = FLOOD // 3
        sent |= send_all(bootstrap, S.SESSION_TOPIC, hostile + flood[:third])
        worker.hold(1)
        # Sessions that arrive while Redis is down: their feature reads fail until it is back.
        fault_stack.redis.kill()
        down_at = time.monotonic()
        sent |= send_all(bootstrap, S.SESSION_TOPIC, flood[third:2 * third])
        # Down until the worker has noticed (a loaded machine may reach these sessions late), at least
        # OUTAGE_S, and well inside its 60 s retry deadline, so nothing may be dead-lettered for it.
        log = settings.data_dir / "glide-serve.log"
        worker.wait(lambda: "retrying in" in log.read_text(errors="replace"), 40, "the worker to notice Redis down")
        worker.hold(max(0.0, OUTAGE_S - (time.monotonic() - down_at)))
        fault_stack.redis.start()
        row.faults.append(f"Redis down {time.monotonic() - down_at:.0f} s")
        fault_stack.proxy.outage(OUTAGE_S)
        row.faults.append(f"broker cut off {OUTAGE_S} s")
        worker.hold(1)
        worker.kill()
        sent |= send_all(bootstrap, S.SESSION_TOPIC, flood[2 * third:])
        want = {r.event["event_id"] for r in sent.values() if r.expect in (SERVED, COLD_START)}
        worker.wait(lambda: want <= set(served.poll()), 240, "every session to be served")
        worker.hold(2)  # anything served twice or late shows up now
        served.poll()
        peak = rss.stop()
        row.faults.append(f"flood of {FLOOD}: RSS peak +{(peak - baseline) / 2**20:.0f} MiB")
        worker.wait(lambda: session_lag(port) == 0, 30, "the session-start lag to be reported as 0")
        lag_peak = lag.stop()
        row.faults.append(f"lag peak {lag_peak:.0f}")
        worker.check()
    finally:
        stop_worker(worker.proc)
    serve_log = (settings.data_dir / "glide-serve.log").read_text()
    row.retried = serve_log.count("retrying in")
    assert f"http://127.0.0.1:{port}/metrics" in serve_log, "glide serve did not log its metrics URL"

    letters = dead_letters(bootstrap, S.SESSION_TOPIC)
    got = {pos: (SERVED if r.event and r.event["event_id"] in served.ids else letters.get(pos, STALE))
           for pos, r in sent.items()}
    wrong = account(row, {pos: r for pos, r in sent.items()}, {p for p, g in got.items() if g == SERVED}, letters,
                    positive_outcome=lambda r: COLD_START if r.expect == COLD_START else SERVED,
                    silent=STALE)
    assert not wrong, "\n".join(wrong)
    stale_ids = {r.event["event_id"] for r in sent.values() if r.expect == STALE and r.event}
    assert not stale_ids & set(served.ids), "a stale session was served"
    row.check()
    assert row.retried > 0, "no outage was noticed"
    assert peak - baseline < 512 * 2**20, f"RSS grew by {(peak - baseline) / 2**20:.0f} MiB under the flood"
    assert lag_peak > 0, "the flood's session-start lag was never reported"

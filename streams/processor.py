"""The listen-events processor: 28-day listening per (user, show) and recent SIDs per user, kept in
per-partition state (streams/state.py) and written to Feast's online store in bulk.

It runs as a service inside the faust worker (streams/app.py) but consumes with a plain aiokafka
consumer: faust's per-event pipeline tops out at ~7k events/s on this machine, and exactness needs
offsets taken from our own state on every assignment, which faust streams do not allow.

One batch, per partition: decode and validate -> apply to the in-memory state -> dead letters
produced and acknowledged -> state + next offset committed (one SQLite transaction) -> rows pushed ->
Kafka offset committed (advisory, for lag). A crash anywhere repeats at most the uncommitted batch.
"""

from __future__ import annotations

import asyncio
import logging
import os
import random
import signal
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass, field

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError, KafkaError

from glide.config import GlideSettings
from glide.event_log import open_event_log
from streams import schemas as S
from streams.config import StreamSettings
from streams.deadletter import DeadLetter, send_all
from streams.metrics import BATCH_SECONDS, EVENTS, FRESHNESS, LAG, PARKED, PUSH_LATENCY, WATERMARK
from streams.online_rows import Row
from streams.reference import CatalogCache, UserDirectory
from streams.state import Parked, PartitionState, StaleState, partition_path

log = logging.getLogger("glide.streams.listens")

PAIR_VIEW = "user_show_listening_28d"
RECENT_VIEW = "user_recent_sids"
TOPIC = S.LISTEN_TOPIC


@dataclass
class BatchReport:
    """What one processed batch did; handed to ``on_batch`` (benchmarks, tests)."""

    applied: int = 0
    duplicates: int = 0
    dead: int = 0
    parked: int = 0
    produced_ms: list[int] = field(default_factory=list)  # Kafka timestamps of applied listens
    pushed_at: float = 0.0  # wall clock when the rows were online


@dataclass
class _Work:
    state: PartitionState
    records: list
    next_offset: int
    report: BatchReport
    dead: list[DeadLetter]
    pair_rows: list[Row] = field(default_factory=list)
    user_rows: list[Row] = field(default_factory=list)
    accepted: list[dict] = field(default_factory=list)  # applied listens, as event-log rows


def log_row(ev: S.ListenEvent, offset: int) -> dict:
    """An applied listen as the offline event log stores it (glide/event_log.py)."""
    return {"event_id": ev.event_id, "user_id": ev.user_id, "episode_id": ev.episode_id,
            "show_id": ev.show_id, "listened_seconds": ev.listened_seconds, "ts": ev.ts,
            "surface": ev.surface, "locale": ev.locale, "offset": offset}


class ListenProcessor:
    def __init__(self, glide: GlideSettings, cfg: StreamSettings, writer, catalog: CatalogCache,
                 users: UserDirectory | None, producer: AIOKafkaProducer | None = None,
                 on_batch: Callable[[BatchReport], None] | None = None):
        self.glide, self.cfg = glide, cfg
        self.writer, self.catalog, self.users = writer, catalog, users
        self.state_dir = cfg.state_path(glide)
        self.states: dict[int, PartitionState] = {}
        self.event_log = open_event_log(glide)
        self.producer = producer
        self._own_producer = producer is None
        self.on_batch = on_batch
        self.consumer: AIOKafkaConsumer | None = None
        self._stopping = asyncio.Event()
        self._chaos = cfg.chaos_points()
        self._inflight: tuple | None = None  # (committed work, push future, start time)
        self._write_lock = threading.Lock()
        self._rng = random.Random()

    # -- lifecycle -----------------------------------------------------------------------------------

    async def start(self) -> None:
        bootstrap = self.glide.bootstrap_servers()
        if self.producer is None:
            # Kafka's 1 MiB max.request.size, explicitly; dead letters are cut to fit (README "Record sizes").
            self.producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks=1,
                                             client_id="glide-streams-dlq",
                                             max_request_size=self.cfg.producer_max_request_bytes)
            await self.producer.start()
        session_ms = int(self.cfg.session_timeout_s * 1000)
        self.consumer = AIOKafkaConsumer(
            bootstrap_servers=bootstrap, group_id=self.cfg.group_id, client_id="glide-streams-listens",
            enable_auto_commit=False, auto_offset_reset="earliest",
            max_poll_records=self.cfg.batch_max_records, session_timeout_ms=session_ms,
            heartbeat_interval_ms=max(500, session_ms // 4), rebalance_timeout_ms=max(session_ms, 30_000),
            # Above the broker's record limit (Kafka: message.max.bytes ~1 MB; consumer defaults
            # max.partition.fetch.bytes 1 MiB, fetch.max.bytes 50 MiB): a record larger than the
            # partition fetch size is never returned (aiokafka raises RecordTooLargeError and skips it).
            max_partition_fetch_bytes=self.cfg.fetch_max_partition_bytes, fetch_max_bytes=self.cfg.fetch_max_bytes,
            # A fetch long-polls at most this long. Measured on tansu: aiokafka's 500 ms default gave a
            # 590 ms median freshness at 5k events/s, 50 ms gave 210 ms.
            fetch_max_wait_ms=self.cfg.batch_timeout_ms,
        )
        await self.consumer.start()
        self.consumer.subscribe([TOPIC], listener=_Rebalance(self))
        log.info("listen processor started", extra={"group": self.cfg.group_id, "state_dir": str(self.state_dir)})

    async def stop(self) -> None:
        self._stopping.set()
        if self._inflight is not None:
            await self.flush()
        if self.consumer is not None:
            await self.consumer.stop()
        if self._own_producer and self.producer is not None:
            await self.producer.stop()
        for st in self.states.values():
            st.close()
        self.states.clear()

    async def run(self) -> None:
        """Consume until stop(); an unexpected error, or an online write still failing after the retry
        deadline (OnlineWriter retries), propagates (crash-only: a restart resumes from the state)."""
        assert self.consumer is not None, "call start() first"
        while not self._stopping.is_set():
            try:
                data = await self.consumer.getmany(timeout_ms=self.cfg.batch_timeout_ms,
                                                   max_records=self.cfg.batch_max_records)
            except (asyncio.CancelledError, IllegalStateError):
                if self._stopping.is_set():
                    return
                raise
            work = {tp.partition: recs for tp, recs in data.items() if tp.partition in self.states}
            for p, st in list(self.states.items()):
                if p not in work and st.parked:
                    work[p] = []  # retry parked listens even when the partition is idle
            if work:
                await self.handle(work)
            else:
                await self.flush()

    # -- assignment ----------------------------------------------------------------------------------

    def _load_partition(self, partition: int) -> PartitionState:
        t0 = time.perf_counter()
        st = PartitionState(partition_path(self.state_dir, TOPIC, partition), partition, self.cfg.recent_cap)
        pairs, users = st.unpushed_rows(self.catalog.codes.get, self.catalog.levels)
        if pairs or users:  # the last commit before a crash may not have reached the online store
            self._push(pairs, users)
        st.confirm_pushed_now()
        log.info("partition loaded", extra={"partition": partition, "next_offset": st.next_offset,
                                            "watermark": st.watermark, "pairs": len(st.pairs),
                                            "repushed": len(pairs) + len(users),
                                            "seconds": round(time.perf_counter() - t0, 3)})
        return st

    # -- one batch -----------------------------------------------------------------------------------

    async def handle(self, work: dict[int, list]) -> None:
        """Process one fetched batch. Its rows are written to the online store in the background
        while the next batch is fetched and processed; the next commit waits for that write."""
        t0 = time.perf_counter()
        items: list[_Work] = []
        for p, records in work.items():
            st = self.states.get(p)
            if st is not None:
                w = self._process(st, records)
                if w is not None:
                    items.append(w)
        if items:
            await send_all(self.producer, [d for w in items for d in w.dead], self.cfg.dead_letter_max_bytes)
        await self.flush()  # the previous batch is online before this one commits
        if not items:
            return
        self._maybe_crash("before_commit")
        committed: list[_Work] = []
        for w in items:
            for _attempt in range(5):
                try:
                    # The log first: a crash before the state commit repeats the batch, and the
                    # log's readers count a repeated (partition, offset) once.
                    await asyncio.to_thread(self._log_accepted, w)
                    self._maybe_crash("after_log")
                    w.state.commit(w.next_offset, pushed=True)
                    committed.append(w)
                    break
                except StaleState as exc:
                    # Another worker owned this partition meanwhile: adopt its state, redo the batch.
                    log.warning("stale partition state, reloading", extra={"partition": w.state.partition, "error": str(exc)})
                    w.state.reload()
                    redo = self._process(w.state, w.records)
                    if redo is None:
                        break
                    await send_all(self.producer, redo.dead, self.cfg.dead_letter_max_bytes)
                    w = redo
        pairs = [r for w in committed for r in w.pair_rows]
        users = [r for w in committed for r in w.user_rows]
        self._maybe_crash("after_commit")
        self._inflight = (committed, asyncio.ensure_future(asyncio.to_thread(self._push, pairs, users)), t0)

    def _log_accepted(self, w: _Work) -> None:
        if w.accepted:
            first = min(r["offset"] for r in w.accepted)
            self.event_log.append("listens", w.accepted, w.state.partition, first, w.next_offset)

    async def flush(self) -> None:
        """Wait for the batch being written online; then record it as pushed and commit its offsets."""
        if self._inflight is None:
            return
        committed, push, t0 = self._inflight
        pushed_at = await push  # failed past the writer's retries: raises, crash-only; the state re-pushes
        self._inflight = None
        self._maybe_crash("after_push")
        offsets = {}
        for w in committed:
            w.state.mark_pushed()
            offsets[TopicPartition(TOPIC, w.state.partition)] = w.next_offset
            self._observe(w, pushed_at)
        if offsets:
            try:
                await self.consumer.commit(offsets)
            except (CommitFailedError, IllegalStateError, KafkaError) as exc:  # advisory only
                log.info("kafka offset commit skipped", extra={"error": repr(exc)})
        BATCH_SECONDS.labels(TOPIC).observe(time.perf_counter() - t0)

    def _maybe_crash(self, point: str) -> None:
        p = self._chaos.get(point)
        if p and self._rng.random() < p:
            log.warning("chaos: killing the worker", extra={"point": point})
            os.kill(os.getpid(), signal.SIGKILL)

    def _observe(self, w: _Work, pushed_at: float) -> None:
        r = w.report
        r.pushed_at = pushed_at
        p = str(w.state.partition)
        EVENTS.labels(TOPIC, "applied").inc(r.applied)
        EVENTS.labels(TOPIC, "duplicate").inc(r.duplicates)
        EVENTS.labels(TOPIC, "dead_letter").inc(r.dead)
        EVENTS.labels(TOPIC, "parked").inc(r.parked)
        WATERMARK.labels(TOPIC, p).set(w.state.watermark)
        PARKED.labels(p).set(len(w.state.parked))
        hw = self.consumer.highwater(TopicPartition(TOPIC, w.state.partition)) if self.consumer else None
        if hw is not None:
            LAG.labels(TOPIC, p).set(max(0, hw - w.next_offset))
        fresh = FRESHNESS.labels(TOPIC)
        for ms in r.produced_ms[:: max(1, len(r.produced_ms) // 200)]:  # a sample keeps this O(200)
            fresh.observe(max(0.0, pushed_at - ms / 1000))
        if self.on_batch is not None:
            self.on_batch(r)

    def _push(self, pairs: list[Row], users: list[Row]) -> float:
        """Write rows online (one writer at a time); returns the wall clock when they are visible."""
        with self._write_lock:
            for view, rows in ((PAIR_VIEW, pairs), (RECENT_VIEW, users)):
                if rows:
                    t0 = time.perf_counter()
                    self.writer.write(view, rows)
                    PUSH_LATENCY.labels(view).observe(time.perf_counter() - t0)
        return time.time()

    def _process(self, st: PartitionState, records: list) -> _Work | None:
        """Apply records (in offset order) to the in-memory state; nothing is persisted here."""
        cfg, cat = self.cfg, self.catalog
        records = [r for r in records if r.offset >= st.next_offset]  # already applied before a crash
        now_ms = S.now_ms()
        max_ts = max(st.watermark, now_ms) + cfg.max_future_ms
        report, dead = BatchReport(), []
        accepted: list[dict] = []

        def reject(r, reason: str, detail: str) -> None:
            dead.append(DeadLetter(TOPIC, st.partition, r.offset, r.key, r.value, reason, detail))
            report.dead += 1

        decoded = []
        for r in records:
            try:
                if r.headers and S.is_watermark(r.headers):
                    decoded.append((r, S.decode_watermark(r.value, max_ts)))
                else:
                    decoded.append((r, S.decode_listen(r.value, max_ts, cfg.max_listen_seconds)))
            except S.InvalidEvent as exc:
                reject(r, exc.reason, exc.detail)
        listens = [ev for _, ev in decoded if isinstance(ev, S.ListenEvent)]
        if self.users is not None:
            self.users.refresh(ev.user_id for ev in listens if ev.user_id not in self.users.known)
        cat.refresh((ev.episode_id for ev in listens if ev.episode_id not in cat.episode_show),
                    (ev.show_id for ev in listens if ev.show_id not in cat.shows))

        lateness = cfg.lateness_ms
        for r, ev in decoded:
            if isinstance(ev, S.Watermark):
                st.advance(ev.ts)
                continue
            if st.is_duplicate(ev.event_id):
                report.duplicates += 1
                continue
            if ev.ts < st.watermark - lateness:
                reject(r, S.LATE, f"ts={ev.ts} is more than {lateness} ms behind the watermark {st.watermark}")
                continue
            st.advance(ev.ts)
            if self.users is not None and ev.user_id not in self.users.known:
                reject(r, S.UNKNOWN_USER, f"user_id {ev.user_id!r} has no user_context profile")
                continue
            show = cat.episode_show.get(ev.episode_id)
            if show is None:
                st.park(Parked(r.offset, ev, r.value, r.key, now_ms, r.timestamp))
                report.parked += 1
                continue
            if self._apply(st, ev, show, lambda reason, detail, r=r: reject(r, reason, detail)):
                report.applied += 1
                report.produced_ms.append(r.timestamp)
                accepted.append(log_row(ev, r.offset))

        if st.parked:
            self._retry_parked(st, report, dead, accepted)
        st.expire()
        next_offset = records[-1].offset + 1 if records else st.next_offset
        if not st.has_changes(next_offset) and not dead:
            return None
        st.stamp_batch()
        w = _Work(st, records, next_offset, report, dead, accepted=accepted)
        w.pair_rows, w.user_rows = st.batch_rows(cat.codes.get, cat.levels)
        return w

    def _apply(self, st: PartitionState, ev: S.ListenEvent, catalog_show: str,
               reject: Callable[[str, str], None]) -> bool:
        """Apply a listen whose episode the catalog knows, unless its show contradicts the catalog."""
        if catalog_show != ev.show_id:
            if ev.show_id not in self.catalog.shows:
                reject(S.UNKNOWN_SHOW, f"show_id {ev.show_id!r} is not in the catalog")
            else:
                reject(S.SHOW_MISMATCH, f"episode {ev.episode_id!r} belongs to {catalog_show!r}, not {ev.show_id!r}")
            return False
        st.apply_listen(ev, self.catalog.sid(ev.episode_id) is not None)
        return True

    def _retry_parked(self, st: PartitionState, report: BatchReport, dead: list,
                      accepted: list[dict]) -> None:
        cat = self.catalog
        cat.refresh(p.event.episode_id for p in st.parked.values())
        now_s = cat.clock.seconds()
        for off in sorted(st.parked):
            p = st.parked[off]
            show = cat.episode_show.get(p.event.episode_id)
            # The wait runs on the catalog stream's clock, from when this process first saw the listen
            # parked: neither a stalled catalog stream nor a worker restart uses it up.
            if show is None and now_s - st.wait_started.setdefault(off, now_s) < self.cfg.catalog_wait_s:
                continue
            st.unpark(off)

            def reject(reason: str, detail: str, p=p) -> None:
                dead.append(DeadLetter(TOPIC, st.partition, p.offset, p.key, p.raw, reason, detail))
                report.dead += 1

            if show is None:
                reject(S.UNKNOWN_EPISODE, f"episode_id {p.event.episode_id!r} is not in the catalog "
                                          f"(waited {self.cfg.catalog_wait_s:g}s for a catalog update)")
            elif self._apply(st, p.event, show, reject):
                report.applied += 1
                report.produced_ms.append(p.produced_ms)
                accepted.append(log_row(p.event, p.offset))


class _Rebalance(ConsumerRebalanceListener):
    def __init__(self, proc: ListenProcessor):
        self.proc = proc

    async def on_partitions_revoked(self, revoked) -> None:
        for tp in revoked:
            # Not closed: a batch in flight may still try to commit it, and must fail the version
            # check cleanly if the new owner got there first.
            self.proc.states.pop(tp.partition, None)
        if revoked:
            log.info("partitions revoked", extra={"partitions": sorted(tp.partition for tp in revoked)})

    async def on_partitions_assigned(self, assigned) -> None:
        for tp in assigned:
            if tp.partition not in self.proc.states:
                self.proc.states[tp.partition] = self.proc._load_partition(tp.partition)
            # Resume from the state's own offset, whatever Kafka's committed offset says.
            self.proc.consumer.seek(tp, self.proc.states[tp.partition].next_offset)
        log.info("partitions assigned", extra={"partitions": sorted(tp.partition for tp in assigned)})

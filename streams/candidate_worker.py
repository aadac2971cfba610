"""The GLIDE worker: consumes `session-start`, generates candidates with a :class:`CandidateService`
and writes them to Feast (`glide_candidates`, a row per user and mode) and to the `glide-candidates`
topic (an event per session and mode).

Refresh policy (streams/candidates.py): a session's set for a mode is regenerated only when the cached
one is stale (older than `GLIDE_CANDIDATES_REFRESH_TTL_S`, another model's, or the user listened
since); a session whose every set is fresh is answered on `glide-candidates` with the cached sets
(`"cached": true`), nothing is generated or written to Feast, and it counts as `skipped_fresh`.

At-least-once: offsets are committed only after candidates (and dead letters) are written, so a
crash re-reads a batch: sets it already wrote are answered from the cache, the others regenerated
(overwriting the same Feast rows). Inference runs in a worker thread so the consumer keeps
heart-beating during long beam searches. Bad records never stop the worker:
they go to `dead-letter` with the reason (`malformed_json`, `schema`, `too_large`, ..., or
`inference_error`), cut to `GLIDE_STREAMS_DEAD_LETTER_MAX_BYTES` (streams/deadletter.py) so that even a
record far over the producer's request limit is dead-lettered and its batch committed. A session
stamped more than `GLIDE_STREAMS_SESSION_MAX_FUTURE_S` (300 s) ahead of this worker's wall clock is
dead-lettered as `future`.

Outages (streams/retry.py): the online-store reads, the Feast push of the candidates and their send to
`glide-candidates` (each delivery confirmed) are retried with backoff on transient errors (Redis or the
broker down, busy, slow) for up to `GLIDE_STREAMS_RETRY_DEADLINE_S` (60 s); the batch waits meanwhile,
its offsets uncommitted, while the consumer keeps heart-beating. Only after the deadline is a batch
dead-lettered, as `retry_exhausted` (re-drive it once the store is back); a non-transient error of
generation is `inference_error` at once. Dead letters are sent with the same retries; if even they
cannot be delivered the worker stops with the error, uncommitted, and a restart re-reads the batch.

Replicas and model lifecycle: replicas share session-start partitions through the consumer group and
each reads every catalog update on a feed of its own (streams/catalog_feed.py, nothing committed);
with a ``lifecycle`` a newly promoted model is swapped in, and popularity refreshed, between two batches
(streams/service_lifecycle.py).

`glide_worker_sessions_total{outcome}`: `served` (candidates generated for a user with features
online), `cold_start` (generated, but the user had no features online at all), `skipped_fresh` (every
cached set still fresh), `stale`, `dead_letter`. The other metrics (phase times, model info, backend
errors, session-start consumer lag) and their /metrics endpoint: streams/worker_metrics.py.
"""

from __future__ import annotations

import asyncio
import logging
import time

import orjson
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.errors import CommitFailedError, IllegalStateError

from glide.config import GlideSettings
from streams import deadletter
from streams.candidates import CandidateService, CandidateSet
from streams.catalog_feed import CatalogFeed
from streams.config import StreamSettings, load_stream_settings, load_worker_settings
from streams.retry import Retry, RetryExhausted
from streams.schemas import (
    RETRY_EXHAUSTED, SESSION_TOPIC, InvalidEvent, decode_catalog_update, decode_session_start,
    now_ms,
)
from streams.service_lifecycle import ServiceLifecycle
from streams.worker_metrics import LATENCY, NEW_EPISODES, SESSIONS, phase, report_lag, set_model

log = logging.getLogger("glide.worker")

CANDIDATES_TOPIC = "glide-candidates"
INFERENCE_ERROR = "inference_error"
COLD_START_ERROR = "cold_start_error"
CATALOG_BATCH = 256  # catalog updates per poll: a replay at start catches up quickly


async def run_candidate_worker(
    settings: GlideSettings,
    service: CandidateService,
    stop: asyncio.Event,
    *,
    group_id: str = "glide-worker",
    max_batch: int = 16,
    linger_ms: int = 50,
    session_timeout_ms: int = 10_000,
    max_session_age_s: float | None = 600.0,
    streams: StreamSettings | None = None,
    lifecycle: ServiceLifecycle | None = None,
    catalog_replay_s: float | None = None,
) -> None:
    """Serve until ``stop`` is set. Sessions older than ``max_session_age_s`` (wall clock) are
    skipped and counted as `stale`: their listener has moved on, and a backlog must not delay
    fresh sessions (None serves every session, e.g. for backfills). ``streams``: the record-size and
    clock-skew settings (default: GLIDE_STREAMS_*). ``lifecycle``: swaps in a newly promoted model and
    refreshes popularity between batches (streams/service_lifecycle.py; None: neither).
    ``catalog_replay_s``: how far back this replica's catalog feed starts (default
    GLIDE_WORKER_CATALOG_REPLAY_S, streams/catalog_feed.py)."""
    cfg = streams or load_stream_settings()
    bootstrap = settings.bootstrap_servers()
    # Session starts in the shared group (replicas split the partitions); catalog-updates on a feed of
    # this replica's own, every partition (streams/catalog_feed.py): new episodes become recommendable
    # on every replica without a refit or restart.
    replay_s = load_worker_settings().catalog_replay_s if catalog_replay_s is None else catalog_replay_s
    feed = CatalogFeed(bootstrap, cfg, replay_s)
    # Fetch and request limits explicitly, as in the stream worker (streams/README.md, "Record sizes"):
    # the partition fetch size is above the broker's record limit (Kafka: message.max.bytes ~1 MB;
    # consumer defaults max.partition.fetch.bytes 1 MiB, fetch.max.bytes 50 MiB), so any accepted
    # record is fetched; produce requests stay at Kafka's 1 MiB max.request.size and dead letters are
    # cut to fit.
    consumer = AIOKafkaConsumer(
        SESSION_TOPIC, bootstrap_servers=bootstrap, group_id=group_id, enable_auto_commit=False,
        auto_offset_reset="earliest", session_timeout_ms=session_timeout_ms,
        heartbeat_interval_ms=max(1000, session_timeout_ms // 3), max_poll_interval_ms=300_000,
        max_partition_fetch_bytes=cfg.fetch_max_partition_bytes, fetch_max_bytes=cfg.fetch_max_bytes,
        # A session start must not wait out a long poll: with the default 500 ms fetch wait a
        # produced session sat ~250 ms in the broker before the worker saw it (bench e2e: tiny model
        # 253 ms -> 39 ms end to end); an idle worker now fetches every linger_ms instead.
        fetch_max_wait_ms=linger_ms,
    )
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5, acks="all", client_id="glide-worker",
                                max_request_size=cfg.producer_max_request_bytes)
    retry = Retry.from_settings(cfg, "glide")
    if getattr(service, "retry", None) is None:  # the service's online reads and Feast push
        service.retry = retry
    await producer.start()
    await feed.start()
    await consumer.start()
    try:
        while not stop.is_set():
            if lifecycle is not None:  # between batches: a batch is decoded and committed with one model
                service = await lifecycle.between_batches(service)
            batches = await consumer.getmany(timeout_ms=linger_ms, max_records=max_batch)
            sessions = [r for part in batches.values() for r in part]
            catalog = await feed.poll(CATALOG_BATCH)
            if catalog:  # first, so a session in the same batch can already get the new episodes
                added = await _add_episodes(service, producer, catalog, cfg, retry)
                if lifecycle is not None:
                    lifecycle.note_episodes(added)
            if sessions:
                await _handle(service, producer, sessions, max_session_age_s, cfg, retry)
                # Only now: every record of the batch is served or dead-lettered (delivery confirmed).
                await _commit(consumer, {tp: part[-1].offset + 1 for tp, part in batches.items() if part})
            await report_lag(consumer)  # every poll, so an idle worker reports 0
            set_model(service)  # cheap when unchanged; a model swapped at runtime shows up
    finally:
        if lifecycle is not None:
            await lifecycle.close()
        await consumer.stop()
        await feed.stop()
        await producer.stop()


async def _commit(consumer: AIOKafkaConsumer, offsets: dict) -> None:
    """Commit a served batch. A replica joining or leaving may have moved these partitions meanwhile:
    the commit then fails and their new owner re-reads the batch (at-least-once: the sets this worker
    wrote answer from the cache while fresh); that is no reason to stop serving."""
    try:
        await consumer.commit(offsets)
    except (CommitFailedError, IllegalStateError) as exc:
        log.warning("batch not committed (partitions moved to another replica): %s", exc)


async def _handle(service: CandidateService, producer: AIOKafkaProducer, records,
                  max_session_age_s: float | None = None, cfg: StreamSettings | None = None,
                  retry: Retry | None = None) -> None:
    cfg = cfg or load_stream_settings()
    retry = retry or Retry.from_settings(cfg, "glide")
    sessions, origin, letters = [], [], []
    oldest_ms = None if max_session_age_s is None else (time.time() - max_session_age_s) * 1000
    newest_ms = now_ms() + cfg.session_max_future_ms  # later: `future` (decode_session_start)
    for r in records:
        try:
            session = decode_session_start(r.value, newest_ms)
        except InvalidEvent as exc:
            letters.append(_letter(r, exc.reason, exc.detail))
            continue
        if oldest_ms is not None and session.ts < oldest_ms:
            SESSIONS.labels("stale").inc()
            continue
        sessions.append(session)
        origin.append(r)
    if sessions:
        started = time.perf_counter()
        try:
            results = await asyncio.to_thread(_recommend_and_publish, service, sessions)
            elapsed = time.perf_counter() - started
            with phase("send"):
                await retry.acall("candidates_send", _sender(producer, [c for sets in results for c in sets]))
        except RetryExhausted as exc:  # the store or broker stayed down: re-drive these later
            log.error("%d sessions dead-lettered: %s", len(sessions), exc)
            letters.extend(_letter(r, RETRY_EXHAUSTED, str(exc)) for r in origin)
            results = []
        except Exception as exc:  # noqa: BLE001 - one bad batch must not stop the worker
            log.exception("candidate generation failed for %d sessions", len(sessions))
            letters.extend(_letter(r, INFERENCE_ERROR, f"{type(exc).__name__}: {exc}") for r in origin)
            results = []
        for answer in results:
            LATENCY.observe(elapsed / len(results))
            SESSIONS.labels(session_outcome(answer)).inc()
    await retry.acall("dead_letter_send", deadletter.send_all, producer, letters, cfg.dead_letter_max_bytes)
    SESSIONS.labels("dead_letter").inc(len(letters))


def _sender(producer: AIOKafkaProducer, results):
    """A coroutine function that sends the candidate events not yet delivered and waits for delivery:
    a retry re-sends only the failed ones."""
    pending = list(results)

    async def send() -> None:
        futures = [await producer.send(CANDIDATES_TOPIC, key=c.user_id.encode(), value=orjson.dumps(c.as_event()))
                   for c in pending]
        outcomes = await asyncio.gather(*futures, return_exceptions=True)
        pending[:] = [c for c, o in zip(pending, outcomes) if isinstance(o, BaseException)]
        errors = [o for o in outcomes if isinstance(o, BaseException)]
        if errors:
            raise errors[0]

    return send


async def _add_episodes(service: CandidateService, producer: AIOKafkaProducer, records,
                        cfg: StreamSettings | None = None, retry: Retry | None = None) -> list[dict]:
    """Make the updates' episodes recommendable; returns them all as decoded (known ones too: a model
    loaded later needs them, streams/service_lifecycle.py)."""
    cfg = cfg or load_stream_settings()
    retry = retry or Retry.from_settings(cfg, "glide")
    episodes, origin, letters = [], [], []
    for r in records:
        try:
            update = decode_catalog_update(r.value)
        except InvalidEvent:
            # The stream worker's catalog agent dead-letters invalid updates; count, don't repeat.
            NEW_EPISODES.labels("invalid").inc()
            continue
        e = update.episode
        episodes.append({"episode_id": e.episode_id, "show_id": e.show_id, "title": e.title,
                         "description": e.description, "locale": e.locale, "playable": e.playable,
                         "popularity": e.popularity, "published_at": e.published_at})
        origin.append(r)
    if episodes and service.sid_index is not None:
        try:
            new = await asyncio.to_thread(service.add_episodes, episodes)
            NEW_EPISODES.labels("added").inc(len(new))  # not the replayed ones it already had
        except Exception as exc:  # noqa: BLE001 - a bad episode must not stop serving
            log.exception("cold-start assignment failed for %d episodes", len(episodes))
            letters.extend(_letter(r, COLD_START_ERROR, f"{type(exc).__name__}: {exc}") for r in origin)
    await retry.acall("dead_letter_send", deadletter.send_all, producer, letters, cfg.dead_letter_max_bytes)
    return episodes


def session_outcome(sets: list[CandidateSet]) -> str:
    """How a session was answered: `skipped_fresh` (only cached sets), `cold_start` or `served`."""
    if all(c.cached for c in sets):
        return "skipped_fresh"
    return "cold_start" if any(c.cold_start for c in sets if not c.cached) else "served"


def _recommend_and_publish(service: CandidateService, sessions) -> list[list[CandidateSet]]:
    """Per session, its sets (refresh policy); the regenerated ones are written to Feast first."""
    results = service.refresh(sessions)
    service.publish([c for sets in results for c in sets])
    return results


def _letter(record, reason: str, detail: str) -> deadletter.DeadLetter:
    return deadletter.DeadLetter(record.topic, record.partition, record.offset, record.key, record.value,
                                 reason, detail)

"""The real pipeline under a simulated A/B: the embedded stack, the world's history replayed through
the streams, a GLIDE model trained from what they recorded, the GLIDE worker answering session starts,
and each slot's listens sent back through Kafka.

`prepare` builds it all on a fresh data dir: the world covers history + experiment days, but only the
history (listens and catalog before the experiment start) goes into the catalog DB and the streams;
the experiment's episodes are published through the catalog stream as their time comes.
"""

from __future__ import annotations

import asyncio
import subprocess
import threading
import time
import uuid
from dataclasses import dataclass, replace

import orjson
import pandas as pd
from rich.console import Console

from glide.config import GlideSettings
from glide_app.jobs.ab.config import ABConfig


@dataclass
class ABSetup:
    world: object  # glide.world.generator.World, experiment days included
    start: pd.Timestamp  # first experiment instant
    record: dict  # the train job's run record (export, cf_model, ...)
    stream_worker: subprocess.Popen
    partitions: int


def _history_world(world, start: pd.Timestamp):
    """The world as it stood at ``start``: listens, sessions and published episodes before it."""
    return replace(world, listens=world.listens[world.listens["ts"] < start],
                   sessions=world.sessions[world.sessions["ts"] < start],
                   episodes=world.episodes[world.episodes["published_at"] < start])


def prepare(settings: GlideSettings, cfg: ABConfig, console: Console) -> ABSetup:
    """Stack up on a fresh data dir, world, catalog + SIDs, history through the streams, model trained on it."""
    from glide.world.generator import WorldConfig, generate_world
    from glide_app.jobs.data_dir import reset_data_dir
    from glide_app.jobs.catalog_setup import load_catalog
    from glide_app.jobs.stream_worker import start_stream_worker, wait_ready
    from glide_app.jobs.train import run_train_job
    from infra import stack
    from streams.progress import wait_processed
    from streams.replay import partitions_of, replay_world

    reset_data_dir(settings)  # an earlier run's event log would count as this run's listens
    stack.up(settings)
    world = generate_world(WorldConfig(users=cfg.users, days=cfg.history_days + cfg.days, seed=cfg.seed,
                                       shows=cfg.shows, episodes_per_show=cfg.episodes_per_show))
    start = world.start + pd.Timedelta(days=cfg.history_days)
    history = _history_world(world, start)
    console.print(f"world: {len(world.users)} listeners, {len(world.shows)} shows; history {cfg.history_days} days "
                  f"({len(history.listens)} listens, {len(history.episodes)} episodes), then {cfg.days} experiment days")
    job = load_catalog(settings, world.shows, history.episodes, world.users, history.listens["ts"].min(),
                       cfg.train_config, console).job
    worker = start_stream_worker(settings)
    try:
        wait_ready(settings, worker, console)
        with console.status("replaying the history through Kafka into the stream worker..."):
            replayed = replay_world(history, settings.bootstrap_servers(), rate=4000, sessions=False)
            wait_processed(settings, replayed.end_offsets, timeout=600, procs=[worker])
        record = run_train_job(settings, job, console)
    except BaseException:
        worker.terminate()
        raise
    return ABSetup(world, start, record, worker, partitions_of(settings.bootstrap_servers()))


def publish_episodes(settings: GlideSettings, setup: ABSetup, episodes: pd.DataFrame) -> None:
    """Episodes that come out during a slot, on the catalog stream (the stream worker files them in the
    catalog, the GLIDE worker's catalog feed makes them recommendable)."""
    from streams.replay import catalog_records, produce

    if len(episodes):
        asyncio.run(produce(catalog_records(episodes, setup.world.shows), settings.bootstrap_servers()))


def send_listens(settings: GlideSettings, setup: ABSetup, listens: pd.DataFrame, end_ms: int,
                 timeout_s: float = 600) -> None:
    """A slot's listens (event-time order), then a watermark at the slot's end, through Kafka; returns
    once the stream worker has processed every one of them."""
    from streams.progress import wait_processed
    from streams.replay import iter_listen_records, produce, watermark_records

    records = list(iter_listen_records(listens.sort_values("ts", kind="stable"))) if len(listens) else []
    records += watermark_records(end_ms, setup.partitions)
    offsets: dict = {}
    asyncio.run(produce(records, settings.bootstrap_servers(), end_offsets=offsets))
    wait_processed(settings, offsets, timeout=timeout_s, procs=[setup.stream_worker])


class GlideServer:
    """The GLIDE worker (streams/candidate_worker.py) running in a thread of this process for the
    whole experiment; `serve` sends session starts through Kafka and returns when each is answered."""

    def __init__(self, settings: GlideSettings, service, group_id: str = "glide-ab"):
        self.settings, self.service, self.group_id = settings, service, group_id
        self._loop = asyncio.new_event_loop()
        self._stop: asyncio.Event | None = None
        self._error: BaseException | None = None
        self._thread = threading.Thread(target=self._run, daemon=True, name="glide-ab-worker")

    def _run(self) -> None:
        from streams.candidate_worker import run_candidate_worker

        async def main() -> None:
            self._stop = asyncio.Event()
            await run_candidate_worker(self.settings, self.service, self._stop, group_id=self.group_id,
                                       max_session_age_s=None)  # sessions carry simulated time

        try:
            self._loop.run_until_complete(main())
        except BaseException as exc:  # noqa: BLE001 - surfaced by serve() and close()
            self._error = exc

    def __enter__(self) -> GlideServer:
        from kafka import KafkaConsumer, KafkaProducer, TopicPartition

        from streams.candidate_worker import CANDIDATES_TOPIC

        self._producer = KafkaProducer(bootstrap_servers=self.settings.bootstrap_servers())
        self._answers = KafkaConsumer(bootstrap_servers=self.settings.bootstrap_servers(), enable_auto_commit=False)
        parts = [TopicPartition(CANDIDATES_TOPIC, p) for p in range(self.settings.topic_partitions)]
        self._answers.assign(parts)
        self._answers.seek_to_beginning(*parts)  # tansu's seek_to_end is unreliable (notes/stack.md)
        self._thread.start()
        return self

    def serve(self, sessions: pd.DataFrame, timeout_s: float = 600) -> int:
        """Session starts (user_id, ts, surface) -> wait until the worker answered each; the count."""
        from streams.schemas import SESSION_TOPIC

        wanted = set()
        for user, ts, surface in zip(sessions["user_id"], sessions["ts"], sessions["surface"]):
            event_id = f"ab-{uuid.uuid4().hex}"
            wanted.add(event_id)
            self._producer.send(SESSION_TOPIC, key=str(user).encode(), value=orjson.dumps(
                {"event_id": event_id, "user_id": user, "ts": int(pd.Timestamp(ts).value // 1_000_000),
                 "surface": surface, "context": {}}))
        self._producer.flush()
        deadline = time.monotonic() + timeout_s
        pending = set(wanted)
        while pending:
            if self._error is not None or not self._thread.is_alive():
                raise RuntimeError(f"the GLIDE worker stopped: {self._error!r}")
            if time.monotonic() > deadline:
                raise TimeoutError(f"the GLIDE worker answered {len(wanted) - len(pending)} of {len(wanted)} "
                                   f"session starts in {timeout_s:.0f} s")
            for records in self._answers.poll(500).values():
                for record in records:
                    pending.discard(orjson.loads(record.value).get("session_event_id"))
        return len(wanted)

    def __exit__(self, *exc) -> None:
        if self._stop is not None:
            self._loop.call_soon_threadsafe(self._stop.set)
        self._thread.join(timeout=60)
        self._producer.close()
        self._answers.close()

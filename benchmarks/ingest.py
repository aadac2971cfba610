"""`glide bench ingest`: listen events through the broker into the online store.

Three measurements in one run, on a fresh embedded broker and a fresh Feast project:

The world's first 80% of listens (by time) are produced to listen-events up front:

1. ``raw_consume_per_s``: a plain aiokafka consumer reading them (the ceiling the broker and client
   allow).
2. ``events_per_s``: the listen processor (the exact code `glide streams worker` runs, here
   in-process so that worker start-up and group join are not timed) consuming the same topic from
   offset 0 until every listen is applied, committed in its partition state and written to the
   online store.
3. ``freshness_p50_ms`` / ``freshness_p99_ms``: with the processor caught up, the world's remaining
   20% of listens offered at 5,000 events/s; per event, Kafka record timestamp (set at produce) ->
   its rows written online.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import tempfile
import time
import uuid
from contextlib import contextmanager
from dataclasses import asdict, dataclass
from pathlib import Path

import click
import numpy as np

FRESHNESS_RATE = 5_000
HELD_OUT = 0.2  # the last 20% of the world's listens (by time) measure freshness


@dataclass
class IngestResult:
    store: str
    users: int
    listens: int
    produce_per_s: float
    raw_consume_per_s: float
    events_per_s: float
    events_per_cpu_s: float  # same phase, per second of this process's CPU (the box is shared)
    freshness_events: int
    freshness_p50_ms: float
    freshness_p99_ms: float
    load_avg_1m: float


def _world(users: int, days: int):
    from glide.world.generator import WorldConfig, generate_world

    return generate_world(WorldConfig(users=users, days=days, shows=max(50, users // 10), episodes_per_show=20, seed=7))


def _bootstrap_catalog(settings, world, levels: int = 4, codebook: int = 256) -> None:
    """The catalog and SIDs as the offline jobs leave them (the bench measures listens, not catalog)."""
    from glide.catalog import CatalogDB

    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows(world.shows)
    db.upsert_episodes(world.episodes)
    db.register_quantizer("bench-q", "random", "/nonexistent", levels, codebook)
    codes = np.random.default_rng(0).integers(0, codebook, size=(len(world.episodes), levels))
    db.save_sid_assignments("bench-q", {e: tuple(map(int, c)) for e, c in zip(world.episodes["episode_id"], codes)})
    db.close()


async def _raw_consume(bootstrap: str, end_offsets: dict) -> float:
    from aiokafka import AIOKafkaConsumer, TopicPartition

    from streams.schemas import LISTEN_TOPIC

    want = {TopicPartition(t, p): o for (t, p), o in end_offsets.items() if t == LISTEN_TOPIC}
    consumer = AIOKafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False,
                                max_partition_fetch_bytes=4 * 1024 * 1024, fetch_max_bytes=32 * 1024 * 1024)
    await consumer.start()
    try:
        consumer.assign(list(want))
        for tp in want:
            consumer.seek(tp, 0)
        n, t0, pos = 0, time.perf_counter(), {tp: 0 for tp in want}
        while any(pos[tp] < o for tp, o in want.items()):
            batch = await consumer.getmany(timeout_ms=200, max_records=10_000)
            for tp, recs in batch.items():
                n += len(recs)
                pos[tp] = recs[-1].offset + 1
        return n / (time.perf_counter() - t0)
    finally:
        await consumer.stop()


async def _measure(settings, state_dir: Path, world, progress) -> dict:
    from aiokafka import AIOKafkaProducer

    from glide.catalog import CatalogDB
    from streams.config import StreamSettings
    from streams.online_writer import OnlineWriter
    from streams.processor import ListenProcessor
    from streams.reference import CatalogCache, UserDirectory
    from streams.replay import iter_listen_records, produce
    from streams.schemas import LISTEN_TOPIC, ms_series

    bootstrap = settings.bootstrap_servers()
    ordered = world.listens.sort_values("ts", kind="stable").reset_index(drop=True)
    cut = int(len(ordered) * (1 - HELD_OUT))
    listens, later = ordered.iloc[:cut], ordered.iloc[cut:]
    records = list(iter_listen_records(listens))
    end_offsets: dict = {}
    progress("producing listens")
    produce_s = await produce(records, bootstrap, end_offsets=end_offsets)
    progress("plain aiokafka consume")
    raw = await _raw_consume(bootstrap, end_offsets)

    cfg = StreamSettings(group_id=f"bench-{uuid.uuid4().hex[:8]}", state_dir=state_dir, metrics_port=-1,
                         session_timeout_s=6, live_sids=False)
    reports = []
    db = CatalogDB.from_settings(settings)
    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=5)
    await producer.start()
    proc = ListenProcessor(settings, cfg, OnlineWriter(settings), CatalogCache(db), UserDirectory(OnlineWriter(settings)),
                           producer=producer, on_batch=reports.append)
    await proc.start()
    task = asyncio.create_task(proc.run())
    try:
        progress("waiting for the partition assignment")
        while len(proc.states) < settings.topic_partitions:
            if task.done():
                task.result()
            await asyncio.sleep(0.01)
        progress("processing")
        t0, cpu0 = time.perf_counter(), time.process_time()
        deadline = time.monotonic() + 600
        # Done when every listen's rows are online (reports arrive after each batch's push).
        while (applied := sum(r.applied for r in reports)) < len(records):
            if task.done():
                task.result()
            if time.monotonic() > deadline:
                raise click.ClickException(f"only {applied} of {len(records)} listens applied after 600 s")
            await asyncio.sleep(0.005)
        seconds, cpu_seconds = time.perf_counter() - t0, time.process_time() - cpu0

        # Freshness: the world's held-out last listens, offered at FRESHNESS_RATE while the
        # processor is caught up.
        progress(f"freshness at {FRESHNESS_RATE:,} events/s")
        reports.clear()
        n_fresh = len(later)
        await produce(list(iter_listen_records(later)), bootstrap, rate=FRESHNESS_RATE)
        deadline = time.monotonic() + 30
        while sum(r.applied for r in reports) < n_fresh and time.monotonic() < deadline:
            await asyncio.sleep(0.01)
        lat = np.array([r.pushed_at * 1000 - ms for r in reports for ms in r.produced_ms], dtype=float)
        if len(lat) < n_fresh:
            raise click.ClickException(f"only {len(lat)} of {n_fresh} fresh listens were applied within 30 s")
    finally:
        await proc.stop()
        task.cancel()
        await producer.stop()
        db.close()
    return {"produce_per_s": len(records) / produce_s, "raw_consume_per_s": raw, "events_per_s": len(records) / seconds,
            "events_per_cpu_s": len(records) / cpu_seconds,
            "freshness_events": len(lat), "freshness_p50_ms": float(np.percentile(lat, 50)),
            "freshness_p99_ms": float(np.percentile(lat, 99))}


@contextmanager
def _exported_feast_project(project: str):
    """``GLIDE_FEAST_PROJECT=project`` for the block, the previous value restored after: the stores
    opened inside (stack, profiles, online writer) take the project from the environment
    (streams/feast_config.py), not yet from ``GlideSettings.feast_project``, which the benchmark's
    settings carry too."""
    saved = os.environ.get("GLIDE_FEAST_PROJECT")
    os.environ["GLIDE_FEAST_PROJECT"] = project
    try:
        yield
    finally:
        if saved is None:
            os.environ.pop("GLIDE_FEAST_PROJECT", None)
        else:
            os.environ["GLIDE_FEAST_PROJECT"] = saved


def run_ingest(store: str = "sqlite", quick: bool = False, progress=lambda msg: None) -> IngestResult:
    """One full benchmark run on a throwaway stack; see the module docstring."""
    from glide.config import load_settings

    users = 1_500 if quick else 4_000
    tmp = Path(tempfile.mkdtemp(prefix="glide-bench-ingest-"))
    project = f"bench{uuid.uuid4().hex[:8]}"
    base = load_settings(data_dir=str(tmp / "embedded"), profile="embedded", feast_project=project)
    try:
        with _exported_feast_project(base.feast_project):
            return _run_on_fresh_stack(base, store, users, tmp, progress)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


def _run_on_fresh_stack(base, store: str, users: int, tmp: Path, progress) -> IngestResult:
    from glide.config import load_settings
    from infra import stack
    from streams import logs
    from streams.replay import push_profiles

    logs.configure(json=True, level="WARNING")
    schema = f"glide_bench_{uuid.uuid4().hex[:8]}"
    settings = base
    try:
        progress("starting the broker and applying Feast")
        status = stack.up(base)
        if store == "redis":
            settings = load_settings(data_dir=str(tmp / "cluster"), profile="cluster", feast_project=base.feast_project,
                                     kafka_bootstrap=status.bootstrap, postgres_schema=schema)
            stack.up(settings)
        progress(f"generating a world of {users:,} users")
        world = _world(users, days=30)
        _bootstrap_catalog(settings, world)
        push_profiles(settings, world.users, world.start)
        out = asyncio.run(_measure(settings, tmp / "state", world, progress))
        return IngestResult(store=store, users=users, listens=len(world.listens), load_avg_1m=os.getloadavg()[0], **out)
    finally:
        stack.down(base)
        if store == "redis":
            stack.drop_cluster_leftovers(settings, base.feast_project, schema)


@click.command()
@click.option("--quick", is_flag=True, help="A smaller world (~1.5k users); finishes in under 3 minutes.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as JSON on the last line of stdout.")
@click.option("--store", type=click.Choice(["sqlite", "redis"]), default="sqlite", show_default=True,
              help="Online store: SQLite (embedded) or Redis (scale-out; needs Redis and PostgreSQL, "
                   "GLIDE_REDIS_URL / GLIDE_POSTGRES_URL).")
def ingest(quick: bool, as_json: bool, store: str) -> None:
    """Listen events through Kafka into the online store: throughput and freshness."""
    import orjson
    from rich.console import Console
    from rich.table import Table

    console = Console(stderr=True)
    with console.status("starting...") as status:
        result = run_ingest(store, quick, progress=lambda msg: status.update(msg))
    table = Table(title=f"glide bench ingest ({store}{', quick' if quick else ''})")
    table.add_column("metric")
    table.add_column("value", justify="right")
    table.add_row("users / listens", f"{result.users:,} / {result.listens:,}")
    table.add_row("produce (aiokafka)", f"{result.produce_per_s:,.0f} events/s")
    table.add_row("raw consume (aiokafka)", f"{result.raw_consume_per_s:,.0f} events/s")
    table.add_row("listen processor, fully processed", f"{result.events_per_s:,.0f} events/s")
    table.add_row("  per CPU-second of the worker", f"{result.events_per_cpu_s:,.0f} events")
    table.add_row(f"freshness p50 @ {FRESHNESS_RATE:,}/s", f"{result.freshness_p50_ms:,.0f} ms")
    table.add_row(f"freshness p99 @ {FRESHNESS_RATE:,}/s", f"{result.freshness_p99_ms:,.0f} ms")
    table.add_row("load average (1 min)", f"{result.load_avg_1m:.1f}")
    Console().print(table)
    if as_json:
        click.echo(orjson.dumps(asdict(result)).decode())

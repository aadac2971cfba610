"""Workers killed with SIGKILL at random points while a world streams in, and two workers sharing
the partitions: the online features still equal the batch oracle exactly, and nothing is
dead-lettered by mistake."""

from __future__ import annotations

import asyncio
import random
import threading
import time
import uuid

import pytest
import redis
import sqlalchemy

from glide.config import load_settings
from glide.world.generator import WorldConfig, generate_world
from infra import stack
from streams import schemas as S
from streams.replay import plan, produce, push_profiles
from tests.streams.helpers import (
    assert_features_match_oracle,
    events_frame,
    processed_offsets,
    read_topic,
    register_sids,
    start_worker,
    stop_worker,
    wait_processed,
)


def _dead_letters(bootstrap: str) -> list:
    return read_topic(bootstrap, S.DEAD_LETTER_TOPIC, timeout_ms=2000)


def _replay_in_background(world, bootstrap: str, rate: float):
    records, stats = plan(world, partitions=4)
    thread = threading.Thread(
        target=lambda: asyncio.run(produce(records, bootstrap, rate=rate, end_offsets=stats.end_offsets)),
        daemon=True)
    thread.start()
    return thread, stats


def _wait_progress(settings, since: dict, proc, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline and proc.poll() is None:
        now = processed_offsets(settings)
        if any(now[p] > since.get(p, 0) for p in now):
            return
        time.sleep(0.1)


def crash_run(data_dir, kills: int, users: int, rate: float, seed: int) -> None:
    settings = load_settings(data_dir=str(data_dir), profile="embedded")
    status = stack.up(settings)
    try:
        world = generate_world(WorldConfig(users=users, days=35, shows=40, episodes_per_show=10, seed=seed))
        sids = register_sids(settings, world.episodes)
        push_profiles(settings, world.users, world.start)
        thread, stats = _replay_in_background(world, status.bootstrap, rate)
        rng = random.Random(seed)
        killed = 0
        proc = start_worker(settings)
        while killed < kills:
            if killed % 2 == 1:
                # Half of the kills at a chosen point of a batch: right after the state commit,
                # before the rows reach the online store (the re-push path) or before the commit.
                stop_worker(proc)
                point = rng.choice(["after_commit", "before_commit", "after_log", "after_push"])
                proc = start_worker(settings, chaos=f"{point}:0.3")
                proc.wait(120)
                assert proc.returncode == -9, f"chaos worker ended with {proc.returncode}"
            else:
                # The other half anywhere: startup, partition load, mid-batch, idle.
                _wait_progress(settings, processed_offsets(settings), proc)
                time.sleep(rng.uniform(0, 1.5))
                stop_worker(proc, kill=True)
            killed += 1
            proc = start_worker(settings)
        thread.join(300)
        assert not thread.is_alive(), "replay did not finish"
        wait_processed(settings, stats.end_offsets, timeout=120, procs=[proc])
        stop_worker(proc)
        from streams.feature_store import open_store

        assert assert_features_match_oracle(open_store(settings), world.listens, sids, stats.final_ts_ms) > 100
        assert _dead_letters(status.bootstrap) == []
        assert_log_matches(settings, world.listens)
    finally:
        stack.down(settings)


def test_sigkilled_workers_resume_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "glide")
    crash_run(tmp_path, kills=5, users=80, rate=150, seed=11)


@pytest.mark.slow
def test_twenty_sigkills_resume_exactly(tmp_path, monkeypatch):
    monkeypatch.setenv("GLIDE_FEAST_PROJECT", "glide")
    crash_run(tmp_path, kills=20, users=150, rate=60, seed=12)


@pytest.fixture
def cluster_settings(tmp_path, embedded_stack, unique_project):
    """Scale-out profile: Redis online store, PostgreSQL registry and catalog, the module's broker."""
    _, embedded = embedded_stack
    schema = f"glide_t{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=str(tmp_path), profile="cluster", kafka_bootstrap=embedded.bootstrap,
                             postgres_schema=schema)
    yield settings
    engine = sqlalchemy.create_engine(settings.postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()
    r = redis.Redis.from_url(settings.redis_url)
    for key in r.scan_iter(match=b"*" + unique_project.encode(), count=1000):
        r.delete(key)


def test_two_workers_split_the_partitions_on_redis(cluster_settings):
    settings = cluster_settings
    status = stack.up(settings)
    world = generate_world(WorldConfig(users=60, days=35, shows=40, episodes_per_show=10, seed=5))
    sids = register_sids(settings, world.episodes)
    push_profiles(settings, world.users, world.start)
    workers = [start_worker(settings, name=f"worker{i}") for i in range(2)]
    try:
        thread, stats = _replay_in_background(world, status.bootstrap, rate=400)
        thread.join(120)
        wait_processed(settings, stats.end_offsets, timeout=120, procs=workers)
        from streams.feature_store import open_store

        assert assert_features_match_oracle(open_store(settings), world.listens, sids, stats.final_ts_ms) > 100
        assert_log_matches(settings, world.listens)
        owners = [_assigned(settings.data_dir / f"worker{i}.log") for i in range(2)]
        assert all(owners), f"each worker should have owned partitions at the end: {owners}"
        assert owners[0].isdisjoint(owners[1]) and owners[0] | owners[1] == {0, 1, 2, 3}
    finally:
        for w in workers:
            stop_worker(w)


def assert_log_matches(settings, listens) -> None:
    """The offline event log holds every produced listen exactly once, with its fields intact."""
    from glide.event_log import open_event_log

    logged = open_event_log(settings).read("listens").sort_values("event_id").reset_index(drop=True)
    want = events_frame(listens).sort_values("event_id").reset_index(drop=True)
    assert len(logged) == len(want) and logged["event_id"].is_unique
    cols = ["event_id", "user_id", "episode_id", "show_id", "listened_seconds", "ts", "surface", "locale"]
    differ = [c for c in cols if not logged[c].astype(str).equals(want[c].astype(str))]
    assert not differ, f"logged columns differ from the produced events: {differ}"


def _assigned(log_path) -> set[int]:
    """The partitions a worker held after its last assignment (from its JSON log)."""
    import orjson

    last: set[int] = set()
    for line in log_path.read_text().splitlines():
        if '"partitions assigned"' in line:
            last = set(orjson.loads(line[line.index("{"):])["partitions"])
    return last

"""`glide bench lookup` with a few reads: SQLite, and Redis on a redis-server of this test's own (the
machine's PostgreSQL holds the registry under a throwaway schema); the JSON contract and the table,
with the client's direct read and Feast's path timed side by side."""

from __future__ import annotations

import json
import shutil

import pytest
from click.testing import CliRunner

from benchmarks.lookup import lookup
from tests.streams.helpers import RedisServer, free_port

TOP = {"p50_ms", "p99_ms", "raw_redis_p99_ms", "ratio"}


@pytest.fixture()
def redis_url(tmp_path):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    server = RedisServer(tmp_path / "redis", free_port())
    server.start()
    try:
        yield server.url
    finally:
        server.kill()


def _postgres_up() -> bool:
    import sqlalchemy

    from glide.config import load_settings

    try:
        engine = sqlalchemy.create_engine(load_settings().postgres_url, connect_args={"connect_timeout": 2})
        with engine.connect():
            pass
        engine.dispose()
        return True
    except Exception:  # noqa: BLE001 - no server, no test
        return False


def test_lookup_bench_reports_client_and_raw_reads_per_store_and_size(redis_url):
    if not _postgres_up():
        pytest.skip("PostgreSQL (the cluster profile's registry) is not reachable")
    result = CliRunner().invoke(lookup, ["--json", "--users", "100", "--reads", "20", "--redis-url", redis_url])
    assert result.exit_code == 0, result.output
    record = json.loads(result.stdout.strip().splitlines()[-1])
    assert "glide bench lookup" in result.stdout  # the table
    assert TOP <= set(record)
    assert set(record["runs"]) == {"sqlite", "redis"}
    for store, by_size in record["runs"].items():
        assert set(by_size) == {"1", "100"}, store
        for size, run in by_size.items():
            assert run["users"] == int(size) and run["reads"] >= 20
            assert 0 < run["p50_ms"] <= run["p99_ms"] and 0 < run["raw_p50_ms"] <= run["raw_p99_ms"]
            assert run["ratio"] == pytest.approx(run["p99_ms"] / run["raw_p99_ms"], rel=0.02, abs=0.011)
            assert 0 < run["feast_p50_ms"] <= run["feast_p99_ms"]  # Feast's path, timed beside the direct one
            assert run["feast_ratio"] == pytest.approx(run["feast_p99_ms"] / run["raw_p99_ms"], rel=0.02, abs=0.011)
    head = record["runs"]["redis"]["1"]
    assert (record["p50_ms"], record["p99_ms"], record["raw_redis_p99_ms"], record["ratio"]) == (
        head["p50_ms"], head["p99_ms"], head["raw_p99_ms"], head["ratio"])
    import redis

    assert redis.Redis.from_url(redis_url).dbsize() == 0  # the run's keys are gone

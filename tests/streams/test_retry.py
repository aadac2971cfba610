"""The retry helper (streams/retry.py), hermetic: which errors are transient, the backoff, the deadline,
the metrics and the masked log line."""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import sqlite3

import pytest
import redis
from aiokafka import errors as kafka_errors

from streams.config import StreamSettings
from streams.metrics import RETRIES, RETRY_EXHAUSTED
from streams.retry import Retry, RetryExhausted, is_transient
from tests.streams.fakes import ManualClock


@pytest.mark.parametrize("exc", [
    redis.exceptions.ConnectionError("Error 111 connecting to 127.0.0.1:6390. Connection refused."),
    redis.exceptions.TimeoutError("Timeout reading from socket"),
    redis.exceptions.BusyLoadingError("Redis is loading the dataset in memory"),
    sqlite3.OperationalError("database is locked"),
    kafka_errors.KafkaConnectionError("no connection"),
    kafka_errors.KafkaTimeoutError(),
    kafka_errors.NodeNotReadyError(),
    kafka_errors.RequestTimedOutError(),
    ConnectionRefusedError(errno.ECONNREFUSED, "Connection refused"),
    OSError(errno.ECONNRESET, "Connection reset by peer"),
])
def test_transient_errors(exc):
    assert is_transient(exc)


@pytest.mark.parametrize("exc", [
    ValueError("bad shape"), RuntimeError("CUDA error"), KeyError("cf_embedding"),
    sqlite3.OperationalError("no such table: x"), redis.exceptions.ResponseError("WRONGTYPE"),
    kafka_errors.RecordTooLargeError(), FileNotFoundError(errno.ENOENT, "missing"),
])
def test_other_errors_are_not_transient(exc):
    assert not is_transient(exc)


def test_a_cause_is_looked_at():
    try:
        try:
            raise redis.exceptions.ConnectionError("down")
        except redis.exceptions.ConnectionError as inner:
            raise RuntimeError("feast failed") from inner
    except RuntimeError as outer:
        assert is_transient(outer)


def test_backoff_grows_with_jitter_up_to_the_cap():
    r = Retry("t", deadline_s=60, initial_s=0.2, max_s=5, rng=random.Random(1))
    for attempt, cap in [(1, 0.2), (2, 0.4), (3, 0.8), (6, 5.0), (20, 5.0)]:
        delays = [r.delay(attempt) for _ in range(50)]
        assert all(cap / 2 <= d <= cap for d in delays)
        assert len(set(delays)) > 1  # jittered


def test_retries_until_success_counting_and_logging_once_each(monkeypatch, caplog):
    clock = ManualClock()
    monkeypatch.setattr("streams.retry.time.sleep", lambda s: setattr(clock, "now", clock.now + s))
    r = Retry("w-ok", deadline_s=60, initial_s=0.2, max_s=5, clock=clock)
    calls = []

    def flaky():
        calls.append(1)
        if len(calls) < 4:
            raise redis.exceptions.ConnectionError("redis://:hunter2@10.0.0.1:6379 refused")
        return "ok"

    with caplog.at_level(logging.WARNING, logger="glide.retry"):
        assert r.call("online_read", flaky) == "ok"
    assert len(calls) == 4
    assert RETRIES.labels("w-ok", "online_read")._value.get() == 3
    lines = [rec.getMessage() for rec in caplog.records]
    assert len(lines) == 3 and all("hunter2" not in line and "***" in line for line in lines)


def test_non_transient_errors_are_raised_at_once():
    r = Retry("w-bad", deadline_s=60)
    calls = []

    def broken():
        calls.append(1)
        raise ValueError("model error")

    with pytest.raises(ValueError):
        r.call("generate", broken)
    assert len(calls) == 1 and RETRIES.labels("w-bad", "generate")._value.get() == 0


def test_gives_up_after_the_deadline(monkeypatch):
    clock = ManualClock()
    slept = []

    def sleep(s):
        slept.append(s)
        clock.now += s

    monkeypatch.setattr("streams.retry.time.sleep", sleep)
    r = Retry("w-dead", deadline_s=10, initial_s=0.2, max_s=5, clock=clock)

    def down():
        clock.now += 0.01
        raise redis.exceptions.ConnectionError("down")

    with pytest.raises(RetryExhausted) as info:
        r.call("online_write", down)
    assert isinstance(info.value.__cause__, redis.exceptions.ConnectionError)
    assert 10 <= clock.now < 10.5 and max(slept) <= 5
    assert RETRY_EXHAUSTED.labels("w-dead", "online_write")._value.get() == 1
    assert not is_transient(info.value)  # an outer retry does not start over


def test_async_retry_and_settings():
    cfg = StreamSettings(retry_deadline_s=5, retry_initial_s=0.01, retry_max_s=0.02, metrics_port=-1)
    r = Retry.from_settings(cfg, "w-async")
    assert (r.deadline_s, r.initial_s, r.max_s) == (5, 0.01, 0.02)
    calls = []

    async def flaky():
        calls.append(1)
        if len(calls) < 3:
            raise kafka_errors.KafkaConnectionError("broker down")
        return 7

    assert asyncio.run(r.acall("candidates_send", flaky)) == 7
    assert RETRIES.labels("w-async", "candidates_send")._value.get() == 2
    assert StreamSettings().retry_deadline_s == 60 and StreamSettings().retry_initial_s == 0.2
    assert StreamSettings().retry_max_s == 5

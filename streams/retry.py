"""Retries of transient I/O errors: exponential backoff with jitter, up to a deadline.

One policy for both workers (settings in streams/config.py: ``GLIDE_STREAMS_RETRY_DEADLINE_S`` (60 s),
``GLIDE_STREAMS_RETRY_INITIAL_S`` (0.2 s), ``GLIDE_STREAMS_RETRY_MAX_S`` (5 s)). Only errors that a
later attempt can fix are retried (:func:`is_transient`): a store or broker that is down, restarting,
busy or slow: redis ``ConnectionError`` / ``TimeoutError`` (``BusyLoadingError`` while a restarted Redis
loads its data is one), SQLite's ``database is locked`` / ``busy``, aiokafka's connection, timeout and
node-not-ready errors (and any it marks ``retriable``), and connection-level ``OSError`` (refused,
reset, aborted, timed out). Anything else (a model error, a schema error, a bug) is raised at once.

After the deadline (counted from the first attempt) the last error is raised as :class:`RetryExhausted`
(its ``__cause__``). Each retry is counted in ``glide_retries_total{worker, operation}`` and logged once
as a warning with the error masked (glide.secrets.mask_secrets); a give-up is counted in
``glide_retry_exhausted_total{worker, operation}``.

Every operation retried must be idempotent: the online writes are newest-wins (streams/online_writer.py),
Feast pushes of the same rows overwrite them, and a re-sent candidate event is a duplicate a consumer
of `glide-candidates` already has to tolerate (at-least-once).
"""

from __future__ import annotations

import asyncio
import errno
import logging
import random
import sqlite3
import time
from collections.abc import Awaitable, Callable
from typing import TypeVar

from glide.secrets import mask_secrets
from streams.metrics import RETRIES, RETRY_EXHAUSTED

log = logging.getLogger("glide.retry")

T = TypeVar("T")

_CONNECTION_ERRNOS = {errno.ECONNREFUSED, errno.ECONNRESET, errno.ECONNABORTED, errno.EPIPE, errno.ETIMEDOUT,
                      errno.EHOSTUNREACH, errno.ENETUNREACH, errno.ENOTCONN}
# Plus every aiokafka error marked `retriable` (request timed out, leader or coordinator not available, ...).
_KAFKA_TRANSIENT = ("KafkaConnectionError", "KafkaTimeoutError", "NodeNotReadyError")


class RetryExhausted(Exception):
    """A transient error outlived the retry deadline; the last error is ``__cause__``."""

    def __init__(self, operation: str, attempts: int, elapsed_s: float, error: BaseException):
        super().__init__(f"{operation}: gave up after {attempts} attempts in {elapsed_s:.1f} s: "
                         f"{type(error).__name__}: {mask_secrets(error)}")
        self.operation, self.attempts, self.elapsed_s = operation, attempts, elapsed_s


def _transient_one(exc: BaseException) -> bool:
    if isinstance(exc, sqlite3.OperationalError):
        text = str(exc).lower()
        return "database is locked" in text or "database is busy" in text or "database table is locked" in text
    try:
        import redis.exceptions as rx
    except ImportError:  # pragma: no cover - redis is a dependency of the cluster profile
        rx = None
    if rx is not None and isinstance(exc, (rx.ConnectionError, rx.TimeoutError)):
        return True
    try:
        from aiokafka import errors as kx
    except ImportError:  # pragma: no cover
        kx = None
    if kx is not None and isinstance(exc, kx.KafkaError):
        named = tuple(getattr(kx, n) for n in _KAFKA_TRANSIENT if hasattr(kx, n))
        return isinstance(exc, named) or bool(getattr(exc, "retriable", False))
    if isinstance(exc, (ConnectionError, TimeoutError)):  # builtins: refused, reset, aborted, broken pipe
        return True
    return isinstance(exc, OSError) and exc.errno in _CONNECTION_ERRNOS


def is_transient(exc: BaseException) -> bool:
    """Whether a later attempt may succeed: ``exc`` or an error it was raised ``from`` is transient."""
    seen = 0
    while exc is not None and seen < 5:
        if isinstance(exc, RetryExhausted):
            return False  # an inner retry already spent its deadline: an outer one does not start over
        if _transient_one(exc):
            return True
        exc, seen = exc.__cause__, seen + 1
    return False


class Retry:
    """``call(operation, fn, *args)`` (blocking) and ``acall(operation, fn, *args)`` (``fn`` a coroutine
    function): ``fn`` until it returns, a non-transient error, or the deadline."""

    def __init__(self, worker: str, deadline_s: float = 60.0, initial_s: float = 0.2, max_s: float = 5.0,
                 rng: random.Random | None = None, clock: Callable[[], float] = time.monotonic):
        self.worker, self.deadline_s, self.initial_s, self.max_s = worker, deadline_s, initial_s, max(max_s, initial_s)
        self._rng = rng or random.Random()
        self._clock = clock

    @classmethod
    def from_settings(cls, cfg, worker: str) -> Retry:
        """The policy of a :class:`streams.config.StreamSettings`."""
        return cls(worker, cfg.retry_deadline_s, cfg.retry_initial_s, cfg.retry_max_s)

    def delay(self, attempt: int) -> float:
        """Sleep before retry ``attempt`` (1-based): "equal jitter", half fixed and half random, so
        workers that failed together do not come back together."""
        cap = min(self.max_s, self.initial_s * 2 ** (attempt - 1))
        return cap / 2 + self._rng.uniform(0, cap / 2)

    def _next_sleep(self, operation: str, attempt: int, started: float, exc: BaseException) -> float:
        """The sleep before the next attempt, or RetryExhausted (also for a non-transient error: raised as is)."""
        if not is_transient(exc):
            raise exc
        elapsed = self._clock() - started
        remaining = self.deadline_s - elapsed
        if remaining <= 0:
            RETRY_EXHAUSTED.labels(self.worker, operation).inc()
            log.error("%s: giving up after %d attempts in %.1f s: %s: %s", operation, attempt, elapsed,
                      type(exc).__name__, mask_secrets(exc),
                      extra={"worker": self.worker, "operation": operation, "attempts": attempt})
            raise RetryExhausted(operation, attempt, elapsed, exc) from exc
        sleep = min(self.delay(attempt), remaining)
        RETRIES.labels(self.worker, operation).inc()
        log.warning("%s failed (attempt %d), retrying in %.2f s: %s: %s", operation, attempt, sleep,
                    type(exc).__name__, mask_secrets(exc),
                    extra={"worker": self.worker, "operation": operation, "attempt": attempt,
                           "error": mask_secrets(exc)})
        return sleep

    def call(self, operation: str, fn: Callable[..., T], *args, **kwargs) -> T:
        started, attempt = self._clock(), 0
        while True:
            attempt += 1
            try:
                return fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified in _next_sleep
                sleep = self._next_sleep(operation, attempt, started, exc)
            time.sleep(sleep)

    async def acall(self, operation: str, fn: Callable[..., Awaitable[T]], *args, **kwargs) -> T:
        started, attempt = self._clock(), 0
        while True:
            attempt += 1
            try:
                return await fn(*args, **kwargs)
            except Exception as exc:  # noqa: BLE001 - classified in _next_sleep
                sleep = self._next_sleep(operation, attempt, started, exc)
            await asyncio.sleep(sleep)


def call(retry: Retry | None, operation: str, fn: Callable[..., T], *args, **kwargs) -> T:
    """``retry.call(...)``, or ``fn(...)`` once when there is no policy."""
    return fn(*args, **kwargs) if retry is None else retry.call(operation, fn, *args, **kwargs)

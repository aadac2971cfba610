"""What changes under a running GLIDE worker: the promoted model, and the collision table's popularity.

The worker calls :meth:`ServiceLifecycle.between_batches` before each poll and serves the next batch
with the service it returns. Everything slow runs in background threads (the registry poll and the
new model's load, streams/model_watch.py; the listener count, streams/popularity_refresh.py); only
the hand-over happens here, between two batches, while no decode runs. So a batch is decoded,
published and committed with one model, and the next with the new one: no session is dropped or
served twice by a swap, and a session's candidates name the model that made them (``model_version``).
The cached sets of the old model are stale to the refresh policy (streams/candidates.py), so each
user's next session start regenerates them with the new model.

A new model is loaded from the catalog DB as it is then; the episodes the worker learnt live from
catalog-updates since it started (:meth:`note_episodes`) are added to it, and the latest popularity
count applied, first in the loading thread, then, at the hand-over, whatever came after.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable, Mapping, Sequence
from concurrent.futures import Future
from typing import Any

from prometheus_client import Counter

from glide.config import GlideSettings
from streams.config import WorkerSettings
from streams.model_watch import MODEL_SWAPS, ModelWatch, in_thread, release
from streams.popularity_refresh import apply_popularity, listener_counts

log = logging.getLogger("glide.worker")

POPULARITY_REFRESHES = Counter("glide_worker_popularity_refreshes_total", "Collision tie-breaker recounts, by "
                               "outcome (applied; empty: no listens logged, table kept; failed)", ["outcome"])


class ServiceLifecycle:
    """``watch``: None keeps the starting model (a pinned --model); ``count()``: popularity per
    episode, or None to keep the table's (see streams/popularity_refresh.py)."""

    def __init__(self, cfg: WorkerSettings, watch: ModelWatch | None = None,
                 count: Callable[[], Mapping[str, float] | None] | None = None,
                 clock: Callable[[], float] = time.monotonic):
        self.cfg = cfg
        self.watch = watch if cfg.model_poll_s > 0 else None
        self.count = count if cfg.popularity_refresh_s > 0 else None
        self.clock = clock
        self.popularity: Mapping[str, float] | None = None  # the latest count applied
        self._episodes: list[dict] = []  # every episode learnt live, for the next model
        self._model_job: Future | None = None
        self._count_job: Future | None = None
        self._caught: tuple[int, Any] = (0, None)  # (episodes, count) the model being loaded has had
        self._model_due = self._count_due = clock()  # both at start: the first batch triggers them
        if self.watch is not None:
            self.watch.prepare = self._catch_up

    @classmethod
    def for_registry(cls, settings: GlideSettings, cfg: WorkerSettings, load: Callable[[], Any] | None
                     ) -> ServiceLifecycle:
        """Watching the catalog DB's registry with ``load`` (None: don't watch), counting the event log."""
        watch = None
        if load is not None:
            from glide.catalog import CatalogDB

            db = CatalogDB.from_settings(settings)
            watch = ModelWatch(lambda: (db.promoted_model() or {}).get("version"), load)
        return cls(cfg, watch, lambda: listener_counts(settings, cfg.popularity_window_s))

    def note_episodes(self, episodes: Sequence[Mapping]) -> None:
        """Episodes from catalog-updates (as CandidateService.add_episodes takes them)."""
        self._episodes.extend(dict(e) for e in episodes)

    async def between_batches(self, service: Any) -> Any:
        """The service to serve the next batch with: ``service``, or the newly promoted model's."""
        now = self.clock()
        if self.count is not None:
            if self._count_job is None and now >= self._count_due:
                self._count_job = in_thread(self.count, "glide-popularity")
            if self._count_job is not None and self._count_job.done():
                job, self._count_job = self._count_job, None
                self._count_due = now + self.cfg.popularity_refresh_s
                await self._apply_count(service, job)
        if self.watch is not None:
            if self._model_job is None and now >= self._model_due:
                version, self._caught = service.model_version, (0, None)
                self._model_job = in_thread(lambda: self.watch.check(version), "glide-model-watch")
            if self._model_job is not None and self._model_job.done():
                job, self._model_job = self._model_job, None
                self._model_due = now + self.cfg.model_poll_s
                new = self._result(job, "the registry poll")
                if new is not None:
                    service = await self._swap(service, new)
        return service

    async def _apply_count(self, service: Any, job: Future) -> None:
        counts = self._result(job, "the popularity count")
        if job.exception() is not None:
            POPULARITY_REFRESHES.labels("failed").inc()
        elif counts is None:
            POPULARITY_REFRESHES.labels("empty").inc()
        else:
            n = await asyncio.to_thread(apply_popularity, service.table, counts)
            self.popularity = counts
            POPULARITY_REFRESHES.labels("applied").inc()
            log.info("collision popularity refreshed: %d of %d episodes listened to", n, len(service.table))

    @staticmethod
    def _result(job: Future, what: str) -> Any:
        if job.exception() is not None:
            log.error("%s failed: %r", what, job.exception())
            return None
        return job.result()

    def _catch_up(self, service: Any) -> None:
        """Bring a loaded, not yet serving service up to date: the live episodes and the latest count
        it has not had (in the loading thread, then at the hand-over only what came after)."""
        done = self._caught
        n, counts = len(self._episodes), self.popularity
        if n > done[0] and service.sid_index is not None:
            try:
                service.add_episodes(self._episodes[done[0]:n])
            except Exception:  # noqa: BLE001 - the model still serves its catalog
                log.exception("the new model could not encode %d live episodes", n - done[0])
        if counts is not None and counts is not done[1]:
            apply_popularity(service.table, counts)
        self._caught = (n, counts)

    async def _swap(self, old: Any, new: Any) -> Any:
        await asyncio.to_thread(self._catch_up, new)
        # Feast drops a pushed row that is not newer than the stored one: the new service's push
        # timestamps continue the old one's strictly increasing sequence.
        new._last_push_us = max(new._last_push_us, old._last_push_us)
        new.retry = old.retry
        MODEL_SWAPS.labels("swapped").inc()
        log.info("serving model %s (was %s)", new.model_version, old.model_version)
        in_thread(lambda: release(old), "glide-model-release")
        return new

    async def close(self) -> None:
        """Drop a model loaded but not swapped in; running jobs are left to their daemon threads."""
        job = self._model_job
        if job is not None and job.done() and job.exception() is None and job.result() is not None:
            release(job.result())

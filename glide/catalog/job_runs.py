"""Job runs: a row per execution of a batch job (train, evaluate, retrain, ...), so operators can see
what ran, with which parameters, and why it failed.

The row is written `running` in its own transaction before the job's work starts, so a crashed or
killed job still leaves a trace; the outcome is written in a second transaction when it ends.
"""

from __future__ import annotations

import traceback
from collections.abc import Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import sqlalchemy as sa

from glide.catalog import schema as t
from glide.catalog.checks import check_name, jsonable
from glide.catalog.connection import CatalogConnection

_MAX_ERROR_CHARS = 20_000  # the tail of a traceback: where it failed matters more than how it got there


@dataclass
class JobRun:
    """The row `CatalogDB.job_run` opened; `id` identifies it in `job_runs()`."""

    id: int
    job: str
    params: dict[str, Any]
    started_at: datetime


class JobRuns(CatalogConnection):
    """The job_runs table: open a run around a job, list recent runs."""

    @contextmanager
    def job_run(self, job: str, params: Mapping[str, Any] | None = None) -> Iterator[JobRun]:
        """Record a job: a `running` row now, then `succeeded`, or `failed` with the error (re-raised)."""
        check_name(job, "job name", 64)
        clean: dict[str, Any] = jsonable(dict(params or {}), "params")
        started = t.utcnow()
        with self._begin(write=True) as conn:
            result = conn.execute(
                sa.insert(t.job_runs).values(job=job, status="running", params=clean, started_at=started)
            )
            run_id = int(result.inserted_primary_key[0])  # type: ignore[index]
        run = JobRun(id=run_id, job=job, params=clean, started_at=started)
        try:
            yield run
        except BaseException as exc:
            text = "".join(traceback.format_exception(exc))
            self._finish_job(run_id, "failed", text[-_MAX_ERROR_CHARS:])
            raise
        self._finish_job(run_id, "succeeded", None)

    def _finish_job(self, run_id: int, status: str, error: str | None) -> None:
        with self._begin(write=True) as conn:
            conn.execute(
                sa.update(t.job_runs)
                .where(t.job_runs.c.id == run_id)
                .values(status=status, finished_at=t.utcnow(), error=error)
            )

    def job_runs(self, job: str | None = None, limit: int = 100) -> list[dict[str, Any]]:
        """Recent job runs (optionally of one job), newest first."""
        jr = t.job_runs
        stmt = sa.select(jr).order_by(jr.c.started_at.desc(), jr.c.id.desc()).limit(limit)
        if job is not None:
            stmt = stmt.where(jr.c.job == job)
        with self._begin() as conn:
            return [dict(r._mapping) for r in conn.execute(stmt).all()]

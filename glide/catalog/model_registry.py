"""The model registry: trained recommender versions, what they were trained on, and which one serves.

Versions are immutable (a version names one artifact and one data window, so metrics stay
comparable), and exactly one version is promoted at a time: promotion demotes the previous one in
the same transaction, so serving never sees zero or two promoted models.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import datetime
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from glide.catalog import schema as t
from glide.catalog.checks import check_name, jsonable
from glide.catalog.connection import CatalogConnection
from glide.catalog.errors import CatalogError
from glide.catalog.rows import _Bad, to_utc


class ModelRegistry(CatalogConnection):
    """Model versions: register, promote, look up."""

    def register_model(
        self,
        version: str,
        artifact_path: str | Path,
        metrics: Mapping[str, Any],
        params: Mapping[str, Any],
        data_window: tuple[datetime, datetime],
    ) -> None:
        """Record a trained model (not promoted). Versions are immutable: re-registering one is an error."""
        check_name(version, "model version", 128)
        try:
            start, end = data_window
        except (TypeError, ValueError):
            raise CatalogError(
                f"model {version!r}: data_window must be a (start, end) pair of aware datetimes, got {data_window!r}"
            ) from None
        try:
            start, end = to_utc(start), to_utc(end)
        except _Bad as exc:
            raise CatalogError(f"model {version!r}: data_window time {exc}") from None
        if start > end:
            raise CatalogError(f"model {version!r}: data_window start {start} is after its end {end}")
        row = {
            "version": version,
            "created_at": t.utcnow(),
            "artifact_path": str(artifact_path),
            "metrics": jsonable(dict(metrics), "metrics"),
            "params": jsonable(dict(params), "params"),
            "data_window_start": start,
            "data_window_end": end,
            "promoted": False,
        }
        with self._begin(write=True) as conn:
            mv = t.model_versions
            if conn.scalar(sa.select(mv.c.version).where(mv.c.version == version)):
                raise CatalogError(
                    f"model version {version!r} is already registered: register under a new version"
                )
            conn.execute(sa.insert(t.model_versions), row)

    def promote_model(self, version: str) -> None:
        """Make `version` the one promoted model (the previous one is demoted in the same transaction)."""
        mv = t.model_versions
        try:
            with self._begin(write=True) as conn:
                if conn.scalar(sa.select(mv.c.version).where(mv.c.version == version)) is None:
                    known = list(conn.scalars(sa.select(mv.c.version).order_by(mv.c.version)))
                    raise CatalogError(
                        f"cannot promote {version!r}: not a registered model version "
                        f"(known: {', '.join(known[-10:]) or 'none'}); register_model() first"
                    )
                others = sa.update(mv).where(mv.c.promoted == sa.true(), mv.c.version != version)
                conn.execute(others.values(promoted=False))
                conn.execute(sa.update(mv).where(mv.c.version == version).values(promoted=True))
        except sa.exc.IntegrityError:
            raise CatalogError(f"promoting {version!r} raced with another promotion: retry") from None

    def promoted_model(self) -> dict[str, Any] | None:
        with self._begin() as conn:
            mv = t.model_versions
            row = conn.execute(sa.select(mv).where(mv.c.promoted == sa.true())).first()
        return dict(row._mapping) if row else None

    def get_model(self, version: str) -> dict[str, Any] | None:
        with self._begin() as conn:
            mv = t.model_versions
            row = conn.execute(sa.select(mv).where(mv.c.version == version)).first()
        return dict(row._mapping) if row else None

    def version_of_artifact(self, artifact_path: str | Path) -> str | None:
        """The registered version whose export is ``artifact_path`` (the same folder), else None."""
        wanted = Path(artifact_path).resolve()
        mv = t.model_versions
        with self._begin() as conn:
            rows = conn.execute(sa.select(mv.c.version, mv.c.artifact_path)).all()
        return next((v for v, path in rows if path and Path(path).resolve() == wanted), None)

    def list_models(self) -> list[dict[str, Any]]:
        """All model versions, newest first."""
        mv = t.model_versions
        with self._begin() as conn:
            rows = conn.execute(sa.select(mv).order_by(mv.c.created_at.desc(), mv.c.version.desc())).all()
        return [dict(r._mapping) for r in rows]

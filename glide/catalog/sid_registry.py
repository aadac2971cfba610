"""The Semantic ID registry: trained quantizers and the SID (a short tuple of codes) each assigns to
an episode.

A SID only means something under the quantizer that produced it, so every assignment is keyed by
(quantizer_version, episode_id), and a quantizer's shape (levels x codebook size) is frozen once
registered: changing it would silently reinterpret every stored code. Episodes that share a SID form
a collision group, resolved at serving time by popularity (paper §4.4.1).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import sqlalchemy as sa

from glide.catalog import schema as t
from glide.catalog.checks import check_int, check_name, jsonable
from glide.catalog.connection import CatalogConnection
from glide.catalog.errors import CatalogError
from glide.catalog.rows import decode_sid, encode_sid


class SidRegistry(CatalogConnection):
    """Quantizer versions and their episode -> SID assignments."""

    def register_quantizer(
        self,
        version: str,
        kind: str,
        artifact_path: str | Path,
        levels: int,
        codebook_size: int,
        metrics: Mapping[str, Any] | None = None,
    ) -> None:
        """Record a trained SID quantizer. Re-registering a version updates kind/path/metrics, but its
        levels and codebook size are fixed once registered (SIDs depend on them)."""
        check_name(version, "quantizer version", 128)
        check_name(kind, "quantizer kind", 32)
        levels = check_int(levels, "levels", 1, 16)
        codebook_size = check_int(codebook_size, "codebook_size", 2, 1_000_000)
        row = {
            "version": version,
            "kind": kind,
            "artifact_path": str(artifact_path),
            "levels": levels,
            "codebook_size": codebook_size,
            "created_at": t.utcnow(),
            "metrics": jsonable(dict(metrics or {}), "metrics"),
        }
        with self._begin(write=True) as conn:
            old = conn.execute(sa.select(t.quantizers).where(t.quantizers.c.version == version)).first()
            if old is None:
                conn.execute(sa.insert(t.quantizers), row)
                return
            if (old.levels, old.codebook_size) != (levels, codebook_size):
                raise CatalogError(
                    f"quantizer {version!r} is already registered with levels={old.levels}, "
                    f"codebook_size={old.codebook_size}; register the new shape under a new version"
                )
            conn.execute(
                sa.update(t.quantizers)
                .where(t.quantizers.c.version == version)
                .values(kind=kind, artifact_path=row["artifact_path"], metrics=row["metrics"])
            )

    def get_quantizer(self, version: str) -> dict[str, Any] | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(t.quantizers).where(t.quantizers.c.version == version)).first()
        return dict(row._mapping) if row else None

    def list_quantizers(self) -> list[dict[str, Any]]:
        """All quantizers, newest first."""
        with self._begin() as conn:
            q = t.quantizers
            rows = conn.execute(sa.select(q).order_by(q.c.created_at.desc(), q.c.version.desc())).all()
        return [dict(r._mapping) for r in rows]

    def _quantizer(self, conn: sa.Connection, version: str) -> sa.Row:
        """The registered quantizer row (its shape validates codes), or a CatalogError listing the known ones."""
        row = conn.execute(sa.select(t.quantizers).where(t.quantizers.c.version == version)).first()
        if row is None:
            known = list(conn.scalars(sa.select(t.quantizers.c.version).order_by(t.quantizers.c.version)))
            raise CatalogError(
                f"quantizer version {version!r} is not registered (known: {', '.join(known) or 'none'}): "
                "call register_quantizer() first"
            )
        return row

    def save_sid_assignments(
        self, quantizer_version: str, assignments: Mapping[str, Sequence[int]]
    ) -> int:
        """Insert or replace the SIDs of these episodes under one quantizer (others are kept). Returns count."""
        if not isinstance(assignments, Mapping):
            raise CatalogError(
                f"save_sid_assignments: expected a dict episode_id -> tuple of ints, got {type(assignments).__name__}"
            )
        if not assignments:
            return 0
        with self._begin(write=True) as conn:
            q = self._quantizer(conn, quantizer_version)
            records = [
                {
                    "quantizer_version": quantizer_version,
                    "episode_id": ep,
                    "codes": encode_sid(ep, codes, q.levels, q.codebook_size, quantizer_version),
                }
                for ep, codes in assignments.items()
            ]
            keys = ["quantizer_version", "episode_id"]
            self._upsert(conn, t.sid_assignments, records, keys, {"assigned_at": t.utcnow()})
        return len(records)

    def sid_assignments(self, quantizer_version: str) -> dict[str, tuple[int, ...]]:
        """episode_id -> SID codes under one quantizer."""
        with self._begin() as conn:
            self._quantizer(conn, quantizer_version)
            rows = conn.execute(
                sa.select(t.sid_assignments.c.episode_id, t.sid_assignments.c.codes).where(
                    t.sid_assignments.c.quantizer_version == quantizer_version
                )
            ).all()
        return {ep: decode_sid(codes) for ep, codes in rows}

    def episodes_with_sid(self, quantizer_version: str, codes: Sequence[int]) -> list[str]:
        """Episodes sharing one SID (a collision group), most popular first (paper §4.4.1 tie-breaker);
        episodes missing from the catalog come last. Ties break on episode_id."""
        sa_ = t.sid_assignments
        with self._begin() as conn:
            q = self._quantizer(conn, quantizer_version)
            key = encode_sid("<query>", codes, q.levels, q.codebook_size, quantizer_version)
            stmt = (
                sa.select(sa_.c.episode_id)
                .select_from(sa_.outerjoin(t.episodes, t.episodes.c.episode_id == sa_.c.episode_id))
                .where(sa_.c.quantizer_version == quantizer_version, sa_.c.codes == key)
                .order_by(t.episodes.c.popularity.desc().nulls_last(), sa_.c.episode_id)
            )
            return list(conn.scalars(stmt))

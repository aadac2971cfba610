"""Catalog content: the shows and episodes the recommender can point at.

Rows arrive in the synthetic world's table contract (glide/world/schema.py) and come back out in it,
so a world, the Parquet files and the catalog hold interchangeable frames. Writes are idempotent
upserts keyed by id, so re-ingesting a feed or a world only refreshes what changed.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import pandas as pd
import sqlalchemy as sa

from glide.catalog import schema as t
from glide.catalog.checks import chunks
from glide.catalog.connection import CatalogConnection
from glide.catalog.errors import CatalogError
from glide.catalog.rows import EPISODE_FIELDS, SHOW_FIELDS, clean_rows

EPISODE_COLUMNS: list[str] = [f.name for f in EPISODE_FIELDS]
SHOW_COLUMNS: list[str] = [f.name for f in SHOW_FIELDS]


class CatalogContent(CatalogConnection):
    """Shows and episodes: upserts, frames in the world contract, single-row lookups."""

    def upsert_shows(self, rows: Any) -> int:
        """Insert or update shows (world `shows` columns; extra columns ignored). Returns rows written."""
        records, present = clean_rows(rows, SHOW_FIELDS, "shows")
        if not records:
            return 0
        with self._begin(write=True) as conn:
            self._upsert(conn, t.shows, records, ["show_id"], {"updated_at": t.utcnow()}, present)
        return len(records)

    def upsert_episodes(self, rows: Any) -> int:
        """Insert or update episodes (world `episodes` columns; extra columns ignored); every show_id must
        already be in the catalog. Returns rows written."""
        records, present = clean_rows(rows, EPISODE_FIELDS, "episodes")
        if not records:
            return 0
        wanted = sorted({r["show_id"] for r in records})
        with self._begin(write=True) as conn:
            known: set[str] = set()
            for chunk in chunks(wanted):
                known.update(conn.scalars(sa.select(t.shows.c.show_id).where(t.shows.c.show_id.in_(chunk))))
            if len(known) < len(wanted):
                i, r = next((i, r) for i, r in enumerate(records) if r["show_id"] not in known)
                missing = len(set(wanted) - known)
                raise CatalogError(
                    f"episodes row {i} (episode_id={r['episode_id']!r}): unknown show_id {r['show_id']!r} "
                    f"({missing} unknown show id(s) in this batch): upsert_shows() first"
                )
            try:
                self._upsert(conn, t.episodes, records, ["episode_id"], {"updated_at": t.utcnow()}, present)
            except sa.exc.IntegrityError as exc:  # a show deleted concurrently
                raise CatalogError(f"episodes: integrity error while writing ({exc.orig}); retry") from None
        return len(records)

    def episodes_frame(self, show_ids: Sequence[str] | None = None) -> pd.DataFrame:
        """Episodes as a DataFrame with the world `episodes` columns, ordered by episode_id."""
        if isinstance(show_ids, str):
            raise CatalogError("episodes_frame(show_ids=...): pass a list of show ids, not one string")
        cols = [t.episodes.c[c] for c in EPISODE_COLUMNS]
        rows: list[sa.Row] = []
        with self._begin() as conn:
            if show_ids is None:
                rows += conn.execute(sa.select(*cols)).all()
            else:
                for chunk in chunks(sorted(set(show_ids))):
                    rows += conn.execute(sa.select(*cols).where(t.episodes.c.show_id.in_(chunk))).all()
        # Sorted here, not in SQL: PostgreSQL collations would order ids differently from SQLite.
        rows.sort(key=lambda r: r[0])
        df = pd.DataFrame.from_records(rows, columns=EPISODE_COLUMNS)
        df["published_at"] = pd.to_datetime(df["published_at"], utc=True).astype("datetime64[ns, UTC]")
        df["playable"] = df["playable"].astype(bool)
        df["popularity"] = df["popularity"].astype(float)
        df["duration_s"] = df["duration_s"].astype("Int64" if df["duration_s"].isna().any() else "int64")
        for c in ("episode_id", "show_id", "title", "description", "topic", "locale"):
            df[c] = df[c].astype(object)
        return df

    def get_episode(self, episode_id: str) -> dict[str, Any] | None:
        """One episode (world columns plus updated_at), or None if it is not in the catalog."""
        with self._begin() as conn:
            row = conn.execute(sa.select(t.episodes).where(t.episodes.c.episode_id == episode_id)).first()
        return dict(row._mapping) if row else None

    def shows_frame(self) -> pd.DataFrame:
        """Shows as a DataFrame with the world `shows` columns, ordered by show_id."""
        with self._begin() as conn:
            rows = list(conn.execute(sa.select(*[t.shows.c[c] for c in SHOW_COLUMNS])).all())
        rows.sort(key=lambda r: r[0])
        return pd.DataFrame.from_records(rows, columns=SHOW_COLUMNS)

    def get_show(self, show_id: str) -> dict[str, Any] | None:
        with self._begin() as conn:
            row = conn.execute(sa.select(t.shows).where(t.shows.c.show_id == show_id)).first()
        return dict(row._mapping) if row else None

"""Catalog tables (SQLAlchemy Core). The migrations in `migrations/versions` must create exactly these;
`tests/glide/catalog` checks that they do not drift apart."""

from __future__ import annotations

from datetime import datetime, timezone

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import JSONB

# Deterministic constraint names so later migrations can drop/alter them by name on both dialects.
NAMING_CONVENTION = {
    "ix": "ix_%(table_name)s_%(column_0_N_name)s",
    "uq": "uq_%(table_name)s_%(column_0_N_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
}

metadata = sa.MetaData(naming_convention=NAMING_CONVENTION)

JSONType = sa.JSON().with_variant(JSONB(), "postgresql")


class UTCDateTime(sa.TypeDecorator):
    """Timezone-aware UTC datetimes on every dialect (SQLite stores naive UTC, PostgreSQL timestamptz)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            # Callers validate first; reaching here means a bug, and guessing a zone would corrupt data.
            raise ValueError(f"naive datetime {value!r}: the catalog stores timezone-aware UTC times")
        value = value.astimezone(timezone.utc)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: sa.Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            return value.replace(tzinfo=timezone.utc)
        return value.astimezone(timezone.utc)


def utcnow() -> datetime:
    return datetime.now(timezone.utc)


shows = sa.Table(
    "shows",
    metadata,
    sa.Column("show_id", sa.String(64), primary_key=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("host", sa.Text, nullable=False, server_default=""),
    sa.Column("locale", sa.String(16), nullable=True),
    sa.Column("topics", JSONType, nullable=False),
    sa.Column("popularity", sa.Float, nullable=True),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

episodes = sa.Table(
    "episodes",
    metadata,
    sa.Column("episode_id", sa.String(64), primary_key=True),
    sa.Column("show_id", sa.String(64), sa.ForeignKey("shows.show_id"), nullable=False, index=True),
    sa.Column("title", sa.Text, nullable=False),
    sa.Column("description", sa.Text, nullable=False, server_default=""),
    sa.Column("topic", sa.String(128), nullable=True),
    sa.Column("locale", sa.String(16), nullable=True),
    sa.Column("playable", sa.Boolean, nullable=False, server_default=sa.true()),
    sa.Column("published_at", UTCDateTime, nullable=False, index=True),
    sa.Column("duration_s", sa.Integer, nullable=True),
    sa.Column("popularity", sa.Float, nullable=False, server_default="0"),
    sa.Column("updated_at", UTCDateTime, nullable=False),
)

quantizers = sa.Table(
    "quantizers",
    metadata,
    sa.Column("version", sa.String(128), primary_key=True),
    sa.Column("kind", sa.String(32), nullable=False),
    sa.Column("artifact_path", sa.Text, nullable=False),
    sa.Column("levels", sa.Integer, nullable=False),
    sa.Column("codebook_size", sa.Integer, nullable=False),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("metrics", JSONType, nullable=False),
)

# One row per (quantizer, episode). `codes` is the SID as text "c1-c2-...-cM" so that "all episodes
# sharing SID X" is one lookup on the (quantizer_version, codes) index, whatever M is.
# No FK to episodes: SIDs may be computed for a world that was never loaded into this catalog.
sid_assignments = sa.Table(
    "sid_assignments",
    metadata,
    sa.Column(
        "quantizer_version",
        sa.String(128),
        sa.ForeignKey("quantizers.version", ondelete="CASCADE"),
        primary_key=True,
    ),
    sa.Column("episode_id", sa.String(64), primary_key=True),
    sa.Column("codes", sa.String(128), nullable=False),
    sa.Column("assigned_at", UTCDateTime, nullable=False),
    sa.Index("ix_sid_assignments_quantizer_version_codes", "quantizer_version", "codes"),
)

model_versions = sa.Table(
    "model_versions",
    metadata,
    sa.Column("version", sa.String(128), primary_key=True),
    sa.Column("created_at", UTCDateTime, nullable=False),
    sa.Column("artifact_path", sa.Text, nullable=False),
    sa.Column("metrics", JSONType, nullable=False),
    sa.Column("params", JSONType, nullable=False),
    sa.Column("data_window_start", UTCDateTime, nullable=False),
    sa.Column("data_window_end", UTCDateTime, nullable=False),
    sa.Column("promoted", sa.Boolean, nullable=False, server_default=sa.false()),
    # A partial unique index makes "at most one promoted" a database fact, even under concurrent promotes.
    sa.Index(
        "uq_model_versions_one_promoted",
        "promoted",
        unique=True,
        sqlite_where=sa.column("promoted") == sa.true(),
        postgresql_where=sa.column("promoted") == sa.true(),
    ),
)

JOB_STATUSES = ("running", "succeeded", "failed")

job_runs = sa.Table(
    "job_runs",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    sa.Column("job", sa.String(64), nullable=False),
    sa.Column("status", sa.String(16), nullable=False),
    sa.Column("params", JSONType, nullable=False),
    sa.Column("started_at", UTCDateTime, nullable=False),
    sa.Column("finished_at", UTCDateTime, nullable=True),
    sa.Column("error", sa.Text, nullable=True),
    sa.Index("ix_job_runs_job_started_at", "job", "started_at"),
    sa.CheckConstraint("status IN ('running', 'succeeded', 'failed')", name="status"),
)

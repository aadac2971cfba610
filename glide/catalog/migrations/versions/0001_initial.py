"""Initial catalog: shows, episodes, quantizers, sid_assignments, model_versions, job_runs.

Revision ID: 0001
Revises:
Create Date: 2026-11-24
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None

# Frozen copies of the types as they were at this revision (never import live models into a migration).
JSONType = sa.JSON().with_variant(JSONB(), "postgresql")
TS = sa.DateTime(timezone=True)


def upgrade() -> None:
    op.create_table(
        "shows",
        sa.Column("show_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("host", sa.Text, nullable=False, server_default=""),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("topics", JSONType, nullable=False),
        sa.Column("popularity", sa.Float, nullable=True),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("show_id", name="pk_shows"),
    )
    op.create_table(
        "episodes",
        sa.Column("episode_id", sa.String(64), nullable=False),
        sa.Column("show_id", sa.String(64), nullable=False),
        sa.Column("title", sa.Text, nullable=False),
        sa.Column("description", sa.Text, nullable=False, server_default=""),
        sa.Column("topic", sa.String(128), nullable=True),
        sa.Column("locale", sa.String(16), nullable=True),
        sa.Column("playable", sa.Boolean, nullable=False, server_default=sa.true()),
        sa.Column("published_at", TS, nullable=False),
        sa.Column("duration_s", sa.Integer, nullable=True),
        sa.Column("popularity", sa.Float, nullable=False, server_default="0"),
        sa.Column("updated_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("episode_id", name="pk_episodes"),
        sa.ForeignKeyConstraint(["show_id"], ["shows.show_id"], name="fk_episodes_show_id_shows"),
    )
    op.create_index("ix_episodes_show_id", "episodes", ["show_id"])
    op.create_index("ix_episodes_published_at", "episodes", ["published_at"])

    op.create_table(
        "quantizers",
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("kind", sa.String(32), nullable=False),
        sa.Column("artifact_path", sa.Text, nullable=False),
        sa.Column("levels", sa.Integer, nullable=False),
        sa.Column("codebook_size", sa.Integer, nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("metrics", JSONType, nullable=False),
        sa.PrimaryKeyConstraint("version", name="pk_quantizers"),
    )
    op.create_table(
        "sid_assignments",
        sa.Column("quantizer_version", sa.String(128), nullable=False),
        sa.Column("episode_id", sa.String(64), nullable=False),
        sa.Column("codes", sa.String(128), nullable=False),
        sa.Column("assigned_at", TS, nullable=False),
        sa.PrimaryKeyConstraint("quantizer_version", "episode_id", name="pk_sid_assignments"),
        sa.ForeignKeyConstraint(
            ["quantizer_version"],
            ["quantizers.version"],
            name="fk_sid_assignments_quantizer_version_quantizers",
            ondelete="CASCADE",
        ),
    )
    op.create_index(
        "ix_sid_assignments_quantizer_version_codes", "sid_assignments", ["quantizer_version", "codes"]
    )

    op.create_table(
        "model_versions",
        sa.Column("version", sa.String(128), nullable=False),
        sa.Column("created_at", TS, nullable=False),
        sa.Column("artifact_path", sa.Text, nullable=False),
        sa.Column("metrics", JSONType, nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("data_window_start", TS, nullable=False),
        sa.Column("data_window_end", TS, nullable=False),
        sa.Column("promoted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.PrimaryKeyConstraint("version", name="pk_model_versions"),
    )
    op.create_index(
        "uq_model_versions_one_promoted",
        "model_versions",
        ["promoted"],
        unique=True,
        sqlite_where=sa.column("promoted") == sa.true(),
        postgresql_where=sa.column("promoted") == sa.true(),
    )

    op.create_table(
        "job_runs",
        sa.Column("id", sa.Integer, nullable=False, autoincrement=True),
        sa.Column("job", sa.String(64), nullable=False),
        sa.Column("status", sa.String(16), nullable=False),
        sa.Column("params", JSONType, nullable=False),
        sa.Column("started_at", TS, nullable=False),
        sa.Column("finished_at", TS, nullable=True),
        sa.Column("error", sa.Text, nullable=True),
        sa.PrimaryKeyConstraint("id", name="pk_job_runs"),
        sa.CheckConstraint(
            "status IN ('running', 'succeeded', 'failed')", name="ck_job_runs_status"
        ),
    )
    op.create_index("ix_job_runs_job_started_at", "job_runs", ["job", "started_at"])


def downgrade() -> None:
    op.drop_table("job_runs")
    op.drop_table("model_versions")
    op.drop_table("sid_assignments")
    op.drop_table("quantizers")
    op.drop_table("episodes")
    op.drop_table("shows")

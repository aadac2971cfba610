"""Run the packaged alembic migrations in code: no alembic.ini on disk."""

from __future__ import annotations

import threading
from pathlib import Path

import sqlalchemy as sa
from alembic import command
from alembic.config import Config
from alembic.runtime.migration import MigrationContext
from alembic.script import ScriptDirectory

MIGRATIONS_DIR = Path(__file__).resolve().parent / "migrations"
_ALEMBIC_LOCK = threading.Lock()  # alembic's `context` is a module-global proxy: one migration per process at a time


def alembic_config(connection: sa.Connection | None = None) -> Config:
    """An alembic Config pointing at the packaged migrations, optionally bound to an open connection."""
    cfg = Config()
    cfg.set_main_option("script_location", str(MIGRATIONS_DIR))
    if connection is not None:
        cfg.attributes["connection"] = connection
    return cfg


def head_revision() -> str:
    head = ScriptDirectory.from_config(alembic_config()).get_current_head()
    assert head is not None, f"no migrations found under {MIGRATIONS_DIR}"
    return head


def current_revision(connection: sa.Connection) -> str | None:
    return MigrationContext.configure(connection).get_current_revision()


def upgrade_to_head(connection: sa.Connection) -> None:
    """Upgrade to head inside the caller's transaction; a no-op when already there."""
    with _ALEMBIC_LOCK:
        command.upgrade(alembic_config(connection), "head")

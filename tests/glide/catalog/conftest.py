"""Catalog fixtures: every test that takes `db` runs on SQLite (tmp file) and on PostgreSQL (a fresh
random schema per test, dropped afterwards). PostgreSQL is required: an unreachable server fails."""

from __future__ import annotations

import itertools
import uuid
from collections.abc import Iterator

import pytest
import sqlalchemy as sa

from glide.catalog import CatalogDB
from glide.config import load_settings

_SESSION_PREFIX = f"glide_test_{uuid.uuid4().hex[:8]}"
_counter = itertools.count()


@pytest.fixture(scope="session")
def pg_url() -> Iterator[str]:
    url = load_settings().postgres_url
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    try:
        with engine.connect() as conn:
            conn.exec_driver_sql("SELECT 1")
    except sa.exc.OperationalError as exc:
        pytest.fail(
            f"PostgreSQL at {sa.make_url(url).render_as_string(hide_password=True)} is unreachable "
            f"({str(exc.orig).splitlines()[0]}): the catalog tests need it; start it or set GLIDE_POSTGRES_URL",
            pytrace=False,
        )
    yield url
    # Sweep anything a failed teardown left behind.
    with engine.begin() as conn:
        names = conn.scalars(
            sa.text("SELECT schema_name FROM information_schema.schemata WHERE schema_name LIKE :p"),
            {"p": f"{_SESSION_PREFIX}%"},
        ).all()
        for name in names:
            conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{name}" CASCADE')
    engine.dispose()


def _drop_schema(url: str, schema: str) -> None:
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.begin() as conn:
        conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE')
    engine.dispose()


@pytest.fixture(params=["sqlite", "postgresql"])
def fresh_db(request: pytest.FixtureRequest, tmp_path) -> Iterator[CatalogDB]:
    """A CatalogDB on an empty database (not migrated)."""
    if request.param == "sqlite":
        db = CatalogDB(f"sqlite:///{tmp_path / 'catalog.db'}")
        yield db
        db.close()
        return
    url = request.getfixturevalue("pg_url")
    schema = f"{_SESSION_PREFIX}_{next(_counter)}"
    db = CatalogDB(url, schema=schema)
    yield db
    db.close()
    _drop_schema(url, schema)


@pytest.fixture
def db(fresh_db: CatalogDB) -> CatalogDB:
    """A migrated, empty catalog."""
    fresh_db.migrate()
    return fresh_db

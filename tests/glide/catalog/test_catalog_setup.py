"""Migrations, connection errors and settings wiring."""

from __future__ import annotations

import multiprocessing
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import datetime, timezone

import pytest
import sqlalchemy as sa
from alembic import command
from alembic.autogenerate import compare_metadata
from alembic.runtime.migration import MigrationContext
from click.testing import CliRunner

from glide.catalog import CatalogDB, CatalogError
from glide_app.commands.catalog import catalog
from glide.catalog.migrate import alembic_config, head_revision
from glide.catalog.schema import metadata
from glide.config import load_settings

TABLES = {"shows", "episodes", "quantizers", "sid_assignments", "model_versions", "job_runs"}


def test_migrate_is_idempotent_and_keeps_data(fresh_db: CatalogDB) -> None:
    assert fresh_db.revision() is None
    with pytest.raises(CatalogError, match=r"catalog tables are missing .*run CatalogDB.migrate\(\) first"):
        fresh_db.episodes_frame()

    assert fresh_db.migrate() == head_revision()
    fresh_db.upsert_shows([{"show_id": "s1", "title": "Show"}])
    assert fresh_db.migrate() == head_revision()
    assert fresh_db.migrate() == head_revision()
    assert fresh_db.revision() == head_revision()
    counts = fresh_db.counts()
    assert set(counts) == TABLES and counts["shows"] == 1 and sum(counts.values()) == 1
    # A second handle on the same database (another process, in production) sees it at head too.
    other = CatalogDB(fresh_db.url, schema=fresh_db.schema)
    assert other.migrate() == head_revision() and other.get_show("s1")["title"] == "Show"
    other.close()


def _migrate_in_new_handle(url: str, schema: str | None) -> str:
    db = CatalogDB(url, schema=schema)
    try:
        return db.migrate()
    finally:
        db.close()


def test_concurrent_migrate_on_a_fresh_database(fresh_db: CatalogDB) -> None:
    """Workers starting at once (processes and threads): one migrates, the rest wait and find it done."""
    url = fresh_db.url.render_as_string(hide_password=False)
    args = [(url, fresh_db.schema)] * 3
    with multiprocessing.get_context("fork").Pool(3) as pool:
        assert pool.starmap(_migrate_in_new_handle, args) == [head_revision()] * 3
    with ThreadPoolExecutor(3) as pool:
        assert list(pool.map(_migrate_in_new_handle, *zip(*args))) == [head_revision()] * 3


def test_migrations_match_the_models_and_downgrade(db: CatalogDB) -> None:
    with db.engine.begin() as conn:
        assert set(sa.inspect(conn).get_table_names()) == TABLES | {"alembic_version"}
        diffs = compare_metadata(MigrationContext.configure(conn, opts={"compare_type": True}), metadata)
        assert diffs == [], f"schema.py and the migrations disagree: {diffs}"
        command.downgrade(alembic_config(conn), "base")
        assert set(sa.inspect(conn).get_table_names()) <= {"alembic_version"}
    assert db.migrate() == head_revision()


def test_postgres_schema_isolates_tables(pg_url: str) -> None:
    a, b = (CatalogDB(pg_url, schema=f"glide_iso_{uuid.uuid4().hex[:8]}") for _ in range(2))
    try:
        a.migrate()
        b.migrate()
        a.upsert_shows([{"show_id": "only_in_a", "title": "A"}])
        assert b.get_show("only_in_a") is None and a.get_show("only_in_a") is not None
    finally:
        for db in (a, b):
            db.close()
            with sa.create_engine(pg_url, poolclass=sa.pool.NullPool).begin() as conn:
                conn.exec_driver_sql(f'DROP SCHEMA IF EXISTS "{db.schema}" CASCADE')


def test_unreachable_postgres_is_one_clear_line() -> None:
    db = CatalogDB("postgresql+psycopg://glide:s3cret@127.0.0.1:1/test", schema="glide")
    with pytest.raises(CatalogError) as info:
        db.migrate()
    message = str(info.value)
    assert "\n" not in message and "s3cret" not in message
    assert message.startswith("cannot reach the catalog database postgresql+psycopg://glide:***@127.0.0.1:1/test")
    assert "start PostgreSQL" in message and "GLIDE_CATALOG_URL" in message
    with pytest.raises(CatalogError, match="cannot reach"):
        db.promoted_model()


def test_unreachable_sqlite_and_bad_urls(tmp_path) -> None:
    blocker = tmp_path / "not_a_dir"
    blocker.write_text("")
    with pytest.raises(CatalogError, match=r"cannot reach the catalog database sqlite:///.*not_a_dir/catalog.db .*writable"):
        CatalogDB(f"sqlite:///{blocker}/catalog.db")
    with pytest.raises(CatalogError, match="bad catalog URL"):
        CatalogDB("not a url")
    with pytest.raises(CatalogError, match="only sqlite:// and postgresql"):
        CatalogDB("mysql://u@h/db")
    with pytest.raises(CatalogError, match="bad PostgreSQL schema name 'Bad-Name'"):
        CatalogDB("postgresql+psycopg://postgres@127.0.0.1:5432/test", schema="Bad-Name")


def test_from_settings_and_cli(tmp_path, monkeypatch) -> None:
    monkeypatch.setenv("GLIDE_DATA_DIR", str(tmp_path / "data"))
    monkeypatch.delenv("GLIDE_CATALOG_URL", raising=False)
    monkeypatch.delenv("GLIDE_PROFILE", raising=False)
    db = CatalogDB.from_settings(load_settings())
    assert db.dialect == "sqlite" and db.schema is None
    assert db.url.database == str(tmp_path / "data" / "catalog.db")

    runner = CliRunner()
    result = runner.invoke(catalog, ["status"])
    assert result.exit_code == 1 and "no catalog tables" in result.output
    result = runner.invoke(catalog, ["migrate"])
    assert result.exit_code == 0, result.output
    assert f"at revision {head_revision()}" in result.output
    day = datetime(2026, 1, 1, tzinfo=timezone.utc)
    db.register_model("m1", "/m1", metrics={}, params={}, data_window=(day, day))
    db.promote_model("m1")
    result = runner.invoke(catalog, ["status"])
    assert result.exit_code == 0, result.output
    assert "shows=0, episodes=0" in result.output and "promoted model: m1" in result.output

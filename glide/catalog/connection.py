"""The catalog's connection layer: engine set-up per backend, transactions, schema migration, and the
one bulk-upsert primitive that the per-concept repositories (content, SIDs, models, job runs) share.

`CatalogDB` is composed of classes that all derive from `CatalogConnection`, so every concept sees
the same engine and the same error translation: a caller gets a `CatalogError` that says how to fix
an unreachable database or missing tables, whatever method it called.
"""

from __future__ import annotations

import re
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from pathlib import Path
from typing import Any, Self

import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from glide.catalog import migrate as _migrate
from glide.catalog import schema as t
from glide.catalog.errors import CatalogError
from glide.secrets import mask_secrets, mask_url

_SCHEMA_RE = re.compile(r"[a-z_][a-z0-9_]{0,62}")  # fullmatch: "$" would let a final newline through


def masked_url(url: str | sa.URL) -> str:
    """The URL with its password hidden, safe for error messages and logs (glide.secrets.mask_url)."""
    return mask_url(url)


class CatalogConnection:
    """Engine and transactions of one catalog. Construction is cheap (no connection); call `migrate()`
    once to create tables.

    `schema` only matters on PostgreSQL: tables live in that schema (created by `migrate()`), default
    `GLIDE_POSTGRES_SCHEMA` ("glide"). SQLite has no schemas and ignores it.
    """

    def __init__(self, url: str | sa.URL, schema: str | None = None) -> None:
        try:
            parsed = sa.make_url(url)
        except sa.exc.ArgumentError:
            raise CatalogError(
                f"bad catalog URL {masked_url(url)!r}: expected e.g. sqlite:////abs/path/catalog.db or "
                "postgresql+psycopg://user@host:5432/db (set GLIDE_CATALOG_URL)"
            ) from None
        self.url = parsed
        self.dialect = parsed.get_backend_name()
        if self.dialect not in ("sqlite", "postgresql"):
            raise CatalogError(
                f"catalog URL {masked_url(parsed)!r}: only sqlite:// and postgresql+psycopg:// are supported"
            )
        self.schema: str | None = None
        kwargs: dict[str, Any] = {}
        if self.dialect == "postgresql":
            if schema is None:
                from glide.config import load_settings

                schema = load_settings().postgres_schema
            if not _SCHEMA_RE.fullmatch(schema):
                raise CatalogError(
                    f"bad PostgreSQL schema name {schema!r}: use lowercase letters, digits and _ "
                    "(set GLIDE_POSTGRES_SCHEMA)"
                )
            self.schema = schema
            # search_path makes every unqualified name (our tables, alembic_version) live in the schema.
            kwargs = {"connect_args": {"options": f"-c search_path={schema}"}, "pool_pre_ping": True}
        else:
            database = parsed.database or ""
            if database and database != ":memory:" and not database.startswith("file:"):
                try:
                    Path(database).expanduser().parent.mkdir(parents=True, exist_ok=True)
                except OSError as exc:
                    raise CatalogError(
                        f"cannot reach the catalog database {masked_url(parsed)} (cannot create its folder: "
                        f"{exc.strerror}): check that the directory exists and is writable, or set GLIDE_CATALOG_URL"
                    ) from None
            kwargs = {"connect_args": {"timeout": 30}}
        try:
            self.engine = sa.create_engine(parsed, **kwargs)
        except (ModuleNotFoundError, sa.exc.NoSuchModuleError) as exc:
            raise CatalogError(
                f"catalog URL {masked_url(parsed)!r} needs a missing driver ({exc}); for PostgreSQL: "
                "pip install 'psycopg[binary]' psycopg-pool"
            ) from None
        if self.dialect == "sqlite":
            _sqlite_setup(self.engine)
        self.sessionmaker = sessionmaker(self.engine)
        self._insert = sqlite.insert if self.dialect == "sqlite" else postgresql.insert

    @classmethod
    def from_settings(cls, settings: Any = None) -> Self:
        """The catalog the GLIDE settings point at (`catalog_db_url`, `postgres_schema`)."""
        from glide.config import load_settings

        settings = settings or load_settings()
        return cls(settings.catalog_db_url, schema=settings.postgres_schema)

    def __repr__(self) -> str:
        suffix = f", schema={self.schema!r}" if self.schema else ""
        return f"CatalogDB({masked_url(self.url)!r}{suffix})"

    def close(self) -> None:
        self.engine.dispose()

    # -- connections -------------------------------------------------------------------------

    def _unreachable(self, exc: Exception) -> CatalogError:
        lines = mask_secrets(getattr(exc, "orig", None) or exc).strip().splitlines()
        reason = lines[0] if lines else type(exc).__name__
        if self.dialect == "sqlite":
            fix = "check that the directory exists and is writable, or set GLIDE_CATALOG_URL"
        else:
            fix = "start PostgreSQL or fix host/port/user/database in the URL, or set GLIDE_CATALOG_URL"
        return CatalogError(f"cannot reach the catalog database {masked_url(self.url)} ({reason}): {fix}")

    @contextmanager
    def _begin(self, write: bool = False) -> Iterator[sa.Connection]:
        """One transaction; connection failures and missing tables become CatalogErrors."""
        try:
            conn = self.engine.connect()
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise self._unreachable(exc) from None
        with conn:
            if write:
                conn = conn.execution_options(glide_write=True)
            try:
                with conn.begin():
                    yield conn
            except (sa.exc.OperationalError, sa.exc.ProgrammingError) as exc:
                if _is_missing_table(exc):
                    where = f" (schema {self.schema!r})" if self.schema else ""
                    raise CatalogError(
                        f"catalog tables are missing in {masked_url(self.url)}{where}: run CatalogDB.migrate() "
                        "first (or: python -m glide_app.commands.catalog migrate)"
                    ) from exc
                raise

    def _upsert(
        self,
        conn: sa.Connection,
        table: sa.Table,
        records: list[dict],
        keys: Sequence[str],
        constants: Mapping[str, Any] | None = None,
        update: Sequence[str] | None = None,
    ) -> None:
        """INSERT ... ON CONFLICT (keys) DO UPDATE for validated records that all have the same keys;
        on conflict only `update` columns (default: all) and the constants are overwritten.

        Runs the compiled statement through the driver's executemany with values converted column by
        column by the columns' own SQLAlchemy bind processors: the same bytes as `conn.execute(stmt,
        records)`, at about half the Python cost per row (100k episodes: ~1 s less on SQLite).
        `constants` are columns with one value for every row (converted once)."""
        constants = dict(constants or {})
        # Rows in key order: concurrent writers (two stream workers upserting the same shows) then
        # take row locks in one order, so PostgreSQL never deadlocks them.
        records = sorted(records, key=lambda r: tuple(str(r[k]) for k in keys))
        names = list(records[0]) + list(constants)
        stmt = self._insert(table)
        updated = names if update is None else [*update, *constants]
        update_cols = [c for c in updated if c not in keys]
        stmt = stmt.on_conflict_do_update(
            index_elements=list(keys), set_={c: stmt.excluded[c] for c in update_cols}
        )
        compiled = stmt.compile(dialect=conn.dialect, column_keys=names)
        order = list(compiled.positiontup or ()) if compiled.positional else names
        dialect = conn.dialect
        columns = []
        for name in order:
            proc = table.c[name].type.dialect_impl(dialect).bind_processor(dialect)
            if name in constants:
                value = proc(constants[name]) if proc else constants[name]
                columns.append([value] * len(records))
                continue
            values = [r[name] for r in records]
            columns.append(list(map(proc, values)) if proc else values)
        rows = list(zip(*columns)) if compiled.positional else [dict(zip(order, v)) for v in zip(*columns)]
        for start in range(0, len(rows), 20_000):
            conn.exec_driver_sql(compiled.string, rows[start : start + 20_000])

    # -- schema ------------------------------------------------------------------------------

    def migrate(self) -> str:
        """Create or upgrade the tables to the newest revision; safe to call any number of times."""
        if self.schema is not None:
            self._create_schema()
        with self._begin(write=True) as conn:
            if self.dialect == "postgresql":
                # Workers starting together on a fresh schema: one migrates, the others wait, then no-op.
                key = sa.func.hashtext(f"glide-catalog:{self.schema}")
                conn.execute(sa.select(sa.func.pg_advisory_xact_lock(key)))
            _migrate.upgrade_to_head(conn)
            return _migrate.current_revision(conn) or ""

    def counts(self) -> dict[str, int]:
        """Row count per catalog table."""
        tables = (t.shows, t.episodes, t.quantizers, t.sid_assignments, t.model_versions, t.job_runs)
        with self._begin() as conn:
            return {tb.name: conn.scalar(sa.select(sa.func.count()).select_from(tb)) or 0 for tb in tables}

    def revision(self) -> str | None:
        """The applied migration revision (None: never migrated)."""
        with self._begin() as conn:
            return _migrate.current_revision(conn)

    def _create_schema(self) -> None:
        # A separate engine: the main one pins search_path to a schema that may not exist yet.
        engine = sa.create_engine(self.url, poolclass=sa.pool.NullPool)
        try:
            with engine.begin() as conn:
                conn.exec_driver_sql(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"')
        except (sa.exc.OperationalError, sa.exc.InterfaceError) as exc:
            raise self._unreachable(exc) from None
        except sa.exc.IntegrityError:
            pass  # a concurrent migrate() created it between the check and the insert
        finally:
            engine.dispose()


def _sqlite_setup(engine: sa.Engine) -> None:
    """FKs on, WAL so readers never block the writer, and BEGIN IMMEDIATE for write transactions so two
    writers queue on busy_timeout instead of failing on a lock upgrade."""

    @event.listens_for(engine, "connect")
    def _on_connect(dbapi_conn: Any, _record: Any) -> None:
        dbapi_conn.isolation_level = None  # we emit BEGIN ourselves (below)
        cur = dbapi_conn.cursor()
        cur.execute("PRAGMA foreign_keys=ON")
        cur.execute("PRAGMA busy_timeout=30000")
        if engine.url.database not in (None, "", ":memory:"):
            cur.execute("PRAGMA journal_mode=WAL")
        cur.close()

    @event.listens_for(engine, "begin")
    def _on_begin(conn: sa.Connection) -> None:
        write = conn.get_execution_options().get("glide_write")
        conn.exec_driver_sql("BEGIN IMMEDIATE" if write else "BEGIN")


def _is_missing_table(exc: sa.exc.DBAPIError) -> bool:
    if getattr(exc.orig, "sqlstate", None) == "42P01":  # PostgreSQL undefined_table
        return True
    return "no such table" in str(exc.orig)

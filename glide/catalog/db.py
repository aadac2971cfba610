"""`CatalogDB`: the catalog/metadata database (shows, episodes, quantizers, SID assignments, model
versions, job runs) over SQLite (embedded profile) or PostgreSQL (cluster profile)."""

from __future__ import annotations

import json
import math
import re
import traceback
from collections.abc import Iterator, Mapping, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import sqlalchemy as sa
from sqlalchemy import event
from sqlalchemy.dialects import postgresql, sqlite
from sqlalchemy.orm import sessionmaker

from glide.catalog import migrate as _migrate
from glide.catalog import schema as t
from glide.catalog.errors import CatalogError
from glide.catalog.rows import EPISODE_FIELDS, SHOW_FIELDS, _Bad, clean_rows, decode_sid, encode_sid, to_utc

EPISODE_COLUMNS: list[str] = [f.name for f in EPISODE_FIELDS]
SHOW_COLUMNS: list[str] = [f.name for f in SHOW_FIELDS]

_SCHEMA_RE = re.compile(r"^[a-z_][a-z0-9_]{0,62}$")
_IN_CHUNK = 1000  # ids per IN (...) clause: well under SQLite's bound-parameter limit
_MAX_ERROR_CHARS = 20_000


@dataclass
class JobRun:
    """The row `CatalogDB.job_run` opened; `id` identifies it in `job_runs()`."""

    id: int
    job: str
    params: dict[str, Any]
    started_at: datetime


def masked_url(url: str | sa.URL) -> str:
    try:
        return sa.make_url(url).render_as_string(hide_password=True)
    except Exception:
        return "<unparseable URL>"


class CatalogDB:
    """Catalog access. Construction is cheap (no connection); call `migrate()` once to create tables.

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
            if not _SCHEMA_RE.match(schema):
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
    def from_settings(cls, settings: Any = None) -> CatalogDB:
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
        lines = str(getattr(exc, "orig", None) or exc).strip().splitlines()
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

    # -- shows and episodes ------------------------------------------------------------------

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
            for chunk in _chunks(wanted):
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
                for chunk in _chunks(sorted(set(show_ids))):
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

    # -- quantizers and Semantic IDs ---------------------------------------------------------

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
        _check_name(version, "quantizer version", 128)
        _check_name(kind, "quantizer kind", 32)
        levels = _check_int(levels, "levels", 1, 16)
        codebook_size = _check_int(codebook_size, "codebook_size", 2, 1_000_000)
        row = {
            "version": version,
            "kind": kind,
            "artifact_path": str(artifact_path),
            "levels": levels,
            "codebook_size": codebook_size,
            "created_at": t.utcnow(),
            "metrics": _jsonable(dict(metrics or {}), "metrics"),
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

    # -- model versions ----------------------------------------------------------------------

    def register_model(
        self,
        version: str,
        artifact_path: str | Path,
        metrics: Mapping[str, Any],
        params: Mapping[str, Any],
        data_window: tuple[datetime, datetime],
    ) -> None:
        """Record a trained model (not promoted). Versions are immutable: re-registering one is an error."""
        _check_name(version, "model version", 128)
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
            "metrics": _jsonable(dict(metrics), "metrics"),
            "params": _jsonable(dict(params), "params"),
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

    def list_models(self) -> list[dict[str, Any]]:
        """All model versions, newest first."""
        mv = t.model_versions
        with self._begin() as conn:
            rows = conn.execute(sa.select(mv).order_by(mv.c.created_at.desc(), mv.c.version.desc())).all()
        return [dict(r._mapping) for r in rows]

    # -- job runs ----------------------------------------------------------------------------

    @contextmanager
    def job_run(self, job: str, params: Mapping[str, Any] | None = None) -> Iterator[JobRun]:
        """Record a job: a `running` row now, then `succeeded`, or `failed` with the error (re-raised)."""
        _check_name(job, "job name", 64)
        clean: dict[str, Any] = _jsonable(dict(params or {}), "params")
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


# -- helpers ---------------------------------------------------------------------------------


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


def _chunks(items: Sequence[str], size: int = _IN_CHUNK) -> Iterator[Sequence[str]]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _check_name(value: Any, what: str, max_len: int) -> None:
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise CatalogError(f"{what} must be a non-empty string of at most {max_len} characters, got {value!r}")


def _check_int(value: Any, what: str, lo: int, hi: int) -> int:
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not lo <= value <= hi:
        raise CatalogError(f"{what} must be an int in [{lo}, {hi}], got {value!r}")
    return int(value)


def _jsonable(obj: Any, what: str) -> Any:
    """Plain JSON values (numpy scalars/arrays become Python); NaN/inf and other objects are errors."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CatalogError(f"{what}: keys must be strings, got {k!r}")
            out[k] = _jsonable(v, f"{what}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple, np.ndarray)):
        items = obj.tolist() if isinstance(obj, np.ndarray) else obj
        return [_jsonable(v, f"{what}[{i}]") for i, v in enumerate(items)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise CatalogError(f"{what} is {obj}: JSON has no NaN/inf; store None or a string instead")
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    try:
        json.dumps(obj)
    except TypeError:
        raise CatalogError(f"{what}: {type(obj).__name__} is not JSON-serialisable: convert it first") from None
    return obj

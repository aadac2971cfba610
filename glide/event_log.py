"""The offline event log: every listen and catalog update the stream processors accepted, as the
offline jobs read it. A deployment has no world files; this log is what retraining learns from.

Two kinds of record, each with the Kafka partition and offset it came from:
- ``listens``: the accepted listen events (the world contract's ``listens`` columns).
- ``catalog``: the accepted catalog updates (episode fields, the show as JSON when the update had one).

Exactly once without transactions across systems: a writer appends each processed batch under a
name made of (partition, first offset, next offset), data first, then a small manifest; a crash
before the writer's own offset commit repeats the batch, which writes the same rows again. Readers
keep only data a manifest names and drop repeated (partition, offset) rows, so a batch written
twice counts once, and a file a manifest names that is gone or unreadable is an error naming it.

Storage by profile:
- embedded: Parquet under ``<data_dir>/event_log/<kind>/date=YYYY-MM-DD/`` (event date, UTC), one
  file per batch and date, manifests under ``<kind>/_batches/``.
- cluster: one PostgreSQL table per kind (``event_log_<kind>``) in ``GLIDE_POSTGRES_SCHEMA``,
  primary key (partition, offset): an insert that repeats rows is a no-op.
"""

from __future__ import annotations

import json
import os
from collections.abc import Iterable, Mapping, Sequence
from pathlib import Path
from typing import Protocol

import pandas as pd
import pyarrow as pa
import pyarrow.parquet as pq

from glide.config import GlideSettings

KINDS = ("listens", "catalog")
SOURCE_COLUMNS = ("partition", "offset")
# Columns per kind; times are epoch milliseconds UTC in storage, pandas UTC timestamps when read.
SCHEMAS: dict[str, pa.Schema] = {
    "listens": pa.schema([
        ("event_id", pa.string()), ("user_id", pa.string()), ("episode_id", pa.string()),
        ("show_id", pa.string()), ("listened_seconds", pa.int64()), ("ts", pa.int64()),
        ("surface", pa.string()), ("locale", pa.string()),
        ("partition", pa.int32()), ("offset", pa.int64()),
    ]),
    "catalog": pa.schema([
        ("event_id", pa.string()), ("ts", pa.int64()), ("episode_id", pa.string()), ("show_id", pa.string()),
        ("title", pa.string()), ("description", pa.string()), ("topic", pa.string()), ("locale", pa.string()),
        ("published_at", pa.int64()), ("duration_s", pa.int64()), ("playable", pa.bool_()),
        ("popularity", pa.float64()), ("show", pa.string()),
        ("partition", pa.int32()), ("offset", pa.int64()),
    ]),
}
TIME_COLUMNS = {"listens": ("ts",), "catalog": ("ts", "published_at")}


class EventLogError(RuntimeError):
    """The log cannot be read as written (a named file missing or corrupt, an empty window)."""


class EventLog(Protocol):
    def append(self, kind: str, rows: Sequence[Mapping], partition: int, first_offset: int,
               next_offset: int) -> int:
        """Store one processed batch's accepted rows (idempotent per batch); returns rows stored."""
        ...

    def read(self, kind: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        """Every logged row of ``kind`` with ``start <= ts < end``, once each, in event-time order."""
        ...


def open_event_log(settings: GlideSettings) -> EventLog:
    if settings.profile == "cluster":
        return PostgresEventLog(settings.postgres_url, settings.postgres_schema)
    return ParquetEventLog(settings.data_dir / "event_log")


def _check_kind(kind: str) -> None:
    if kind not in KINDS:
        raise ValueError(f"event log kind must be one of {KINDS}, got {kind!r}")


def _table(kind: str, rows: Sequence[Mapping], partition: int) -> pa.Table:
    schema = SCHEMAS[kind]
    columns = {f.name: [r.get(f.name) for r in rows] for f in schema if f.name not in SOURCE_COLUMNS}
    columns["partition"] = [partition] * len(rows)
    columns["offset"] = [int(r["offset"]) for r in rows]
    return pa.table(columns, schema=schema)


def to_frame(kind: str, table: pa.Table | pd.DataFrame) -> pd.DataFrame:
    """Storage rows -> the frame jobs use: one row per (partition, offset), UTC timestamps, sorted."""
    if isinstance(table, pd.DataFrame):  # from SQL: the storage schema's types, as Parquet reads them
        table = pa.Table.from_pandas(table[SCHEMAS[kind].names], schema=SCHEMAS[kind], preserve_index=False)
    frame = table.to_pandas()
    frame = frame.drop_duplicates(list(SOURCE_COLUMNS), keep="first")
    frame = frame.sort_values(["ts", "partition", "offset"], kind="stable").reset_index(drop=True)
    for col in TIME_COLUMNS[kind]:
        frame[col] = pd.to_datetime(frame[col].astype("int64"), unit="ms", utc=True)
    return frame


def _window(frame: pd.DataFrame, start: pd.Timestamp | None, end: pd.Timestamp | None) -> pd.DataFrame:
    keep = pd.Series(True, index=frame.index)
    if start is not None:
        keep &= frame["ts"] >= pd.Timestamp(start)
    if end is not None:
        keep &= frame["ts"] < pd.Timestamp(end)
    return frame[keep].reset_index(drop=True)


class ParquetEventLog:
    """The embedded profile's log: Parquet partitioned by event date (see the module docstring)."""

    def __init__(self, root: Path):
        self.root = Path(root)

    def _batch_name(self, partition: int, first_offset: int, next_offset: int) -> str:
        return f"p{partition:04d}-{first_offset:012d}-{next_offset:012d}"

    def append(self, kind: str, rows: Sequence[Mapping], partition: int, first_offset: int,
               next_offset: int) -> int:
        _check_kind(kind)
        if not rows:
            return 0
        name = self._batch_name(partition, first_offset, next_offset)
        table = _table(kind, rows, partition)
        dates = pd.to_datetime(table.column("ts").to_numpy(), unit="ms", utc=True).strftime("%Y-%m-%d")
        files = {}
        for date in sorted(set(dates)):
            part = table.filter(pa.array(dates == date))
            path = self.root / kind / f"date={date}" / f"{name}.parquet"
            _write_atomically(path, lambda tmp, part=part: pq.write_table(part, tmp))
            files[str(path.relative_to(self.root / kind))] = part.num_rows
        manifest = self.root / kind / "_batches" / f"{name}.json"
        _write_atomically(manifest, lambda tmp: Path(tmp).write_text(json.dumps({"files": files})))
        return table.num_rows

    def manifests(self, kind: str) -> list[Path]:
        return sorted((self.root / kind / "_batches").glob("*.json"))

    def read(self, kind: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        _check_kind(kind)
        tables = [self._read_file(kind, rel, count) for rel, count in self._listed_files(kind, start, end)]
        if not tables:
            return to_frame(kind, SCHEMAS[kind].empty_table())
        return _window(to_frame(kind, pa.concat_tables(tables)), start, end)

    def _listed_files(self, kind: str, start, end) -> Iterable[tuple[str, int]]:
        first_day = None if start is None else pd.Timestamp(start).strftime("%Y-%m-%d")
        last_day = None if end is None else pd.Timestamp(end).strftime("%Y-%m-%d")
        for manifest in self.manifests(kind):
            try:
                files = json.loads(manifest.read_text())["files"]
            except (OSError, ValueError, KeyError) as exc:
                raise EventLogError(f"event log manifest {manifest} is unreadable ({exc}); "
                                    "restore it or move the batch aside") from None
            for rel, count in files.items():
                day = rel.split("/")[0].removeprefix("date=")
                if (first_day is None or day >= first_day) and (last_day is None or day <= last_day):
                    yield rel, int(count)

    def _read_file(self, kind: str, rel: str, count: int) -> pa.Table:
        path = self.root / kind / rel
        if not path.exists():
            raise EventLogError(f"event log partition {path} is missing (its batch manifest lists {count} rows)")
        try:
            table = pq.read_table(path, schema=SCHEMAS[kind])
        except (OSError, pa.ArrowException) as exc:
            raise EventLogError(f"event log partition {path} is corrupt: {exc}") from None
        if table.num_rows != count:
            raise EventLogError(f"event log partition {path} has {table.num_rows} rows, its manifest {count}")
        return table


def _write_atomically(path: Path, write) -> None:
    """Readers never see half a file: write beside it, then rename over it."""
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_name(f".{path.name}.{os.getpid()}.tmp")
    write(str(tmp))
    os.replace(tmp, path)


_PG_TYPES = {pa.string(): "TEXT", pa.int64(): "BIGINT", pa.int32(): "INTEGER", pa.bool_(): "BOOLEAN",
             pa.float64(): "DOUBLE PRECISION"}


class PostgresEventLog:
    """The cluster profile's log: one table per kind, primary key (partition, offset)."""

    def __init__(self, url: str, schema: str):
        import sqlalchemy

        self.engine = sqlalchemy.create_engine(url)
        self.schema = schema
        self._ready: set[str] = set()

    def _name(self, kind: str) -> str:
        return f'"{self.schema}"."event_log_{kind}"'

    def _ensure(self, kind: str) -> None:
        if kind in self._ready:
            return
        import sqlalchemy

        cols = ", ".join(f'"{f.name}" {_PG_TYPES[f.type]}' for f in SCHEMAS[kind])
        with self.engine.begin() as conn:
            # Two workers starting together would race CREATE ... IF NOT EXISTS (PostgreSQL then
            # fails one with a unique violation on pg_type): one at a time, inside this transaction.
            conn.execute(sqlalchemy.text("SELECT pg_advisory_xact_lock(hashtext('glide_event_log'))"))
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{self.schema}"'))
            conn.execute(sqlalchemy.text(
                f'CREATE TABLE IF NOT EXISTS {self._name(kind)} ({cols}, PRIMARY KEY ("partition", "offset"))'))
        self._ready.add(kind)

    def append(self, kind: str, rows: Sequence[Mapping], partition: int, first_offset: int,
               next_offset: int) -> int:
        _check_kind(kind)
        if not rows:
            return 0
        import sqlalchemy

        self._ensure(kind)
        names = [f.name for f in SCHEMAS[kind]]
        records = _table(kind, rows, partition).to_pylist()
        sql = (f"INSERT INTO {self._name(kind)} ({', '.join(chr(34) + n + chr(34) for n in names)}) "
               f"VALUES ({', '.join(':' + n for n in names)}) ON CONFLICT DO NOTHING")
        with self.engine.begin() as conn:  # one transaction per batch
            conn.execute(sqlalchemy.text(sql), records)
        return len(records)

    def read(self, kind: str, start: pd.Timestamp | None = None, end: pd.Timestamp | None = None) -> pd.DataFrame:
        _check_kind(kind)
        self._ensure(kind)
        frame = pd.read_sql(f"SELECT * FROM {self._name(kind)}", self.engine)
        return _window(to_frame(kind, frame), start, end)

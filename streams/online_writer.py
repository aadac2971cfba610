"""Bulk, newest-wins writes into Feast's online store, in Feast's own storage format, without
importing Feast (an import costs 7-16 s here, which every worker restart would pay).

Why not ``store.push``: measured on SQLite here, 256 calls/s one row at a time and 12.9k rows/s for
a single 20k-row frame, far too slow for tens of thousands of updates a second. This module writes
the rows Feast's SQLite and Redis online stores write, with the bytes from
``streams.online_encoding``, so ``get_online_features`` reads them unchanged.

Why newest-wins: a row is written only if its timestamp is newer than the stored one, on both stores
(Feast's Redis store already compares; its SQLite store overwrites, and keeps only whole seconds, so a
``glide_ts_us`` column is added next to Feast's columns). Writes then commute: whatever order two
writers' batches land in (a worker that lost its partitions mid-batch, a batch redone after a crash),
readers see the row with the newest timestamp. The stream processors give every entity strictly
increasing timestamps, so "newest" is "latest state".

Rows are ``streams.online_rows.Row``; the view layouts come from ``streams.online_layout``.

Outages: every write and lookup is retried on transient errors (Redis down or loading, SQLite
``database is locked``; streams/retry.py) with backoff up to ``GLIDE_STREAMS_RETRY_DEADLINE_S``; newest-wins
makes a repeated write harmless, also one that half-landed before the connection dropped. After the
deadline the error is raised (:class:`streams.retry.RetryExhausted`): the stream worker then exits for a
clean restart, its state already committed, and re-pushes the unpushed rows when it loads the partition.
"""

from __future__ import annotations

import sqlite3
import time
from collections.abc import Iterable, Sequence
from pathlib import Path
from typing import Any

from glide.config import ConfigError, GlideSettings
from streams.checkpointer import connect_wal
from streams.config import load_stream_settings
from streams.feast_config import repo_config_dict
from streams.online_encoding import (
    ViewLayout, protobuf_timestamp, redis_field, redis_key, redis_ts_field, sqlite_table, text_and_num,
)
from streams.online_layout import load_layout
from streams.online_rows import Row
from streams.retry import Retry, call as retry_call

# Newest-wins for many keys in one call (atomic per key): ARGV = mine-field, feast-ts-field, then per
# key: ts_us, feast ts bytes, n, n field/value pairs. One call per chunk instead of one per row: the
# per-command overhead, not the hash writes, dominated (21 us/row -> see RESULTS.md). A multi-key
# script needs a single Redis node (not Redis Cluster), which GLIDE_REDIS_URL is.
_LUA = """
local mine, feast = ARGV[1], ARGV[2]
local i, written = 3, 0
for k = 1, #KEYS do
  local ts, tsb, n = ARGV[i], ARGV[i + 1], tonumber(ARGV[i + 2])
  i = i + 3
  local prev = redis.call('HGET', KEYS[k], mine)
  if not prev or tonumber(prev) < tonumber(ts) then
    if n > 0 then
      redis.call('HSET', KEYS[k], mine, ts, feast, tsb, unpack(ARGV, i, i + 2 * n - 1))
    else
      redis.call('HSET', KEYS[k], mine, ts, feast, tsb)
    end
    written = written + 1
  end
  i = i + 2 * n
end
return written
"""
_REDIS_CHUNK = 200  # keys per script call
_SQL_IN_CHUNK = 500  # entity keys per IN (...) query, under SQLite's bound-parameter limit


class OnlineWriter:
    """``write(view, rows)``: newest-wins bulk upsert; ``existing(view, keys)``: which entities have a
    row. One writer per thread (it owns its connections). ``retry``: the policy of transient errors
    (default: from GLIDE_STREAMS_RETRY_*)."""

    def __init__(self, settings: GlideSettings, project: str | None = None, layout: dict | None = None,
                 retry: Retry | None = None):
        self.retry = retry or Retry.from_settings(load_stream_settings(), "streams")
        cfg = repo_config_dict(settings, project)
        layout = layout or load_layout(settings, cfg["project"])
        if layout.get("versioning"):
            raise ConfigError("the online writer does not support enable_online_feature_view_versioning")
        self.project = cfg["project"]
        self.kind = cfg["online_store"]["type"]
        self.views = {n: ViewLayout(n, v["join_keys"], [tuple(f) for f in v["features"]])
                      for n, v in layout["views"].items()}
        if not self.views:
            raise ConfigError(f"no feature views in Feast project {self.project!r}: run `glide stack up` first")
        if self.kind == "sqlite":
            self._sqlite_init(cfg["online_store"]["path"])
        elif self.kind == "redis":
            self._redis_init(cfg["online_store"]["connection_string"])
        else:
            raise ConfigError(f"online writer supports the sqlite and redis online stores, not {self.kind!r}")

    def view(self, name: str) -> ViewLayout:
        try:
            return self.views[name]
        except KeyError:
            raise ConfigError(f"feature view {name!r} is not registered in project {self.project!r}") from None

    def write(self, view: str, rows: Iterable[Row]) -> int:
        """Write rows (entity values in join-key order, feature values in the view's feature order,
        event time in µs); rows older than what is stored are dropped by the store, and SKIP values
        leave that feature as stored. Returns rows sent."""
        v = self.view(view)
        rows = list(rows)
        if rows:
            retry_call(self.retry, "online_write", self._sqlite_write if self.kind == "sqlite" else self._redis_write,
                       v, rows)
        return len(rows)

    def existing(self, view: str, keys: Sequence[tuple[str, ...]]) -> list[bool]:
        """Whether each entity has a row in ``view``."""
        v = self.view(view)
        eks = [v.entity_key(k) for k in keys]
        if not eks:
            return []
        return retry_call(self.retry, "online_read",
                          self._sqlite_existing if self.kind == "sqlite" else self._redis_existing, view, eks)

    def close(self) -> None:
        (self._conn if self.kind == "sqlite" else self._redis).close()

    # -- SQLite ----------------------------------------------------------------------------------

    def _sqlite_init(self, path: str) -> None:
        if not Path(path).exists():
            raise ConfigError(f"online store {path} does not exist: run `glide stack up` first")
        self._conn = connect_wal(path)  # readers never block the writer, checkpoints off the commit path
        self._conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: the hot part of the store stays parsed
        self._tables: dict[str, str] = {}
        self._sql: dict[str, tuple[str, bool]] = {}
        for name in self.views:
            table = sqlite_table(self.project, name)
            cols = self._table_columns(table)
            self._tables[name] = table
            self._sql[name] = (self._upsert_sql(table, "value_num" in cols), "value_num" in cols)

    def _table_columns(self, table: str) -> set[str]:
        """The table's columns, after adding ``glide_ts_us`` if it is missing. Feast keeps event_ts in
        whole seconds; newest-wins needs a finer order. Feast reads and writes named columns only, so
        the extra column is invisible to it."""
        cols = {r[1] for r in self._conn.execute(f'PRAGMA table_info("{table}")')}
        if not cols:
            raise ConfigError(f"online table {table} is missing: run `glide stack up` (feast apply) first")
        if "glide_ts_us" not in cols:
            try:
                self._conn.execute(f'ALTER TABLE "{table}" ADD COLUMN glide_ts_us INTEGER')
            except sqlite3.OperationalError as exc:
                if "duplicate column" not in str(exc):  # another writer added it first
                    raise
        return cols

    @staticmethod
    def _upsert_sql(table: str, has_num: bool) -> str:
        """An upsert of one feature value that changes the stored row only if it is newer."""
        names = ["entity_key", "feature_name", "value", "value_text"] + (["value_num"] if has_num else []) + [
            "event_ts", "created_ts", "glide_ts_us"]
        updates = ", ".join(f"{c} = excluded.{c}" for c in names[2:])
        return (f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))}) '
                f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {updates} "
                f"WHERE excluded.glide_ts_us > COALESCE(glide_ts_us, -1)")

    def _sqlite_params(self, v: ViewLayout, rows: list[Row], has_num: bool) -> list[tuple]:
        """One parameter tuple per (row, feature) that is not SKIP."""
        created = int(time.time())
        params: list[tuple] = []
        features, kinds = v.features, v.kinds
        for key, values, ts_us in rows:
            ek = v.entity_key(key)
            ts = ts_us // 1_000_000  # what Feast's own sqlite adapter stores: epoch seconds
            for fname, kind, blob, value in zip(features, kinds, v.encode(values), values):
                if blob is None:
                    continue
                text, num = text_and_num(kind, value)
                if has_num:
                    params.append((ek, fname, blob, text, num, ts, created, ts_us))
                else:
                    params.append((ek, fname, blob, text, ts, created, ts_us))
        return params

    def _sqlite_write(self, v: ViewLayout, rows: list[Row]) -> None:
        sql, has_num = self._sql[v.name]
        params = self._sqlite_params(v, rows, has_num)
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, params)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    def _sqlite_existing(self, view: str, eks: list[bytes]) -> list[bool]:
        found: set[bytes] = set()
        for i in range(0, len(eks), _SQL_IN_CHUNK):
            chunk = eks[i:i + _SQL_IN_CHUNK]
            found.update(r[0] for r in self._conn.execute(
                f'SELECT DISTINCT entity_key FROM "{self._tables[view]}" WHERE entity_key IN '
                f'({",".join("?" * len(chunk))})', chunk))
        return [ek in found for ek in eks]

    # -- Redis -----------------------------------------------------------------------------------

    def _redis_init(self, connection_string: str) -> None:
        import redis

        host_port, *opts = connection_string.split(",")
        host, _, port = host_port.partition(":")
        kw = dict(o.split("=", 1) for o in opts if "=" in o)
        self._redis = redis.Redis(host=host, port=int(port or 6379), db=int(kw.get("db", 0)),
                                  password=kw.get("password"), ssl=kw.get("ssl", "false").lower() == "true")
        self._sha = retry_call(self.retry, "online_connect", self._redis.script_load, _LUA)
        self._fields = {n: [redis_field(n, f) for f in v.features] for n, v in self.views.items()}

    def _redis_calls(self, v: ViewLayout, rows: list[Row]) -> list[tuple[list[bytes], list[Any]]]:
        """(KEYS, ARGV) of one script call per chunk of rows, in the layout the script reads."""
        fields = self._fields[v.name]
        head = [f"_glide_us:{v.name}", redis_ts_field(v.name)]
        calls = []
        for start in range(0, len(rows), _REDIS_CHUNK):
            keys: list[bytes] = []
            args: list[Any] = list(head)
            for key, values, ts_us in rows[start:start + _REDIS_CHUNK]:
                pairs = [x for f, blob in zip(fields, v.encode(values)) if blob is not None for x in (f, blob)]
                keys.append(redis_key(v.entity_key(key), self.project))
                args += [ts_us, protobuf_timestamp(ts_us), len(pairs) // 2, *pairs]
            calls.append((keys, args))
        return calls

    def _redis_write(self, v: ViewLayout, rows: list[Row]) -> None:
        import redis

        calls = self._redis_calls(v, rows)
        for attempt in range(2):
            try:
                with self._redis.pipeline(transaction=False) as pipe:
                    for keys, args in calls:
                        pipe.execute_command("EVALSHA", self._sha, len(keys), *keys, *args)
                    pipe.execute()
                return
            except redis.exceptions.NoScriptError:
                if attempt:
                    raise
                self._sha = self._redis.script_load(_LUA)  # the server restarted or was flushed

    def _redis_existing(self, view: str, eks: list[bytes]) -> list[bool]:
        with self._redis.pipeline(transaction=False) as pipe:
            for ek in eks:
                pipe.hexists(redis_key(ek, self.project), redis_ts_field(view))
            return [bool(x) for x in pipe.execute()]

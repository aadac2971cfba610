"""Bulk, newest-wins writes into Feast's online store, in Feast's own storage format, without importing
Feast (an import costs 7-16 s here, which every worker restart would pay).

Why not ``store.push``: measured on SQLite here, 256 calls/s one row at a time and 12.9k rows/s for
a single 20k-row frame, far too slow for tens of thousands of updates a second. This module writes the bytes Feast's SQLite and Redis online stores
write (serialized entity keys v3, ``feast.types.Value`` protobufs), so ``get_online_features`` reads
them unchanged; ``tests/streams/test_online_writer.py`` checks the bytes against Feast's own code.

Why newest-wins: a row is written only if its timestamp is newer than the stored one, on both stores
(Feast's Redis store already compares; its SQLite store overwrites, and keeps only whole seconds, so a
``glide_ts_us`` column is added next to Feast's columns). Writes then commute: whatever order two
writers' batches land in (a worker that lost its partitions mid-batch, a batch redone after a crash),
readers see the row with the newest timestamp. The stream processors give every entity strictly
increasing timestamps, so "newest" is "latest state".

The view layout (join keys, features and types) comes from ``<feast_dir>/layout-<project>.json``,
written by ``streams.feature_store.apply_definitions``; without it Feast is imported once to build it.
"""

from __future__ import annotations

import json
import sqlite3
import struct
import time
from collections.abc import Iterable, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

from glide.config import ConfigError, GlideSettings

Row = tuple[tuple[str, ...], Sequence[Any], int]  # (entity values in join-key order, feature values, ts µs)


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


SKIP = _Skip()  # a feature value meaning "unchanged: leave the stored value as it is"

_STRING_TAG = 2  # feast ValueType.STRING: the type tag inside serialized entity keys


# --- protobuf wire format of feast.types.Value (only the types GLIDE's views use) -------------------


def _varint(n: int) -> bytes:
    n &= 0xFFFFFFFFFFFFFFFF  # negative int64 -> two's complement, as protobuf does
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = [_varint(i) for i in range(1 << 14)]  # one or two bytes: SID codes, lengths, small counts


def _len_field(field: int, payload: bytes) -> bytes:
    n = len(payload)
    return _varint(field << 3 | 2) + (_VARINTS[n] if n < 16384 else _varint(n)) + payload


_ELEMENTS: dict[str, bytes] = {}  # string -> its bytes as one element of a StringList (episode ids repeat)


def _element(x: str) -> bytes:
    b = _ELEMENTS.get(x)
    if b is None:
        if len(_ELEMENTS) > 1_000_000:
            _ELEMENTS.clear()
        b = _ELEMENTS[x] = _len_field(1, str(x).encode())
    return b


def _v_int(field: int):
    tag = _varint(field << 3)
    return lambda v: tag + _varint(int(v))


def _v_string(v: Any) -> bytes:
    return _len_field(2, str(v).encode())


def _v_bool(v: Any) -> bytes:
    return b"\x38\x01" if v else b"\x38\x00"


def _v_float(v: Any) -> bytes:
    return b"\x35" + struct.pack("<f", float(v))


def _v_double(v: Any) -> bytes:
    return b"\x29" + struct.pack("<d", float(v))


def _v_ts(v: Any) -> bytes:
    """UnixTimestamp: Feast stores whole epoch seconds; we take epoch ms (or a datetime)."""
    secs = int(v.timestamp()) if isinstance(v, datetime) else int(v) // 1000
    return b"\x40" + _varint(secs)


def _v_string_list(v: Any) -> bytes:
    parts = list(map(_ELEMENTS.get, v))  # C-level lookups; a miss falls back to _element
    if None in parts:
        parts = list(map(_element, v))
    return _len_field(12, b"".join(parts))


def _v_int64_list(v: Any) -> bytes:
    if not len(v):
        return b"\x72\x00"
    if min(v) >= 0 and max(v) < 16384:
        packed = b"".join(map(_VARINTS.__getitem__, v))
    else:
        packed = b"".join(_varint(int(x)) for x in v)
    return _len_field(14, _len_field(1, packed))


def _v_float_list(v: Any) -> bytes:
    packed = struct.pack(f"<{len(v)}f", *v) if len(v) else b""
    return _len_field(16, _len_field(1, packed) if packed else b"")


ENCODERS = {
    "INT64": _v_int(4), "INT32": _v_int(3), "BOOL": _v_bool, "FLOAT": _v_float, "DOUBLE": _v_double,
    "STRING": _v_string, "UNIX_TIMESTAMP": _v_ts, "STRING_LIST": _v_string_list,
    "INT64_LIST": _v_int64_list, "FLOAT_LIST": _v_float_list,
}


def _text_num(kind: str, v: Any) -> tuple[str | None, float | None]:
    """Feast's value_text / value_num columns (SQLite store)."""
    if v is None:
        return None, None
    if kind == "STRING":
        return str(v), None
    if kind in ("INT64", "INT32"):
        return str(int(v)), float(v)
    if kind == "BOOL":
        return str(bool(v)), 1.0 if v else 0.0
    if kind in ("FLOAT", "DOUBLE"):
        f = struct.unpack("<f", struct.pack("<f", float(v)))[0] if kind == "FLOAT" else float(v)
        return str(f), f
    return None, None


class _Checkpointer:
    """Moves SQLite WAL contents into the database files from a background thread, so that commits on
    the hot path never pay for a checkpoint (copying tens of MB and an fsync stalled commits for
    hundreds of ms). Writers keep a large wal_autocheckpoint as a backstop."""

    def __init__(self, interval_s: float = 1.0):
        import threading

        self.interval_s = interval_s
        self._paths: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, path: str | Path) -> None:
        import threading

        with self._lock:
            self._paths.add(str(path))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="glide-wal-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conns: dict[str, sqlite3.Connection] = {}
        while True:
            time.sleep(self.interval_s)
            with self._lock:
                paths = list(self._paths)
            for path in paths:
                try:
                    conn = conns.get(path) or conns.setdefault(
                        path, sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1))  # never creates a file
                    conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
                except sqlite3.Error:
                    conns.pop(path, None)  # gone or busy: try again next round


CHECKPOINTER = _Checkpointer()
WAL_BACKSTOP_PAGES = 65536  # 256 MiB: only reached if the background checkpoints stop


def _mmh3(key: str) -> bytes:
    """Feast's Redis hash-field name of a feature (murmur3_32, little endian)."""
    import mmh3

    return struct.pack("<I", mmh3.hash(key, signed=False))


# --- layout --------------------------------------------------------------------------------------


class ViewLayout:
    def __init__(self, name: str, join_keys: Sequence[str], features: Sequence[tuple[str, str]]):
        self.name = name
        self.join_keys = list(join_keys)
        self.features = [f for f, _ in features]
        self.kinds = [k for _, k in features]
        unknown = [k for k in self.kinds if k not in ENCODERS]
        if unknown:
            raise ConfigError(f"online writer: view {name} has feature types it cannot encode: {unknown}")
        self.encoders = [ENCODERS[k] for k in self.kinds]
        order = sorted(range(len(self.join_keys)), key=lambda i: self.join_keys[i])
        parts = [struct.pack("<I", len(self.join_keys))]
        for i in order:
            k = self.join_keys[i].encode()
            parts += [struct.pack("<II", _STRING_TAG, len(k)), k]
        self.prefix, self.order = b"".join(parts), order

    def entity_key(self, values: Sequence[str]) -> bytes:
        """Feast's serialize_entity_key (v3) for string join keys."""
        parts = [self.prefix]
        for i in self.order:
            b = values[i].encode()
            parts.append(struct.pack("<II", _STRING_TAG, len(b)))
            parts.append(b)
        return b"".join(parts)

    def encode(self, values: Sequence[Any]) -> list[bytes | None]:
        """Value protobuf bytes per feature; None for SKIP."""
        return [b"" if v is None else None if v is SKIP else enc(v) for enc, v in zip(self.encoders, values)]


def layout_path(settings: GlideSettings, project: str) -> Path:
    return settings.feast_dir / f"layout-{project}.json"


def layout_of_store(store) -> dict:
    """Views, join keys and feature types of a (feast) FeatureStore, as plain JSON data."""
    views = {}
    for fv in store.list_feature_views():
        views[fv.name] = {"join_keys": [c.name for c in fv.entity_columns],
                          "features": [[f.name, f.dtype.to_value_type().name] for f in fv.features]}
    versioning = bool(getattr(store.config.registry, "enable_online_feature_view_versioning", False))
    return {"project": store.config.project, "versioning": versioning, "views": views}


def write_layout(settings: GlideSettings, store) -> Path:
    path = layout_path(settings, store.config.project)
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(".tmp")
    tmp.write_text(json.dumps(layout_of_store(store), indent=1))
    tmp.replace(path)
    return path


def load_layout(settings: GlideSettings, project: str | None = None) -> dict:
    """The cached layout; without one, import Feast once and write it."""
    from streams.feature_store import repo_config_dict

    project = repo_config_dict(settings, project)["project"]
    path = layout_path(settings, project)
    if not path.exists():
        from streams.feature_store import open_store

        write_layout(settings, open_store(settings, project))
    return json.loads(path.read_text())


# --- writer ----------------------------------------------------------------------------------------


class OnlineWriter:
    """``write(view, rows)``: newest-wins bulk upsert; ``existing(view, keys)``: which entities have a
    row. One writer per thread (it owns its connections)."""

    def __init__(self, settings: GlideSettings, project: str | None = None, layout: dict | None = None):
        from streams.feature_store import repo_config_dict

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

    @classmethod
    def for_store(cls, settings: GlideSettings, store) -> OnlineWriter:
        """A writer for an already opened FeatureStore (no layout file needed)."""
        return cls(settings, store.config.project, layout_of_store(store))

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
            (self._sqlite_write if self.kind == "sqlite" else self._redis_write)(v, rows)
        return len(rows)

    def existing(self, view: str, keys: Sequence[tuple[str, ...]]) -> list[bool]:
        """Whether each entity has a row in ``view``."""
        v = self.view(view)
        eks = [v.entity_key(k) for k in keys]
        if not eks:
            return []
        if self.kind == "sqlite":
            found: set[bytes] = set()
            for i in range(0, len(eks), 500):
                chunk = eks[i:i + 500]
                found.update(r[0] for r in self._conn.execute(
                    f'SELECT DISTINCT entity_key FROM "{self._tables[view]}" WHERE entity_key IN '
                    f'({",".join("?" * len(chunk))})', chunk))
            return [ek in found for ek in eks]
        project = self.project.encode()
        with self._redis.pipeline(transaction=False) as pipe:
            for ek in eks:
                pipe.hexists(ek + project, f"_ts:{view}")
            return [bool(x) for x in pipe.execute()]

    def close(self) -> None:
        (self._conn if self.kind == "sqlite" else self._redis).close()

    # -- SQLite ----------------------------------------------------------------------------------

    def _sqlite_init(self, path: str) -> None:
        if not Path(path).exists():
            raise ConfigError(f"online store {path} does not exist: run `glide stack up` first")
        self._conn = sqlite3.connect(path, timeout=60, check_same_thread=False, isolation_level=None)
        self._conn.execute("PRAGMA journal_mode=WAL")  # readers never block the writer and vice versa
        self._conn.execute("PRAGMA synchronous=NORMAL")
        self._conn.execute("PRAGMA cache_size=-131072")  # 128 MiB: the hot part of the store stays parsed
        self._conn.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
        CHECKPOINTER.add(path)
        self._tables: dict[str, str] = {}
        self._sql: dict[str, tuple[str, bool]] = {}
        for name in self.views:
            table = f"{self.project}_{name}"  # feast's compute_table_id without versioning
            cols = {r[1] for r in self._conn.execute(f'PRAGMA table_info("{table}")')}
            if not cols:
                raise ConfigError(f"online table {table} is missing: run `glide stack up` (feast apply) first")
            if "glide_ts_us" not in cols:
                # Feast keeps event_ts in whole seconds; newest-wins needs a finer order. Feast reads
                # and writes named columns only, so the extra column is invisible to it.
                try:
                    self._conn.execute(f'ALTER TABLE "{table}" ADD COLUMN glide_ts_us INTEGER')
                except sqlite3.OperationalError as exc:
                    if "duplicate column" not in str(exc):
                        raise
            has_num = "value_num" in cols
            names = ["entity_key", "feature_name", "value", "value_text"] + (["value_num"] if has_num else []) + [
                "event_ts", "created_ts", "glide_ts_us"]
            updates = ", ".join(f"{c} = excluded.{c}" for c in names[2:])
            self._tables[name] = table
            self._sql[name] = (
                f'INSERT INTO "{table}" ({", ".join(names)}) VALUES ({", ".join("?" * len(names))}) '
                f"ON CONFLICT(entity_key, feature_name) DO UPDATE SET {updates} "
                f"WHERE excluded.glide_ts_us > COALESCE(glide_ts_us, -1)",
                has_num,
            )

    def _sqlite_write(self, v: ViewLayout, rows: list[Row]) -> None:
        sql, has_num = self._sql[v.name]
        created = int(time.time())
        params = []
        features, kinds = v.features, v.kinds
        for key, values, ts_us in rows:
            ek = v.entity_key(key)
            ts = ts_us // 1_000_000  # what Feast's own sqlite adapter stores: epoch seconds
            for fname, kind, blob, value in zip(features, kinds, v.encode(values), values):
                if blob is None:
                    continue
                text, num = _text_num(kind, value)
                if has_num:
                    params.append((ek, fname, blob, text, num, ts, created, ts_us))
                else:
                    params.append((ek, fname, blob, text, ts, created, ts_us))
        self._conn.execute("BEGIN IMMEDIATE")
        try:
            self._conn.executemany(sql, params)
            self._conn.execute("COMMIT")
        except BaseException:
            self._conn.execute("ROLLBACK")
            raise

    # -- Redis -----------------------------------------------------------------------------------

    # Newest-wins for many keys in one call (atomic per key): ARGV = mine-field, feast-ts-field, then
    # per key: ts_us, feast ts bytes, n, n field/value pairs. One call per chunk instead of one per
    # row: the per-command overhead, not the hash writes, dominated (21 us/row -> see RESULTS.md).
    # A multi-key script needs a single Redis node (not Redis Cluster), which GLIDE_REDIS_URL is.
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
    _CHUNK = 200

    def _redis_init(self, connection_string: str) -> None:
        import redis

        host_port, *opts = connection_string.split(",")
        host, _, port = host_port.partition(":")
        kw = dict(o.split("=", 1) for o in opts if "=" in o)
        self._redis = redis.Redis(host=host, port=int(port or 6379), db=int(kw.get("db", 0)),
                                  password=kw.get("password"), ssl=kw.get("ssl", "false").lower() == "true")
        self._sha = self._redis.script_load(self._LUA)
        self._fields = {n: [_mmh3(f"{n}:{f}") for f in v.features] for n, v in self.views.items()}

    def _redis_write(self, v: ViewLayout, rows: list[Row]) -> None:
        import redis

        project = self.project.encode()
        fields = self._fields[v.name]
        head = [f"_glide_us:{v.name}", f"_ts:{v.name}"]
        calls = []
        for start in range(0, len(rows), self._CHUNK):
            keys, args = [], list(head)
            for key, values, ts_us in rows[start:start + self._CHUNK]:
                secs, us = divmod(ts_us, 1_000_000)
                # google.protobuf.Timestamp {seconds = 1; nanos = 2}, as Feast stores it
                ts = (b"\x08" + _varint(secs) if secs else b"") + (b"\x10" + _varint(us * 1000) if us else b"")
                pairs = [x for f, blob in zip(fields, v.encode(values)) if blob is not None for x in (f, blob)]
                keys.append(v.entity_key(key) + project)
                args += [ts_us, ts, len(pairs) // 2, *pairs]
            calls.append((keys, args))
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
                self._sha = self._redis.script_load(self._LUA)  # the server restarted or was flushed

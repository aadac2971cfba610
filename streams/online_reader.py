"""Direct reads of Feast's online rows, the read side of ``streams.online_writer``: the same keys,
hash fields, tables and value bytes (``streams.online_encoding``), decoded to exactly what Feast's
``get_online_features(...).to_dict()`` returns, in one round trip: a Redis pipeline of HMGETs, or
one SQLite query.

Why: Feast builds protobuf responses and converts them back to Python per value; for a ranker's
lookup that costs 3.5x the raw Redis read at one user and ~30x at 100 (benchmarks/RESULTS.md,
``glide bench lookup``). Only the SQLite and Redis stores in GLIDE's own configuration
(``streams.feast_config``) are read here; :meth:`OnlineReader.for_store` answers None for anything
else (another store type, view versioning, an unknown view), and the caller keeps Feast's path.

Semantics kept from Feast: a feature with no stored value reads None (also every feature of an entity
with no row); no TTL is applied (Feast's online reads apply none either).
"""

from __future__ import annotations

import sqlite3
import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

from glide.config import GlideSettings
from streams.feast_config import repo_config_dict
from streams.online_encoding import (ViewLayout, decode_value, redis_field, redis_key, redis_ts_field,
                                     sqlite_table)
from streams.online_layout import load_layout

_SQL_IN_CHUNK = 500  # entity keys per IN (...), under SQLite's bound-parameter limit


class OnlineReader:
    """``read(view, entity_rows, features)``: columns of decoded values, as ``online_features``
    returns them. Thread-safe (redis-py's pool; one SQLite connection behind a lock)."""

    def __init__(self, settings: GlideSettings, project: str | None = None, layout: dict | None = None):
        cfg = repo_config_dict(settings, project)
        layout = layout or load_layout(settings, cfg["project"])
        self.project = cfg["project"]
        self.kind = cfg["online_store"]["type"]
        self.views = {n: ViewLayout(n, v["join_keys"], [tuple(f) for f in v["features"]])
                      for n, v in layout["views"].items()}
        self._fields: dict[tuple[str, tuple[str, ...]], list[bytes | str]] = {}
        if self.kind == "redis":
            import redis

            self._redis = redis.Redis.from_url(settings.redis_url)
        elif self.kind == "sqlite":
            path = cfg["online_store"]["path"]
            if not Path(path).exists():
                raise FileNotFoundError(f"online store {path} does not exist: run `glide stack up` first")
            self._conn = sqlite3.connect(path, check_same_thread=False, isolation_level=None)
            self._lock = threading.Lock()
        else:
            raise ValueError(f"no direct read for the {self.kind!r} online store")

    @classmethod
    def for_store(cls, settings: GlideSettings, store, views: Sequence[str]) -> OnlineReader | None:
        """A reader of ``views`` that reads what the open Feast ``store`` would, or None where it could
        not promise that: a store configured otherwise than ``settings`` say, another store type, view
        versioning, another entity-key format, a view missing from the layout cache."""
        try:
            config = store.config
            cfg = repo_config_dict(settings, config.project)
            online = config.online_store
            same = (getattr(online, "type", None) in ("sqlite", "redis")
                    and all(getattr(online, k, None) == v for k, v in cfg["online_store"].items())
                    and config.entity_key_serialization_version == 3
                    and not getattr(config.registry, "enable_online_feature_view_versioning", False))
            if not same:
                return None
            layout = load_layout(settings, config.project)
            if layout.get("versioning") or any(v not in layout["views"] for v in views):
                return None
            return cls(settings, config.project, layout)
        except (AttributeError, OSError, ValueError, KeyError):
            return None

    def read(self, view: str, entity_rows: Sequence[Mapping[str, str]], features: Sequence[str]
             ) -> dict[str, list[Any]]:
        """``features`` of ``view`` for each entity row (join key -> value), as lists in row order."""
        v = self.views[view]
        keys = [v.entity_key([row[k] for k in v.join_keys]) for row in entity_rows]
        if not keys:
            return {f: [] for f in features}
        if self.kind == "redis":
            rows = self._redis_rows(view, keys, features)
        else:
            rows = self._sqlite_rows(view, keys, features)
        return {f: [decode_value(r[j]) for r in rows] for j, f in enumerate(features)}

    def close(self) -> None:
        (self._redis if self.kind == "redis" else self._conn).close()

    def _redis_rows(self, view: str, keys: list[bytes], features: Sequence[str]) -> list[list]:
        """One pipeline of HMGETs (Feast's own read): per key, the features' fields' bytes or None."""
        fields = self._fields.get((view, tuple(features)))
        if fields is None:
            fields = self._fields[(view, tuple(features))] = [
                *(redis_field(view, f) for f in features), redis_ts_field(view)]
        with self._redis.pipeline(transaction=False) as pipe:
            for key in keys:
                pipe.hmget(redis_key(key, self.project), fields)
            return pipe.execute()

    def _sqlite_rows(self, view: str, keys: list[bytes], features: Sequence[str]) -> list[list]:
        """One query per 500 keys: per key, the features' value bytes or None."""
        table, at = sqlite_table(self.project, view), {f: j for j, f in enumerate(features)}
        names = ",".join("?" * len(features))
        by_key: dict[bytes, list] = {}
        with self._lock:
            for start in range(0, len(keys), _SQL_IN_CHUNK):
                chunk = keys[start:start + _SQL_IN_CHUNK]
                for ek, name, value in self._conn.execute(
                        f'SELECT entity_key, feature_name, value FROM "{table}" WHERE entity_key IN '
                        f'({",".join("?" * len(chunk))}) AND feature_name IN ({names})', [*chunk, *features]):
                    by_key.setdefault(ek, [None] * len(features))[at[name]] = value
        empty = [None] * len(features)
        return [by_key.get(k, empty) for k in keys]

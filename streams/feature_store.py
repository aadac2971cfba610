"""Feast access for the online runtime: build the store for the active profile, apply the
definitions, push feature rows, read them back.

The configuration mirrors feature_repo/feature_store.yaml (embedded) and swaps in Redis and
PostgreSQL for the cluster profile.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import urlparse

import pandas as pd

from glide.config import ConfigError, GlideSettings

FEATURE_REPO = Path(__file__).resolve().parent.parent / "feature_repo"


def _redis_connection_string(url: str) -> str:
    """redis://host:port/db -> Feast's "host:port,db=N" form."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ConfigError(f"GLIDE_REDIS_URL must look like redis://host:port/db, got {url!r}")
    parts = [f"{parsed.hostname}:{parsed.port or 6379}"]
    db = parsed.path.strip("/")
    if db:
        parts.append(f"db={int(db)}")
    if parsed.password:
        parts.append(f"password={parsed.password}")
    if parsed.scheme == "rediss":
        parts.append("ssl=true")
    return ",".join(parts)


def _postgres_offline_config(settings: GlideSettings) -> dict:
    from urllib.parse import parse_qs

    parsed = urlparse(settings.postgres_url.replace("+psycopg", ""))
    sslmode = parse_qs(parsed.query).get("sslmode", ["prefer"])[0]  # Feast's default is "require"
    return {
        "sslmode": sslmode,
        "type": "postgres",
        "host": parsed.hostname or "127.0.0.1",
        "port": parsed.port or 5432,
        "database": parsed.path.lstrip("/") or "postgres",
        "db_schema": settings.postgres_schema,
        "user": parsed.username or "postgres",
        "password": parsed.password or "",
    }


def repo_config_dict(settings: GlideSettings, project: str | None = None) -> dict:
    """The feature_store.yaml content for ``settings`` as a dict."""
    project = project or os.environ.get("GLIDE_FEAST_PROJECT", "glide")
    if settings.profile == "cluster":
        registry_path = settings.postgres_url
        online = {"type": "redis", "connection_string": _redis_connection_string(settings.redis_url)}
        offline = _postgres_offline_config(settings)
    else:
        registry_path = f"sqlite:///{settings.feast_dir / 'registry.db'}"
        online = {"type": "sqlite", "path": str(settings.feast_dir / "online.db")}
        offline = {"type": "duckdb"}
    return {
        "project": project,
        "provider": "local",
        "registry": {"registry_type": "sql", "path": registry_path, "cache_ttl_seconds": 60},
        "online_store": online,
        "offline_store": offline,
        "entity_key_serialization_version": 3,
    }


def _definitions_env(settings: GlideSettings) -> None:
    # feature_repo/definitions.py reads these at import time to place its batch sources.
    os.environ["GLIDE_PROFILE"] = settings.profile
    os.environ["GLIDE_DATA_DIR"] = str(settings.data_dir)
    os.environ["GLIDE_POSTGRES_SCHEMA"] = settings.postgres_schema


def open_store(settings: GlideSettings, project: str | None = None):
    """A FeatureStore for the active profile (imports feast: ~7 s the first time)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    _definitions_env(settings)
    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(repo_path=FEATURE_REPO, **repo_config_dict(settings, project))
    store = FeatureStore(config=config, repo_path=str(FEATURE_REPO))
    store.glide_settings = settings  # lets apply_definitions place the online layout cache
    return store


def definitions():
    """The objects of feature_repo/definitions.py, (re)imported for the current profile."""
    import importlib

    import feature_repo.definitions as defs

    return importlib.reload(defs)


def apply_definitions(store, settings: GlideSettings | None = None) -> list[str]:
    """Register entities, views and services; returns the feature view names. With ``settings``,
    also caches the online layout the stream workers read instead of importing Feast
    (streams/online_writer.py)."""
    defs = definitions()
    store.apply(defs.ALL_OBJECTS)
    settings = settings or getattr(store, "glide_settings", None)
    if settings is not None:
        from streams.online_writer import write_layout

        write_layout(settings, store)
    return sorted(fv.name for fv in store.list_feature_views())


def push(store, view: str, frame: pd.DataFrame) -> None:
    """Write rows to the online store through the view's push source."""
    from feast.data_source import PushMode

    store.push(f"{view}_push", frame, to=PushMode.ONLINE)


def online_features(store, refs: list[str] | object, entity_rows: list[dict]) -> dict[str, list]:
    """get_online_features as a plain dict of columns."""
    return store.get_online_features(features=refs, entity_rows=entity_rows).to_dict()

"""Which Feast project the online runtime uses, and where its stores live, for the active profile.

This is the bottom of the Feast side of ``streams``: the online writer needs the configuration (to
find the online store without importing Feast) and the layout cache needs a store (to build the
layout when no cache exists), while ``streams.feature_store`` needs the writer's layout cache.
Keeping the configuration and the store constructor here lets all of them import downwards only.

The configuration mirrors feature_repo/feature_store.yaml (embedded) and swaps in Redis and
PostgreSQL for the cluster profile. Feast itself is imported only inside :func:`open_store`.
"""

from __future__ import annotations

import os
from pathlib import Path
from urllib.parse import parse_qs, urlparse

from glide.config import ConfigError, GlideSettings, sql_identifier
from glide.secrets import mask_url

FEATURE_REPO = Path(__file__).resolve().parent.parent / "feature_repo"


def _redis_connection_string(url: str) -> str:
    """redis://host:port/db -> Feast's "host:port,db=N" form."""
    parsed = urlparse(url)
    if parsed.scheme not in ("redis", "rediss") or not parsed.hostname:
        raise ConfigError(f"GLIDE_REDIS_URL must look like redis://host:port/db, got {mask_url(url)!r}")
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
    # The project prefixes Feast's online table names (SQL identifiers): only a safe identifier passes.
    project = sql_identifier(project or os.environ.get("GLIDE_FEAST_PROJECT", "glide"), "GLIDE_FEAST_PROJECT")
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


def open_store(settings: GlideSettings, project: str | None = None):
    """A FeatureStore for the active profile (imports feast: ~7 s the first time)."""
    from feast import FeatureStore
    from feast.repo_config import RepoConfig

    settings.feast_dir.mkdir(parents=True, exist_ok=True)
    config = RepoConfig(repo_path=FEATURE_REPO, **repo_config_dict(settings, project))
    store = FeatureStore(config=config, repo_path=str(FEATURE_REPO))
    store.glide_settings = settings  # lets apply_definitions place the online layout cache
    return store

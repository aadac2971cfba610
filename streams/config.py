"""Knobs of the stream processors (env prefix GLIDE_STREAMS_); the broker, stores and data folder come
from :class:`glide.config.GlideSettings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from glide.config import ConfigError, GlideSettings, build_settings
from glide.habits import HABIT_WINDOW, RECENT_SIDS_CAP

WINDOW_MS = int(HABIT_WINDOW.total_seconds() * 1000)


class StreamSettings(BaseSettings):
    model_config = SettingsConfigDict(env_prefix="GLIDE_STREAMS_", extra="ignore")

    app_id: str = "glide-streams"  # faust app id; also the catalog-updates consumer group
    group_id: str = "glide-streams-listens"  # consumer group of the listen-events processor
    # Out-of-order tolerance in event time: a listen older than (partition watermark - lateness) is
    # dead-lettered as `late`. Must stay below the 28-day window (dedup relies on it).
    lateness_s: float = Field(default=3600.0, ge=0)
    # A timestamp beyond max(watermark, wall clock) + this is dead-lettered as `future`.
    max_future_s: float = Field(default=86400.0, gt=0)
    max_listen_seconds: int = Field(default=43_200, gt=0)  # longer single listens are `bad_duration`
    recent_cap: int = Field(default=RECENT_SIDS_CAP, ge=1, le=1000)
    batch_max_records: int = Field(default=50_000, ge=1)  # large batches only form from a backlog
    batch_timeout_ms: int = Field(default=50, ge=1)
    session_timeout_s: float = Field(default=10.0, ge=6.0)  # group join takes about half of it
    check_users: bool = True  # dead-letter listens of users with no `user_context` row
    quantizer_version: str | None = None  # SIDs to use; default: newest registered quantizer
    live_sids: bool = True  # encode SIDs of new episodes with the live SidIndex (loads the text encoder)
    # An unknown episode is re-checked against the catalog for this long (wall clock) before the
    # listen is dead-lettered: catalog-updates and listen-events are separate topics, so a listen
    # can overtake the catalog update of the episode it references.
    catalog_wait_s: float = Field(default=30.0, ge=0)
    metrics_port: int = Field(default=9464, ge=-1, le=65535)  # 0: any free port; -1: off
    metrics_host: str = "127.0.0.1"
    state_dir: Path | None = None  # default <data_dir>/streams/state
    log_json: bool = True
    # Chaos testing: "point:probability,..." kills the worker with SIGKILL at these points of a batch
    # (before_commit, after_log, after_commit, after_push). Never set in production.
    chaos: str = ""

    @model_validator(mode="after")
    def _check(self) -> StreamSettings:
        if self.lateness_s * 1000 >= WINDOW_MS:
            raise ValueError("lateness_s must be shorter than the 28-day habit window")
        return self

    def chaos_points(self) -> dict[str, float]:
        out = {}
        for part in filter(None, (p.strip() for p in self.chaos.split(","))):
            point, _, prob = part.partition(":")
            if point not in ("before_commit", "after_log", "after_commit", "after_push"):
                raise ConfigError(f"GLIDE_STREAMS_CHAOS: unknown point {point!r}")
            out[point] = float(prob or 1.0)
        return out

    @property
    def lateness_ms(self) -> int:
        return int(self.lateness_s * 1000)

    @property
    def max_future_ms(self) -> int:
        return int(self.max_future_s * 1000)

    def state_path(self, glide: GlideSettings) -> Path:
        return (self.state_dir or glide.data_dir / "streams" / "state").expanduser().resolve()


def load_stream_settings(**overrides) -> StreamSettings:
    """Settings from GLIDE_STREAMS_* with explicit overrides; a bad value raises ConfigError."""
    return build_settings(StreamSettings, "stream setting", **overrides)

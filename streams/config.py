"""Knobs of the stream processors (env prefix GLIDE_STREAMS_); the broker, stores and data folder come
from :class:`glide.config.GlideSettings`."""

from __future__ import annotations

from pathlib import Path

from pydantic import Field, ValidationInfo, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from glide.config import ConfigError, GlideSettings, build_settings
from glide.habits import HABIT_WINDOW, RECENT_SIDS_CAP

WINDOW_MS = int(HABIT_WINDOW.total_seconds() * 1000)

# Record sizes (streams/README.md, "Record sizes"), against Apache Kafka's defaults: the broker takes
# records up to message.max.bytes (~1 MB, 1048588), a producer sends requests up to max.request.size
# (1 MiB), a consumer fetches up to fetch.max.bytes (50 MiB) per request and max.partition.fetch.bytes
# (1 MiB) per partition. A dead letter is the original record plus headers, so it is cut to
# DEAD_LETTER_MAX_BYTES to fit any producer request whatever the broker accepted.
DEAD_LETTER_MAX_BYTES = 256 * 1024
PRODUCER_MAX_REQUEST_BYTES = 1024 * 1024  # Kafka's max.request.size default, set explicitly
FETCH_MAX_PARTITION_BYTES = 4 * 1024 * 1024  # > message.max.bytes: any accepted record can be fetched
FETCH_MAX_BYTES = 32 * 1024 * 1024  # below Kafka's 50 MiB: bounds one fetch's memory
DEAD_LETTER_OVERHEAD_BYTES = 8 * 1024  # headers (detail <= 500 B) and record framing, generously
CHAOS_POINTS = ("before_commit", "after_log", "after_commit", "after_push")


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
    # An unknown episode is re-checked against the catalog for this long before the listen is
    # dead-lettered: catalog-updates and listen-events are separate topics, so a listen can overtake
    # the catalog update of the episode it references. Counted only while the catalog stream is
    # caught up (streams/catalog_clock.py): an outage that holds the catalog stream up does not.
    catalog_wait_s: float = Field(default=30.0, ge=0)
    # Producer request limit of both workers' producers (Kafka's max.request.size), and their consumers'
    # fetch limits (max.partition.fetch.bytes, fetch.max.bytes).
    producer_max_request_bytes: int = Field(default=PRODUCER_MAX_REQUEST_BYTES, ge=64 * 1024)
    fetch_max_partition_bytes: int = Field(default=FETCH_MAX_PARTITION_BYTES, ge=1024 * 1024)
    fetch_max_bytes: int = Field(default=FETCH_MAX_BYTES, ge=1024 * 1024)
    # Dead letters carry at most this many bytes of the original value (and of the key); headers give
    # the full size and sha256. Both cut, plus headers, must fit producer_max_request_bytes.
    dead_letter_max_bytes: int = Field(default=DEAD_LETTER_MAX_BYTES, ge=1024)
    # A session-start stamped more than this ahead of the GLIDE worker's wall clock is `future`.
    session_max_future_s: float = Field(default=300.0, gt=0)
    # Transient I/O errors (online store or broker down, busy, slow: streams/retry.py) are retried with
    # exponential backoff (initial, doubling up to max, jittered) until this deadline. The GLIDE worker
    # then dead-letters the batch (`retry_exhausted`); the stream worker exits for a clean restart.
    retry_deadline_s: float = Field(default=60.0, ge=0)
    retry_initial_s: float = Field(default=0.2, gt=0)
    retry_max_s: float = Field(default=5.0, gt=0)
    metrics_port: int = Field(default=9464, ge=-1, le=65535)  # 0: any free port; -1: off
    metrics_host: str = "127.0.0.1"
    state_dir: Path | None = None  # default <data_dir>/streams/state
    log_json: bool = True
    # Chaos testing: "point:probability,..." kills the worker with SIGKILL at these points of a batch
    # (before_commit, after_log, after_commit, after_push). Never set in production.
    chaos: str = ""

    # Field validators: build_settings names the field's own variable (GLIDE_STREAMS_LATENESS_S, ...).
    @field_validator("lateness_s")
    @classmethod
    def _lateness(cls, v: float) -> float:
        if v * 1000 >= WINDOW_MS:
            raise ValueError(f"{v:.0f} s is not shorter than the 28-day habit window: set "
                             f"GLIDE_STREAMS_LATENESS_S below {WINDOW_MS // 1000} (seconds)")
        return v

    @field_validator("dead_letter_max_bytes")
    @classmethod
    def _dead_letter_cap(cls, v: int, info: ValidationInfo) -> int:
        limit = info.data.get("producer_max_request_bytes", PRODUCER_MAX_REQUEST_BYTES)
        if 2 * v + DEAD_LETTER_OVERHEAD_BYTES > limit:
            raise ValueError(f"{v} bytes is too large: a dead letter (value and key up to it, plus headers) must fit "
                             f"the producer's {limit}-byte requests: set GLIDE_STREAMS_DEAD_LETTER_MAX_BYTES at most "
                             f"{(limit - DEAD_LETTER_OVERHEAD_BYTES) // 2}")
        return v

    @field_validator("chaos")
    @classmethod
    def _chaos(cls, v: str) -> str:
        _parse_chaos(v)
        return v

    def chaos_points(self) -> dict[str, float]:
        try:
            return _parse_chaos(self.chaos)
        except ValueError as exc:
            raise ConfigError(f"GLIDE_STREAMS_CHAOS: {exc}") from None

    @property
    def session_max_future_ms(self) -> int:
        return int(self.session_max_future_s * 1000)

    @property
    def lateness_ms(self) -> int:
        return int(self.lateness_s * 1000)

    @property
    def max_future_ms(self) -> int:
        return int(self.max_future_s * 1000)

    def state_path(self, glide: GlideSettings) -> Path:
        return (self.state_dir or glide.data_dir / "streams" / "state").expanduser().resolve()


def _parse_chaos(spec: str) -> dict[str, float]:
    """"point:probability,..." -> {point: probability}; ValueError naming the bad part."""
    out = {}
    for part in filter(None, (p.strip() for p in spec.split(","))):
        point, _, prob = part.partition(":")
        if point not in CHAOS_POINTS:
            raise ValueError(f"unknown point {point!r}: use {', '.join(CHAOS_POINTS)}")
        try:
            p = float(prob or 1.0)
        except ValueError:
            raise ValueError(f"{part!r}: the probability must be a number in [0, 1]") from None
        if not 0.0 <= p <= 1.0:
            raise ValueError(f"{part!r}: the probability must be in [0, 1]")
        out[point] = p
    return out


def load_stream_settings(**overrides) -> StreamSettings:
    """Settings from GLIDE_STREAMS_* with explicit overrides; a bad value raises ConfigError."""
    return build_settings(StreamSettings, "stream setting", **overrides)


DAY_S = 86_400.0


class WorkerSettings(BaseSettings):
    """Knobs of the GLIDE worker process (`glide serve`, env prefix GLIDE_WORKER_): its metrics
    endpoint, model lifecycle and catalog feed; its record sizes, retries and clock skew are the
    StreamSettings above."""

    model_config = SettingsConfigDict(env_prefix="GLIDE_WORKER_", extra="ignore")

    # Not the stream worker's 9464: both run on one host in the embedded stack.
    metrics_port: int = Field(default=9465, ge=-1, le=65535)  # 0: any free port; -1: off
    metrics_host: str = "127.0.0.1"
    # How often the registry is asked which model is promoted; a new one is loaded beside the serving
    # one and swapped in between two batches. 0: never (serve the start's model until a restart).
    model_poll_s: float = Field(default=30.0, ge=0)
    # How often the collision tie-breaker is recounted from the event log's listens (the paper: daily),
    # the first time at start. 0: never (keep the catalog DB's popularity).
    popularity_refresh_s: float = Field(default=DAY_S, ge=0)
    # The listens counted: those of the last this many seconds; 0: the whole log, as `glide train`
    # counts the popularity it writes to the catalog DB (so a restart and a refresh agree).
    popularity_window_s: float = Field(default=0.0, ge=0)
    # Each replica reads every catalog-updates partition (no group), from the records this many seconds
    # old (record time) at start: the catalog DB snapshot the model was loaded with covers what is
    # older, and re-applying an episode already known is a no-op (streams/catalog_feed.py).
    catalog_replay_s: float = Field(default=7 * DAY_S, gt=0)


def load_worker_settings(**overrides) -> WorkerSettings:
    """Settings from GLIDE_WORKER_* with explicit overrides; a bad value raises ConfigError."""
    return build_settings(WorkerSettings, "worker setting", **overrides)

"""The events on GLIDE's topics: one versioned schema per topic, JSON (orjson) on the wire, and the one
place where incoming bytes are validated.

Wire format (see streams/README.md):
- UTF-8 JSON objects; every event carries ``schema_version`` (default 1 when absent; a newer version
  than this code knows is rejected so that an old worker never half-reads a new event).
- Times are **integers, epoch milliseconds UTC** (``ts``, ``published_at``): cheap to validate,
  unambiguous, and Kafka's own timestamp unit. :func:`to_ms` / :func:`from_ms` convert.
- Unknown extra fields are ignored (forward compatible); missing optional fields take defaults.

``decode_*`` either returns a frozen dataclass or raises :class:`InvalidEvent` whose ``reason`` is one
of :data:`REASONS` (the dead-letter reason and Prometheus label). Checks that need state (late,
duplicate, unknown ids) happen in the processors but use the same reasons.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import orjson
import pandas as pd

SCHEMA_VERSION = 1

LISTEN_TOPIC = "listen-events"
SESSION_TOPIC = "session-start"
CATALOG_TOPIC = "catalog-updates"
DEAD_LETTER_TOPIC = "dead-letter"

# Dead-letter reasons (also the `reason` label of glide_stream_dead_letter_total).
TOO_LARGE = "too_large"
MALFORMED_JSON = "malformed_json"
SCHEMA = "schema"  # missing field, wrong type, bad value
UNSUPPORTED_VERSION = "unsupported_version"
BAD_DURATION = "bad_duration"
FUTURE = "future"
LATE = "late"
UNKNOWN_USER = "unknown_user"
UNKNOWN_EPISODE = "unknown_episode"
UNKNOWN_SHOW = "unknown_show"
SHOW_MISMATCH = "show_mismatch"  # the listen's show_id is not the catalog's show of its episode
CATALOG_REJECTED = "catalog_rejected"  # the catalog DB refused the update (its error is the detail)
RETRY_EXHAUSTED = "retry_exhausted"  # a store or broker stayed down past GLIDE_STREAMS_RETRY_DEADLINE_S
REASONS: tuple[str, ...] = (
    TOO_LARGE, MALFORMED_JSON, SCHEMA, UNSUPPORTED_VERSION, BAD_DURATION, FUTURE, LATE,
    UNKNOWN_USER, UNKNOWN_EPISODE, UNKNOWN_SHOW, SHOW_MISMATCH, CATALOG_REJECTED, RETRY_EXHAUSTED,
)

# Size limits: a whole record, then single fields. A 1 MB string fails the first check before any parsing.
MAX_BYTES = {LISTEN_TOPIC: 4 * 1024, SESSION_TOPIC: 16 * 1024, CATALOG_TOPIC: 256 * 1024}
MAX_ID_LEN = 64
MAX_TAG_LEN = 32  # surface, locale, topic names
MAX_TITLE_LEN = 1_000
MAX_DESCRIPTION_LEN = 100_000
MIN_TS_MS = 946_684_800_000  # 2000-01-01: anything earlier is a unit mistake (seconds, not ms)
MAX_TS_MS = 32_503_680_000_000  # 3000-01-01: absolute sanity bound; "future" is judged against the clock
DEFAULT_MAX_LISTEN_SECONDS = 43_200

# Control records: a header marks a record that only moves the partition's event-time watermark.
CONTROL_HEADER = "glide-control"
WATERMARK = b"watermark"


class InvalidEvent(ValueError):
    """An event that cannot be processed; ``reason`` is one of REASONS."""

    def __init__(self, reason: str, detail: str):
        super().__init__(f"{reason}: {detail}")
        self.reason = reason
        self.detail = detail


@dataclass(frozen=True, slots=True)
class ListenEvent:
    event_id: str
    user_id: str
    episode_id: str
    show_id: str
    listened_seconds: int
    ts: int  # epoch ms
    surface: str
    locale: str
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class SessionStart:
    event_id: str
    user_id: str
    ts: int
    surface: str
    context: dict = field(default_factory=dict)
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class ShowInfo:
    show_id: str
    title: str
    description: str = ""
    host: str = ""
    topics: tuple[str, ...] = ()
    locale: str | None = None
    popularity: float | None = None


@dataclass(frozen=True, slots=True)
class EpisodeInfo:
    episode_id: str
    show_id: str
    title: str
    published_at: int  # epoch ms
    description: str = ""
    topic: str | None = None
    locale: str | None = None
    duration_s: int | None = None
    playable: bool = True
    popularity: float = 0.0


@dataclass(frozen=True, slots=True)
class CatalogUpdate:
    """An episode was published or revised. ``show`` is optional when the show is already catalogued."""

    event_id: str
    ts: int
    episode: EpisodeInfo
    show: ShowInfo | None = None
    schema_version: int = SCHEMA_VERSION


@dataclass(frozen=True, slots=True)
class Watermark:
    """Control record: event time in this partition has reached ``ts`` (no event older than
    ts - lateness will follow). Replays send one per partition at the end so idle partitions expire
    their 28-day totals up to the same instant."""

    ts: int
    schema_version: int = SCHEMA_VERSION


# --- time helpers -------------------------------------------------------------------------------


def to_ms(value: Any) -> int:
    """A tz-aware datetime / pandas Timestamp -> epoch milliseconds (sub-ms precision is dropped)."""
    stamp = pd.Timestamp(value)
    if stamp.tzinfo is None:
        raise ValueError(f"naive timestamp {value!r}: give UTC-aware times")
    return int(stamp.value // 1_000_000)


def from_ms(ms: int) -> pd.Timestamp:
    return pd.Timestamp(ms, unit="ms", tz="UTC")


def now_ms() -> int:
    return int(datetime.now(timezone.utc).timestamp() * 1000)


def ms_series(values: pd.Series) -> pd.Series:
    """A tz-aware timestamp column -> int64 epoch ms (floor)."""
    return (values.dt.tz_convert("UTC").astype("datetime64[ns, UTC]").astype("int64") // 1_000_000).astype("int64")


# --- field checks (hot path: plain code, no frameworks) ------------------------------------------


def _parse(raw: bytes, topic: str) -> dict:
    if raw is None:
        raise InvalidEvent(MALFORMED_JSON, "empty record (null value)")
    if len(raw) > MAX_BYTES[topic]:
        raise InvalidEvent(TOO_LARGE, f"{len(raw)} bytes > {MAX_BYTES[topic]} allowed on {topic}")
    try:
        obj = orjson.loads(raw)
    except orjson.JSONDecodeError as exc:
        raise InvalidEvent(MALFORMED_JSON, str(exc)[:200]) from None
    if type(obj) is not dict:
        raise InvalidEvent(SCHEMA, f"expected a JSON object, got {type(obj).__name__}")
    version = obj.get("schema_version", SCHEMA_VERSION)
    if version != SCHEMA_VERSION:
        if type(version) is int and version > SCHEMA_VERSION:
            raise InvalidEvent(UNSUPPORTED_VERSION, f"schema_version {version} is newer than {SCHEMA_VERSION}: upgrade the worker")
        raise InvalidEvent(SCHEMA, f"schema_version must be an integer <= {SCHEMA_VERSION}, got {version!r:.40}")
    return obj


_CONTROL = re.compile(r"[\x00-\x1f\x7f]")
MAX_SHORT_LEN = 128  # ids, tags and topic names; longer strings are free text


def _str(obj: dict, name: str, max_len: int, required: bool = True, default: Any = None) -> Any:
    v = obj.get(name)
    if v is None:
        if required:
            raise InvalidEvent(SCHEMA, f"missing field {name!r}")
        return default
    if type(v) is not str:
        raise InvalidEvent(SCHEMA, f"{name} must be a string, got {type(v).__name__}")
    if len(v) > max_len:
        raise InvalidEvent(TOO_LARGE if len(v) > 10 * max_len else SCHEMA, f"{name} longer than {max_len} characters")
    if required and not v:
        raise InvalidEvent(SCHEMA, f"{name} must not be empty")
    # Ids and tags are keys in SQLite, Redis and PostgreSQL: no control characters. Free text may hold
    # newlines and tabs but never NUL, which PostgreSQL text cannot store (a crash loop, not a row).
    if (_CONTROL.search(v) if max_len <= MAX_SHORT_LEN else "\x00" in v):
        raise InvalidEvent(SCHEMA, f"{name} must not contain control characters")
    return v


def _int(obj: dict, name: str, required: bool = True, default: Any = None) -> Any:
    v = obj.get(name)
    if v is None:
        if required:
            raise InvalidEvent(SCHEMA, f"missing field {name!r}")
        return default
    if type(v) is not int:  # bool is not accepted, nor 12.0
        raise InvalidEvent(SCHEMA, f"{name} must be an integer, got {type(v).__name__} {v!r:.40}")
    return v


def _ts(obj: dict, name: str, max_ts_ms: int | None) -> int:
    v = _int(obj, name)
    if v < MIN_TS_MS:
        raise InvalidEvent(SCHEMA, f"{name}={v} is before 2000-01-01: times are epoch milliseconds")
    if v > MAX_TS_MS or (max_ts_ms is not None and v > max_ts_ms):
        raise InvalidEvent(FUTURE, f"{name}={v} is in the future (latest allowed {max_ts_ms})")
    return v


def _float(obj: dict, name: str, default: Any) -> Any:
    v = obj.get(name)
    if v is None:
        return default
    if type(v) not in (int, float) or v != v or v in (float("inf"), float("-inf")):
        raise InvalidEvent(SCHEMA, f"{name} must be a finite number, got {v!r:.40}")
    if v < 0:
        raise InvalidEvent(SCHEMA, f"{name} must be >= 0, got {v}")
    return float(v)


def _bool(obj: dict, name: str, default: bool) -> bool:
    v = obj.get(name)
    if v is None:
        return default
    if type(v) is not bool:
        raise InvalidEvent(SCHEMA, f"{name} must be true or false, got {v!r:.40}")
    return v


# --- decoders ----------------------------------------------------------------------------------


def decode_listen(raw: bytes, max_ts_ms: int | None = None,
                  max_listen_seconds: int = DEFAULT_MAX_LISTEN_SECONDS) -> ListenEvent:
    obj = _parse(raw, LISTEN_TOPIC)
    secs = _int(obj, "listened_seconds")
    if secs < 0 or secs > max_listen_seconds:
        raise InvalidEvent(BAD_DURATION, f"listened_seconds={secs} outside [0, {max_listen_seconds}]")
    return ListenEvent(
        event_id=_str(obj, "event_id", MAX_ID_LEN),
        user_id=_str(obj, "user_id", MAX_ID_LEN),
        episode_id=_str(obj, "episode_id", MAX_ID_LEN),
        show_id=_str(obj, "show_id", MAX_ID_LEN),
        listened_seconds=secs,
        ts=_ts(obj, "ts", max_ts_ms),
        surface=_str(obj, "surface", MAX_TAG_LEN, required=False, default=""),
        locale=_str(obj, "locale", MAX_TAG_LEN, required=False, default=""),
    )


def decode_session_start(raw: bytes, max_ts_ms: int | None = None) -> SessionStart:
    obj = _parse(raw, SESSION_TOPIC)
    context = obj.get("context") or {}
    if type(context) is not dict:
        raise InvalidEvent(SCHEMA, f"context must be a JSON object, got {type(context).__name__}")
    return SessionStart(
        event_id=_str(obj, "event_id", MAX_ID_LEN),
        user_id=_str(obj, "user_id", MAX_ID_LEN),
        ts=_ts(obj, "ts", max_ts_ms),
        surface=_str(obj, "surface", MAX_TAG_LEN, required=False, default=""),
        context=context,
    )


def _show(obj: Any) -> ShowInfo:
    if type(obj) is not dict:
        raise InvalidEvent(SCHEMA, f"show must be a JSON object, got {type(obj).__name__}")
    topics = obj.get("topics") or []
    if (type(topics) is not list or len(topics) > 64
            or not all(type(t) is str and len(t) <= MAX_SHORT_LEN and not _CONTROL.search(t) for t in topics)):
        raise InvalidEvent(SCHEMA, "show.topics must be a list of at most 64 short strings")
    return ShowInfo(
        show_id=_str(obj, "show_id", MAX_ID_LEN),
        title=_str(obj, "title", MAX_TITLE_LEN),
        description=_str(obj, "description", MAX_DESCRIPTION_LEN, required=False, default=""),
        host=_str(obj, "host", MAX_TITLE_LEN, required=False, default=""),
        topics=tuple(topics),
        locale=_str(obj, "locale", MAX_TAG_LEN, required=False),
        popularity=_float(obj, "popularity", None),
    )


def _episode(obj: Any) -> EpisodeInfo:
    if type(obj) is not dict:
        raise InvalidEvent(SCHEMA, f"episode must be a JSON object, got {type(obj).__name__}")
    duration = _int(obj, "duration_s", required=False)
    if duration is not None and duration < 0:
        raise InvalidEvent(BAD_DURATION, f"episode.duration_s={duration} is negative")
    return EpisodeInfo(
        episode_id=_str(obj, "episode_id", MAX_ID_LEN),
        show_id=_str(obj, "show_id", MAX_ID_LEN),
        title=_str(obj, "title", MAX_TITLE_LEN),
        published_at=_ts(obj, "published_at", None),
        description=_str(obj, "description", MAX_DESCRIPTION_LEN, required=False, default=""),
        topic=_str(obj, "topic", MAX_SHORT_LEN, required=False),
        locale=_str(obj, "locale", MAX_TAG_LEN, required=False),
        duration_s=duration,
        playable=_bool(obj, "playable", True),
        popularity=_float(obj, "popularity", 0.0),
    )


def decode_catalog_update(raw: bytes, max_ts_ms: int | None = None) -> CatalogUpdate:
    obj = _parse(raw, CATALOG_TOPIC)
    if "episode" not in obj:
        raise InvalidEvent(SCHEMA, "missing field 'episode'")
    episode = _episode(obj["episode"])
    show = _show(obj["show"]) if obj.get("show") is not None else None
    if show is not None and show.show_id != episode.show_id:
        raise InvalidEvent(SCHEMA, f"show.show_id {show.show_id!r} != episode.show_id {episode.show_id!r}")
    return CatalogUpdate(event_id=_str(obj, "event_id", MAX_ID_LEN), ts=_ts(obj, "ts", max_ts_ms),
                         episode=episode, show=show)


def decode_watermark(raw: bytes, max_ts_ms: int | None = None) -> Watermark:
    obj = _parse(raw, LISTEN_TOPIC)
    return Watermark(ts=_ts(obj, "ts", max_ts_ms))


def is_watermark(headers: Any) -> bool:
    """Whether a record's headers mark it as a watermark control record."""
    if not headers:
        return False
    return any(k == CONTROL_HEADER and v == WATERMARK for k, v in headers)


# --- encoding ----------------------------------------------------------------------------------


def _plain(obj: Any) -> Any:
    if isinstance(obj, (ListenEvent, SessionStart, CatalogUpdate, Watermark, ShowInfo, EpisodeInfo)):
        return {k: _plain(getattr(obj, k)) for k in obj.__slots__}
    if isinstance(obj, tuple):
        return list(obj)
    return obj


def encode(event: ListenEvent | SessionStart | CatalogUpdate | Watermark) -> bytes:
    """The wire bytes of an event."""
    return orjson.dumps(_plain(event))


def watermark_headers() -> list[tuple[str, bytes]]:
    return [(CONTROL_HEADER, WATERMARK)]

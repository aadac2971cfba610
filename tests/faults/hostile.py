"""A hostile-event generator: for a valid template event, every kind of bad record a producer can
send (malformed, wrong types, huge, deep, binary, future, unknown ids, duplicates, out of order),
each with the outcome the worker must give it. The expectations are the oracle the fault suite
checks every record against, so they are written from the event contract (streams/schemas.py and
streams/README.md), never from what a worker happened to do.

Outcomes: ``applied`` / ``duplicate`` (listens), ``served`` / ``cold_start`` / ``stale``
(session starts), else the dead-letter reason.
"""

from __future__ import annotations

import random
from collections import Counter
from dataclasses import dataclass

import orjson

from streams import schemas as S

APPLIED, DUPLICATE = "applied", "duplicate"
SERVED, COLD_START, STALE = "served", "cold_start", "stale"
DAY_MS = 86_400_000


@dataclass(frozen=True)
class Sent:
    kind: str  # which family of hostility (for the table)
    key: bytes | None
    value: bytes | None
    expect: str
    event: dict | None = None  # the decoded event when it must be applied or served


def tally(records: list[Sent]) -> Counter:
    return Counter(r.expect for r in records)


def _nested(depth: int) -> bytes:
    return b"[" * depth + b"]" * depth


def _with_raw_field(event: dict, name: str, raw: bytes) -> bytes:
    """``event`` as JSON with one more field whose value is the raw JSON text ``raw``."""
    return orjson.dumps(event)[:-1] + b',"' + name.encode() + b'":' + raw + b"}"


def _common(rng: random.Random, event: dict, max_bytes: int) -> list[tuple[str, bytes | None, str]]:
    """(kind, value, expected reason) of the hostility every topic shares."""
    raw = orjson.dumps(event)
    return [
        ("malformed", raw[: len(raw) // 2], S.MALFORMED_JSON),
        ("malformed", None, S.MALFORMED_JSON),
        ("malformed", b"", S.MALFORMED_JSON),
        ("malformed", raw + raw, S.MALFORMED_JSON),
        ("malformed", b"NaN", S.MALFORMED_JSON),
        ("non_object", b"[1, 2, 3]", S.SCHEMA),
        ("non_object", b'"a string"', S.SCHEMA),
        ("non_object", b"null", S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"user_id": 7}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"ts": "yesterday"}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"ts": float(event["ts"]) + 0.5}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"ts": event["ts"] // 1000}), S.SCHEMA),  # seconds, not ms
        ("wrong_type", orjson.dumps({k: v for k, v in event.items() if k != "event_id"}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"event_id": ""}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"event_id": "x" * 65}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"schema_version": "1"}), S.SCHEMA),
        ("wrong_type", orjson.dumps(event | {"schema_version": 99}), S.UNSUPPORTED_VERSION),
        ("wrong_type", orjson.dumps(event | {"event_id": "ev\x00nul"}), S.SCHEMA),  # control characters
        ("huge", orjson.dumps(event | {"pad": "x" * max_bytes}), S.TOO_LARGE),
        ("huge", orjson.dumps(event | {"pad": "x" * 1_200_000}), S.TOO_LARGE),  # over the producer limit
        ("deep", _with_raw_field(event, "deep", _nested(min(1500, max_bytes // 2 - 200))), S.MALFORMED_JSON),
        ("binary", bytes(rng.getrandbits(8) for _ in range(rng.randint(20, 400))), S.MALFORMED_JSON),
        ("binary", raw[:-2] + b'\xff\xfe"}', S.MALFORMED_JSON),  # invalid UTF-8 inside a string
        ("binary", b"\x00" * 64, S.MALFORMED_JSON),
    ]


def hostile_listens(template: dict, watermark_ms: int, lateness_ms: int, *, other_show: str, seed: int = 0,
                    copies: int = 2) -> list[Sent]:
    """Hostile listen-events around ``template`` (a valid listen of a known user, episode and show),
    sent after every partition's watermark reached ``watermark_ms``. Returns them shuffled, with the
    duplicates after their originals."""
    rng = random.Random(seed)
    key = template["user_id"].encode()
    out: list[Sent] = []
    n = 0

    def ev(**fields) -> dict:
        nonlocal n
        n += 1
        return template | {"event_id": f"hostile-{seed}-{n}", "ts": watermark_ms - 60_000 + n} | fields

    for _ in range(copies):
        for kind, value, reason in _common(rng, ev(), S.MAX_BYTES[S.LISTEN_TOPIC]):
            # a null key lands on any partition; Kafka needs a key or a value
            out.append(Sent(kind, None if value is not None and rng.random() < 0.2 else key, value, reason))
        bad = {
            S.BAD_DURATION: [ev(listened_seconds=-5), ev(listened_seconds=10**9)],
            S.FUTURE: [ev(ts=S.now_ms() + 400 * DAY_MS)],
            S.LATE: [ev(ts=watermark_ms - 3 * lateness_ms)],
            S.UNKNOWN_USER: [ev(user_id=f"nobody-{seed}")],
            S.UNKNOWN_EPISODE: [ev(episode_id=f"nowhere-{seed}")],
            S.UNKNOWN_SHOW: [ev(show_id=f"noshow-{seed}")],
            S.SHOW_MISMATCH: [ev(show_id=other_show)],
        }
        for reason, events in bad.items():
            out.extend(Sent("unknown_id" if reason.startswith(("unknown", "show")) else reason, key,
                            orjson.dumps(e), reason) for e in events)
        good = [ev(), ev(ts=watermark_ms - lateness_ms // 2),  # out of order, within the lateness
                ev(surface="s" * S.MAX_TAG_LEN, locale=""),
                ev(extra={"nested": [[[[1]]]], "ignored": True})]  # unknown fields are ignored
        deep_ok = ev()
        out.extend(Sent("out_of_order" if i == 1 else "valid", key, orjson.dumps(e), APPLIED, e)
                   for i, e in enumerate(good))
        out.append(Sent("deep", key, _with_raw_field(deep_ok, "deep", _nested(200)), APPLIED, deep_ok))
        good.append(deep_ok)
    rng.shuffle(out)
    for e in rng.sample([s.event for s in out if s.expect == APPLIED], k=3):
        out.append(Sent("duplicate", key, orjson.dumps(e), DUPLICATE))
    return out


def hostile_sessions(template: dict, now_ms: int, *, unknown_user: str, seed: int = 0,
                     copies: int = 2) -> list[Sent]:
    """Hostile session-starts around ``template`` (a valid session of a user with features online)."""
    rng = random.Random(seed)
    out: list[Sent] = []
    n = 0

    def ev(**fields) -> dict:
        nonlocal n
        n += 1
        return template | {"event_id": f"hostile-ss-{seed}-{n}", "ts": now_ms} | fields

    for _ in range(copies):
        for kind, value, reason in _common(rng, ev(), S.MAX_BYTES[S.SESSION_TOPIC]):
            out.append(Sent(kind, b"k" if value is None else value[:8] or None, value, reason))
        out.append(Sent("future", b"f", orjson.dumps(ev(ts=now_ms + 30 * 60_000)), S.FUTURE))
        out.append(Sent("wrong_type", b"c", orjson.dumps(ev(context=["familiar"])), S.SCHEMA))
        out.append(Sent("out_of_order", b"o", orjson.dumps(ev(ts=now_ms - 2 * 3_600_000)), STALE))
        served = [ev(), ev(ts=now_ms - 120_000), ev(context={"mode": "familiar"}),
                  ev(context={"deep": orjson.loads(_nested(100))})]
        out.extend(Sent("valid", e["user_id"].encode(), orjson.dumps(e), SERVED, e) for e in served)
        cold = ev(user_id=unknown_user)
        out.append(Sent("unknown_id", cold["user_id"].encode(), orjson.dumps(cold), COLD_START, cold))
    rng.shuffle(out)
    # A duplicate session start is served again (at-least-once; the Feast row is overwritten).
    for e in rng.sample([s.event for s in out if s.expect == SERVED], k=2):
        out.append(Sent("duplicate", e["user_id"].encode(), orjson.dumps(e), SERVED, e))
    return out

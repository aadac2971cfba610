"""Feast's online storage format, written by hand: serialized entity keys (v3) and
``feast.types.Value`` protobufs, for the few value types GLIDE's feature views use.

Why by hand: importing Feast costs 7-16 s here, which every stream-worker restart would pay, and
going through Feast's Python objects per value is far slower than concatenating bytes. The bytes
must be exactly what Feast writes, or ``get_online_features`` would misread them;
``tests/streams/test_online_writer.py`` compares them with Feast's own serializers.

Only the protobuf wire format is needed: a field is ``varint(field << 3 | wire type)`` followed by
a varint (wire type 0), 4 or 8 little-endian bytes (types 5 and 1), or a varint length and payload
(type 2). Lists are a length-delimited message around a packed or repeated field.
"""

from __future__ import annotations

import struct
from collections.abc import Callable, Sequence
from datetime import datetime
from typing import Any

from glide.config import ConfigError
from streams.online_rows import SKIP

Encoder = Callable[[Any], bytes]

STRING_TAG = 2  # feast ValueType.STRING: the type tag inside serialized entity keys


# --- protobuf primitives --------------------------------------------------------------------------


def varint(n: int) -> bytes:
    """Protobuf base-128 varint; a negative int64 is sent as its two's complement, as protobuf does."""
    n &= 0xFFFFFFFFFFFFFFFF
    out = bytearray()
    while n > 0x7F:
        out.append((n & 0x7F) | 0x80)
        n >>= 7
    out.append(n)
    return bytes(out)


_VARINTS = [varint(i) for i in range(1 << 14)]  # one or two bytes: SID codes, lengths, small counts


def _len_field(field: int, payload: bytes) -> bytes:
    n = len(payload)
    return varint(field << 3 | 2) + (_VARINTS[n] if n < 16384 else varint(n)) + payload


# A string's bytes as one element of a StringList. Episode ids repeat across users' recent lists, so
# caching them turns most encodes into dict lookups; the cache is dropped whole when it grows large.
_ELEMENTS: dict[str, bytes] = {}


def _element(x: str) -> bytes:
    b = _ELEMENTS.get(x)
    if b is None:
        if len(_ELEMENTS) > 1_000_000:
            _ELEMENTS.clear()
        b = _ELEMENTS[x] = _len_field(1, str(x).encode())
    return b


# --- feast.types.Value, one encoder per value type ------------------------------------------------


def _v_int(field: int) -> Encoder:
    tag = varint(field << 3)
    return lambda v: tag + varint(int(v))


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
    return b"\x40" + varint(secs)


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
        packed = b"".join(varint(int(x)) for x in v)
    return _len_field(14, _len_field(1, packed))


def _v_float_list(v: Any) -> bytes:
    packed = struct.pack(f"<{len(v)}f", *v) if len(v) else b""
    return _len_field(16, _len_field(1, packed) if packed else b"")


ENCODERS: dict[str, Encoder] = {
    "INT64": _v_int(4), "INT32": _v_int(3), "BOOL": _v_bool, "FLOAT": _v_float, "DOUBLE": _v_double,
    "STRING": _v_string, "UNIX_TIMESTAMP": _v_ts, "STRING_LIST": _v_string_list,
    "INT64_LIST": _v_int64_list, "FLOAT_LIST": _v_float_list,
}


# --- what the stores keep next to the value --------------------------------------------------------


def text_and_num(kind: str, v: Any) -> tuple[str | None, float | None]:
    """Feast's value_text / value_num columns (SQLite store): the value as text and as a number, for
    the types that have them (a FLOAT is rounded to float32 first, as its protobuf holds it)."""
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


def protobuf_timestamp(ts_us: int) -> bytes:
    """google.protobuf.Timestamp {seconds = 1; nanos = 2}, as Feast's Redis store keeps event times
    (zero fields are left out, as protobuf does)."""
    secs, us = divmod(ts_us, 1_000_000)
    return (b"\x08" + varint(secs) if secs else b"") + (b"\x10" + varint(us * 1000) if us else b"")


def redis_field(view: str, feature: str) -> bytes:
    """Feast's Redis hash-field name of a feature: murmur3_32 of "view:feature", little endian."""
    import mmh3

    return struct.pack("<I", mmh3.hash(f"{view}:{feature}", signed=False))


# --- one view ---------------------------------------------------------------------------------------


class ViewLayout:
    """How to encode one feature view's rows: its entity key and its features' value encoders.

    Feast serializes entity keys with the join keys sorted by name, whatever order the view
    declares; rows give entity values in declared order, so the sort order is computed once here and
    the constant key prefix (count, names) is built once."""

    def __init__(self, name: str, join_keys: Sequence[str], features: Sequence[tuple[str, str]]):
        self.name = name
        self.join_keys = list(join_keys)
        self.features = [f for f, _ in features]
        self.kinds = [k for _, k in features]
        unknown = [k for k in self.kinds if k not in ENCODERS]
        if unknown:
            raise ConfigError(f"online writer: view {name} has feature types it cannot encode: {unknown}")
        self.encoders = [ENCODERS[k] for k in self.kinds]
        self.order = sorted(range(len(self.join_keys)), key=lambda i: self.join_keys[i])
        self.prefix = self._key_prefix()

    def _key_prefix(self) -> bytes:
        parts = [struct.pack("<I", len(self.join_keys))]
        for i in self.order:
            k = self.join_keys[i].encode()
            parts += [struct.pack("<II", STRING_TAG, len(k)), k]
        return b"".join(parts)

    def entity_key(self, values: Sequence[str]) -> bytes:
        """Feast's serialize_entity_key (v3) for string join keys."""
        parts = [self.prefix]
        for i in self.order:
            b = values[i].encode()
            parts.append(struct.pack("<II", STRING_TAG, len(b)))
            parts.append(b)
        return b"".join(parts)

    def encode(self, values: Sequence[Any]) -> list[bytes | None]:
        """Value protobuf bytes per feature; None for SKIP."""
        return [b"" if v is None else None if v is SKIP else enc(v) for enc, v in zip(self.encoders, values)]

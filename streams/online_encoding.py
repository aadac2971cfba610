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
from datetime import datetime, timedelta, timezone
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


# --- where rows live: the names both stores use (the writer's and the direct reader's) -------------


def redis_key(entity_key: bytes, project: str) -> bytes:
    """Feast's Redis key of an entity: its serialized key followed by the project name."""
    return entity_key + project.encode()


def redis_ts_field(view: str) -> str:
    """The hash field holding a view's row time (a google.protobuf.Timestamp, protobuf_timestamp)."""
    return f"_ts:{view}"


def sqlite_table(project: str, view: str) -> str:
    """Feast's SQLite online table of a view (compute_table_id without versioning)."""
    return f"{project}_{view}"


# --- decoding: feast.types.Value bytes back to what Feast's to_dict() returns ----------------------

_NULL_TS = -(1 << 63)  # Feast's "no timestamp" (NaT as int64, feast.type_map.NULL_TIMESTAMP_INT_VALUE)
_EPOCH, _SECOND = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(seconds=1)


def read_varint(buf: bytes, i: int) -> tuple[int, int]:
    """The varint at ``buf[i]`` as an unsigned int, and the index after it."""
    b = buf[i]
    if b < 0x80:
        return b, i + 1
    n, shift, i = b & 0x7F, 7, i + 1
    while True:
        b = buf[i]
        i += 1
        n |= (b & 0x7F) << shift
        if b < 0x80:
            return n, i
        shift += 7


def _signed(n: int) -> int:
    return n - (1 << 64) if n >> 63 else n


_UNIFORM: dict[tuple[int, int], struct.Struct] = {}  # (width, count) -> "2x{width}s" * count


def _strings(p: bytes, i: int, end: int) -> list[str]:
    """A StringList in ``p[i:end]``: repeated field 1 (tag 0x0a), each a length and UTF-8 bytes. The
    hot part of a candidate read (30 ids a set): ids of one width under 128 bytes (checked on every
    tag and length byte at once, by strided slices) are cut by one struct call, others one by one."""
    width = p[i + 1] if i < end else 0
    count = (end - i) // (width + 2)
    if (0 < width < 0x80 and count * (width + 2) == end - i and p[i:end:width + 2] == b"\n" * count
            and p[i + 1:end:width + 2] == bytes((width,)) * count):
        cut = _UNIFORM.get((width, count))
        if cut is None:
            if len(_UNIFORM) > 4096:
                _UNIFORM.clear()
            cut = _UNIFORM[(width, count)] = struct.Struct(f"2x{width}s" * count)
        return list(map(bytes.decode, cut.unpack_from(p, i)))
    out: list[str] = []
    append = out.append
    while i < end:
        size = p[i + 1]
        if size < 0x80 and p[i] == 0x0A:
            i += 2
        elif p[i] == 0x0A:
            size, i = read_varint(p, i + 1)
        else:
            raise ValueError(f"online value: unexpected tag {p[i]:#x} in a string list")
        j = i + size
        append(p[i:j].decode())
        i = j
    return out


def _numbers(p: bytes, i: int, end: int, fmt: str | None) -> list:
    """An Int64List (``fmt`` None: varints) or FloatList (``fmt`` "f") in ``p[i:end]``, packed or not."""
    out: list = []
    while i < end:
        tag = p[i]
        if tag == 0x0A:  # packed: one length-delimited run
            size, i = read_varint(p, i + 1)
            if fmt:
                out += struct.unpack_from(f"<{size // 4}{fmt}", p, i)
            else:
                j = i
                while j < i + size:
                    n, j = read_varint(p, j)
                    out.append(_signed(n))
            i += size
        elif tag == 0x0D and fmt:  # one unpacked float
            out.append(struct.unpack_from("<f", p, i + 1)[0])
            i += 5
        elif tag == 0x08 and not fmt:  # one unpacked varint
            n, i = read_varint(p, i + 1)
            out.append(_signed(n))
        else:
            raise ValueError(f"online value: unexpected tag {tag:#x} in a number list")
    return out


def decode_value(blob: bytes | None) -> Any:
    """One feast.types.Value of the types ENCODERS writes, as Feast's ``to_dict()`` returns it: None
    for no bytes or an empty Value, a datetime (UTC) for a UNIX_TIMESTAMP, lists for the lists."""
    if not blob:
        return None
    tag, i = blob[0], 1
    if tag >= 0x80:
        tag, i = read_varint(blob, 0)
    field, wire = tag >> 3, tag & 7
    if wire == 2:
        size = blob[i]
        if size < 0x80:
            i += 1
        else:
            size, i = read_varint(blob, i)
        end = i + size
        if field == 12:
            return _strings(blob, i, end)
        if field == 2:
            return blob[i:end].decode()
        if field in (14, 16):
            return _numbers(blob, i, end, "f" if field == 16 else None)
    elif wire == 0:
        n = _signed(read_varint(blob, i)[0])
        if field == 8:  # whole epoch seconds; Feast returns datetime.fromtimestamp(n, tz=utc), the same
            return None if n == _NULL_TS else _EPOCH + _SECOND * n
        if field in (3, 4):
            return n
        if field == 7:
            return bool(n)
        if field == 19:  # null_val: Feast returns the enum's number (NULL = 0), not None
            return n
    elif wire == 5 and field == 6:
        return struct.unpack_from("<f", blob, i)[0]
    elif wire == 1 and field == 5:
        return struct.unpack_from("<d", blob, i)[0]
    raise ValueError(f"online value: field {field} (wire type {wire}) is not a type GLIDE's views use")

"""Dead letters always fit one produce request: the value (and key) are cut to the configured cap,
headers give the original's size and sha256 and whether it was cut (streams/deadletter.py)."""

from __future__ import annotations

import asyncio
import hashlib

import pytest

from glide.config import ConfigError
from streams import deadletter
from streams.config import DEAD_LETTER_MAX_BYTES, load_stream_settings

CAP = 1024


def _letter(value: bytes | None, key: bytes | None = b"u1") -> deadletter.DeadLetter:
    return deadletter.DeadLetter("listen-events", 2, 17, key, value, "too_large", "x" * 2000)


@pytest.mark.parametrize("size", [CAP - 1, CAP, CAP + 1, 1_200_000])
def test_values_are_cut_to_the_cap_with_size_hash_and_flag(size):
    value = bytes(range(256)) * (size // 256) + b"z" * (size % 256)
    key, copied, headers = _letter(value).record(CAP)
    h = deadletter.parse_headers(headers)
    assert copied == value[:CAP] and key == b"u1"
    assert h[deadletter.SIZE] == str(size)
    assert h[deadletter.SHA256] == hashlib.sha256(value).hexdigest()
    assert h[deadletter.TRUNCATED] == ("true" if size > CAP else "false")
    assert deadletter.KEY_SIZE not in h
    assert (h[deadletter.REASON], h[deadletter.SOURCE_TOPIC], h[deadletter.SOURCE_OFFSET]) == (
        "too_large", "listen-events", "17")
    assert len(h[deadletter.DETAIL]) == 500


def test_a_null_value_and_a_huge_key():
    key = b"k" * (CAP + 5)
    out_key, value, headers = _letter(None, key).record(CAP)
    h = deadletter.parse_headers(headers)
    assert value == b"" and h[deadletter.SIZE] == "0" and h[deadletter.TRUNCATED] == "false"
    assert out_key == key[:CAP]
    assert h[deadletter.KEY_SIZE] == str(CAP + 5) and h[deadletter.KEY_SHA256] == hashlib.sha256(key).hexdigest()


def test_send_all_produces_the_cut_copy():
    sent = []

    class Producer:
        async def send(self, topic, value, key, headers):
            sent.append((topic, key, value, headers))
            fut = asyncio.get_running_loop().create_future()
            fut.set_result(None)
            return fut

    asyncio.run(deadletter.send_all(Producer(), [_letter(b"a" * 5000), _letter(b"b" * 10)], CAP))
    assert [(t, k, len(v)) for t, k, v, _ in sent] == [("dead-letter", b"u1", CAP), ("dead-letter", b"u1", 10)]
    assert deadletter.parse_headers(sent[0][3])[deadletter.TRUNCATED] == "true"


def test_the_cap_defaults_well_under_the_request_size_and_is_checked():
    cfg = load_stream_settings()
    assert cfg.dead_letter_max_bytes == DEAD_LETTER_MAX_BYTES == 256 * 1024
    assert cfg.producer_max_request_bytes == 1024 * 1024
    assert cfg.fetch_max_partition_bytes > 1_048_588  # above Kafka's message.max.bytes
    with pytest.raises(ConfigError, match="GLIDE_STREAMS_DEAD_LETTER_MAX_BYTES"):
        load_stream_settings(dead_letter_max_bytes=600 * 1024)
    assert load_stream_settings(dead_letter_max_bytes=600 * 1024, producer_max_request_bytes=4 * 1024 * 1024)

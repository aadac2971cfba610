"""The dead-letter topic: the original bytes as the record value (and the original key), the reason
and the source coordinates as headers, so a record can be inspected and re-driven unchanged.

A dead letter must always fit in one produce request, whatever came in: a record the broker accepted
may be larger than the producer's ``max_request_size`` once headers are added (a 1.2 MB listen on a
broker that takes it, with the producer's 1 MiB limit), and a dead letter that cannot be produced is
a poison pill (the batch never commits, every restart dies on it). So the copy carries at most
``max_bytes`` of the value (and of the key), and headers give the original's size and sha256 and
whether it was cut (``glide-dlq-truncated``); a truncated record is re-driven from the source
topic/partition/offset headers, not from the copy.
"""

from __future__ import annotations

import asyncio
import hashlib
import time
from dataclasses import dataclass

from streams.config import DEAD_LETTER_MAX_BYTES
from streams.metrics import DEAD_LETTERS
from streams.schemas import DEAD_LETTER_TOPIC

REASON = "glide-dlq-reason"
DETAIL = "glide-dlq-detail"
SOURCE_TOPIC = "glide-dlq-topic"
SOURCE_PARTITION = "glide-dlq-partition"
SOURCE_OFFSET = "glide-dlq-offset"
AT = "glide-dlq-at-ms"
SIZE = "glide-dlq-size"  # bytes of the original value (0 for a null value)
SHA256 = "glide-dlq-sha256"  # hex sha256 of the original value
TRUNCATED = "glide-dlq-truncated"  # "true" when the copied value is only its first max_bytes
KEY_SIZE = "glide-dlq-key-size"  # only when the key was cut too
KEY_SHA256 = "glide-dlq-key-sha256"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str

    def headers(self, max_bytes: int = DEAD_LETTER_MAX_BYTES) -> list[tuple[str, bytes]]:
        value = self.value or b""
        out = [
            (REASON, self.reason.encode()),
            (DETAIL, self.detail[:500].encode("utf-8", "replace")),
            (SOURCE_TOPIC, self.topic.encode()),
            (SOURCE_PARTITION, str(self.partition).encode()),
            (SOURCE_OFFSET, str(self.offset).encode()),
            (AT, str(int(time.time() * 1000)).encode()),
            (SIZE, str(len(value)).encode()),
            (SHA256, hashlib.sha256(value).hexdigest().encode()),
            (TRUNCATED, b"true" if len(value) > max_bytes else b"false"),
        ]
        if self.key is not None and len(self.key) > max_bytes:
            out += [(KEY_SIZE, str(len(self.key)).encode()),
                    (KEY_SHA256, hashlib.sha256(self.key).hexdigest().encode())]
        return out

    def record(self, max_bytes: int = DEAD_LETTER_MAX_BYTES) -> tuple[bytes | None, bytes, list[tuple[str, bytes]]]:
        """(key, value, headers) as produced: value and key cut to ``max_bytes`` (a null value is b"")."""
        key = self.key if self.key is None else self.key[:max_bytes]
        return key, (self.value or b"")[:max_bytes], self.headers(max_bytes)


def parse_headers(headers) -> dict[str, str]:
    """Dead-letter headers as a str dict (for tools and tests)."""
    return {k: v.decode() for k, v in headers or () if k.startswith("glide-dlq-")}


async def send_all(producer, letters: list[DeadLetter], max_bytes: int = DEAD_LETTER_MAX_BYTES) -> None:
    """Produce and wait for delivery (the caller commits its state only after this returns)."""
    if not letters:
        return
    futures = []
    for d in letters:
        key, value, headers = d.record(max_bytes)
        futures.append(await producer.send(DEAD_LETTER_TOPIC, value=value, key=key, headers=headers))
    await asyncio.gather(*futures)
    for d in letters:
        DEAD_LETTERS.labels(d.topic, d.reason).inc()

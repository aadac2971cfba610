"""The dead-letter topic: the original bytes as the record value (and the original key), the reason
and the source coordinates as headers, so a record can be inspected and re-driven unchanged."""

from __future__ import annotations

import asyncio
import time
from dataclasses import dataclass

from streams.metrics import DEAD_LETTERS
from streams.schemas import DEAD_LETTER_TOPIC

REASON = "glide-dlq-reason"
DETAIL = "glide-dlq-detail"
SOURCE_TOPIC = "glide-dlq-topic"
SOURCE_PARTITION = "glide-dlq-partition"
SOURCE_OFFSET = "glide-dlq-offset"
AT = "glide-dlq-at-ms"


@dataclass(frozen=True)
class DeadLetter:
    topic: str
    partition: int
    offset: int
    key: bytes | None
    value: bytes | None
    reason: str
    detail: str

    def headers(self) -> list[tuple[str, bytes]]:
        return [
            (REASON, self.reason.encode()),
            (DETAIL, self.detail[:500].encode("utf-8", "replace")),
            (SOURCE_TOPIC, self.topic.encode()),
            (SOURCE_PARTITION, str(self.partition).encode()),
            (SOURCE_OFFSET, str(self.offset).encode()),
            (AT, str(int(time.time() * 1000)).encode()),
        ]


def parse_headers(headers) -> dict[str, str]:
    """Dead-letter headers as a str dict (for tools and tests)."""
    return {k: v.decode() for k, v in headers or () if k.startswith("glide-dlq-")}


async def send_all(producer, letters: list[DeadLetter]) -> None:
    """Produce and wait for delivery (the caller commits its state only after this returns)."""
    if not letters:
        return
    futures = [await producer.send(DEAD_LETTER_TOPIC, value=d.value if d.value is not None else b"",
                                   key=d.key, headers=d.headers()) for d in letters]
    await asyncio.gather(*futures)
    for d in letters:
        DEAD_LETTERS.labels(d.topic, d.reason).inc()

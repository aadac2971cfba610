"""The clock a parked listen's catalog wait runs on: time during which the catalog stream was current.

A listen whose episode the catalog does not know is parked for ``catalog_wait_s`` (streams/config.py),
since the episode's catalog update may be on its way. On the wall clock that wait also runs out while
the catalog stream is stuck inside a batch (retrying an online store that is down) or working through
the backlog such an outage leaves, and good listens were dead-lettered as unknown episodes after an
outage. This clock stands still while the catalog stream is inside a batch and runs at wall speed
while it is idle, so an episode counts as unknown only after the catalog stream has been caught up
for the whole wait.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Iterator
from contextlib import contextmanager


class CatalogClock:
    def __init__(self, now: Callable[[], float] = time.monotonic):
        self._now = now
        self._lock = threading.Lock()
        self._inside = 0  # catalog batches in progress
        self._since = 0.0  # when the first of them began
        self._stood_still = 0.0  # seconds spent inside batches, all finished ones

    @contextmanager
    def batch(self) -> Iterator[None]:
        """Around one catalog batch: the clock stands still until it ends, however it ends."""
        with self._lock:
            if self._inside == 0:
                self._since = self._now()
            self._inside += 1
        try:
            yield
        finally:
            with self._lock:
                self._inside -= 1
                if self._inside == 0:
                    self._stood_still += self._now() - self._since

    def seconds(self) -> float:
        """Monotonic seconds, not counting any spent inside a catalog batch."""
        with self._lock:
            now = self._now()
            current = now - self._since if self._inside else 0.0
            return now - self._stood_still - current

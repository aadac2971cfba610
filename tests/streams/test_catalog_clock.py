"""The catalog wait's clock: wall speed while the catalog stream is idle, still inside its batches
(also nested, and when a batch fails)."""

from __future__ import annotations

import pytest

from streams.catalog_clock import CatalogClock


class FakeTime:
    def __init__(self):
        self.t = 100.0

    def __call__(self) -> float:
        return self.t


def test_the_clock_stands_still_inside_catalog_batches_only():
    now = FakeTime()
    clock = CatalogClock(now)
    start = clock.seconds()
    now.t += 3
    assert clock.seconds() - start == 3  # idle: wall speed
    with clock.batch():
        now.t += 10  # a batch stuck retrying an online store that is down
        assert clock.seconds() - start == 3
        with clock.batch():  # two batches at once: still until both end
            now.t += 1
        now.t += 1
    now.t += 2
    assert clock.seconds() - start == 5


def test_a_failed_batch_lets_the_clock_run_again():
    now = FakeTime()
    clock = CatalogClock(now)
    start = clock.seconds()
    with pytest.raises(RuntimeError), clock.batch():
        now.t += 4
        raise RuntimeError("catalog DB down")
    now.t += 1
    assert clock.seconds() - start == 1

"""The catalog wait's clock: wall speed while the catalog stream is idle, still inside its batches
(also nested, and when a batch fails)."""

from __future__ import annotations

import pytest

from streams.catalog_clock import CatalogClock
from tests.streams.fakes import ManualClock


def test_the_clock_stands_still_inside_catalog_batches_only():
    wall = ManualClock(100.0)
    clock = CatalogClock(wall)
    start = clock.seconds()
    wall.now += 3
    assert clock.seconds() - start == 3  # idle: wall speed
    with clock.batch():
        wall.now += 10  # a batch stuck retrying an online store that is down
        assert clock.seconds() - start == 3
        with clock.batch():  # two batches at once: still until both end
            wall.now += 1
        wall.now += 1
    wall.now += 2
    assert clock.seconds() - start == 5


def test_a_failed_batch_lets_the_clock_run_again():
    wall = ManualClock(100.0)
    clock = CatalogClock(wall)
    start = clock.seconds()
    with pytest.raises(RuntimeError), clock.batch():
        wall.now += 4
        raise RuntimeError("catalog DB down")
    wall.now += 1
    assert clock.seconds() - start == 1

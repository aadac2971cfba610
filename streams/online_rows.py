"""The row format the online writer accepts, and nothing else.

This is the contract between whoever computes feature values (the stream state, replay, benchmarks)
and the writer that stores them. It lives apart from the writer so that producers of rows depend on
two plain names, not on the writer's encoding or storage internals.

A row is ``(entity values in join-key order, feature values in the view's feature order, event time
in µs)``. The timestamp orders rows: the store keeps, per entity, the row with the newest one, so
producers must give each entity strictly increasing timestamps for "newest" to mean "latest state".
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

Row = tuple[tuple[str, ...], Sequence[Any], int]


class _Skip:
    def __repr__(self) -> str:
        return "SKIP"


# A feature value meaning "unchanged: leave the stored value as it is". Sending only what changed
# shrinks each write; it is safe only when the skipped value is already stored or in flight.
SKIP = _Skip()

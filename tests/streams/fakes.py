"""Stand-ins for hermetic tests: a store that only names feature services, a backend that returns
every SID a request may produce (its sub-trie, else the catalog), best first, and a clock moved by hand."""

from __future__ import annotations

import numpy as np

from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie


def catalog_table(catalog: dict) -> tuple[np.ndarray, CollisionTable, list]:
    """(codes, collision table, sorted distinct SIDs) of {episode: (sid, show, popularity, locale)}."""
    ids = list(catalog)
    codes = np.array([catalog[e][0] for e in ids])
    table = CollisionTable.from_arrays(ids, codes, [catalog[e][2] for e in ids], locale=[catalog[e][3] for e in ids])
    return codes, table, sorted({catalog[e][0] for e in ids})


class FakeStore:
    def get_feature_service(self, name):
        return name


class EchoBackend:
    """Every allowed SID, best first: the service's rule and I/O are under test, not the model."""

    def __init__(self, trie: SidTrie, sids):
        self.trie, self.sids, self.seen = trie, sids, []

    def generate(self, requests):
        self.seen.extend(requests)
        return [[(s, -float(i)) for i, s in enumerate(self.sids) if r.allowed is None or s in r.allowed]
                for r in requests]


class ManualClock:
    """A monotonic clock the test moves by hand (``clock.now += 5``)."""

    def __init__(self, now: float = 0.0):
        self.now = now

    def __call__(self) -> float:
        return self.now

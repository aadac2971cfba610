"""Stand-ins for hermetic CandidateService tests: a store that only names feature services, and a
backend that returns every SID a request may produce (its sub-trie, else the catalog), best first."""

from __future__ import annotations

from glide_model.sids.trie import SidTrie


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

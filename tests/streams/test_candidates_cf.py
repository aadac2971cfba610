"""The worker's CF soft prompt input: an online vector conditions the model only when it is of the
model's CF version and its projector's dimension; otherwise the default vector is served, counted in
glide_worker_cf_vectors_total{outcome}. Hermetic (fake online rows); the live check is in
test_candidate_worker.py."""

from __future__ import annotations

from types import SimpleNamespace

import numpy as np
import pandas as pd
import pytest

import streams.candidates as candidates
from glide_model.sids.trie import SidTrie
from streams.candidates import CF_OUTCOMES, CF_VECTORS, CandidateService, backend_cf_dim, cf_outcome
from streams.schemas import SessionStart
from tests.streams.fakes import EchoBackend, FakeStore, catalog_table
from tests.streams.test_candidates_rule import CATALOG, K, NOW

# user: (cf_embedding, cf_version) as the online store returns them
ROWS = {
    "ok": ([0.1, 0.2, 0.3, 0.4], "cf-a"),
    "ok2": (np.ones(4, dtype=np.float32).tolist(), "cf-a"),
    "missing": (None, None),
    "empty": ([], "cf-a"),
    "other_version": ([0.1, 0.2, 0.3, 0.4], "cf-b"),
    "unversioned": ([0.1, 0.2, 0.3, 0.4], None),
    "short": ([0.1, 0.2, 0.3], "cf-a"),
    "long": ([0.0] * 9, "cf-a"),
}


@pytest.fixture
def make(monkeypatch):
    def online_features(store, refs, rows):
        users = [r["user_id"] for r in rows]
        n = len(users)
        return {"sid_levels": [2] * n, "recent_sid_codes": [[0, 0]] * n, "recent_episode_ids": [["r1"]] * n,
                "locale": ["en-US"] * n, "affinity_topics": [[]] * n,
                "cf_embedding": [ROWS[u][0] for u in users], "cf_version": [ROWS[u][1] for u in users]}

    def read_user_show_features(store, user_id, shows, as_of):
        return pd.DataFrame({"show_id": shows, "habitual": [False] * len(shows), "ever_listened": [False] * len(shows)})

    monkeypatch.setattr(candidates, "online_features", online_features)
    monkeypatch.setattr(candidates, "read_user_show_features", read_user_show_features)
    codes, table, sids = catalog_table(CATALOG)
    ids = list(CATALOG)

    def build(backend=None, **kw) -> CandidateService:
        return CandidateService(FakeStore(), backend or EchoBackend(SidTrie(codes, K), sids), table,
                                {e: v[1] for e, v in CATALOG.items()}, "v",
                                published_at={e: NOW - pd.Timedelta(days=1) for e in ids}, **kw)

    return build


def _sessions(users) -> list[SessionStart]:
    return [SessionStart(event_id=u, user_id=u, ts=int(NOW.value // 1_000_000), surface="home") for u in users]


def _counted() -> dict[str, float]:
    return {o: CF_VECTORS.labels(o)._value.get() for o in CF_OUTCOMES}


def test_each_online_row_is_served_with_its_vector_or_the_default_and_counted(make):
    service = make(cf_version="cf-a", cf_dim=4)
    before = _counted()
    sets = service.recommend(_sessions(list(ROWS)))  # never raises, whatever the rows hold
    assert len(sets) == len(ROWS)
    got = {r.user_id: r.cf_embedding for r in service.backend.seen}
    assert got["ok"].dtype == np.float32 and got["ok"].tolist() == pytest.approx([0.1, 0.2, 0.3, 0.4])
    assert got["ok2"] is not None
    assert all(got[u] is None for u in ROWS if u not in ("ok", "ok2"))
    expected = {"ok": 2, "missing": 2, "version_mismatch": 2, "bad_dimension": 2}
    assert {o: _counted()[o] - before[o] for o in CF_OUTCOMES} == expected
    assert dict(service.cf_counts) == expected


def test_a_version_mismatch_is_logged(make, caplog):
    service = make(cf_version="cf-a", cf_dim=4)
    with caplog.at_level("WARNING", logger="glide.worker"):
        service.requests(_sessions(["other_version", "ok"]))
    assert "cf-b" in caplog.text and "default vector" in caplog.text


def test_a_model_without_a_recorded_cf_version_accepts_any_version(make):
    """Older manifests have no cf_version: the vector is used when its dimension fits."""
    service = make(cf_version=None, cf_dim=4)
    requests, _ = service.requests(_sessions(["other_version", "unversioned", "short"]))
    assert [r.cf_embedding is not None for r in requests] == [True, True, False]


def test_the_dimension_comes_from_the_backends_projector_by_default(make):
    trie = SidTrie(np.array([CATALOG[e][0] for e in CATALOG]), K)
    hf_like = EchoBackend(trie, [])
    hf_like.glm = SimpleNamespace(projector=SimpleNamespace(d_cf=3))
    assert backend_cf_dim(hf_like) == 3
    assert make(backend=hf_like, cf_version="cf-a").cf_dim == 3
    vllm_like = SimpleNamespace(projector=SimpleNamespace(d_cf=9))
    assert backend_cf_dim(vllm_like) == 9
    assert backend_cf_dim(SimpleNamespace(glm=SimpleNamespace(projector=None))) is None  # no soft prompt


def test_outcome_rule():
    assert cf_outcome(None, "cf-a", "cf-a", 4) == "missing"
    assert cf_outcome([1.0] * 4, "cf-b", "cf-a", 4) == "version_mismatch"
    assert cf_outcome([1.0] * 5, "cf-a", "cf-a", 4) == "bad_dimension"
    assert cf_outcome(np.ones(4), "cf-a", "cf-a", 4) == "ok"
    assert cf_outcome([1.0] * 5, "cf-a", "cf-a", None) == "ok"  # no projector: nothing to check against

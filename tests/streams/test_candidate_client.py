"""streams.candidate_client against a real Feast store (embedded profile: SQLite online store): both
modes of many users in one batch read, the freshness bound, and one mode written without touching
the other."""

from __future__ import annotations

import time

import pandas as pd
import pytest

from glide.config import ConfigError, load_settings
from streams.candidate_client import CachedCandidates, CandidateClient, needs_refresh
from streams.candidates import CandidateService, CandidateSet
from glide_model.sids.trie import SidTrie
from streams.feature_store import apply_definitions, open_store
from tests.streams.fakes import EchoBackend, catalog_table

NOW_S = time.time()


def _set(user: str, mode: str, ids: list[str], age_s: float = 0.0, model: str = "m1") -> CandidateSet:
    return CandidateSet(user, f"s-{user}", mode, ids, [float(-i) for i in range(len(ids))], model,
                        int((NOW_S - age_s) * 1000), 1.0, quantizer_version="q1", surface="home")


def _publisher(store) -> CandidateService:
    """A CandidateService over the real store, used only for publish (the worker's write path)."""
    codes, table, sids = catalog_table({"e0": ((0, 0), "s0", 1.0, "en-US")})
    return CandidateService(store, EchoBackend(SidTrie(codes, 2), sids), table, {"e0": "s0"}, "m1")


@pytest.fixture(scope="module")
def store(tmp_path_factory):
    settings = load_settings(data_dir=str(tmp_path_factory.mktemp("client")), profile="embedded")
    store = open_store(settings)
    apply_definitions(store, settings)
    _publisher(store).publish([
        _set("u1", "familiar", ["f1", "f2"]), _set("u1", "unfamiliar", ["n1", "n2", "n3"], age_s=7200),
        _set("u2", "unfamiliar", ["n9"]),
    ])
    return settings, store


def test_one_batch_read_returns_both_modes_of_every_asked_user(store):
    settings, feast = store
    got = CandidateClient(settings, feast).get(["u2", "u1", "u-none", "u1"])
    assert list(got) == ["u2", "u1", "u-none"]  # each user once, in the asked order
    u1 = got["u1"]
    assert u1.sets["familiar"].episode_ids == ["f1", "f2"] and u1.sets["unfamiliar"].episode_ids == ["n1", "n2", "n3"]
    assert u1.sets["unfamiliar"].scores == [0.0, -1.0, -2.0]
    first = u1.sets["familiar"]
    assert (first.model_version, first.quantizer_version, first.surface) == ("m1", "q1", "home")
    assert abs(first.generated_at_ms / 1000 - NOW_S) < 1.5  # Feast keeps whole seconds
    assert got["u2"].missing == ("familiar",) and list(got["u2"].sets) == ["unfamiliar"]
    assert got["u-none"].sets == {} and got["u-none"].missing == ("familiar", "unfamiliar")


def test_a_set_older_than_max_age_is_stale_not_served(store):
    settings, feast = store
    got = CandidateClient(settings, feast).get(["u1"], max_age_s=3600, now_s=NOW_S)["u1"]
    assert list(got.sets) == ["familiar"]
    assert 7199 <= got.stale["unfamiliar"] <= 7201 and got.missing == ()
    fresh_only = CandidateClient(settings, feast).get(["u1"], mode="unfamiliar", max_age_s=10_000)["u1"]
    assert list(fresh_only.sets) == ["unfamiliar"] and fresh_only.stale == {}


def test_one_mode_is_rewritten_without_touching_the_other(store):
    settings, feast = store
    _publisher(feast).publish([_set("u3", "familiar", ["a"]), _set("u3", "unfamiliar", ["b"])])
    _publisher(feast).publish([_set("u3", "familiar", ["c", "d"], model="m2")])
    got = CandidateClient(settings, feast).get(["u3"])["u3"]
    assert got.sets["familiar"].episode_ids == ["c", "d"] and got.sets["familiar"].model_version == "m2"
    assert got.sets["unfamiliar"].episode_ids == ["b"] and got.sets["unfamiliar"].model_version == "m1"


def test_bad_arguments_and_an_unapplied_store(store, tmp_path):
    settings, feast = store
    client = CandidateClient(settings, feast)
    assert client.get([]) == {}
    with pytest.raises(ValueError, match="unknown mode"):
        client.get(["u1"], mode="habitual")
    bare = load_settings(data_dir=str(tmp_path), profile="embedded")
    with pytest.raises(ConfigError, match="glide stack up"):
        CandidateClient(bare)


def test_the_refresh_rule():
    """The worker's policy is a pure function of the cached row (tests/streams/test_refresh_policy.py
    runs it through the worker)."""
    at = int(pd.Timestamp("2026-03-01", tz="UTC").value // 1_000_000)
    c = CachedCandidates("u", "familiar", ["e"], [0.0], "m1", "q", "home", at, history_as_of_ms=at - 5000)
    assert not needs_refresh(c, at - 5000, at + 1000, "m1", 3600)  # fresh, nothing listened since
    assert needs_refresh(c, at - 4000, at + 1000, "m1", 3600)  # a newer history row: listened since
    assert needs_refresh(c, at - 5000, at + 3600_000, "m1", 3600)  # TTL reached
    assert needs_refresh(c, at - 5000, at - 3600_000, "m1", 3600)  # a session far before the set
    assert needs_refresh(c, at - 5000, at + 1000, "m2", 3600)  # another model's set
    assert needs_refresh(None, None, at, "m1", 3600)  # nothing cached
    assert needs_refresh(c, at - 5000, at, "m1", 0)  # TTL 0: always
    cold = CachedCandidates("u", "familiar", [], [], "m1", "q", "home", at)
    assert not needs_refresh(cold, None, at, "m1", 3600) and needs_refresh(cold, at, at, "m1", 3600)

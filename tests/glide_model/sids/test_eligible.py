"""Per-request eligible sub-tries: every rule cuts exactly the episodes it should, and the trie
follows catalog changes."""

from __future__ import annotations

import pandas as pd
import pytest

from glide_model.sids.collisions import CollisionTable, Eligibility
from glide_model.sids.eligible import EligibleSids

K = 8


@pytest.fixture
def table():
    t = CollisionTable(levels=2)
    # (episode, codes, popularity, playable, locale)
    for eid, codes, pop, playable, locale in [
        ("a1", (0, 0), 5, True, "en-US"), ("a2", (0, 1), 4, True, "en-US"),
        ("b1", (1, 0), 3, True, "en-GB"), ("b2", (1, 1), 2, False, "en-GB"),
        ("c1", (2, 0), 1, True, "de-DE"), ("c2", (0, 0), 9, True, "de-DE"),  # c2 collides with a1
    ]:
        t.add_episode(eid, codes, pop, playable, locale)
    return t


SHOWS = {"a1": "A", "a2": "A", "b1": "B", "b2": "B", "c1": "C", "c2": "C"}
PUB = {e: pd.Timestamp("2026-01-01", tz="UTC") for e in SHOWS} | {"a2": pd.Timestamp("2026-02-01", tz="UTC")}


def sids(trie) -> set[tuple[int, ...]]:
    return {(a, b) for a in range(K) for b in range(K) if (a, b) in trie} if trie is not None else set()


def test_each_rule_removes_exactly_its_episodes(table):
    el = EligibleSids(table, SHOWS, K, PUB)
    assert sids(el.trie()) == {(0, 0), (0, 1), (1, 0), (2, 0)}  # b2 unplayable
    assert sids(el.trie(locale="en-US")) == {(0, 0), (0, 1)}
    assert sids(el.trie(language="en-GB")) == {(0, 0), (0, 1), (1, 0)}  # en-US and en-GB share English
    assert sids(el.trie(as_of=pd.Timestamp("2026-01-15", tz="UTC"))) == {(0, 0), (1, 0), (2, 0)}  # a2 unpublished
    assert sids(el.trie(banned_shows={"A"})) == {(0, 0), (1, 0), (2, 0)}  # (0, 0) lives on through c2
    assert sids(el.trie(banned_shows={"A", "C"})) == {(1, 0)}
    assert sids(el.trie(allowed_shows={"C"})) == {(0, 0), (2, 0)}
    assert sids(el.trie(seen_episodes={"a1", "c2"})) == {(0, 1), (1, 0), (2, 0)}
    assert el.trie(allowed_shows={"B"}, seen_episodes={"b1"}) is None  # nothing left: no search at all


def test_sub_trie_follows_catalog_changes(table):
    el = EligibleSids(table, dict(SHOWS), K)
    assert sids(el.trie(allowed_shows={"B"})) == {(1, 0)}
    table.set_playable("b2", True)
    assert sids(el.trie(allowed_shows={"B"})) == {(1, 0), (1, 1)}
    table.add_episode("b3", (3, 3), 1.0, True, "en-GB")
    el.show_of["b3"] = "B"
    assert sids(el.trie(allowed_shows={"B"})) == {(1, 0), (1, 1), (3, 3)}


def test_language_match_in_collision_resolution(table):
    assert table.resolve((0, 0), Eligibility.for_user("en-GB", match="language")) == "a1"
    assert table.resolve((0, 0), Eligibility.for_user("en-GB")) is None  # exact locale: no en-GB episode
    assert table.resolve((0, 0), Eligibility.for_user("de-AT", match="language")) == "c2"
    with pytest.raises(ValueError, match="match"):
        Eligibility.for_user("en-US", match="country")

"""CandidateService applies the serving rule (glide_model/serving/rules.py) with the facts the online
store gives it: a hermetic check (fake store reads and backend) of the mode rules, the locale,
publish times and the shows learnt after generation. The live-stack test is test_candidate_worker.py."""

from __future__ import annotations

import pandas as pd
import pytest

import streams.candidates as candidates
from glide_model.sids.trie import SidTrie
from streams.candidates import CandidateConfig, CandidateService
from streams.schemas import SessionStart
from tests.streams.fakes import EchoBackend, FakeStore, catalog_table

K = 4
NOW = pd.Timestamp("2026-03-01", tz="UTC")
# episode: (sid, show, popularity, locale)
CATALOG = {
    "r1": ((0, 0), "recent", 50, "en-US"),  # the user's recent listen
    "r2": ((0, 1), "recent", 40, "en-US"),
    "h1": ((1, 0), "habit", 90, "en-US"),  # recent listen of a habitual show
    "h2": ((1, 1), "habit", 80, "en-US"),
    "o1": ((1, 1), "old", 70, "en-GB"),  # listened long ago (the store knows, the recent list does not)
    "n1": ((2, 0), "new", 60, "en-US"),
    "n2": ((2, 0), "new", 65, "de-DE"),
    "n3": ((2, 1), "new", 30, "en-US"),  # published after the session
}
STATES = {"recent": (False, True), "habit": (True, True), "old": (False, True)}  # show: (habitual, ever listened)


@pytest.fixture
def service(monkeypatch):
    def online_features(store, refs, rows):
        n = len(rows)
        return {"sid_levels": [2] * n, "recent_sid_codes": [[0, 0, 1, 0]] * n, "cf_embedding": [None] * n,
                "locale": ["en-GB"] * n, "affinity_topics": [[]] * n, "recent_episode_ids": [["r1", "h1"]] * n}

    def read_user_show_features(store, user_id, shows, as_of):
        states = [STATES.get(s, (False, False)) for s in shows]
        return pd.DataFrame({"show_id": shows, "habitual": [h for h, _ in states],
                             "ever_listened": [e for _, e in states]})

    monkeypatch.setattr(candidates, "online_features", online_features)
    monkeypatch.setattr(candidates, "read_user_show_features", read_user_show_features)
    codes, table, sids = catalog_table(CATALOG)
    ids = list(CATALOG)
    published = {e: NOW - pd.Timedelta(days=1) for e in ids} | {"n3": NOW + pd.Timedelta(hours=1)}

    def make(**config) -> CandidateService:
        return CandidateService(FakeStore(), EchoBackend(SidTrie(codes, K), sids), table,
                                {e: v[1] for e, v in CATALOG.items()}, "v", CandidateConfig(**config),
                                published_at=published)

    return make


def _serve(service: CandidateService, mode: str) -> list[str]:
    session = SessionStart(event_id="x", user_id="u", ts=int(NOW.value // 1_000_000), surface="home",
                           context={"mode": mode})
    return service.recommend([session])[0].episode_ids


@pytest.mark.parametrize("eligible_decoding", [True, False])
def test_unfamiliar_drops_every_show_the_user_listened_to(service, eligible_decoding):
    # recent/habit: shows of the recent listens; old: ever_listened in the store; n2 de-DE; n3 unpublished
    assert _serve(service(eligible_decoding=eligible_decoding), "unfamiliar") == ["n1"]


def test_familiar_keeps_only_listened_non_habitual_shows(service):
    # The state of every catalog show is read up front: "old" (listened long ago, not in the recent
    # list) is familiar and not habitual, so o1 (en-GB) is served; habit out; consumed r1 out.
    assert _serve(service(), "familiar") == ["r2", "o1"]
    # without the sub-trie the beams run over the whole catalog and the same rule drops the rest
    assert _serve(service(eligible_decoding=False), "familiar") == ["r2", "o1"]


def test_exact_locale_and_no_locale_rule(service):
    assert _serve(service(locale_match="locale", eligible_decoding=False), "familiar") == ["o1"]
    assert _serve(service(locale_filter=False), "unfamiliar") == ["n2"]  # more popular than n1

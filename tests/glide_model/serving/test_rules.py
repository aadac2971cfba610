"""glide_model.serving.rules on a hand-made catalog: every clause of the serving rule, collision
resolution (most popular eligible, never twice) and the eligible sub-trie."""

from __future__ import annotations

import sys

import numpy as np
import pandas as pd
import pytest

from glide_model.serving.rules import (
    Constraint,
    RequestFacts,
    ServingRules,
    constraints,
    facts_from_examples,
    show_rule,
)
from glide_model.sids.collisions import CollisionTable

T0 = pd.Timestamp("2026-03-01", tz="UTC")
K = 4
A, B, C, D = (0, 0), (0, 1), (1, 0), (1, 1)  # the SIDs (2 levels); A and B hold collisions
# episode: (sid, show, popularity, playable, locale, published_at)
CATALOG = {
    "a1": (A, "hab", 90, True, "en-US", T0 - pd.Timedelta(days=9)),
    "a2": (A, "fam", 80, True, "en-US", T0 - pd.Timedelta(days=9)),
    "a3": (A, "new", 70, True, "en-GB", T0 - pd.Timedelta(days=9)),
    "a4": (A, "new", 60, True, "de-DE", T0 - pd.Timedelta(days=9)),
    "b1": (B, "new", 95, False, "en-US", T0 - pd.Timedelta(days=9)),  # unplayable
    "b2": (B, "new", 50, True, "en-US", T0 + pd.Timedelta(days=1)),  # published after the request
    "b3": (B, "fam", 40, True, "en-US", None),  # no publish time: passes rule 6
    "c1": (C, "new", 30, True, "de-DE", T0 - pd.Timedelta(days=9)),
    "d1": (D, "fam", 20, True, "en-GB", T0 - pd.Timedelta(days=9)),
    "d2": (D, "new", 10, True, "en-US", T0 - pd.Timedelta(days=9)),
}
SHOW_OF = {e: v[1] for e, v in CATALOG.items()}


def make_rules(locale_rule: str = "language") -> ServingRules:
    ids = list(CATALOG)
    table = CollisionTable.from_arrays(
        ids, np.array([CATALOG[e][0] for e in ids]), [CATALOG[e][2] for e in ids],
        playable=[CATALOG[e][3] for e in ids], locale=[CATALOG[e][4] for e in ids],
    )
    published = {e: v[5] for e, v in CATALOG.items() if v[5] is not None}
    return ServingRules(table, dict(SHOW_OF), published_at=published, locale_rule=locale_rule, codebook_size=K)


def facts(mode="unfamiliar", consumed=(), locale="en-GB", as_of=T0) -> RequestFacts:
    # "hab" is habitual now, "fam" was listened to before (not habitual), "new" never
    return RequestFacts.make(mode=mode, habitual={"hab"}, listened={"hab", "fam"}, consumed=consumed,
                             locale=locale, as_of=as_of)


def eligible(rules: ServingRules, f: RequestFacts) -> set[str]:
    return {e for e in CATALOG if rules.is_eligible(e, f)}


def test_every_clause_of_the_rule():
    rules = make_rules()
    # unfamiliar: no habitual (a1), no familiar show (a2, b3, d1); no de-DE (a4, c1); no unplayable
    # (b1); nothing published after the request (b2). en-GB gets en-US (d2) and en-GB (a3).
    assert eligible(rules, facts("unfamiliar")) == {"a3", "d2"}
    # familiar: only the familiar non-habitual show; b3 has no publish time, d1 is en-GB
    assert eligible(rules, facts("familiar")) == {"a2", "b3", "d1"}
    # no mode: habitual shows out only
    assert eligible(rules, facts(None)) == {"a2", "a3", "b3", "d1", "d2"}


def test_habitual_show_out_in_every_mode():
    rules = make_rules()
    for mode in ("familiar", "unfamiliar", None):
        assert "a1" not in eligible(rules, facts(mode))
    assert show_rule("familiar", {"hab"}, {"hab", "fam"}).allowed_shows == {"fam"}


def test_consumed_episodes_out():
    rules = make_rules()
    assert eligible(rules, facts("unfamiliar", consumed=["a3"])) == {"d2"}
    assert eligible(rules, facts("familiar", consumed=["a2", "d1"])) == {"b3"}


def test_locale_rule_language_exact_and_none():
    f = facts(None, locale="en-GB")
    assert "a4" not in eligible(make_rules(), f) and "c1" not in eligible(make_rules(), f)  # de-DE
    assert {"a2", "d2"} <= eligible(make_rules(), f)  # en-US for an en-GB listener
    assert eligible(make_rules("locale"), f) == {"a3", "d1"}  # exact locale only
    assert {"a4", "c1"} <= eligible(make_rules("none"), f)
    assert {"a4", "c1"} <= eligible(make_rules(), facts(None, locale=None))  # no locale known: no rule
    with pytest.raises(ValueError, match="locale_rule"):
        make_rules("country")


def test_unpublished_at_request_time_out():
    rules = make_rules()
    assert "b2" not in eligible(rules, facts(None, locale="en-US"))
    assert "b2" in eligible(rules, facts(None, locale="en-US", as_of=T0 + pd.Timedelta(days=2)))
    assert "b2" in eligible(rules, facts(None, locale="en-US", as_of=None))  # request time unknown


def test_unplayable_out():
    rules = make_rules()
    assert "b1" not in eligible(rules, facts(None, locale="en-US", as_of=None))


def test_resolution_picks_the_most_popular_eligible_and_never_twice():
    rules = make_rules()
    f = facts(None, locale="en-US")
    # A: a1 (habitual) is skipped -> a2; A again -> a3 (a2 taken); B: b1 unplayable, b2 unpublished
    # -> b3; A a third time -> None (a4 is de-DE); C: c1 de-DE -> None; D -> d1 (more popular than d2)
    got = rules.resolve(f, [A, A, B, A, C, D, D, (1, 2)])
    assert got == ["a2", "a3", "b3", None, None, "d1", "d2", None]
    served = [e for e in got if e is not None]
    assert len(served) == len(set(served))


@pytest.mark.parametrize("mode", ["familiar", "unfamiliar", None])
@pytest.mark.parametrize("locale_rule", ["language", "locale", "none"])
def test_sub_trie_is_the_sids_with_an_eligible_episode(mode, locale_rule):
    rules = make_rules(locale_rule)
    for f in (facts(mode), facts(mode, consumed=["a2", "a3"]), facts(mode, locale="de-DE", as_of=None)):
        want = {CATALOG[e][0] for e in eligible(rules, f)}
        sub = rules.sub_trie(f)
        got = set() if sub is None else {sid for sid in (A, B, C, D) if sid in sub}
        assert got == want
        assert got == {sid for sid in (A, B, C, D) if rules.resolve(f, [sid]) != [None]}
    nothing = RequestFacts.make(mode="familiar", habitual={"fam"}, listened={"fam"}, locale="en-US")
    assert rules.sub_trie(nothing) is None and rules.resolve(nothing, [A, B, C, D]) == [None] * 4


def test_serving_learns_more_shows_after_generation():
    rules = make_rules()
    up_front = RequestFacts.make(mode="unfamiliar", habitual=set(), listened={"fam"}, locale="en-US", as_of=T0)
    assert rules.resolve(up_front, [A]) == ["a1"]
    later = up_front.learn(habitual={"hab"})  # the beams touched "hab": the store says habitual
    assert rules.resolve(later, [A]) == ["a3"]
    familiar = RequestFacts.make(mode="familiar", listened={"fam"}, locale="en-US", as_of=T0)
    assert rules.resolve(familiar.learn(listened={"new"}), [C, D]) == [None, "d1"]  # c1: de-DE


def test_evaluation_facts_match_the_baselines_constraints():
    day = pd.Timedelta(days=1)
    listens = pd.DataFrame({
        "user_id": ["u", "u"], "episode_id": ["x1", "x2"], "show_id": ["fam", "hab"],
        "listened_seconds": [300, 1200], "ts": [T0 - 2 * day] * 2, "locale": ["en-US"] * 2,
    })
    examples = pd.DataFrame([
        {"user_id": "u", "ts": T0, "mode": m, "locale": "en-GB", "history_episode_ids": ["x1"]}
        for m in ("familiar", "unfamiliar", "habitual")
    ])
    fam, unfam, other = facts_from_examples(listens, examples)
    assert fam.habitual == {"hab"} and fam.listened == {"hab", "fam"} and fam.as_of == T0 and fam.locale == "en-GB"
    assert fam.constraint == Constraint(frozenset({"hab"}), frozenset({"fam"}), frozenset({"x1"}))
    assert unfam.constraint == Constraint(frozenset({"hab", "fam"}), None, frozenset({"x1"}))
    assert other.mode is None and other.constraint == Constraint(frozenset({"hab"}), None, frozenset({"x1"}))
    assert constraints(listens, examples) == [fam.constraint, unfam.constraint, other.constraint]


def test_rule_and_contract_modules_are_torch_free():
    import subprocess

    code = ("import sys, glide_model.serving.rules, glide_model.serving.contract; "
            "sys.exit(1 if 'torch' in sys.modules else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0

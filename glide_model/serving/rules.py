"""The serving rule, decided once (paper §4.4.1): which episodes one request may be served, the
sub-trie its beam search may walk, and how its generated SIDs become episodes. Serving
(streams/candidates.py) and offline evaluation (glide_model/evaluation/glide.py) both call
:class:`ServingRules`; the baselines (glide_model/evaluation/baselines.py) share its show rule.

An episode is eligible for a request when ALL of these hold:

1. its show is not habitual for the user at request time (>= 600 s in the last 28 days, glide.habits);
2. the mode's show rule: ``unfamiliar``: its show is none the user listened to before;
   ``familiar``: its show is one the user listened to before (and, by 1, not habitual); any other
   mode (None, e.g. ``mode_aware=False``): no show rule beyond 1;
3. the user has not consumed it;
4. its locale: ``locale_rule="language"`` (the default): same language as the user's locale
   (an en-GB listener gets en-US episodes, not de-DE ones); ``"locale"``: the exact locale;
   ``"none"``: no locale rule. A request without a locale gets no locale rule;
5. it is playable;
6. it was published at or before the request time (when both the publish time and the request
   time are known; an episode without a publish time passes).

Eligibility-aware decoding: :meth:`ServingRules.sub_trie` is exactly the set of SIDs with at least
one eligible episode (None when there is none: no beam search for that request). Resolution:
:meth:`ServingRules.resolve` maps SIDs, in beam order, to the most popular eligible episode of each
(collision table order: popularity descending, ties by episode_id), never one episode twice; a SID
with no eligible episode left resolves to None.

The facts are per request (:class:`RequestFacts`); each caller supplies what it knows, with the
same meaning:

- evaluation (:func:`facts_from_examples`): habitual and listened shows from every listen before the
  example's ts (``glide.habits.shows_before``), consumed = the example's history episodes,
  request time = the example's ts;
- serving: listened shows = the shows of the user's recent listens (online store) plus, after
  generation, the shows the beams touched that ``user_show_listening_28d`` marks ``ever_listened``
  (:meth:`RequestFacts.learn`); habitual = those shows' 28-day state at session time; consumed =
  the recent episode ids; request time = the session's ts. Serving knows fewer listened shows
  than evaluation up front, so a ``familiar`` request is served from the shows of its recent
  listens (none at all for a user without recent listens), and an ``unfamiliar`` one is checked
  against the store for every show its beams reach.
"""

from __future__ import annotations

from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, replace

import numpy as np
import pandas as pd

from glide.habits import shows_before, user_show_features
from glide_model.sids.collisions import CollisionTable, Eligibility
from glide_model.sids.eligible import EligibleSids
from glide_model.sids.trie import SidTrie

MODES = ("familiar", "unfamiliar")
LOCALE_RULES = ("language", "locale", "none")


@dataclass(frozen=True)
class Constraint:
    """The user part of the rule (1-3): shows to avoid, shows to stay within (None = any), episodes to skip."""

    banned_shows: frozenset[str]
    allowed_shows: frozenset[str] | None
    seen_episodes: frozenset[str]

    def allows(self, show: str | None, episode: str) -> bool:
        if episode in self.seen_episodes or show in self.banned_shows:
            return False
        return self.allowed_shows is None or show in self.allowed_shows


def show_rule(mode: str | None, habitual: Collection[str], listened: Collection[str],
              consumed: Collection[str] = frozenset()) -> Constraint:
    """Rules 1-3. ``listened``: the shows the user listened to before (habitual ones may be in it)."""
    habitual, listened = frozenset(habitual), frozenset(listened)
    if mode == "unfamiliar":
        return Constraint(habitual | listened, None, frozenset(consumed))
    if mode == "familiar":
        return Constraint(habitual, listened - habitual, frozenset(consumed))
    return Constraint(habitual, None, frozenset(consumed))


def _time(value) -> pd.Timestamp | None:
    stamp = None if value is None else pd.Timestamp(value)  # NaN -> NaT
    return None if stamp is None or pd.isna(stamp) else stamp


@dataclass(frozen=True)
class RequestFacts:
    """What a caller knows about one request when applying the rule."""

    mode: str | None = None
    habitual: frozenset[str] = frozenset()
    listened: frozenset[str] = frozenset()  # shows listened to before (the familiar set)
    consumed: frozenset[str] = frozenset()
    locale: str | None = None
    as_of: pd.Timestamp | None = None  # the request time

    @classmethod
    def make(cls, mode: str | None = None, habitual: Iterable[str] = (), listened: Iterable[str] = (),
             consumed: Iterable[str] = (), locale=None, as_of=None) -> RequestFacts:
        """Normalising constructor: a mode outside MODES is no mode, a non-string or empty locale no
        locale, a missing time (None, NaN, NaT) no time."""
        return cls(
            mode=mode if mode in MODES else None,
            habitual=frozenset(habitual), listened=frozenset(listened), consumed=frozenset(consumed),
            locale=locale if isinstance(locale, str) and locale else None,
            as_of=_time(as_of),
        )

    @property
    def constraint(self) -> Constraint:
        return show_rule(self.mode, self.habitual, self.listened, self.consumed)

    def learn(self, habitual: Iterable[str] = (), listened: Iterable[str] = ()) -> RequestFacts:
        """The same request with more known habitual / listened shows (serving's post-generation check)."""
        return replace(self, habitual=self.habitual | frozenset(habitual), listened=self.listened | frozenset(listened))


class ServingRules:
    """The rule over one catalog: a collision table, each episode's show and (optionally) publish time.

    ``show_of`` and ``published_at`` are read live (serving adds new episodes to them); update them
    before inserting the episode into ``table``. ``codebook_size`` is needed for :meth:`sub_trie` only.
    """

    def __init__(
        self,
        table: CollisionTable,
        show_of: Mapping[str, str],
        *,
        published_at: Mapping[str, pd.Timestamp] | None = None,
        locale_rule: str = "language",
        codebook_size: int | None = None,
    ):
        if locale_rule not in LOCALE_RULES:
            raise ValueError(f"locale_rule must be one of {LOCALE_RULES}, got {locale_rule!r}")
        self.table, self.show_of = table, show_of
        self.published_at = published_at if published_at is not None else {}
        self.locale_rule = locale_rule
        self.codebook_size = codebook_size
        self._eligible: EligibleSids | None = None

    def _locale(self, facts: RequestFacts) -> str | None:
        return None if self.locale_rule == "none" else facts.locale

    def published(self, episode_id: str, as_of: pd.Timestamp | None) -> bool:
        """Rule 6 for one episode."""
        pub = self.published_at.get(episode_id)
        return as_of is None or pub is None or pd.isna(pub) or pd.Timestamp(pub).value <= as_of.value

    def eligibility(self, facts: RequestFacts) -> Eligibility:
        """The rule as a collision-table :class:`Eligibility` for this request."""
        rule, as_of = facts.constraint, facts.as_of
        show_of = self.show_of

        def allowed(e: str) -> bool:
            return rule.allows(show_of.get(e), e) and self.published(e, as_of)

        return Eligibility.for_user(
            locale=self._locale(facts),
            consumed=rule.seen_episodes,
            match="locale" if self.locale_rule == "locale" else "language",
            predicate=allowed,
        )

    def is_eligible(self, episode_id: str, facts: RequestFacts) -> bool:
        return self.table.is_eligible(episode_id, self.eligibility(facts))

    def resolve(self, facts: RequestFacts, sids: Iterable[Sequence[int]]) -> list[str | None]:
        """SIDs (beam order) -> the most popular eligible episode of each, never one twice (None: none left)."""
        return self.table.resolve_many(sids, self.eligibility(facts))

    def mask(self, facts: RequestFacts) -> np.ndarray:
        """Bool per catalog episode (``self.eligible.ids`` order): eligible for this request?"""
        rule, locale = facts.constraint, self._locale(facts)
        where = {} if locale is None else {self.locale_rule: locale}
        return self.eligible.mask(**where, as_of=facts.as_of, banned_shows=rule.banned_shows,
                                  allowed_shows=rule.allowed_shows, seen_episodes=rule.seen_episodes)

    def sub_trie(self, facts: RequestFacts) -> SidTrie | None:
        """The SIDs with at least one eligible episode; None when there is none."""
        ok = self.mask(facts)
        return SidTrie(self.eligible.codes[ok], self.eligible.codebook_size) if ok.any() else None

    @property
    def catalog_shows(self) -> frozenset[str]:
        """Every show of the catalog (recomputed when the collision table changes)."""
        if getattr(self, "_shows_version", None) != self.table.version:
            self._catalog_shows = frozenset(self.show_of.values())
            self._shows_version = self.table.version
        return self._catalog_shows

    @property
    def eligible(self) -> EligibleSids:
        if self._eligible is None:
            if self.codebook_size is None:
                raise ValueError("eligible_decoding needs a backend with a catalog `trie` (HFBackend, VLLMBackend)")
            self._eligible = EligibleSids(self.table, self.show_of, self.codebook_size, self.published_at)
        return self._eligible


def facts_from_examples(context_listens: pd.DataFrame, examples: pd.DataFrame, mode_aware: bool = True,
                        exclude_history: bool = True) -> list[RequestFacts]:
    """Evaluation's facts per example row: show state just before its ts from ``context_listens``
    (only listens before each ts count), its history as consumed, its locale and ts."""
    habitual, familiar = shows_before(context_listens, examples[["user_id", "ts"]])
    n = len(examples)
    modes = examples["mode"].tolist() if mode_aware and "mode" in examples.columns else [None] * n
    # Consumed = what the serving rule calls consumed (every recent episode the store held), so the
    # baselines skip the same episodes GLIDE does; frames without it fall back to the history.
    column = "consumed_episode_ids" if "consumed_episode_ids" in examples.columns else "history_episode_ids"
    if exclude_history and column in examples.columns:
        history = [h if isinstance(h, (list, tuple, np.ndarray)) else () for h in examples[column]]
    else:
        history = [()] * n
    locales = examples["locale"].tolist() if "locale" in examples.columns else [None] * n
    stamps = examples["ts"].tolist()
    return [
        RequestFacts.make(mode=mode, habitual=hab, listened=hab | fam, consumed=hist, locale=loc, as_of=ts)
        for hab, fam, mode, hist, loc, ts in zip(habitual, familiar, modes, history, locales, stamps)
    ]


def constraints(context_listens: pd.DataFrame, examples: pd.DataFrame, mode_aware: bool = True,
                exclude_history: bool = True) -> list[Constraint]:
    """Per example: habitual shows banned, the mode's show rule, history episodes skipped (rules 1-3)."""
    return [f.constraint for f in facts_from_examples(context_listens, examples, mode_aware, exclude_history)]


# --- The facts procedure serving follows, for evaluation to follow too ----------------------------
# (user_id, shows, as_of) -> (the habitual ones, the ones listened to before) among ``shows``.
ShowStates = Callable[[str, frozenset[str], pd.Timestamp | None], tuple[frozenset[str], frozenset[str]]]


def served_facts(mode: str | None, user_id: str, consumed: Sequence[str], locale, as_of,
                 show_of: Mapping[str, str], states: ShowStates,
                 shows: Collection[str] | None = None) -> RequestFacts:
    """The facts a request is decoded under, as the GLIDE worker knows them up front: consumed = the
    user's recent episodes (the `user_recent_sids` feature); the listening state at request time of
    ``shows`` (callers pass the catalog's, :attr:`ServingRules.catalog_shows`, so the mode's show rule
    and the habit rule see every show the user ever listened to; None: only the consumed episodes'
    shows) decides listened and habitual. Serving reads the states from the online store, evaluation
    from the listens before the request (:class:`ListenHistoryStates`): same procedure, so the
    parity test can hold both to the same allowed SIDs."""
    recent = frozenset(show_of.get(e) for e in consumed) - {None}
    asked = recent if shows is None else frozenset(shows) | recent
    habitual, listened = states(user_id, asked, _time(as_of))
    return RequestFacts.make(mode=mode, habitual=habitual, listened=listened | recent, consumed=consumed,
                             locale=locale, as_of=as_of)


def resolve_served(rules: ServingRules, facts: RequestFacts, user_id: str, sids: Sequence[Sequence[int]],
                   states: ShowStates) -> list[str | None]:
    """Generated SIDs -> episodes as served: the state of every other show the beams reach is looked up
    (habitual ones out, the mode's show rule on the ones listened to before), then resolved."""
    touched = frozenset(rules.show_of.get(e) for codes in sids for e in rules.table.episodes(codes)) - {None}
    habitual, listened = states(user_id, touched - facts.listened, facts.as_of)
    return rules.resolve(facts.learn(habitual=habitual, listened=listened), sids)


class ListenHistoryStates:
    """:data:`ShowStates` from a listen log: the streams' own rule (glide.habits) over the listens
    strictly before ``as_of``; what the online store holds at that instant."""

    def __init__(self, listens: pd.DataFrame):
        self._by_user = {u: part for u, part in listens.groupby("user_id", sort=False)}

    def __call__(self, user_id: str, shows: frozenset[str], as_of: pd.Timestamp | None
                 ) -> tuple[frozenset[str], frozenset[str]]:
        part = self._by_user.get(user_id)
        if part is None or not shows:
            return frozenset(), frozenset()
        part = part[part["show_id"].isin(shows)]
        if as_of is not None:
            part = part[part["ts"] < as_of]
        if part.empty:
            return frozenset(), frozenset()
        state = user_show_features(part, as_of if as_of is not None else part["ts"].max())
        return frozenset(state.loc[state["habitual"], "show_id"]), frozenset(state["show_id"])

"""GLIDE as a :class:`~glide_model.evaluation.baselines.Recommender`: beam-searched SIDs mapped to
episodes by the serving collision rule (most popular eligible episode per SID, §4.4.1), under the
same per-example eligibility rules as the baselines, so the comparison is like for like.

With ``eligible_decoding`` (the default) each request's beam search is restricted to the SIDs
that have at least one episode this user may be served at that time (playable, published, not
heard, the mode's show rule, habitual shows out, and the ``locale_rule``), so the 30 beams are 30
servable candidates. Without it, beams run over the whole catalog and ineligible SIDs are dropped
afterwards (the paper's post-hoc rule; fewer than 30 candidates can survive).
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import replace

import pandas as pd

from glide_model.evaluation.baselines import Constraint, constraints
from glide_model.llm.decoding import GenerationBackend, requests_from_examples
from glide_model.sids.collisions import CollisionTable, Eligibility
from glide_model.sids.eligible import EligibleSids
from glide_model.sids.trie import SidTrie


class GlideRecommender:
    def __init__(
        self,
        backend: GenerationBackend,
        table: CollisionTable,
        show_of: Mapping[str, str],
        context_listens: pd.DataFrame,
        name: str = "glide",
        mode_aware: bool = True,
        *,
        published_at: Mapping[str, pd.Timestamp] | None = None,
        eligible_decoding: bool = True,
        locale_rule: str = "none",
    ):
        """``locale_rule``: "none" (like the baselines, which rank the user's locale first but never
        filter), "language" (same language as the user's locale) or "locale" (exact locale)."""
        if locale_rule not in ("none", "language", "locale"):
            raise ValueError(f"locale_rule must be none, language or locale, got {locale_rule!r}")
        self.locale_rule = locale_rule
        self.backend = backend
        self.table = table
        self.show_of = show_of
        self.context = context_listens
        self.name = name
        self.mode_aware = mode_aware
        self.published_at = published_at or {}
        self.eligible_decoding = eligible_decoding
        self._eligible: EligibleSids | None = None
        self.last_sids: list[list[tuple[int, ...]]] = []  # raw beams of the last call (prefix ceilings)

    def _allowed_tries(self, rules: Sequence[Constraint], locales, stamps) -> list[SidTrie | None]:
        if self._eligible is None:
            trie = getattr(self.backend, "trie", None)
            if trie is None:
                raise ValueError("eligible_decoding needs a backend with a catalog `trie` (HFBackend, VLLMBackend)")
            self._eligible = EligibleSids(self.table, self.show_of, trie.codebook_size, self.published_at)
        return [
            self._eligible.trie(**self._locale_kw(loc), as_of=ts, banned_shows=rule.banned_shows,
                                allowed_shows=rule.allowed_shows, seen_episodes=rule.seen_episodes)
            for rule, loc, ts in zip(rules, locales, stamps)
        ]

    def _locale_kw(self, locale) -> dict:
        if self.locale_rule == "none" or not isinstance(locale, str):
            return {}
        return {self.locale_rule: locale}

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        rules = constraints(self.context, examples, self.mode_aware)
        locales = examples["locale"].tolist() if "locale" in examples.columns else [None] * len(examples)
        stamps = examples["ts"].tolist() if "ts" in examples.columns else [None] * len(examples)
        requests = requests_from_examples(examples)
        if self.eligible_decoding:
            tries = self._allowed_tries(rules, locales, stamps)
            live = [i for i, t in enumerate(tries) if t is not None]
            beams: list[list] = [[] for _ in requests]
            for i, cands in zip(live, self.backend.generate([replace(requests[i], allowed=tries[i]) for i in live])):
                beams[i] = cands
        else:
            beams = self.backend.generate(requests)
        self.last_sids = [[codes for codes, _ in cands] for cands in beams]
        out = []
        for sids, rule, locale, ts in zip(self.last_sids, rules, locales, stamps):
            eligible = Eligibility.for_user(
                locale=locale if isinstance(locale, str) and self.locale_rule != "none" else None,
                match="language" if self.locale_rule == "language" else "locale",
                predicate=lambda e, r=rule, t=ts: r.allows(self.show_of.get(e), e) and self._published(e, t),
            )
            out.append([e for e in self.table.resolve_many(sids, eligible) if e is not None][:k])
        return out

    def _published(self, episode_id: str, ts) -> bool:
        pub = self.published_at.get(episode_id)
        return pub is None or ts is None or pd.isna(pub) or pd.Timestamp(pub) <= pd.Timestamp(ts)


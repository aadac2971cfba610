"""GLIDE as a :class:`~glide_model.evaluation.baselines.Recommender`: beam-searched SIDs mapped to
episodes by the serving rule (glide_model/serving/rules.py: most popular eligible episode per SID,
§4.4.1), under the facts the GLIDE worker would have (``served_facts``: consumed = the recent
episodes the feature store held, listened shows = theirs, and the state of every show the beams
reach, looked up at the example's time from the listens before it), so what is scored here is what
serving would have cached.

Eligibility is the serving rule: habitual shows out, the mode's show rule (the baselines' too),
history episodes out, the user's language (``locale_rule="language"``, serving's default;
``"locale"``: exact locale; ``"none"``: no locale rule, like the baselines, which rank the user's
locale first but never filter), playable, published at or before the example's ts.

With ``eligible_decoding`` (the default) each request's beam search is restricted to the SIDs
that have at least one episode this user may be served at that time, so the 30 beams are 30
servable candidates. Without it, beams run over the whole catalog and ineligible SIDs are dropped
afterwards (the paper's post-hoc rule; fewer than 30 candidates can survive).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import replace

import pandas as pd

from glide_model.serving.contract import GenerationBackend, requests_from_examples
from glide_model.serving.rules import ListenHistoryStates, ServingRules, resolve_served, served_facts
from glide_model.sids.collisions import CollisionTable


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
        locale_rule: str = "language",
    ):
        """``locale_rule``: "language" (same language as the user's locale, the serving rule),
        "locale" (exact locale) or "none" (no locale rule)."""
        trie = getattr(backend, "trie", None)
        self.rules = ServingRules(table, show_of, published_at=published_at, locale_rule=locale_rule,
                                  codebook_size=None if trie is None else trie.codebook_size)
        self.locale_rule = locale_rule
        self.backend = backend
        self.table = table
        self.show_of = show_of
        self.context = context_listens
        self.states = ListenHistoryStates(context_listens)
        self.name = name
        self.mode_aware = mode_aware
        self.published_at = self.rules.published_at
        self.eligible_decoding = eligible_decoding
        self.last_sids: list[list[tuple[int, ...]]] = []  # raw beams of the last call (prefix ceilings)

    def facts(self, examples: pd.DataFrame) -> list:
        """Per example row: the facts serving would decode and resolve it under."""
        consumed = examples["consumed_episode_ids"] if "consumed_episode_ids" in examples.columns \
            else examples["history_episode_ids"]
        modes = examples["mode"] if self.mode_aware and "mode" in examples.columns else [None] * len(examples)
        locales = examples["locale"] if "locale" in examples.columns else [None] * len(examples)
        shows = self.rules.catalog_shows
        return [served_facts(mode, user, list(ids) if ids is not None else [], locale, ts, self.show_of, self.states,
                             shows=shows)
                for mode, user, ids, locale, ts in zip(modes, examples["user_id"], consumed, locales, examples["ts"])]

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        facts = self.facts(examples)
        requests = requests_from_examples(examples)
        if self.eligible_decoding:
            tries = [self.rules.sub_trie(f) for f in facts]
            live = [i for i, t in enumerate(tries) if t is not None]
            beams: list[list] = [[] for _ in requests]
            for i, cands in zip(live, self.backend.generate([replace(requests[i], allowed=tries[i]) for i in live])):
                beams[i] = cands
        else:
            beams = self.backend.generate(requests)
        self.last_sids = [[codes for codes, _ in cands] for cands in beams]
        return [[e for e in resolve_served(self.rules, f, user, sids, self.states) if e is not None][:k]
                for f, user, sids in zip(facts, examples["user_id"], self.last_sids)]

"""GLIDE as a :class:`~glide_model.evaluation.baselines.Recommender`: beam-searched SIDs mapped to
episodes by the serving collision rule (most popular eligible episode per SID, §4.4.1), under the
same per-example eligibility rules as the baselines, so the comparison is like for like."""

from __future__ import annotations

from collections.abc import Mapping

import pandas as pd

from glide_model.evaluation.baselines import constraints
from glide_model.llm.decoding import GenerationBackend, requests_from_examples
from glide_model.sids.collisions import CollisionTable, Eligibility


class GlideRecommender:
    def __init__(
        self,
        backend: GenerationBackend,
        table: CollisionTable,
        show_of: Mapping[str, str],
        context_listens: pd.DataFrame,
        name: str = "glide",
        mode_aware: bool = True,
    ):
        self.backend = backend
        self.table = table
        self.show_of = show_of
        self.context = context_listens
        self.name = name
        self.mode_aware = mode_aware
        self.last_sids: list[list[tuple[int, ...]]] = []  # raw beams of the last call (prefix ceilings)

    def recommend(self, examples: pd.DataFrame, k: int) -> list[list[str]]:
        rules = constraints(self.context, examples, self.mode_aware)
        beams = self.backend.generate(requests_from_examples(examples))
        self.last_sids = [[codes for codes, _ in cands] for cands in beams]
        locales = examples["locale"].tolist() if "locale" in examples.columns else [None] * len(examples)
        out = []
        for sids, rule, locale in zip(self.last_sids, rules, locales):
            eligible = Eligibility.for_user(
                locale=locale if isinstance(locale, str) else None,
                predicate=lambda e, r=rule: r.allows(self.show_of.get(e), e),
            )
            out.append([e for e in self.table.resolve_many(sids, eligible) if e is not None][:k])
        return out

"""Eligibility-aware decoding: the sub-trie of SIDs that still name an episode this request may be served.

The paper resolves collisions after beam search (§4.4.1): beams that land only on ineligible
episodes (heard, another locale, unplayable, a habitual show, not yet published) are dropped, so
fewer than 30 candidates can survive, and for narrow requests (a few familiar shows) almost none
do. Restricting each request's beam search to its eligible SIDs spends all beams on servable
candidates. Building a sub-trie is O(catalog) numpy work (a few ms for 10^5 episodes).
"""

from __future__ import annotations

from collections.abc import Collection, Mapping

import numpy as np
import pandas as pd

from glide_model.sids.collisions import CollisionTable, language_of
from glide_model.sids.trie import SidTrie

NEVER = np.iinfo(np.int64).min  # "published" sentinel for episodes without a publish time


class EligibleSids:
    """Per-request sub-tries over a collision table; rebuilds its arrays when the table changes."""

    def __init__(
        self,
        table: CollisionTable,
        show_of: Mapping[str, str],
        codebook_size: int,
        published_at: Mapping[str, pd.Timestamp] | None = None,
    ):
        self.table, self.show_of, self.codebook_size = table, show_of, codebook_size
        self.published_at = published_at if published_at is not None else {}
        self._version = -1
        self._refresh()

    def _refresh(self) -> None:
        if self._version == self.table.version:
            return
        self.ids, self.codes, self.playable, locales = self.table.catalog()
        self.index = {e: i for i, e in enumerate(self.ids)}
        shows = [self.show_of.get(e) for e in self.ids]
        self.show_index = {s: i for i, s in enumerate(sorted({s for s in shows if s is not None}))}
        self.show = np.array([self.show_index.get(s, -1) for s in shows], dtype=np.int64)
        self.locale = np.array([loc if isinstance(loc, str) else "" for loc in locales], dtype=object)
        self.language = np.array([language_of(loc) for loc in locales], dtype=object)
        stamps = [self.published_at.get(e) for e in self.ids]
        self.published_ns = np.array(
            [NEVER if p is None or pd.isna(p) else pd.Timestamp(p).value for p in stamps], dtype=np.int64
        )
        self._version = self.table.version

    def _shows(self, names: Collection[str]) -> np.ndarray:
        return np.array([self.show_index[s] for s in names if s in self.show_index], dtype=np.int64)

    def mask(
        self,
        *,
        locale: str | None = None,
        language: str | None = None,
        as_of: pd.Timestamp | None = None,
        banned_shows: Collection[str] = (),
        allowed_shows: Collection[str] | None = None,
        seen_episodes: Collection[str] = (),
    ) -> np.ndarray:
        """Bool per catalog episode (in ``self.ids`` order): may this request be served it?"""
        self._refresh()
        ok = self.playable.copy()
        if isinstance(locale, str) and locale:
            ok &= self.locale == locale
        if isinstance(language, str) and language:
            ok &= self.language == language_of(language)
        if as_of is not None and not pd.isna(as_of):
            ok &= self.published_ns <= pd.Timestamp(as_of).value
        if banned_shows:
            ok &= ~np.isin(self.show, self._shows(banned_shows))
        if allowed_shows is not None:
            ok &= np.isin(self.show, self._shows(allowed_shows))
        seen = [self.index[e] for e in seen_episodes if e in self.index]
        ok[seen] = False
        return ok

    def trie(self, **rules) -> SidTrie | None:
        """The SIDs of the eligible episodes (``mask`` arguments); None when nothing is eligible."""
        ok = self.mask(**rules)
        return SidTrie(self.codes[ok], self.codebook_size) if ok.any() else None

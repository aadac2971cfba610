"""Collision resolution (paper §4.4.1): a generated SID may name several episodes; serve the most
popular one that is eligible for this request. All in memory: one sorted list per SID.

Order inside a SID: popularity descending, ties by episode_id ascending, so the choice is
deterministic. Eligibility: playable, in one of the user's locales, not already in the candidate
set, and (optionally) not already consumed by the user.
"""

from __future__ import annotations

import bisect
import math
from collections.abc import Callable, Collection, Iterable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

Sid = tuple[int, ...]


@dataclass(frozen=True)
class Eligibility:
    """Who the episode is for. ``locales=None`` / ``languages=None`` accept every locale / language."""

    locales: frozenset[str] | None = None
    consumed: frozenset[str] = frozenset()
    require_playable: bool = True
    predicate: Callable[[str], bool] | None = None  # any extra business rule, by episode_id
    languages: frozenset[str] | None = None  # language part of the locale ("en" for en-GB)

    @classmethod
    def for_user(
        cls,
        locale: str | Collection[str] | None = None,
        consumed: Iterable[str] = (),
        *,
        match: str = "locale",
        **kw: Any,
    ) -> Eligibility:
        """``match="locale"``: the episode's locale must be one of the user's; ``"language"``: its
        language (en-GB and en-US listeners share English shows)."""
        if match not in ("locale", "language"):
            raise ValueError(f"match must be 'locale' or 'language', got {match!r}")
        wanted = None if locale is None else frozenset([locale] if isinstance(locale, str) else locale)
        if match == "language" and wanted is not None:
            return cls(languages=frozenset(map(language_of, wanted)), consumed=frozenset(consumed), **kw)
        return cls(locales=wanted, consumed=frozenset(consumed), **kw)


def language_of(locale: str | None) -> str:
    """"en-GB" -> "en" ("" for a missing locale)."""
    return locale.split("-")[0].lower() if isinstance(locale, str) else ""


@dataclass
class _Episode:
    codes: Sid
    popularity: float
    playable: bool
    locale: str | None

    @property
    def sort_key(self) -> float:
        return -self.popularity


@dataclass
class CollisionTable:
    levels: int
    _buckets: dict[Sid, list[tuple[float, str]]] = field(default_factory=dict)
    _episodes: dict[str, _Episode] = field(default_factory=dict)
    version: int = 0  # bumped by every change, so derived indexes (EligibleSids) know to rebuild

    # --- building ---------------------------------------------------------------------------
    @classmethod
    def from_frame(cls, episodes: Any, assignments: Mapping[str, Sequence[int]]) -> CollisionTable:
        """From a world-contract episodes DataFrame (episode_id, popularity, playable, locale) and
        {episode_id: codes}. Episodes without an assignment are left out (not recommendable)."""
        missing_cols = {"episode_id", "popularity", "playable", "locale"} - set(episodes.columns)
        if missing_cols:
            raise ValueError(f"episodes frame lacks column(s) {sorted(missing_cols)} (see the world contract)")
        known = set(episodes["episode_id"])
        unknown = [e for e in assignments if e not in known]
        if unknown:
            raise ValueError(f"{len(unknown)} assigned episode(s) are not in the episodes frame: {unknown[:10]}")
        if not assignments:
            raise ValueError("no SID assignments given: run `glide sids refresh` first")
        levels = len(next(iter(assignments.values())))
        table = cls(levels=levels)
        for row in episodes[["episode_id", "popularity", "playable", "locale"]].itertuples(index=False):
            codes = assignments.get(row.episode_id)
            if codes is not None:
                table.add_episode(row.episode_id, codes, row.popularity, bool(row.playable), row.locale)
        return table

    @classmethod
    def from_arrays(
        cls,
        episode_ids: Sequence[str],
        codes: np.ndarray,
        popularity: Sequence[float],
        playable: Sequence[bool] | None = None,
        locale: Sequence[str | None] | None = None,
    ) -> CollisionTable:
        codes = np.asarray(codes)
        if codes.ndim != 2 or len(codes) != len(episode_ids) or len(popularity) != len(episode_ids):
            raise ValueError("episode_ids, codes (N, M) and popularity must have the same length N")
        table = cls(levels=codes.shape[1])
        for i, eid in enumerate(episode_ids):
            table.add_episode(
                eid,
                codes[i],
                popularity[i],
                True if playable is None else bool(playable[i]),
                None if locale is None else locale[i],
            )
        return table

    def add_episode(
        self,
        episode_id: str,
        codes: Sequence[int],
        popularity: float = 0.0,
        playable: bool = True,
        locale: str | None = None,
    ) -> None:
        """Insert (or move, when the id exists) one episode; O(bucket size)."""
        sid = tuple(int(c) for c in codes)
        if len(sid) != self.levels:
            raise ValueError(f"episode {episode_id!r}: expected {self.levels} SID codes, got {len(sid)}")
        popularity = float(popularity)
        if not math.isfinite(popularity) or popularity < 0:
            raise ValueError(f"episode {episode_id!r}: popularity must be a finite number >= 0, got {popularity}")
        if episode_id in self._episodes:
            self.remove_episode(episode_id)
        ep = _Episode(sid, popularity, bool(playable), locale)
        self._episodes[episode_id] = ep
        self.version += 1
        bisect.insort(self._buckets.setdefault(sid, []), (ep.sort_key, episode_id))

    def remove_episode(self, episode_id: str) -> None:
        ep = self._episodes.pop(episode_id)
        self.version += 1
        bucket = self._buckets[ep.codes]
        bucket.remove((ep.sort_key, episode_id))
        if not bucket:
            del self._buckets[ep.codes]

    def update_popularity(self, popularity: Mapping[str, float]) -> None:
        """Refresh the tie-breaker (the paper does it daily); unknown ids are ignored."""
        for eid, pop in popularity.items():
            ep = self._episodes.get(eid)
            if ep is not None:
                self.add_episode(eid, ep.codes, pop, ep.playable, ep.locale)

    def set_playable(self, episode_id: str, playable: bool) -> None:
        self._episodes[episode_id].playable = bool(playable)
        self.version += 1

    # --- serving ----------------------------------------------------------------------------
    def episodes(self, codes: Sequence[int]) -> list[str]:
        """Every episode with this SID, in tie-break order (empty for an unknown SID)."""
        return [eid for _, eid in self._buckets.get(tuple(int(c) for c in codes), ())]

    def is_eligible(self, episode_id: str, eligible: Eligibility) -> bool:
        ep = self._episodes[episode_id]
        if eligible.require_playable and not ep.playable:
            return False
        if eligible.locales is not None and ep.locale not in eligible.locales:
            return False
        if eligible.languages is not None and language_of(ep.locale) not in eligible.languages:
            return False
        if episode_id in eligible.consumed:
            return False
        return eligible.predicate is None or eligible.predicate(episode_id)

    def resolve(
        self, codes: Sequence[int], eligible: Eligibility | None = None, exclude: Collection[str] = frozenset()
    ) -> str | None:
        """Most popular eligible episode with this SID that is not in ``exclude`` (the candidate set
        so far); None when there is none."""
        eligible = eligible or Eligibility()
        for _, eid in self._buckets.get(tuple(int(c) for c in codes), ()):
            if eid not in exclude and self.is_eligible(eid, eligible):
                return eid
        return None

    def resolve_many(
        self, sids: Iterable[Sequence[int]], eligible: Eligibility | None = None, exclude: Collection[str] = frozenset()
    ) -> list[str | None]:
        """Resolve a ranked list of SIDs (e.g. 30 beams), never returning one episode twice."""
        taken = set(exclude)
        out: list[str | None] = []
        for codes in sids:
            eid = self.resolve(codes, eligible, taken)
            if eid is not None:
                taken.add(eid)
            out.append(eid)
        return out

    def catalog(self) -> tuple[list[str], np.ndarray, np.ndarray, list[str | None]]:
        """Every episode as parallel arrays: ids, codes (N, M), playable (N,), locales."""
        ids = list(self._episodes)
        eps = [self._episodes[e] for e in ids]
        codes = np.array([ep.codes for ep in eps], dtype=np.int64).reshape(len(ids), self.levels)
        return ids, codes, np.array([ep.playable for ep in eps], dtype=bool), [ep.locale for ep in eps]

    def codes_of(self, episode_id: str) -> Sid:
        return self._episodes[episode_id].codes

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self._episodes

    def __len__(self) -> int:
        return len(self._episodes)

    @property
    def n_sids(self) -> int:
        return len(self._buckets)

"""What a ranker calls: GLIDE's cached candidate sets for many users, read from Feast's online store
through the `ranker_candidates` feature service. This module only reads; it never generates (the
GLIDE worker does, at session start; `glide recommend` does on request). The worker's refresh
policy reads the cache through here too (:func:`read_cache_state`, :func:`needs_refresh`).

A set is cached per (user, mode) (feature_repo/definitions.py, `glide_candidates`), so one batch
lookup of 2 x N keys answers N users in both modes. With ``max_age_s`` a set generated longer ago
(wall clock) is not returned as usable: it moves from ``sets`` to ``stale`` (mode -> its age), so a
ranker that asked for fresh candidates cannot serve an old set by mistake, yet can tell "too old"
from "never generated" (``missing``).

    client = CandidateClient(load_settings())
    for user_id, found in client.get(["u1", "u2"], max_age_s=3600).items():
        unfamiliar = found.sets.get("unfamiliar")  # CachedCandidates or None
"""

from __future__ import annotations

import time
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta, timezone

import pandas as pd

from glide.config import ConfigError, GlideSettings
from glide_model.serving.rules import MODES
from streams.feature_store import online_features, open_store
from streams.online_reader import OnlineReader
from streams.retry import call as retry_call

VIEW = "glide_candidates"
SERVICE = "ranker_candidates"
FEATURES = ("candidate_episode_ids", "candidate_scores", "model_version", "quantizer_version", "surface",
            "generated_at", "history_as_of")
REFS = [f"{VIEW}:{f}" for f in FEATURES]
# Rewritten with every change of the recent list, so its row time is that of the user's newest history.
HISTORY_FEATURE = "recent_episode_ids"
HISTORY_REF = f"user_recent_sids:{HISTORY_FEATURE}"


@dataclass(frozen=True)
class CachedCandidates:
    """One cached set: the candidates of one user in one mode, best first, and where they came from."""

    user_id: str
    mode: str
    episode_ids: list[str]
    scores: list[float]
    model_version: str
    quantizer_version: str
    surface: str  # of the session start that asked for the set
    generated_at_ms: int  # wall clock at generation (Feast keeps whole seconds)
    history_as_of_ms: int | None = None  # event time of the user_recent_sids row it was generated from

    def age_s(self, now_s: float | None = None) -> float:
        return (time.time() if now_s is None else now_s) - self.generated_at_ms / 1000

    def as_dict(self, now_s: float | None = None) -> dict:
        return {"episode_ids": self.episode_ids, "scores": self.scores, "model_version": self.model_version,
                "quantizer_version": self.quantizer_version, "surface": self.surface,
                "generated_at": self.generated_at_ms, "age_s": round(self.age_s(now_s), 3)}


@dataclass(frozen=True)
class UserCandidates:
    """What the cache holds for one user: usable ``sets`` by mode; modes whose set is older than the
    asked bound in ``stale`` (mode -> age in s); modes with no cached set in ``missing``."""

    user_id: str
    sets: dict[str, CachedCandidates] = field(default_factory=dict)
    stale: dict[str, float] = field(default_factory=dict)
    missing: tuple[str, ...] = ()


_EPOCH, _MS = datetime(1970, 1, 1, tzinfo=timezone.utc), timedelta(milliseconds=1)


def epoch_ms(value) -> int | None:
    """A Feast timestamp value (datetime, None, NaT) -> epoch ms, or None when absent."""
    if value is None or value is pd.NaT:
        return None
    if type(value) is datetime and value.tzinfo is not None:  # what Feast returns: no pandas per value
        return (value - _EPOCH) // _MS
    if pd.isna(value):
        return None
    return int(pd.Timestamp(value).value // 1_000_000)


def cached_sets(got: Mapping[str, list], keys: Sequence[tuple[str, str]]) -> list[CachedCandidates | None]:
    """The rows of an online read of REFS for ``keys`` ((user_id, mode) in entity-row order); None
    where nothing is cached (no generated_at)."""
    out: list[CachedCandidates | None] = []
    for i, (user_id, mode) in enumerate(keys):
        generated = epoch_ms(got["generated_at"][i])
        if generated is None:
            out.append(None)
            continue
        out.append(CachedCandidates(
            user_id=user_id, mode=mode, episode_ids=list(got["candidate_episode_ids"][i] or []),
            scores=list(map(float, got["candidate_scores"][i] or [])),
            model_version=got["model_version"][i] or "", quantizer_version=got["quantizer_version"][i] or "",
            surface=got["surface"][i] or "", generated_at_ms=generated,
            history_as_of_ms=epoch_ms(got["history_as_of"][i]),
        ))
    return out


def read_cache_state(store, keys: Sequence[tuple[str, str]], retry=None
                     ) -> tuple[list[CachedCandidates | None], list[int | None]]:
    """For the GLIDE worker's refresh policy, in one online lookup: the cached set of each (user_id,
    mode) in ``keys``, and the event time (ms) of each user's user_recent_sids row (None: no row)."""
    got = retry_call(retry, "online_read", online_features, store, [*REFS, HISTORY_REF],
                     [{"user_id": u, "mode": m} for u, m in keys], timestamps=True)
    history = [int(ts) * 1000 if ts else None for ts in got[f"{HISTORY_FEATURE}__ts"]]
    return cached_sets(got, keys), history


def needs_refresh(cached: CachedCandidates | None, history_ms: int | None, session_ms: int,
                  model_version: str, ttl_s: float) -> bool:
    """The refresh policy (streams/candidates.py): whether the set cached for a session's (user, mode)
    must be regenerated. ``history_ms``: the event time of the user's user_recent_sids row now."""
    if cached is None or cached.model_version != model_version:
        return True
    if abs(session_ms - cached.generated_at_ms) >= ttl_s * 1000:
        return True
    return history_ms is not None and (cached.history_as_of_ms is None or history_ms > cached.history_as_of_ms)


def wanted_modes(mode: str | None) -> tuple[str, ...]:
    if mode is None:
        return MODES
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}: use one of {', '.join(MODES)}")
    return (mode,)


class CandidateClient:
    """Batch reads of cached candidates for rankers. ``store``: an open Feast store (default: the one of
    ``settings``' profile; opening imports Feast, seconds, so keep one client per process).

    Reads go straight to the online store's rows (streams/online_reader.py: one Redis pipeline or one
    SQLite query, decoded by the writer's encoding module) when the store is GLIDE's own SQLite or
    Redis store; otherwise, or with ``direct=False``, through Feast's get_online_features. Both
    return the same (tests/streams/test_candidate_client_direct.py)."""

    def __init__(self, settings: GlideSettings, store=None, direct: bool = True):
        self.settings = settings
        self.store = store if store is not None else open_store(settings)
        try:
            self._service = self.store.get_feature_service(SERVICE)
        except Exception as exc:  # noqa: BLE001 - Feast raises its own not-found types per registry
            raise ConfigError(f"the feature store has no {SERVICE!r} service ({type(exc).__name__}): run "
                              "`glide stack up` to apply the feature definitions") from None
        self.reader = OnlineReader.for_store(settings, self.store, [VIEW]) if direct else None

    def read_rows(self, entity_rows: list[dict]) -> dict[str, list]:
        """The service's features for (user_id, mode) rows, as online_features returns them."""
        if self.reader is not None:
            return self.reader.read(VIEW, entity_rows, FEATURES)
        return online_features(self.store, self._service, entity_rows)

    def get(self, user_ids: Sequence[str], mode: str | None = None, max_age_s: float | None = None,
            now_s: float | None = None) -> dict[str, UserCandidates]:
        """Every asked user (each once, in the given order) -> what is cached for ``mode`` (default:
        both modes), in one online lookup. A set generated more than ``max_age_s`` ago (wall clock
        ``now_s``, default now) is reported in ``stale``, not in ``sets``."""
        modes = wanted_modes(mode)
        users = list(dict.fromkeys(user_ids))
        if not users:
            return {}
        keys = [(u, m) for u in users for m in modes]
        got = self.read_rows([{"user_id": u, "mode": m} for u, m in keys])
        now_s = time.time() if now_s is None else now_s
        found: dict[str, dict] = {u: {"sets": {}, "stale": {}, "missing": []} for u in users}
        for (user_id, m), cached in zip(keys, cached_sets(got, keys)):
            entry = found[user_id]
            if cached is None:
                entry["missing"].append(m)
            elif max_age_s is not None and cached.age_s(now_s) > max_age_s:
                entry["stale"][m] = cached.age_s(now_s)
            else:
                entry["sets"][m] = cached
        return {u: UserCandidates(u, e["sets"], e["stale"], tuple(e["missing"])) for u, e in found.items()}

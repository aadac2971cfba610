"""Session start -> GLIDE candidates (paper §4.4): read the user's `glide_inputs` from Feast, run
30-beam SID generation, map SIDs to episodes with the popularity tie-breaker under eligibility rules,
and cache the result in Feast (`glide_candidates`, one row per (user, mode), read by rankers through
`ranker_candidates`; streams/candidate_client.py).

Modes and refresh (:meth:`CandidateService.refresh`, what the worker calls): a session start wants a
set per mode (`CandidateConfig.session_modes`: "all", or "session" for its own mode only), all in one
backend call. A wanted set is regenerated only when its cached one is stale: none cached, another
model's, generated `refresh_ttl_s` (3600 s; 0: always) or more from the session's time (not the wall
clock: a backfilled session far in the past regenerates), or the user listened since: their
`user_recent_sids` row is newer than the one the set was made from (`history_as_of`, stored event
times, so a listen that reached the store late counts; Feast keeps whole seconds). Else the cached
set answers (``cached=True``, not rewritten) and the worker counts `skipped_fresh`.

Eligibility is the serving rule of glide_model/serving/rules.py (offline evaluation applies the
same one): habitual shows out, the mode's show rule (`unfamiliar`: no show the user listened to
before; `familiar`: only such shows), consumed episodes out, the user's language (or exact locale,
`CandidateConfig.locale_match`), playable, published by the session's ts. This service supplies the
facts it knows: consumed = the user's recent episode ids; listened shows = the shows of those, plus
the shows the beams touch that `user_show_listening_28d` marks `ever_listened`; habitual = the
28-day state of those shows on the habit clock (>= 600 s in 28 days, expiry-corrected; see below).

The habit clock: a request's own time never moves the habit state past what the streams have seen.
The online rows are exact as of their partition's event-time watermark, and reading them at a later
``as_of`` expires pairs whose last listen is 28+ days before it (streams/feature_store.py). A session
stamped far ahead of the streams (a lagging or stopped processor, a skewed client clock) would thus
expire every habit and serve the user's habitual shows. So the state is read at
``min(session ts, newest last_listened_at among the rows read + 1 s)``: every stored
last_listened_at is a listen the streams applied, so the watermark is at least that far (1 s: Feast
keeps last_listened_at in whole seconds), and the rows are exact up to there. The published-by check
still uses the session's ts. When the session is not after the user's newest listen (backfills, the
parity test's sessions in the data's past) the clock is the session's ts, as offline evaluation
(ListenHistoryStates, exact at any time) has it; after it, the rows are exact at the watermark, which is
the newest listen or later, so only a request beyond the watermark is affected. (The processor's
watermark is not in the online store; this per-read bound needs no extra read.)

Cold start: a user with no `glide_inputs` features online at all is served from an empty history
with the default CF vector, and the CandidateSet is marked ``cold_start`` (the worker counts it as
`glide_worker_sessions_total{outcome="cold_start"}`).

Eligibility-aware decoding (`CandidateConfig.eligible_decoding`, on by default): before the beam
search, the facts known up front (the recent listens' shows and their habit state) cut the catalog
trie down to the SIDs this user can be served (ServingRules.sub_trie), so the 30 beams are not
spent on candidates that would be dropped. The state of shows outside the recent history is still
read after generation, for the shows the beams touch, before the SIDs are resolved.

The CF soft prompt: the user's `cf_embedding` is used only when its `cf_version` is the one the
model was trained on (its manifest's) and its dimension is the projector's input dimension; a
vector of another CF space (version mismatch), of the wrong dimension, or none at all is served with
the model's learned default vector. Each request counts one outcome in
`glide_worker_cf_vectors_total{outcome="ok|missing|version_mismatch|bad_dimension"}`.

Each phase of a batch is timed in `glide_worker_phase_seconds{phase}` (streams/worker_metrics.py):
`cache`, `features`, `decode` (backend errors: `glide_worker_backend_errors_total`), `resolve`, `write`
(the Feast push); the worker adds `send` (streams/candidate_worker.py).
"""

from __future__ import annotations

import logging
import time
from collections import Counter as Tally
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field, replace

import numpy as np
import pandas as pd

from glide.habits import HABIT_WINDOW, unflatten_codes
from glide_model.serving.contract import GenerationBackend, RecRequest
from glide_model.serving.rules import MODES, RequestFacts, ServingRules, resolve_served, served_facts
from glide_model.sids.collisions import CollisionTable
from streams.candidate_client import CachedCandidates, needs_refresh, read_cache_state
from streams.cf_vectors import CF_OUTCOMES, backend_cf_dim, cf_outcome  # noqa: F401 (re-exported)
from streams.feature_store import online_features, push, read_user_show_features
from streams.retry import call as retry_call
from streams.schemas import SessionStart
from streams.worker_metrics import CF_VECTORS, decoding, phase

log = logging.getLogger("glide.worker")

# Feast keeps last_listened_at in whole seconds: the newest listen it shows may be up to this early.
HABIT_CLOCK_EPSILON = pd.Timedelta(seconds=1)
SESSION_MODES = ("all", "session")


def habit_clock(as_of: pd.Timestamp | None, last_listened_at: pd.Series | None) -> pd.Timestamp | None:
    """The instant the habit state is read at: ``as_of``, but never past the newest of
    ``last_listened_at`` (+ HABIT_CLOCK_EPSILON), the furthest the streams are known to have seen."""
    if as_of is None or last_listened_at is None:
        return as_of
    newest = last_listened_at.max()
    return as_of if pd.isna(newest) else min(as_of, newest + HABIT_CLOCK_EPSILON)


def _present(value) -> bool:
    return value is not None and (not hasattr(value, "__len__") or len(value) > 0)


@dataclass
class CandidateConfig:
    num_candidates: int = 30
    default_mode: str = "unfamiliar"
    # The control token per surface (paper §4.3.1): discovery surfaces ask for new shows.
    mode_by_surface: dict[str, str] = field(default_factory=lambda: {
        "home": "unfamiliar", "exploration": "unfamiliar", "search": "familiar", "show_page": "familiar",
    })
    locale_filter: bool = True
    locale_match: str = "language"  # "language": en-GB listeners get en-US shows too; "locale": exact
    eligible_decoding: bool = True
    session_modes: str = "all"  # "all": a set per mode for every session start; "session": its own mode
    refresh_ttl_s: float = 3600.0  # a cached set at least this old is regenerated (0: every session)

    def __post_init__(self) -> None:
        if self.locale_match not in ("language", "locale"):
            raise ValueError(f"locale_match must be 'language' or 'locale', got {self.locale_match!r}")
        if self.session_modes not in SESSION_MODES:
            raise ValueError(f"session_modes must be 'all' or 'session', got {self.session_modes!r}")
        if not self.refresh_ttl_s >= 0:
            raise ValueError(f"refresh_ttl_s must be >= 0 seconds, got {self.refresh_ttl_s!r}")

    @property
    def locale_rule(self) -> str:
        """The serving rule's locale_rule (glide_model/serving/rules.py)."""
        return self.locale_match if self.locale_filter else "none"


@dataclass
class CandidateSet:
    user_id: str
    session_event_id: str
    mode: str
    episode_ids: list[str]
    scores: list[float]
    model_version: str
    generated_at_ms: int
    latency_ms: float
    cold_start: bool = False  # the user had no glide_inputs features online at all
    quantizer_version: str = ""
    surface: str = ""
    history_as_of_ms: int | None = None  # event time of the user_recent_sids row read (refresh policy)
    cached: bool = False  # the fresh cached set answered the session: nothing was generated

    def as_event(self) -> dict:
        return {"user_id": self.user_id, "session_event_id": self.session_event_id, "mode": self.mode,
                "episode_ids": self.episode_ids, "scores": self.scores, "model_version": self.model_version,
                "quantizer_version": self.quantizer_version, "surface": self.surface,
                "generated_at": self.generated_at_ms, "cached": self.cached}

    @classmethod
    def from_cache(cls, cached: CachedCandidates, session: SessionStart) -> CandidateSet:
        return cls(cached.user_id, session.event_id, cached.mode, cached.episode_ids, cached.scores,
                   cached.model_version, cached.generated_at_ms, 0.0, quantizer_version=cached.quantizer_version,
                   surface=cached.surface, history_as_of_ms=cached.history_as_of_ms, cached=True)


def _as_of(session: SessionStart) -> pd.Timestamp:
    return pd.Timestamp(session.ts, unit="ms", tz="UTC")


def session_mode(session: SessionStart, config: CandidateConfig) -> str:
    """`context.mode` when the caller asks for one, else the surface's default."""
    asked = session.context.get("mode") if isinstance(session.context, dict) else None
    if asked in MODES:
        return asked
    return config.mode_by_surface.get(session.surface, config.default_mode)


class CandidateService:
    """Pure request logic over a feature store, a generation backend and the collision table."""

    def __init__(
        self,
        store,
        backend: GenerationBackend,
        table: CollisionTable,
        show_of: Mapping[str, str],
        model_version: str,
        config: CandidateConfig | None = None,
        sid_index=None,
        published_at: Mapping[str, pd.Timestamp] | None = None,
        cf_version: str | None = None,
        cf_dim: int | None = None,
        quantizer_version: str = "",
    ):
        """``cf_version``: the CF version the model was trained on (its manifest's); ``cf_dim``: its
        projector's input dimension (default: read from the backend; None skips the check);
        ``quantizer_version``: the SIDs the model speaks, recorded with every set."""
        self.store = store
        self.backend = backend
        self.table = table
        self.show_of = show_of
        self.model_version = model_version
        self.quantizer_version = quantizer_version
        self.config = config or CandidateConfig()
        self._inputs = store.get_feature_service("glide_inputs")
        self._last_push_us = 0
        self.sid_index = sid_index  # glide_model.sids.live.SidIndex sharing `table` and the backend's trie
        trie = getattr(backend, "trie", None)
        self.rules = ServingRules(table, show_of, published_at=dict(published_at or {}),
                                  locale_rule=self.config.locale_rule,
                                  codebook_size=None if trie is None else trie.codebook_size)
        self.published_at = self.rules.published_at
        self.eligible_decoding = self.config.eligible_decoding and trie is not None
        self.cf_version = cf_version
        self.cf_dim = cf_dim if cf_dim is not None else backend_cf_dim(backend)
        self.cf_counts: Tally = Tally()  # this service's CF outcomes (CF_VECTORS counts all services)
        self.retry = None  # streams.retry.Retry of the online-store reads and pushes (the worker sets it)

    def add_episodes(self, episodes: Sequence[Mapping]) -> dict[str, tuple[int, ...]]:
        """Make new episodes recommendable now: one embedding pass, then trie and table inserts.
        Episodes already served keep their SID (a revised text is picked up by `glide sids refresh`).
        ``published_at`` (epoch ms or a timestamp), when given, holds the episode back until then."""
        if self.sid_index is None:
            raise RuntimeError("this service has no SidIndex (quantizer artifact missing): new episodes "
                               "become recommendable only after a restart")
        new = {e["episode_id"]: e for e in episodes if e["episode_id"] not in self.table}
        if not new:
            return {}
        for episode_id, episode in new.items():  # before the table insert, which makes them servable
            self.show_of[episode_id] = episode["show_id"]
            published = episode.get("published_at")
            if published is not None:
                is_ms = isinstance(published, (int, np.integer))  # catalog-updates carry epoch ms
                stamp = pd.Timestamp(published, unit="ms", tz="UTC") if is_ms else pd.Timestamp(published)
                self.published_at[episode_id] = stamp
        return self.sid_index.add_episodes(pd.DataFrame(list(new.values())))

    def requests(self, sessions: Sequence[SessionStart]) -> tuple[list[RecRequest], list[list[str]]]:
        """Prompt inputs per session from Feast, plus each user's recent episode ids."""
        requests, recent, _ = self._read(sessions)
        return requests, recent

    def _read(self, sessions: Sequence[SessionStart]) -> tuple[list[RecRequest], list[list[str]], list[bool]]:
        """requests() plus, per session, whether its user has no features online at all (cold start)."""
        rows = retry_call(self.retry, "online_read", online_features, self.store, self._inputs,
                          [{"user_id": s.user_id} for s in sessions])
        cold = [not any(_present(col[i]) for name, col in rows.items() if name != "user_id")
                for i in range(len(sessions))]
        requests, recent = [], []
        embeddings = self.cf_embeddings(rows["cf_embedding"], rows.get("cf_version") or [None] * len(sessions))
        for i, s in enumerate(sessions):
            levels = rows["sid_levels"][i] or self.table.levels
            requests.append(RecRequest(
                history_codes=unflatten_codes(rows["recent_sid_codes"][i], levels),
                mode=session_mode(s, self.config),
                locale=rows["locale"][i],
                affinity_topics=list(rows["affinity_topics"][i] or []),
                cf_embedding=embeddings[i],
                user_id=s.user_id,
            ))
            recent.append(list(rows["recent_episode_ids"][i] or []))
        return requests, recent, cold

    def cf_embeddings(self, vectors: Sequence, versions: Sequence) -> list[np.ndarray | None]:
        """The CF vector each request is conditioned on (None: the default vector), counted by outcome."""
        out, outcomes = [], []
        for vector, version in zip(vectors, versions):
            outcome = cf_outcome(vector, version, self.cf_version, self.cf_dim)
            outcomes.append(outcome)
            out.append(np.asarray(vector, dtype=np.float32) if outcome == "ok" else None)
        tally = Tally(outcomes)
        for outcome, n in tally.items():
            CF_VECTORS.labels(outcome).inc(n)
        self.cf_counts.update(tally)
        if tally["version_mismatch"] or tally["bad_dimension"]:
            seen = sorted({str(v) for v, o in zip(versions, outcomes) if o == "version_mismatch"})
            log.warning("CF vectors served with the default vector: %d of another CF version %s (model: %s), "
                        "%d not of dimension %s", tally["version_mismatch"], seen, self.cf_version,
                        tally["bad_dimension"], self.cf_dim)
        return out

    def show_states(self, user_id: str, shows: frozenset[str], as_of: pd.Timestamp | None
                    ) -> tuple[frozenset[str], frozenset[str]]:
        """(habitual, ever listened) among ``shows`` on the habit clock (``as_of`` clamped to the
        newest listen read, module docstring) from the online listening state, expiry-corrected like
        every reader (streams/feature_store.read_user_show_features): the serving rule's ShowStates."""
        if not shows:
            return frozenset(), frozenset()
        features = retry_call(self.retry, "online_read", read_user_show_features, self.store, user_id,
                              sorted(shows), None)  # as stored
        habitual = features["habitual"]
        last = features.get("last_listened_at")
        clock = habit_clock(as_of, last)
        if clock is not None and last is not None:
            habitual = habitual & ~(last.notna() & (last <= clock - HABIT_WINDOW))
        shows_of = features["show_id"]
        return frozenset(shows_of[habitual]), frozenset(shows_of[features["ever_listened"]])

    def facts(self, session: SessionStart, request: RecRequest, consumed: list[str]) -> RequestFacts:
        """What serving knows up front (glide_model/serving/rules.served_facts, as evaluation does)."""
        return served_facts(request.mode, session.user_id, consumed, request.locale, _as_of(session),
                            self.show_of, self.show_states, shows=self.rules.catalog_shows)

    def session_modes(self, session: SessionStart) -> tuple[str, ...]:  # CandidateConfig.session_modes
        return MODES if self.config.session_modes == "all" else (session_mode(session, self.config),)

    def recommend(self, sessions: Sequence[SessionStart], modes: Sequence[str] | None = None
                  ) -> list[CandidateSet]:
        """Generate now, reading no cache: a set per session and mode of ``modes`` (default: the
        session's own, session_mode), session-major, all in one batched backend call."""
        return self._generate([(s, m) for s in sessions for m in (modes or (session_mode(s, self.config),))])

    def refresh(self, sessions: Sequence[SessionStart], modes: Sequence[str] | None = None,
                force: bool = False) -> list[list[CandidateSet]]:
        """Per session, a set for each wanted mode (``modes``, default session_modes): regenerated
        where the cached one is stale by the refresh policy (module docstring), or with ``force``
        everywhere; else the cached set itself (``cached=True``). One cache read, one backend call."""
        wanted = [(j, m) for j, s in enumerate(sessions) for m in (modes or self.session_modes(s))]
        pairs = [(sessions[j], m) for j, m in wanted]
        ttl = self.config.refresh_ttl_s
        if pairs and (force or ttl > 0):
            with phase("cache"):
                cached, history = read_cache_state(self.store, [(s.user_id, m) for s, m in pairs], self.retry)
        else:  # TTL 0: every set is stale, no need to read the cache
            cached, history = [None] * len(pairs), [None] * len(pairs)
        stale = [i for i, ((s, _), c, h) in enumerate(zip(pairs, cached, history))
                 if force or needs_refresh(c, h, s.ts, self.model_version, ttl)]
        made = dict(zip(stale, self._generate([pairs[i] for i in stale], [history[i] for i in stale])))
        out: list[list[CandidateSet]] = [[] for _ in sessions]
        for i, (j, _) in enumerate(wanted):
            out[j].append(made[i] if i in made else CandidateSet.from_cache(cached[i], sessions[j]))
        return out

    def _generate(self, pairs: Sequence[tuple[SessionStart, str]], history_ms: Sequence[int | None] | None = None
                  ) -> list[CandidateSet]:
        """A set per (session, mode), in order; ``history_ms``: the user_recent_sids row time each is made from."""
        if not pairs:
            return []
        started = time.perf_counter()
        sessions = list({id(s): s for s, _ in pairs}.values())  # one read (and facts) per session, any modes
        slot = {id(s): i for i, s in enumerate(sessions)}
        with phase("features"):  # the prompt inputs, and the habit state of the recent shows
            base, recent, cold = self._read(sessions)
            base_facts = [self.facts(s, r, c) for s, r, c in zip(sessions, base, recent)]
        rows = [slot[id(s)] for s, _ in pairs]
        requests = [replace(base[i], mode=m) for i, (_, m) in zip(rows, pairs)]
        facts = [replace(base_facts[i], mode=m) for i, (_, m) in zip(rows, pairs)]
        if self.eligible_decoding:  # nothing eligible: allowed None, an empty candidate set, no search
            requests = [replace(r, allowed=self.rules.sub_trie(f)) for r, f in zip(requests, facts)]
        live = [i for i, r in enumerate(requests) if not self.eligible_decoding or r.allowed is not None]
        beams: list[list] = [[] for _ in requests]
        with decoding(self.backend):
            generated = self.backend.generate([requests[i] for i in live])
        for i, cands in zip(live, generated):
            beams[i] = cands
        now_ms = int(time.time() * 1000)
        out = []
        with phase("resolve"):  # SIDs -> eligible episodes (reads the state of the shows the beams touch)
            for (session, mode), row, candidates, known, history in zip(pairs, rows, beams, facts,
                                                                        history_ms or [None] * len(pairs)):
                sids = [codes for codes, _ in candidates]
                resolved = resolve_served(self.rules, known, session.user_id, sids, self.show_states)
                picked = [(e, float(score)) for e, (_, score) in zip(resolved, candidates) if e is not None]
                picked = picked[: self.config.num_candidates]
                out.append(CandidateSet(
                    user_id=session.user_id, session_event_id=session.event_id, mode=mode,
                    episode_ids=[e for e, _ in picked], scores=[s for _, s in picked],
                    model_version=self.model_version, generated_at_ms=now_ms,
                    latency_ms=(time.perf_counter() - started) * 1000 / len(sessions), cold_start=cold[row],
                    quantizer_version=self.quantizer_version, surface=session.surface, history_as_of_ms=history,
                ))
        return out

    def publish(self, sets: Sequence[CandidateSet]) -> None:
        """Cache generated candidates in Feast for rankers: one row per (user, mode), the newest wins;
        the other mode's row is left as it is. Sets read back from the cache are not written again."""
        sets = [c for c in sets if not c.cached]
        if not sets:
            return
        # Strictly increasing push timestamps, also for one user twice in a millisecond: Feast's
        # Redis store ignores a row that is not newer than the stored one.
        stamps = []
        for c in sets:
            self._last_push_us = max(c.generated_at_ms * 1000, self._last_push_us + 1)
            stamps.append(self._last_push_us)
        with phase("write"):
            retry_call(self.retry, "candidates_push", push, self.store, "glide_candidates", pd.DataFrame({
                "user_id": [c.user_id for c in sets],
                "mode": [c.mode for c in sets],
                "candidate_episode_ids": [c.episode_ids for c in sets],
                "candidate_scores": [[float(s) for s in c.scores] for c in sets],
                "model_version": [c.model_version for c in sets],
                "quantizer_version": [c.quantizer_version for c in sets],
                "surface": [c.surface for c in sets],
                "generated_at": pd.to_datetime([c.generated_at_ms for c in sets], unit="ms", utc=True),
                "history_as_of": pd.to_datetime([c.history_as_of_ms for c in sets], unit="ms", utc=True),
                "event_timestamp": pd.to_datetime(stamps, unit="us", utc=True),
            }))

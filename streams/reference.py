"""What the listen processor checks events against: the catalog (episodes, shows, SID codes of the
active quantizer) and the known users (those with a `user_context` row in the online store).

Both are caches in front of the systems of record, refreshed on demand: a miss re-reads only the ids
in question, at most every ``refresh_s`` per id, so a burst of events for an unknown id costs one query.
"""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Iterable

import sqlalchemy as sa

from glide.catalog import CatalogDB
from glide.catalog import schema as t
from glide.catalog.rows import decode_sid
from streams.catalog_clock import CatalogClock

log = logging.getLogger("glide.streams.reference")


class CatalogCache:
    """episode -> show, known shows, episode -> SID codes (one quantizer version), and the clock of
    how long the catalog stream feeding it has been current (streams/catalog_clock.py)."""

    def __init__(self, db: CatalogDB, quantizer_version: str | None = None, refresh_s: float = 0.2):
        self.db = db
        self.clock = CatalogClock()
        self.refresh_s = refresh_s
        self._lock = threading.Lock()
        self.episode_show: dict[str, str] = {}
        self.shows: set[str] = set()
        self.codes: dict[str, tuple[int, ...]] = {}
        self._checked: dict[str, float] = {}
        self.quantizer_version, self.levels = self._active_quantizer(quantizer_version)
        self.load_all()

    def _active_quantizer(self, wanted: str | None) -> tuple[str | None, int]:
        if wanted:
            q = self.db.get_quantizer(wanted)
            if q is None:
                from glide.config import ConfigError

                raise ConfigError(f"quantizer {wanted!r} is not registered in the catalog: fix GLIDE_STREAMS_QUANTIZER_VERSION")
            return wanted, int(q["levels"])
        quantizers = self.db.list_quantizers()
        if not quantizers:
            log.warning("no SID quantizer registered in the catalog: recent-SID features stay empty")
            return None, 0
        return quantizers[0]["version"], int(quantizers[0]["levels"])

    def load_all(self) -> None:
        with self.db.engine.connect() as conn:
            shows = set(conn.scalars(sa.select(t.shows.c.show_id)))
            eps = dict(conn.execute(sa.select(t.episodes.c.episode_id, t.episodes.c.show_id)).all())
            codes = {}
            if self.quantizer_version:
                codes = {e: decode_sid(c) for e, c in conn.execute(
                    sa.select(t.sid_assignments.c.episode_id, t.sid_assignments.c.codes).where(
                        t.sid_assignments.c.quantizer_version == self.quantizer_version))}
        with self._lock:
            self.shows |= shows
            self.episode_show.update(eps)
            self.codes.update(codes)
        log.info("catalog cache loaded", extra={"shows": len(shows), "episodes": len(eps), "sids": len(codes),
                                                "quantizer_version": self.quantizer_version})

    def refresh(self, episode_ids: Iterable[str] = (), show_ids: Iterable[str] = ()) -> None:
        """Re-read these ids from the catalog DB (rate-limited per id)."""
        now = time.monotonic()
        eps = [e for e in set(episode_ids) if e not in self.episode_show and now - self._checked.get(e, -1e9) >= self.refresh_s]
        shows = [s for s in set(show_ids) if s not in self.shows and now - self._checked.get("show:" + s, -1e9) >= self.refresh_s]
        if not eps and not shows:
            return
        for e in eps:
            self._checked[e] = now
        for s in shows:
            self._checked["show:" + s] = now
        with self.db.engine.connect() as conn:
            found_eps = {}
            found_codes = {}
            for i in range(0, len(eps), 500):
                chunk = eps[i:i + 500]
                found_eps.update(conn.execute(sa.select(t.episodes.c.episode_id, t.episodes.c.show_id)
                                              .where(t.episodes.c.episode_id.in_(chunk))).all())
                if self.quantizer_version:
                    found_codes.update({e: decode_sid(c) for e, c in conn.execute(
                        sa.select(t.sid_assignments.c.episode_id, t.sid_assignments.c.codes).where(
                            t.sid_assignments.c.quantizer_version == self.quantizer_version,
                            t.sid_assignments.c.episode_id.in_(chunk)))})
            found_shows = set()
            wanted_shows = shows + [s for s in found_eps.values() if s not in self.shows]
            for i in range(0, len(wanted_shows), 500):
                found_shows |= set(conn.scalars(sa.select(t.shows.c.show_id).where(
                    t.shows.c.show_id.in_(wanted_shows[i:i + 500]))))
        with self._lock:
            self.codes.update(found_codes)  # codes first: an episode is never visible without its SID
            self.shows |= found_shows
            self.episode_show.update(found_eps)

    def note(self, episode_id: str, show_id: str, codes: tuple[int, ...] | None) -> None:
        """An update this process just wrote to the catalog DB."""
        with self._lock:
            if codes is not None and len(codes) == self.levels:
                self.codes[episode_id] = tuple(codes)
            self.shows.add(show_id)
            self.episode_show[episode_id] = show_id

    def sid(self, episode_id: str) -> tuple[int, ...] | None:
        return self.codes.get(episode_id)


class UserDirectory:
    """Users with a profile (a `user_context` row) in the online store; unknown ids are re-checked
    at most every ``recheck_s`` seconds."""

    def __init__(self, writer, recheck_s: float = 5.0):
        self.writer = writer
        self.recheck_s = recheck_s
        self.known: set[str] = set()
        self._missing: dict[str, float] = {}

    def refresh(self, user_ids: Iterable[str]) -> None:
        now = time.monotonic()
        ask = [u for u in set(user_ids) if u not in self.known and now - self._missing.get(u, -1e9) >= self.recheck_s]
        if not ask:
            return
        for u, found in zip(ask, self.writer.existing("user_context", [(u,) for u in ask])):
            if found:
                self.known.add(u)
                self._missing.pop(u, None)
            else:
                self._missing[u] = now

    def __contains__(self, user_id: str) -> bool:
        return user_id in self.known

"""catalog-updates: upsert shows and episodes into the catalog DB, give new episodes their Semantic ID
(an existing assignment, else the live SidIndex when a quantizer artifact is available), and write
the `episode_catalog` view.

Every step is idempotent (upserts, newest-wins pushes, the offline event log counting a
(partition, offset) once), so at-least-once delivery is enough here. Accepted updates are appended
to the event log (glide/event_log.py, kind ``catalog``) after the catalog DB has them.
The SID is saved before the episode row: once the listen processor can see an episode, it can see
its SID too.
"""

from __future__ import annotations

import asyncio
import logging
from dataclasses import dataclass
from typing import Any

from glide.catalog import CatalogDB, CatalogError
from glide.event_log import open_event_log
from streams import schemas as S
from streams.config import StreamSettings
from streams.deadletter import DeadLetter, send_all
from streams.metrics import EVENTS, PUSH_LATENCY
from streams.reference import CatalogCache

log = logging.getLogger("glide.streams.catalog")
VIEW = "episode_catalog"


@dataclass(frozen=True)
class Rec:
    """The parts of a Kafka record the handlers need (from faust or aiokafka)."""

    value: bytes | None
    key: bytes | None
    partition: int
    offset: int
    timestamp: int = 0
    headers: Any = ()


def _show_row(s: S.ShowInfo) -> dict:
    return {"show_id": s.show_id, "title": s.title, "description": s.description, "host": s.host,
            "topics": list(s.topics), "locale": s.locale, "popularity": s.popularity}


def _episode_row(e: S.EpisodeInfo) -> dict:
    return {"episode_id": e.episode_id, "show_id": e.show_id, "title": e.title, "description": e.description,
            "topic": e.topic, "locale": e.locale, "published_at": S.from_ms(e.published_at).to_pydatetime(),
            "duration_s": e.duration_s, "playable": e.playable, "popularity": e.popularity}


def _log_row(u: S.CatalogUpdate, offset: int) -> dict:
    """An accepted catalog update as the offline event log stores it."""
    import orjson

    e = u.episode
    return {"event_id": u.event_id, "ts": u.ts, "episode_id": e.episode_id, "show_id": e.show_id,
            "title": e.title, "description": e.description, "topic": e.topic, "locale": e.locale,
            "published_at": e.published_at, "duration_s": e.duration_s, "playable": e.playable,
            "popularity": e.popularity,
            "show": None if u.show is None else orjson.dumps(_show_row(u.show)).decode(), "offset": offset}


class CatalogUpdater:
    def __init__(self, cfg: StreamSettings, db: CatalogDB, cache: CatalogCache, writer, producer, event_log=None):
        self.cfg, self.db, self.cache, self.writer, self.producer = cfg, db, cache, writer, producer
        self.event_log = event_log
        self._sid_index = None
        self._sid_index_failed = False
        self._last_push_us: dict[str, int] = {}

    async def handle(self, records: list[Rec]) -> None:
        with self.cache.clock.batch():  # parked listens' catalog wait stands still meanwhile
            await self._handle(records)

    async def _handle(self, records: list[Rec]) -> None:
        dead: list[DeadLetter] = []

        def reject(r: Rec, reason: str, detail: str) -> None:
            dead.append(DeadLetter(S.CATALOG_TOPIC, r.partition, r.offset, r.key, r.value, reason, detail))

        max_ts = S.now_ms() + self.cfg.max_future_ms
        updates: list[tuple[Rec, S.CatalogUpdate]] = []
        for r in records:
            try:
                updates.append((r, S.decode_catalog_update(r.value, max_ts)))
            except S.InvalidEvent as exc:
                reject(r, exc.reason, exc.detail)
        # Shows first (episodes reference them); a bad row is isolated by retrying one by one.
        shows = {u.show.show_id: (r, u.show) for r, u in updates if u.show is not None}
        bad_shows = self._upsert(self.db.upsert_shows, [(r, _show_row(s)) for r, s in shows.values()], reject)
        self.cache.refresh(show_ids=[u.episode.show_id for _, u in updates])
        ok: list[tuple[Rec, S.CatalogUpdate]] = []
        for r, u in updates:
            if u.episode.show_id in bad_shows:
                continue
            if u.episode.show_id not in self.cache.shows and u.episode.show_id not in shows:
                reject(r, S.UNKNOWN_SHOW, f"show_id {u.episode.show_id!r} is neither in the catalog nor in the update")
                continue
            ok.append((r, u))
        codes = await self._assign_sids([u.episode for _, u in ok])
        bad_eps = self._upsert(self.db.upsert_episodes, [(r, _episode_row(u.episode)) for r, u in ok], reject)
        rows = []
        logged: dict[int, list[dict]] = {}
        for r, u in ok:
            e = u.episode
            if e.episode_id in bad_eps:
                continue
            logged.setdefault(r.partition, []).append(_log_row(u, r.offset))
            c = codes.get(e.episode_id)
            self.cache.note(e.episode_id, e.show_id, c)
            ts_us = max(u.ts * 1000, self._last_push_us.get(e.episode_id, 0) + 1)
            self._last_push_us[e.episode_id] = ts_us
            rows.append(((e.episode_id,), [e.show_id, list(c) if c else [], self.cache.quantizer_version or "",
                                           e.popularity, e.locale or "", e.published_at, e.playable], ts_us))
        if rows:
            loop = asyncio.get_running_loop()
            t0 = loop.time()
            await asyncio.to_thread(self.writer.write, VIEW, rows)
            PUSH_LATENCY.labels(VIEW).observe(loop.time() - t0)
        if self.event_log is not None:
            await asyncio.to_thread(self._log, logged)
        await send_all(self.producer, dead, self.cfg.dead_letter_max_bytes)
        EVENTS.labels(S.CATALOG_TOPIC, "applied").inc(len(rows))
        EVENTS.labels(S.CATALOG_TOPIC, "dead_letter").inc(len(dead))

    def _log(self, logged: dict[int, list[dict]]) -> None:
        for partition, rows in logged.items():
            offsets = [row["offset"] for row in rows]
            self.event_log.append("catalog", rows, partition, min(offsets), max(offsets) + 1)

    def _upsert(self, fn, items: list[tuple[Rec, dict]], reject) -> set[str]:
        """Upsert all; on a CatalogError retry one by one and dead-letter the rows it names. Returns
        the ids that were rejected."""
        if not items:
            return set()
        key = "episode_id" if "episode_id" in items[0][1] else "show_id"
        try:
            fn([row for _, row in items])
            return set()
        except CatalogError:
            pass
        bad = set()
        for r, row in items:
            try:
                fn([row])
            except CatalogError as exc:
                bad.add(row[key])
                reject(r, S.CATALOG_REJECTED, str(exc))
        return bad

    async def _assign_sids(self, episodes: list[S.EpisodeInfo]) -> dict[str, tuple[int, ...]]:
        """episode_id -> codes under the active quantizer: existing assignments, else live encoding."""
        version = self.cache.quantizer_version
        if not version or not episodes:
            return {}
        ids = [e.episode_id for e in episodes]
        self.cache.refresh(episode_ids=[i for i in ids if self.cache.sid(i) is None])
        found = {i: self.cache.sid(i) for i in ids if self.cache.sid(i) is not None}
        missing = [e for e in episodes if e.episode_id not in found]
        if missing and self.cfg.live_sids:
            index = await asyncio.to_thread(self._index)
            if index is not None:
                fresh = await asyncio.to_thread(
                    lambda: {e.episode_id: index.add_episode(_episode_row(e)) for e in missing})
                self.db.save_sid_assignments(version, fresh)
                found.update(fresh)
        return found

    def _index(self):
        """The live SidIndex for the active quantizer, built on first use (loads the text encoder)."""
        if self._sid_index is not None or self._sid_index_failed:
            return self._sid_index
        version = self.cache.quantizer_version
        try:
            from glide_model.sids.live import SidIndex

            q = self.db.get_quantizer(version)
            self._sid_index = SidIndex.build(q["artifact_path"], self.db.episodes_frame(),
                                             assignments=self.db.sid_assignments(version))
            log.info("live SID index ready", extra={"quantizer_version": version})
        except Exception as exc:  # noqa: BLE001 - any failure: episodes go without a SID, loudly
            self._sid_index_failed = True
            log.error("live SID assignment unavailable: new episodes get no SID until a restart",
                      extra={"quantizer_version": version, "error": repr(exc)})
        return self._sid_index

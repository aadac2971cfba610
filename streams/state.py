"""State of one listen-events partition: per (user, show) 28-day listening and per user recent
episodes, the partition's event-time watermark and the next offset to read, all persisted in one
SQLite file per partition and committed in one transaction.

Why this is exact under crashes and redelivery (see streams/README.md for the argument in full):
- The state and the offset it has consumed up to commit together, so after a crash the worker resumes
  from the state's own offset (never Kafka's committed offset, which is only advisory), and records
  below it are skipped: every offset is applied exactly once.
- Every commit is a compare-and-set on a version counter. A worker that lost the partition in a
  rebalance but still finishes a batch ("zombie") either commits first (and the new owner reloads) or
  fails the check and drops its batch: the state's history stays one linear sequence.
- Pushes happen after the commit, with per-entity strictly increasing timestamps stored in the state,
  into a newest-wins online store (streams/online_writer.py, fed rows in the streams/online_rows.py
  format). Entities changed by a batch whose push was not confirmed are re-pushed on load
  (``changed_version > pushed_version``).
- The value of every feature is a function of the set of accepted listens and the watermark only
  (sums, max, lists sorted by (ts, event_id)), so the order in which listens arrive within the
  lateness bound does not change the result.
"""

from __future__ import annotations

import heapq
from bisect import insort
from collections.abc import Callable
from dataclasses import dataclass
from itertools import chain
from pathlib import Path

import orjson

from glide.habits import HABIT_THRESHOLD_SECONDS
from streams.checkpointer import connect_wal
from streams.config import WINDOW_MS
from streams.online_rows import SKIP, Row
from streams.schemas import ListenEvent

NO_TIME = -1

_SCHEMA = """
CREATE TABLE IF NOT EXISTS meta (
    id INTEGER PRIMARY KEY CHECK (id = 0),
    version INTEGER NOT NULL, next_offset INTEGER NOT NULL, watermark INTEGER NOT NULL,
    pushed_version INTEGER NOT NULL);
INSERT OR IGNORE INTO meta VALUES (0, 0, 0, -1, 0);
CREATE TABLE IF NOT EXISTS pairs (
    user_id TEXT NOT NULL, show_id TEXT NOT NULL, last_ts INTEGER NOT NULL, push_us INTEGER NOT NULL,
    changed_version INTEGER NOT NULL, PRIMARY KEY (user_id, show_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS window_listens (
    event_id TEXT PRIMARY KEY, user_id TEXT NOT NULL, show_id TEXT NOT NULL, ts INTEGER NOT NULL,
    seconds INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS users (
    user_id TEXT PRIMARY KEY, push_us INTEGER NOT NULL, changed_version INTEGER NOT NULL) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS recent (
    user_id TEXT NOT NULL, ts INTEGER NOT NULL, event_id TEXT NOT NULL, episode_id TEXT NOT NULL,
    PRIMARY KEY (user_id, ts, event_id)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS parked (
    record_offset INTEGER PRIMARY KEY, event BLOB NOT NULL, raw BLOB, key BLOB,
    parked_at_ms INTEGER NOT NULL, produced_ms INTEGER NOT NULL);
"""


class PairState:
    """listens: (ts, seconds, event_id) inside the 28-day window, sorted; total: their seconds."""

    __slots__ = ("listens", "total", "last_ts", "push_us", "sent")

    def __init__(self, listens: list | None = None, last_ts: int = NO_TIME, push_us: int = 0):
        self.listens: list[tuple[int, int, str]] = listens or []
        self.total = sum(x[1] for x in listens) if listens else 0
        self.last_ts = last_ts
        self.push_us = push_us
        self.sent: tuple[int, int] | None = None  # (total, last_ts) last written by this process


class UserState:
    """recent: the last `cap` (ts, event_id, episode_id) of episodes with a SID, sorted."""

    __slots__ = ("recent", "push_us", "sent_levels")

    def __init__(self, recent: list | None = None, push_us: int = 0):
        self.recent: list[tuple[int, str, str]] = recent or []
        self.push_us = push_us
        self.sent_levels: int | None = None


# The fields of a parked listen that are persisted (as a JSON array, in this order) to re-apply it
# and to log it whole when it is applied. State files from before surface and locale were kept hold
# only the first six; those two then read back empty.
_PARKED_FIELDS = ("event_id", "user_id", "episode_id", "show_id", "listened_seconds", "ts", "surface", "locale")


def _dump_parked_event(ev: ListenEvent) -> bytes:
    return orjson.dumps([getattr(ev, f) for f in _PARKED_FIELDS])


def _load_parked_event(blob: bytes) -> ListenEvent:
    fields = dict(zip(_PARKED_FIELDS, orjson.loads(blob)))
    return ListenEvent(**{"surface": "", "locale": "", **fields})


@dataclass
class Parked:
    """A listen whose episode the catalog does not know yet (it may be on its way)."""

    offset: int
    event: ListenEvent  # re-applied once the catalog knows the episode
    raw: bytes | None
    key: bytes | None
    parked_at_ms: int  # wall clock when parked (the wait runs on streams/catalog_clock.py)
    produced_ms: int


class StaleState(RuntimeError):
    """Another writer committed this partition since we loaded it: reload and redo the batch."""


class PartitionState:
    def __init__(self, path: Path, partition: int, cap: int, window_ms: int = WINDOW_MS):
        self.path = Path(path)
        self.partition = partition
        self.cap = cap
        self.window_ms = window_ms
        self.path.parent.mkdir(parents=True, exist_ok=True)
        # WAL with synchronous=NORMAL: a commit survives a killed process (the WAL is in the OS cache);
        # only a power loss can lose the last commits, and then Kafka still holds the events to redo
        # them. Checkpoints run off the commit path.
        self.db = connect_wal(self.path)
        self.db.execute("PRAGMA cache_size=-65536")
        self.db.executescript(_SCHEMA)
        self._load()

    # -- load / persist ----------------------------------------------------------------------------

    def _load(self) -> None:
        db = self.db
        self.version, self.next_offset, self.watermark, self.pushed_version = db.execute(
            "SELECT version, next_offset, watermark, pushed_version FROM meta").fetchone()
        self.pairs: dict[tuple[str, str], PairState] = {}
        self.users: dict[str, UserState] = {}
        self.heap: list[tuple[int, str, str]] = []
        self.window_ids: set[str] = set()  # event ids of the listens inside the window (dedup)
        self.unpushed_pairs: list[tuple[str, str]] = []
        self.unpushed_users: list[str] = []
        window: dict[tuple[str, str], list] = {}
        for event_id, u, s, ts, secs in db.execute(
                "SELECT event_id, user_id, show_id, ts, seconds FROM window_listens ORDER BY ts, seconds, event_id"):
            window.setdefault((u, s), []).append((ts, secs, event_id))
            self.heap.append((ts + self.window_ms, u, s))
            self.window_ids.add(event_id)
        heapq.heapify(self.heap)
        for u, s, last_ts, push_us, changed in db.execute("SELECT * FROM pairs"):
            self.pairs[(u, s)] = PairState(window.get((u, s)), last_ts, push_us)
            if changed > self.pushed_version:
                self.unpushed_pairs.append((u, s))
        recent: dict[str, list] = {}
        for u, ts, event_id, episode_id in db.execute("SELECT * FROM recent ORDER BY user_id, ts, event_id"):
            recent.setdefault(u, []).append((ts, event_id, episode_id))
        for u, push_us, changed in db.execute("SELECT * FROM users"):
            self.users[u] = UserState(recent.get(u), push_us)
            if changed > self.pushed_version:
                self.unpushed_users.append(u)
        self.parked: dict[int, Parked] = {}
        for off, event, raw, key, at, produced in db.execute("SELECT * FROM parked"):
            self.parked[off] = Parked(off, _load_parked_event(event), raw, key, at, produced)
        self.parked_ids = {p.event.event_id for p in self.parked.values()}
        self.wait_started: dict[int, float] = {}  # offset -> CatalogClock seconds; this process only
        self._reset_batch()

    def _reset_batch(self) -> None:
        self.dirty_pairs: dict[tuple[str, str], int] = {}
        self.dirty_users: dict[str, int] = {}
        self.new_parked: list[Parked] = []
        self.gone_parked: list[int] = []
        # Row-level changes of this batch, written by commit(): whole lists are never rewritten.
        self.entered: list[tuple] = []  # (event_id, user, show, ts, seconds) into the window
        self.left: list[str] = []  # event ids out of the window
        self.recent_in: list[tuple] = []  # (user, ts, event_id, episode_id)
        self.recent_out: list[tuple] = []  # (user, ts, event_id)

    def reload(self) -> None:
        """Drop in-memory changes and read the committed state again."""
        self._load()

    def close(self) -> None:
        self.db.close()

    # -- event-time logic --------------------------------------------------------------------------

    def advance(self, ts: int) -> None:
        if ts > self.watermark:
            self.watermark = ts

    def is_duplicate(self, event_id: str) -> bool:
        """Seen before: still inside the window (lateness < window keeps it there) or parked."""
        return event_id in self.window_ids or event_id in self.parked_ids

    def apply_listen(self, ev: ListenEvent, has_sid: bool) -> None:
        """Add an accepted listen: to its pair's window total (if inside the window), its last listen
        time, and (``has_sid``: its episode has a SID) the user's recent episodes."""
        event_id, user_id, show_id, episode_id = ev.event_id, ev.user_id, ev.show_id, ev.episode_id
        seconds, ts = ev.listened_seconds, ev.ts
        key = (user_id, show_id)
        pair = self.pairs.get(key)
        if pair is None:
            pair = self.pairs[key] = PairState()
        if ts > self.watermark - self.window_ms:  # inside (W - 28 d, W]
            insort(pair.listens, (ts, seconds, event_id))
            self.window_ids.add(event_id)
            self.entered.append((event_id, user_id, show_id, ts, seconds))
            pair.total += seconds
            heapq.heappush(self.heap, (ts + self.window_ms, user_id, show_id))
        if ts > pair.last_ts:
            pair.last_ts = ts
        if self.dirty_pairs.get(key, NO_TIME) < ts:
            self.dirty_pairs[key] = ts
        if has_sid:
            user = self.users.get(user_id)
            if user is None:
                user = self.users[user_id] = UserState()
            entry = (ts, event_id, episode_id)
            recent = user.recent
            if len(recent) < self.cap or entry > recent[0]:
                insort(recent, entry)
                self.recent_in.append((user_id, ts, event_id, episode_id))
                if len(recent) > self.cap:
                    gone = recent.pop(0)
                    self.recent_out.append((user_id, gone[0], gone[1]))
                if self.dirty_users.get(user_id, NO_TIME) < ts:
                    self.dirty_users[user_id] = ts

    def expire(self) -> None:
        """Drop listens that left the window (ts <= W - 28 d) and mark their pairs changed at the
        instant they left (listen ts + 28 d)."""
        cut = self.watermark - self.window_ms
        heap = self.heap
        while heap and heap[0][0] <= self.watermark:
            _, u, s = heapq.heappop(heap)
            pair = self.pairs.get((u, s))
            if pair is None or not pair.listens or pair.listens[0][0] > cut:
                continue  # a stale entry: already expired together with an earlier one
            n = 0
            for x in pair.listens:
                if x[0] > cut:
                    break
                pair.total -= x[1]
                self.window_ids.discard(x[2])
                self.left.append(x[2])
                n += 1
            left_at = pair.listens[n - 1][0] + self.window_ms
            del pair.listens[:n]
            key = (u, s)
            if self.dirty_pairs.get(key, NO_TIME) < left_at:
                self.dirty_pairs[key] = left_at

    def park(self, p: Parked) -> None:
        self.parked[p.offset] = p
        self.parked_ids.add(p.event.event_id)
        self.new_parked.append(p)

    def unpark(self, offset: int) -> Parked:
        p = self.parked.pop(offset)
        self.parked_ids.discard(p.event.event_id)
        self.wait_started.pop(offset, None)
        self.gone_parked.append(offset)
        return p

    # -- rows for the online store -------------------------------------------------------------------

    @staticmethod
    def _bump(state: PairState | UserState, effective_ms: int) -> int:
        """Strictly increasing push time per entity: Feast's stores keep the newest timestamp."""
        ts = max(effective_ms * 1000, state.push_us + 1)
        state.push_us = ts
        return ts

    def pair_row(self, key: tuple[str, str], delta: bool = True) -> Row:
        """The pair's online row. With ``delta``, features unchanged since this process last wrote
        them are SKIP: fewer rows to write (ever_listened never changes once written). Anything
        loaded from disk is written in full first, so a skipped value is always already stored or
        in flight (and a crash before it lands re-pushes the full row)."""
        p = self.pairs[key]
        habitual = p.total >= HABIT_THRESHOLD_SECONDS
        sent, p.sent = p.sent, (p.total, p.last_ts)
        if not delta or sent is None:
            return (key, [p.total, True, p.last_ts, habitual], p.push_us)
        return (key, [p.total if p.total != sent[0] else SKIP, SKIP, p.last_ts if p.last_ts != sent[1] else SKIP,
                      habitual if habitual != (sent[0] >= HABIT_THRESHOLD_SECONDS) else SKIP], p.push_us)

    def user_row(self, user_id: str, codes: Callable[[str], tuple | None], levels: int) -> Row:
        user = self.users[user_id]
        episodes = [x[2] for x in user.recent]
        sids = list(map(codes, episodes))
        flat = list(chain.from_iterable(sids)) if None not in sids else None
        if flat is None or len(flat) != levels * len(episodes):  # a SID withdrawn since: leave it out
            keep = [i for i, c in enumerate(sids) if c is not None and len(c) == levels]
            episodes = [episodes[i] for i in keep]
            flat = list(chain.from_iterable(sids[i] for i in keep))
        same_levels, user.sent_levels = user.sent_levels == levels, levels
        return ((user_id,), [episodes, flat, SKIP if same_levels else levels], user.push_us)

    def stamp_batch(self) -> None:
        """Give every entity changed in this batch its push timestamp (part of the committed state)."""
        for key, eff in self.dirty_pairs.items():
            self._bump(self.pairs[key], eff)
        for user_id, eff in self.dirty_users.items():
            self._bump(self.users[user_id], eff)

    def batch_rows(self, codes: Callable[[str], tuple | None], levels: int) -> tuple[list[Row], list[Row]]:
        """(pair rows, user rows) of the entities this batch changed, SKIP where unchanged."""
        pairs = [self.pair_row(k) for k in self.dirty_pairs]
        users = [self.user_row(u, codes, levels) for u in self.dirty_users]
        return pairs, users

    def unpushed_rows(self, codes: Callable[[str], tuple | None], levels: int) -> tuple[list[Row], list[Row]]:
        """Rows of entities whose last change may not have reached the online store (after a crash)."""
        pairs = [self.pair_row(k, delta=False) for k in self.unpushed_pairs if k in self.pairs]
        users = [self.user_row(u, codes, levels) for u in self.unpushed_users if u in self.users]
        return pairs, users

    # -- commit ------------------------------------------------------------------------------------

    def has_changes(self, next_offset: int) -> bool:
        return bool(next_offset != self.next_offset or self.dirty_pairs or self.dirty_users
                    or self.new_parked or self.gone_parked)

    def commit(self, next_offset: int, pushed: bool) -> None:
        """Persist this batch and the offset after it atomically; raise StaleState if another writer
        committed first. ``pushed``: the previous batch's rows reached the online store."""
        db = self.db
        new_version = self.version + 1
        pushed_version = self.version if pushed else self.pushed_version
        db.execute("BEGIN IMMEDIATE")
        try:
            (current,) = db.execute("SELECT version FROM meta").fetchone()
            if current != self.version:
                raise StaleState(f"partition {self.partition}: state version {current} != {self.version}")
            pairs = self.pairs
            db.executemany("INSERT OR REPLACE INTO pairs VALUES (?, ?, ?, ?, ?)",
                           [(u, s, pairs[(u, s)].last_ts, pairs[(u, s)].push_us, new_version)
                            for u, s in self.dirty_pairs])
            db.executemany("INSERT INTO window_listens VALUES (?, ?, ?, ?, ?)", self.entered)
            db.executemany("DELETE FROM window_listens WHERE event_id = ?", [(e,) for e in self.left])
            db.executemany("INSERT OR REPLACE INTO users VALUES (?, ?, ?)",
                           [(u, self.users[u].push_us, new_version) for u in self.dirty_users])
            db.executemany("INSERT INTO recent VALUES (?, ?, ?, ?)", self.recent_in)
            db.executemany("DELETE FROM recent WHERE user_id = ? AND ts = ? AND event_id = ?", self.recent_out)
            if self.new_parked:
                db.executemany(
                    "INSERT OR REPLACE INTO parked VALUES (?, ?, ?, ?, ?, ?)",
                    [(p.offset, _dump_parked_event(p.event), p.raw, p.key, p.parked_at_ms, p.produced_ms)
                     for p in self.new_parked if p.offset in self.parked],
                )
            if self.gone_parked:
                db.executemany("DELETE FROM parked WHERE record_offset = ?", [(o,) for o in self.gone_parked])
            db.execute("UPDATE meta SET version = ?, next_offset = ?, watermark = ?, pushed_version = ?",
                       (new_version, next_offset, self.watermark, pushed_version))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        self.version, self.next_offset, self.pushed_version = new_version, next_offset, pushed_version
        self._reset_batch()

    def mark_pushed(self) -> None:
        """Everything committed so far is online; recorded durably with the next commit."""
        self.unpushed_pairs, self.unpushed_users = [], []

    def confirm_pushed_now(self) -> None:
        """Record durably (without a batch) that everything committed is online."""
        self.db.execute("UPDATE meta SET pushed_version = ? WHERE version = ?", (self.version, self.version))
        self.pushed_version = self.version
        self.mark_pushed()


def partition_path(state_dir: Path, topic: str, partition: int) -> Path:
    return Path(state_dir) / f"{topic}-{partition}.sqlite"


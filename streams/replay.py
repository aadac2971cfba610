"""Replay a synthetic world into Kafka in event-time order: catalog updates as episodes get published
(the back catalogue first), session starts, and listens; then one watermark record per listen-events
partition so every partition's event time reaches the end of the replay.

Keys: listens and session starts by user_id (all of a user's events land in one partition, in
order), catalog updates by episode_id. At equal timestamps a catalog update goes before a session
start, which goes before a listen.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Callable, Iterator
from dataclasses import dataclass, field

import numpy as np
import orjson
import pandas as pd

from streams import schemas as S

CATALOG, SESSION, LISTEN = 0, 1, 2
KIND_TOPIC = {CATALOG: S.CATALOG_TOPIC, SESSION: S.SESSION_TOPIC, LISTEN: S.LISTEN_TOPIC}


@dataclass(frozen=True)
class OutRecord:
    topic: str
    key: bytes | None
    value: bytes
    partition: int | None = None
    headers: list | None = None


@dataclass
class ReplayStats:
    listens: int = 0
    sessions: int = 0
    catalog: int = 0
    watermarks: int = 0
    final_ts_ms: int | None = None
    seconds: float = 0.0
    end_offsets: dict = field(default_factory=dict)  # (topic, partition) -> offset after the last record sent

    @property
    def records(self) -> int:
        return self.listens + self.sessions + self.catalog + self.watermarks

    @property
    def rate(self) -> float:
        return self.records / self.seconds if self.seconds else 0.0


def _listen_values(listens: pd.DataFrame) -> list[bytes]:
    cols = ["event_id", "user_id", "episode_id", "show_id", "listened_seconds", "surface", "locale"]
    ts = S.ms_series(listens["ts"]).tolist()
    out = []
    for (event_id, user_id, episode_id, show_id, secs, surface, locale), t in zip(
            zip(*(listens[c].tolist() for c in cols)), ts):
        out.append(orjson.dumps({"schema_version": S.SCHEMA_VERSION, "event_id": event_id, "user_id": user_id,
                                 "episode_id": episode_id, "show_id": show_id, "listened_seconds": int(secs),
                                 "ts": t, "surface": surface, "locale": locale}))
    return out


def _session_values(sessions: pd.DataFrame) -> list[bytes]:
    ts = S.ms_series(sessions["ts"]).tolist()
    out = []
    for sid, user_id, surface, context, t in zip(sessions["session_id"].tolist(), sessions["user_id"].tolist(),
                                                 sessions["surface"].tolist(), sessions["context"].tolist(), ts):
        ctx = orjson.loads(context) if isinstance(context, str) and context else (context or {})
        out.append(orjson.dumps({"schema_version": S.SCHEMA_VERSION, "event_id": sid, "user_id": user_id,
                                 "ts": t, "surface": surface, "context": ctx}))
    return out


def show_payload(row: dict) -> dict:
    pop = row.get("popularity")
    return {"show_id": row["show_id"], "title": row["title"], "description": row.get("description") or "",
            "host": row.get("host") or "", "topics": [str(x) for x in (row.get("topics") if row.get("topics") is not None else [])],
            "locale": row.get("locale"), "popularity": None if pop is None or pd.isna(pop) else float(pop)}


def episode_payload(row: dict, published_ms: int) -> dict:
    dur = row.get("duration_s")
    return {"episode_id": row["episode_id"], "show_id": row["show_id"], "title": row["title"],
            "description": row.get("description") or "", "topic": row.get("topic"), "locale": row.get("locale"),
            "published_at": published_ms, "duration_s": None if dur is None or pd.isna(dur) else int(dur),
            "playable": bool(row.get("playable", True)), "popularity": float(row.get("popularity") or 0.0)}


def _catalog_values(episodes: pd.DataFrame, shows: pd.DataFrame) -> list[bytes]:
    show_rows = {r["show_id"]: show_payload(r) for r in shows.to_dict("records")}
    pub = S.ms_series(episodes["published_at"]).tolist()
    out = []
    for row, t in zip(episodes.to_dict("records"), pub):
        out.append(orjson.dumps({"schema_version": S.SCHEMA_VERSION, "event_id": f"cat-{row['episode_id']}",
                                 "ts": t, "episode": episode_payload(row, t), "show": show_rows.get(row["show_id"])}))
    return out


def plan(world, limit: int | None = None, sessions: bool = True, catalog: bool = True,
         watermark: bool = True, partitions: int = 4) -> tuple[list[OutRecord], ReplayStats]:
    """The records of a replay, in send order. ``limit``: replay only the first N listens (and the
    sessions and catalog updates up to the last of them)."""
    listens = world.listens.sort_values("ts", kind="stable")
    if limit is not None:
        listens = listens.iloc[:limit]
    end_ms = int(S.ms_series(listens["ts"]).max()) if len(listens) else None
    parts = []  # (ts_ms, kind, values, keys)
    parts.append((S.ms_series(listens["ts"]).to_numpy(), LISTEN, _listen_values(listens), listens["user_id"].tolist()))
    if sessions and len(world.sessions):
        ss = world.sessions
        if end_ms is not None:
            ss = ss[S.ms_series(ss["ts"]) <= end_ms]
        parts.append((S.ms_series(ss["ts"]).to_numpy(), SESSION, _session_values(ss), ss["user_id"].tolist()))
    if catalog and len(world.episodes):
        eps = world.episodes
        if end_ms is not None:
            eps = eps[S.ms_series(eps["published_at"]) <= end_ms]
        parts.append((S.ms_series(eps["published_at"]).to_numpy(), CATALOG, _catalog_values(eps, world.shows),
                      eps["episode_id"].tolist()))
    ts = np.concatenate([p[0] for p in parts])
    kind = np.concatenate([np.full(len(p[0]), p[1]) for p in parts])
    seq = np.concatenate([np.arange(len(p[0])) for p in parts])
    values = [v for p in parts for v in p[2]]
    keys = [k for p in parts for k in p[3]]
    order = np.lexsort((seq, kind, ts))
    stats = ReplayStats(final_ts_ms=end_ms)
    records = []
    for i in order.tolist():
        k = int(kind[i])
        records.append(OutRecord(KIND_TOPIC[k], keys[i].encode(), values[i]))
        if k == LISTEN:
            stats.listens += 1
        elif k == SESSION:
            stats.sessions += 1
        else:
            stats.catalog += 1
    if watermark and end_ms is not None:
        marks = watermark_records(end_ms, partitions)
        records.extend(marks)
        stats.watermarks += len(marks)
    return records, stats


async def produce(records: list[OutRecord], bootstrap: str, rate: float = 0.0,
                  progress: Callable[[int], None] | None = None, chunk: int = 5000,
                  end_offsets: dict | None = None) -> float:
    """Send records in order (optionally paced to ``rate`` records/s); returns the seconds taken.
    ``end_offsets`` is filled with (topic, partition) -> offset after the last record sent."""
    from aiokafka import AIOKafkaProducer

    producer = AIOKafkaProducer(bootstrap_servers=bootstrap, linger_ms=10, max_batch_size=512 * 1024, acks=1,
                                max_request_size=2 * 1024 * 1024, client_id="glide-replay")
    await producer.start()
    t0 = time.perf_counter()
    try:
        pending = []
        step = min(chunk, max(1, int(rate / 20))) if rate > 0 else chunk
        for i, r in enumerate(records, 1):
            pending.append(await producer.send(r.topic, r.value, key=r.key, partition=r.partition, headers=r.headers))
            if i % step == 0:
                _note(await asyncio.gather(*pending), end_offsets)
                pending.clear()
                if progress:
                    progress(step)
                if rate > 0:
                    ahead = i / rate - (time.perf_counter() - t0)
                    if ahead > 0:
                        await asyncio.sleep(ahead)
        _note(await asyncio.gather(*pending), end_offsets)
        if progress and len(records) % step:
            progress(len(records) % step)
    finally:
        await producer.stop()
    return time.perf_counter() - t0


def _note(metadata: list, end_offsets: dict | None) -> None:
    if end_offsets is None:
        return
    for m in metadata:
        key = (m.topic, m.partition)
        end_offsets[key] = max(end_offsets.get(key, 0), m.offset + 1)


def partitions_of(bootstrap: str, topic: str = S.LISTEN_TOPIC) -> int:
    from kafka import KafkaConsumer

    c = KafkaConsumer(bootstrap_servers=bootstrap)
    try:
        parts = c.partitions_for_topic(topic)
    finally:
        c.close()
    if not parts:
        from glide.config import ConfigError

        raise ConfigError(f"topic {topic!r} does not exist on {bootstrap}: run `glide stack up` first")
    return len(parts)


def push_profiles(settings, users: pd.DataFrame, at: pd.Timestamp) -> int:
    """Write the world's users into `user_context` (the profiles the listen processor checks)."""
    from streams.online_writer import OnlineWriter

    ts_us = S.to_ms(at) * 1000
    rows = [((u,), [loc, country, list(topics)], ts_us) for u, loc, country, topics in
            zip(users["user_id"], users["locale"], users["country"], users["affinity_topics"])]
    writer = OnlineWriter(settings)
    try:
        return writer.write("user_context", rows)
    finally:
        writer.close()


def replay_world(world, bootstrap: str, rate: float = 0.0, limit: int | None = None, *, sessions: bool = True,
                 catalog: bool = True, watermark: bool = True, progress: bool = False) -> ReplayStats:
    """Plan and send a world's events; see :func:`plan`."""
    records, stats = plan(world, limit, sessions, catalog, watermark, partitions_of(bootstrap))
    if progress:
        from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeRemainingColumn

        with Progress(TextColumn("replay"), BarColumn(), MofNCompleteColumn(),
                      TextColumn("{task.fields[rate]} ev/s"), TimeRemainingColumn()) as bar:
            task = bar.add_task("replay", total=len(records), rate="-")
            t0 = time.perf_counter()

            def advance(n: int) -> None:
                done = bar.tasks[0].completed + n
                bar.update(task, advance=n, rate=f"{done / max(1e-9, time.perf_counter() - t0):,.0f}")

            stats.seconds = asyncio.run(produce(records, bootstrap, rate, advance, end_offsets=stats.end_offsets))
    else:
        stats.seconds = asyncio.run(produce(records, bootstrap, rate, end_offsets=stats.end_offsets))
    return stats


def iter_listen_records(listens: pd.DataFrame) -> Iterator[OutRecord]:
    """listen-events records for a listens frame, in frame order (tests, benchmarks)."""
    for key, value in zip(listens["user_id"].tolist(), _listen_values(listens)):
        yield OutRecord(S.LISTEN_TOPIC, key.encode(), value)


def catalog_records(episodes: pd.DataFrame, shows: pd.DataFrame) -> list[OutRecord]:
    """catalog-updates records for ``episodes`` (keyed by episode_id), in frame order."""
    return [OutRecord(S.CATALOG_TOPIC, e.encode(), v)
            for e, v in zip(episodes["episode_id"].tolist(), _catalog_values(episodes, shows))]


def watermark_records(ts_ms: int, partitions: int) -> list[OutRecord]:
    """One watermark per listen-events partition: event time reached ``ts_ms`` everywhere."""
    body = S.encode(S.Watermark(ts=ts_ms))
    return [OutRecord(S.LISTEN_TOPIC, None, body, partition=p, headers=S.watermark_headers()) for p in range(partitions)]

"""The offline event log: batches written twice count once, a named file gone or corrupt is an
error naming it, and both profiles' stores read back what was written."""

from __future__ import annotations

import uuid

import pandas as pd
import pytest

from glide.event_log import EventLogError, ParquetEventLog, PostgresEventLog

DAY_MS = 86_400_000
T0 = 1_700_000_000_000  # 2023-11-14


def listen(offset: int, ts: int, user: str = "u1") -> dict:
    return {"event_id": f"e{offset}", "user_id": user, "episode_id": f"ep{offset % 3}", "show_id": "s1",
            "listened_seconds": 100 + offset, "ts": ts, "surface": "home", "locale": "en-US", "offset": offset}


def batch(first: int, n: int, spacing_ms: int = DAY_MS // 2) -> list[dict]:
    return [listen(o, T0 + o * spacing_ms) for o in range(first, first + n)]


def test_round_trip_partitions_by_event_date(tmp_path) -> None:
    log = ParquetEventLog(tmp_path)
    assert log.append("listens", batch(0, 6), partition=0, first_offset=0, next_offset=6) == 6
    dates = sorted(p.name for p in (tmp_path / "listens").glob("date=*"))
    assert len(dates) == 4  # 6 listens half a day apart span 3-4 UTC days
    frame = log.read("listens")
    assert frame["event_id"].tolist() == [f"e{i}" for i in range(6)]
    assert frame["ts"].dt.tz is not None and frame["ts"].is_monotonic_increasing
    assert frame["listened_seconds"].tolist() == [100 + i for i in range(6)]


def test_a_batch_written_twice_counts_once(tmp_path) -> None:
    log = ParquetEventLog(tmp_path)
    log.append("listens", batch(0, 4), 0, 0, 4)
    log.append("listens", batch(0, 4), 0, 0, 4)  # redelivered after a crash before the offset commit
    log.append("listens", batch(2, 5), 0, 2, 7)  # redone with a different cut
    log.append("listens", batch(0, 3), 1, 0, 3)  # another partition: its own offsets
    frame = log.read("listens")
    assert len(frame) == 7 + 3
    assert frame.groupby("partition")["offset"].apply(sorted).to_dict() == {0: list(range(7)), 1: [0, 1, 2]}


def test_window_bounds(tmp_path) -> None:
    log = ParquetEventLog(tmp_path)
    log.append("listens", batch(0, 8), 0, 0, 8)
    start, end = pd.Timestamp(T0 + 2 * DAY_MS // 2, unit="ms", tz="UTC"), pd.Timestamp(T0 + 5 * DAY_MS // 2, unit="ms", tz="UTC")
    assert log.read("listens", start, end)["offset"].tolist() == [2, 3, 4]


def test_unlisted_files_are_ignored_but_listed_ones_must_be_sound(tmp_path) -> None:
    log = ParquetEventLog(tmp_path)
    log.append("listens", batch(0, 4), 0, 0, 4)
    # A crash between the data files and the manifest leaves files no manifest names: not read.
    stray = tmp_path / "listens" / "date=2023-11-14" / "p0000-000000000004-000000000009.parquet"
    stray.write_bytes(b"half a file")
    assert len(log.read("listens")) == 4
    victim = sorted((tmp_path / "listens").glob("date=*/p0000-000000000000-*.parquet"))[0]
    victim.write_bytes(b"not parquet")
    with pytest.raises(EventLogError, match=str(victim)):
        log.read("listens")
    victim.unlink()
    with pytest.raises(EventLogError, match=f"{victim}.*missing"):
        log.read("listens")


def test_empty_log_reads_an_empty_frame(tmp_path) -> None:
    frame = ParquetEventLog(tmp_path).read("catalog")
    assert frame.empty and {"episode_id", "published_at", "partition", "offset"} <= set(frame.columns)


def test_unknown_kind(tmp_path) -> None:
    with pytest.raises(ValueError, match="kind"):
        ParquetEventLog(tmp_path).read("sessions")


def test_postgres_log_round_trip_and_redelivery() -> None:
    sqlalchemy = pytest.importorskip("sqlalchemy")
    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"t{uuid.uuid4().hex[:10]}"
    try:
        log = PostgresEventLog(url, schema)
        log.append("listens", batch(0, 4), 0, 0, 4)
        log.append("listens", batch(2, 4), 0, 2, 6)
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {exc}")
    try:
        frame = log.read("listens")
        assert frame["offset"].tolist() == list(range(6))
        assert frame["ts"].dt.tz is not None
        assert frame.equals(parquet_round_trip(frame))
    finally:
        with log.engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))


def parquet_round_trip(frame: pd.DataFrame) -> pd.DataFrame:
    """The same rows through the Parquet store: both profiles read the same frame."""
    import tempfile

    rows = frame.assign(ts=(frame["ts"] - pd.Timestamp(0, tz="UTC")) // pd.Timedelta(1, "ms")).to_dict("records")
    with tempfile.TemporaryDirectory() as tmp:
        log = ParquetEventLog(tmp)
        log.append("listens", rows, 0, 0, len(rows))
        return log.read("listens")


def test_postgres_log_tables_created_by_many_writers_at_once() -> None:
    """Workers starting together all create the log's table: none may fail on the race."""
    sqlalchemy = pytest.importorskip("sqlalchemy")
    from concurrent.futures import ThreadPoolExecutor

    url = "postgresql+psycopg://postgres@127.0.0.1:5432/test"
    schema = f"t{uuid.uuid4().hex[:10]}"
    logs = [PostgresEventLog(url, schema) for _ in range(6)]
    try:
        with ThreadPoolExecutor(6) as pool:
            written = list(pool.map(lambda i: logs[i].append("listens", batch(i * 3, 3), i, i * 3, i * 3 + 3), range(6)))
    except sqlalchemy.exc.OperationalError as exc:
        pytest.skip(f"no PostgreSQL on 127.0.0.1:5432: {exc}")
    try:
        assert written == [3] * 6 and len(logs[0].read("listens")) == 18
    finally:
        with logs[0].engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA "{schema}" CASCADE'))

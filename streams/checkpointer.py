"""SQLite files that commit on a hot path: WAL mode, with checkpoints moved to a background thread.

Why: in WAL mode a commit only appends to the ``-wal`` file, but SQLite's automatic checkpoint
(copying the WAL back into the database and an fsync) runs inside whichever commit crosses the
threshold. With tens of MB in the WAL that stalled a commit for hundreds of ms. Here one daemon
thread runs a PASSIVE checkpoint of every registered file each second instead; PASSIVE never waits
for readers or writers, so it cannot block a commit. The automatic checkpoint is kept, with a large
threshold, only as a backstop for when the thread stops keeping up.

Both the per-partition stream state and the SQLite online store use this: open them with
:func:`connect_wal`.
"""

from __future__ import annotations

import sqlite3
import threading
import time
from pathlib import Path

WAL_BACKSTOP_PAGES = 65536  # 256 MiB: only reached if the background checkpoints stop


class _Checkpointer:
    """One background thread that checkpoints every registered SQLite file, started on first use."""

    def __init__(self, interval_s: float = 1.0):
        self.interval_s = interval_s
        self._paths: set[str] = set()
        self._lock = threading.Lock()
        self._thread: threading.Thread | None = None

    def add(self, path: str | Path) -> None:
        with self._lock:
            self._paths.add(str(path))
            if self._thread is None:
                self._thread = threading.Thread(target=self._run, name="glide-wal-checkpoint", daemon=True)
                self._thread.start()

    def _run(self) -> None:
        conns: dict[str, sqlite3.Connection] = {}
        while True:
            time.sleep(self.interval_s)
            with self._lock:
                paths = list(self._paths)
            for path in paths:
                self._checkpoint(conns, path)

    @staticmethod
    def _checkpoint(conns: dict[str, sqlite3.Connection], path: str) -> None:
        try:
            conn = conns.get(path) or conns.setdefault(
                path, sqlite3.connect(f"file:{path}?mode=rw", uri=True, timeout=1))  # never creates a file
            conn.execute("PRAGMA wal_checkpoint(PASSIVE)")
        except sqlite3.Error:
            conns.pop(path, None)  # gone or busy: try again next round


_CHECKPOINTER = _Checkpointer()


def connect_wal(path: str | Path) -> sqlite3.Connection:
    """Open ``path`` for commits on a hot path: autocommit mode (the caller issues BEGIN/COMMIT), WAL
    journal so readers and the writer never block each other, ``synchronous=NORMAL`` (a commit
    survives a killed process; only a power loss can lose the last ones) and background checkpoints."""
    conn = sqlite3.connect(path, timeout=60, isolation_level=None, check_same_thread=False)
    conn.execute("PRAGMA journal_mode=WAL")
    conn.execute("PRAGMA synchronous=NORMAL")
    conn.execute(f"PRAGMA wal_autocheckpoint={WAL_BACKSTOP_PAGES}")
    _CHECKPOINTER.add(path)
    return conn

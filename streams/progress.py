"""How far the stream worker has got: the next offset each listen-events partition's committed
state will read, from the state files themselves (tansu's ListOffsets cannot be trusted). Used to
wait until a replay has been processed whole (the demo, the tests)."""

from __future__ import annotations

import subprocess
import time

from glide.config import GlideSettings
from streams import schemas as S
from streams.state import partition_path


def processed_offsets(settings: GlideSettings) -> dict[int, int]:
    """partition -> next offset the committed state will read (0 if no state yet, -1 while listens
    wait in the partition for their episode to reach the catalog)."""
    import sqlite3

    state_dir = settings.data_dir / "streams" / "state"
    out = {}
    for p in range(settings.topic_partitions):
        path = partition_path(state_dir, S.LISTEN_TOPIC, p)
        out[p] = 0
        if path.exists():
            try:
                with sqlite3.connect(f"file:{path}?mode=ro", uri=True, timeout=5) as db:
                    parked = db.execute("SELECT COUNT(*) FROM parked").fetchone()[0]
                    out[p] = -1 if parked else db.execute("SELECT next_offset FROM meta").fetchone()[0]
            except sqlite3.OperationalError:
                pass
    return out


def wait_processed(settings: GlideSettings, end_offsets: dict, timeout: float = 120,
                   procs: list[subprocess.Popen] = ()) -> None:
    """Until every listen-events partition's state has consumed up to ``end_offsets``."""
    want = {p: o for (t, p), o in end_offsets.items() if t == S.LISTEN_TOPIC}
    deadline = time.monotonic() + timeout
    while True:
        got = processed_offsets(settings)
        if all(got.get(p, 0) >= o for p, o in want.items()):
            return
        for proc in procs:
            if proc.poll() is not None:
                raise TimeoutError(f"worker exited with {proc.returncode}; see {settings.data_dir}/*.log")
        if time.monotonic() > deadline:
            raise TimeoutError(f"not processed within {timeout}s: state at {got}, want {want}")
        time.sleep(0.25)



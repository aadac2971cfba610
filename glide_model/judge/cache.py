"""Disk cache of judged (profile, item) pairs: one SQLite file under the data dir.

Key = sha256 of (prompt version, backend name, kind, profile text, item text): a different profile
(new listens), another model or decoding, or a new prompt never reuses an old answer. Only valid
answers are stored, so a malformed one is asked again on the next run. SQLite because several
jobs may judge at once and a half-written JSON file would lose everything.
"""

from __future__ import annotations

import hashlib
import json
import sqlite3
from pathlib import Path


def cache_key(prompt_version: str, backend: str, kind: str, profile_text: str, item_text: str) -> str:
    payload = json.dumps([prompt_version, backend, kind, profile_text, item_text], ensure_ascii=False)
    return hashlib.sha256(payload.encode()).hexdigest()


class JudgeCache:
    def __init__(self, path: str | Path):
        self.path = Path(path)
        self.path.parent.mkdir(parents=True, exist_ok=True)
        self._db = sqlite3.connect(self.path, timeout=30)
        self._db.execute("CREATE TABLE IF NOT EXISTS judged (key TEXT PRIMARY KEY, scores TEXT NOT NULL)")
        self._db.commit()

    @classmethod
    def under(cls, data_dir: str | Path) -> JudgeCache:
        return cls(Path(data_dir) / "judge" / "cache.sqlite")

    def get(self, key: str) -> dict[str, float] | None:
        row = self._db.execute("SELECT scores FROM judged WHERE key = ?", (key,)).fetchone()
        return None if row is None else json.loads(row[0])

    def put(self, key: str, scores: dict[str, float]) -> None:
        self._db.execute("INSERT OR REPLACE INTO judged (key, scores) VALUES (?, ?)", (key, json.dumps(scores)))
        self._db.commit()

    def __len__(self) -> int:
        return int(self._db.execute("SELECT COUNT(*) FROM judged").fetchone()[0])

    def close(self) -> None:
        self._db.close()

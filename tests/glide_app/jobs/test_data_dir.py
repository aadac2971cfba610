"""A fresh data dir keeps only the content-keyed caches (glide_app/jobs/data_dir.py)."""

from __future__ import annotations

from glide.config import load_settings
from glide_app.jobs.data_dir import KEEP, reset_data_dir


def test_reset_keeps_only_the_caches(tmp_path):
    settings = load_settings(data_dir=str(tmp_path))
    for name in (*KEEP, "offline", "feast", "streams"):
        (tmp_path / name).mkdir()
        (tmp_path / name / "f").write_text("x")
    (tmp_path / "catalog.db").write_text("x")
    reset_data_dir(settings)
    assert sorted(p.name for p in tmp_path.iterdir()) == sorted(KEEP)
    assert all((tmp_path / name / "f").exists() for name in KEEP)

"""feature_repo/ works with stock Feast tooling, as a user would run it."""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

FEATURE_REPO = Path(__file__).resolve().parents[2] / "feature_repo"


def test_stock_feast_apply_registers_every_view_and_service(tmp_path):
    repo = tmp_path / "checkout" / "feature_repo"
    shutil.copytree(FEATURE_REPO, repo, ignore=shutil.ignore_patterns("__pycache__", "data"))
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIDE_")}
    feast = str(Path(sys.executable).with_name("feast"))
    applied = subprocess.run([feast, "apply"], cwd=repo, env=env, capture_output=True, text=True, timeout=180)
    assert applied.returncode == 0, applied.stderr[-2000:]
    listed = subprocess.run([feast, "feature-views", "list"], cwd=repo, env=env, capture_output=True, text=True,
                            timeout=180)
    assert listed.returncode == 0, listed.stderr[-2000:]
    for view in ("user_show_listening_28d", "user_recent_sids", "user_cf_embedding", "user_context",
                 "episode_catalog", "glide_candidates"):
        assert view in listed.stdout
    services = subprocess.run([feast, "feature-services", "list"], cwd=repo, env=env, capture_output=True,
                              text=True, timeout=180)
    assert "glide_inputs" in services.stdout and "ranker_candidates" in services.stdout
    assert (tmp_path / "checkout" / ".glide" / "feast" / "registry.db").is_file()

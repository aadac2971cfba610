"""`glide demo` end to end (slow: minutes), then every command it suggests, on its stack and model."""

from __future__ import annotations

import json
import os
import shlex
import subprocess
import sys

import pytest

from tests.streams.helpers import REPO

pytestmark = pytest.mark.slow


def _glide(args: list[str], env: dict, timeout: float) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "glide_app.cli", *args], cwd=REPO, env=env, capture_output=True,
                          text=True, timeout=timeout)


def test_demo_ends_with_commands_that_work(tmp_path):
    env = {**{k: v for k, v in os.environ.items() if not k.startswith("GLIDE_")},
           "GLIDE_DATA_DIR": str(tmp_path / "demo"), "GLIDE_WORKER_METRICS_PORT": "0"}
    demo = _glide(["demo", "--json"], env, timeout=1800)
    assert demo.returncode == 0, demo.stderr[-3000:]
    record = json.loads(demo.stdout.strip().splitlines()[-1])
    assert record["parity_mismatches"] == 0 and record["events_logged"] == record["events_produced"]
    assert "what a ranker reads" in demo.stdout and "not GLIDE's quality" in demo.stdout
    try:
        for command in record["next_commands"]:
            args = shlex.split(command)
            assert args[0] == "glide"
            got = _glide(args[1:], env, timeout=600)
            assert got.returncode == 0, (command, got.stderr[-2000:])
    finally:
        _glide(["stack", "down"], env, timeout=120)

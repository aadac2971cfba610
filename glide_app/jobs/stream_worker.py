"""The stream worker (`glide streams worker`) as a child process of a job that drives the loop (the
demo, the simulated A/B): started with its log under <data_dir>/logs, and waited on until ready."""

from __future__ import annotations

import os
import subprocess
import sys
import time

import click
from rich.console import Console

from glide.config import GlideSettings


def start_stream_worker(settings: GlideSettings) -> subprocess.Popen:
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    env = {**os.environ, "GLIDE_DATA_DIR": str(settings.data_dir), "GLIDE_STREAMS_METRICS_PORT": "-1"}
    with open(logs / "streams-worker.log", "wb") as log:  # fresh, so readiness is this run's
        return subprocess.Popen([sys.executable, "-m", "glide_app.cli", "streams", "worker"], env=env,
                                stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL)


def wait_ready(settings: GlideSettings, worker: subprocess.Popen, console: Console, timeout_s: float = 180) -> None:
    """Until the stream worker logs that it is ready (it loads the catalog and the text encoder)."""
    log = settings.data_dir / "logs" / "streams-worker.log"
    deadline = time.monotonic() + timeout_s
    with console.status("waiting for the stream worker to join its consumer group..."):
        while time.monotonic() < deadline:
            if worker.poll() is not None:
                raise click.ClickException(f"the stream worker exited ({worker.returncode}); see {log}")
            if log.exists() and "stream worker ready" in log.read_text(errors="replace"):
                time.sleep(3)  # group join takes about half the session timeout
                return
            time.sleep(0.5)
    raise click.ClickException(f"the stream worker was not ready after {timeout_s:.0f} s; see {log}")

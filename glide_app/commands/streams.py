"""`glide streams worker`: run the stream processors (the faust app in streams/app.py)."""

from __future__ import annotations

import os

import click


@click.group()
def streams() -> None:
    """Stream processors: listening features, recent SIDs, catalog updates."""


@streams.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="GLIDE_DATA_DIR.")
@click.option("--metrics-port", type=int, default=None,
              help="Prometheus port on 127.0.0.1 (GLIDE_STREAMS_METRICS_PORT; 0 = any free port, -1 = off).")
@click.option("--loglevel", type=click.Choice(["crit", "error", "warn", "info", "debug"]), default="warn",
              show_default=True, help="faust's own log level (GLIDE's loggers log at info as JSON).")
def worker(data_dir: str | None, metrics_port: int | None, loglevel: str) -> None:
    """Run one stream worker (run more with the same settings to share the partitions)."""
    if data_dir:
        os.environ["GLIDE_DATA_DIR"] = data_dir
    if metrics_port is not None:
        os.environ["GLIDE_STREAMS_METRICS_PORT"] = str(metrics_port)
    from streams.app import app  # reads the settings above; needs a running broker

    app.conf.web_enabled = False
    worker = app.Worker(loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()

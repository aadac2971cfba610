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
    _preflight()
    from streams.app import app  # reads the settings above; needs a running broker

    app.conf.web_enabled = False
    worker = app.Worker(loglevel=loglevel, quiet=True)
    worker.execute_from_commandline()


def _preflight() -> None:
    """What would otherwise fail inside the running worker (a traceback, or minutes of retries) fails
    here as one ConfigError: bad settings, a busy metrics port, an unreachable Kafka bootstrap."""
    from glide.config import load_settings
    from infra.stack import check_kafka
    from streams.config import load_stream_settings
    from streams.metrics import check_available

    settings = load_settings()
    cfg = load_stream_settings()
    cfg.chaos_points()
    check_available(cfg.metrics_host, cfg.metrics_port)
    check_kafka(settings.bootstrap_servers())

"""Prometheus metrics of the stream processors, served on 127.0.0.1 (GLIDE_STREAMS_METRICS_PORT)."""

from __future__ import annotations

import logging
import socket

from prometheus_client import Counter, Gauge, Histogram, start_http_server

log = logging.getLogger("glide.streams.metrics")

EVENTS = Counter("glide_stream_events_total", "Records consumed, by topic and outcome "
                 "(applied, duplicate, dead_letter, parked, control)", ["topic", "outcome"])
DEAD_LETTERS = Counter("glide_stream_dead_letter_total", "Records sent to dead-letter, by reason", ["topic", "reason"])
LAG = Gauge("glide_stream_consumer_lag", "High watermark minus next offset to process", ["topic", "partition"])
WATERMARK = Gauge("glide_stream_watermark_ms", "Event-time watermark of a partition (epoch ms)", ["topic", "partition"])
PUSH_LATENCY = Histogram("glide_stream_push_seconds", "Time to write one batch of rows to the online store",
                         ["view"], buckets=(.001, .0025, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
FRESHNESS = Histogram("glide_stream_freshness_seconds", "Record produced -> its features visible online",
                      ["topic"], buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30, 60))
BATCH_SECONDS = Histogram("glide_stream_batch_seconds", "Wall time of one processed batch", ["topic"],
                          buckets=(.005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5))
RETRIES = Counter("glide_retries_total", "Retries of a transient I/O error (streams/retry.py)", ["worker", "operation"])
RETRY_EXHAUSTED = Counter("glide_retry_exhausted_total", "Operations given up after the retry deadline",
                          ["worker", "operation"])
PARKED = Gauge("glide_stream_parked", "Listens waiting for their episode to reach the catalog", ["partition"])


STREAMS_PORT_SETTING = "GLIDE_STREAMS_METRICS_PORT"


def _unavailable(host: str, port: int, exc: OSError, setting: str):
    from glide.config import ConfigError

    return ConfigError(f"metrics port {host}:{port} is unavailable ({exc.strerror or exc}): give each worker on a "
                       f"host its own {setting} (0 = any free port, -1 = off)")


def check_available(host: str, port: int, setting: str = STREAMS_PORT_SETTING) -> None:
    """Before a worker starts: the ConfigError `serve` would raise later (inside the running worker) if
    ``host:port`` cannot be bound now. Port 0 (any free one) and < 0 (off) always pass."""
    if port <= 0:
        return
    try:
        infos = socket.getaddrinfo(host, port, type=socket.SOCK_STREAM)
        with socket.socket(infos[0][0], socket.SOCK_STREAM) as s:
            s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)  # as the HTTP server does
            s.bind(infos[0][4])
    except OSError as exc:
        raise _unavailable(host, port, exc, setting) from None


def serve(host: str, port: int, setting: str = STREAMS_PORT_SETTING) -> int | None:
    """Start the /metrics endpoint in a daemon thread; returns the bound port (None when port < 0)."""
    if port < 0:
        return None
    try:
        server, _thread = start_http_server(port, addr=host)
    except OSError as exc:
        raise _unavailable(host, port, exc, setting) from None
    bound = server.server_port
    log.info("metrics endpoint up", extra={"url": f"http://{host}:{bound}/metrics"})
    return bound

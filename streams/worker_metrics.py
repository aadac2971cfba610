"""Prometheus metrics of the GLIDE worker (`glide serve`), served on 127.0.0.1 (GLIDE_WORKER_METRICS_PORT).

Sessions by outcome, the time of each phase of a batch, the model served, backend errors and the
session-start consumer lag. Dead letters by reason are `glide_stream_dead_letter_total{topic="session-start"}`
(streams/deadletter.py counts every dead letter it sends, whichever worker sends it).
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager

from aiokafka import AIOKafkaConsumer
from aiokafka.errors import IllegalStateError
from prometheus_client import Counter, Gauge, Histogram, Info

from streams import metrics
from streams.schemas import SESSION_TOPIC

SESSION_OUTCOMES = ("served", "cold_start", "skipped_fresh", "stale", "dead_letter")
# cache: read the cached sets (refresh policy); features: the user's online features and habit state;
# decode: the backend's beam search; resolve: SIDs -> eligible episodes; write: the Feast push;
# send: the answers' delivery to glide-candidates.
PHASES = ("cache", "features", "decode", "resolve", "write", "send")

SESSIONS = Counter("glide_worker_sessions_total", "session-start records, by outcome (served, cold_start, "
                   "skipped_fresh, stale, dead_letter)", ["outcome"])
NEW_EPISODES = Counter("glide_worker_new_episodes_total", "catalog-updates made recommendable, by outcome", ["outcome"])
LATENCY = Histogram("glide_worker_request_seconds", "Per-session candidate generation time (amortised over a batch)",
                    buckets=(.01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10))
PHASE_SECONDS = Histogram("glide_worker_phase_seconds", "Wall time of one phase of a batch (cache, features, "
                          "decode, resolve, write, send)", ["phase"],
                          buckets=(.001, .005, .01, .025, .05, .1, .25, .5, 1, 2.5, 5, 10, 30))
BACKEND_ERRORS = Counter("glide_worker_backend_errors_total", "Generation calls that raised, by backend", ["backend"])
MODEL = Info("glide_worker_model", "The model this worker serves: model_version, quantizer_version, backend")
CONSUMER_LAG = Gauge("glide_worker_consumer_lag", "session-start high watermark minus the next offset to serve",
                     ["topic", "partition"])
CF_VECTORS = Counter("glide_worker_cf_vectors_total", "CF vectors read for a request, by outcome (ok; missing, "
                     "version_mismatch, bad_dimension: served with the default vector)", ["outcome"])

for _outcome in SESSION_OUTCOMES:  # every outcome is scraped from the start, at 0
    SESSIONS.labels(_outcome)
for _phase in PHASES:
    PHASE_SECONDS.labels(_phase)


@contextmanager
def phase(name: str) -> Iterator[None]:
    """Time the enclosed block as one ``name`` phase (failed attempts too: their time was spent)."""
    started = time.perf_counter()
    try:
        yield
    finally:
        PHASE_SECONDS.labels(name).observe(time.perf_counter() - started)


def backend_name(backend: object) -> str:
    """`hf`, `vllm` or, for anything else (test stand-ins), the backend's class name."""
    name = type(backend).__name__
    return "hf" if name.startswith("HF") else "vllm" if name.startswith("VLLM") else name


@contextmanager
def decoding(backend: object) -> Iterator[None]:
    """The decode phase: timed, and an exception of the backend counted before it propagates."""
    with phase("decode"):
        try:
            yield
        except Exception:
            BACKEND_ERRORS.labels(backend_name(backend)).inc()
            raise


_model: dict[str, str] = {}


def set_model(service: object) -> None:
    """The model info of ``service`` (a CandidateService); cheap when unchanged, so a worker can call it
    every batch and a model swapped at runtime shows up."""
    info = {"model_version": str(getattr(service, "model_version", "")),
            "quantizer_version": str(getattr(service, "quantizer_version", "")),
            "backend": backend_name(getattr(service, "backend", None))}
    if info != _model:
        MODEL.info(info)
        _model.clear()
        _model.update(info)


async def report_lag(consumer: AIOKafkaConsumer, topic: str = SESSION_TOPIC) -> None:
    """``glide_worker_consumer_lag`` of ``topic``'s assigned partitions: the high watermark of the last
    fetch response minus the position. Fetch responses, not ListOffsets: tansu answers ListOffsets(latest)
    wrongly, and the fetcher keeps the high watermark current anyway. A partition fetched nothing from
    yet has no sample; a revoked one loses its sample."""
    assigned = {tp for tp in consumer.assignment() if tp.topic == topic}
    for tp in assigned:
        highwater = consumer.highwater(tp)
        if highwater is None:  # not fetched yet: position() might wait for the offset reset
            continue
        try:
            position = await consumer.position(tp)
        except IllegalStateError:  # revoked meanwhile
            continue
        CONSUMER_LAG.labels(topic, str(tp.partition)).set(max(0, highwater - position))
    mine = {str(tp.partition) for tp in assigned}
    for labels in [s.labels for m in CONSUMER_LAG.collect() for s in m.samples]:
        if labels["topic"] == topic and labels["partition"] not in mine:
            CONSUMER_LAG.remove(topic, labels["partition"])


PORT_SETTING = "GLIDE_WORKER_METRICS_PORT (--metrics-port)"


def check_available(host: str, port: int) -> None:
    """Before the worker loads its model: the one-line ConfigError of a busy ``host:port``."""
    metrics.check_available(host, port, PORT_SETTING)


def serve(host: str, port: int) -> int | None:
    """Start /metrics in a daemon thread (it logs the bound URL); the bound port, None when port < 0."""
    return metrics.serve(host, port, PORT_SETTING)

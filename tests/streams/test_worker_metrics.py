"""The GLIDE worker's /metrics, scraped over HTTP from a running worker (real broker, real Feast,
embedded profile): every session outcome is counted, the phases are timed where they happen, the
model is an info metric, backend errors are counted, and the session-start consumer lag rises under
a burst and returns to 0 once it is served. Generation is a slow stand-in (the metrics are under
test, not the model); the real `glide serve` is scraped by the fault suite."""

from __future__ import annotations

import asyncio
import os
import socket
import subprocess
import sys
import threading
import time
import urllib.request
import uuid

import numpy as np
import orjson
import pandas as pd
import pytest
from kafka import KafkaProducer

from glide_model.sids.collisions import CollisionTable
from glide_model.sids.trie import SidTrie
from streams import schemas as S
from streams import worker_metrics
from streams.candidate_worker import run_candidate_worker
from streams.candidates import CandidateConfig, CandidateService
from streams.config import StreamSettings
from streams.feature_store import open_store, push
from tests.streams.fakes import EchoBackend
from tests.streams.helpers import REPO, metric

K = 4
CATALOG = {f"e{i}": ((i % 4, i // 4), f"s{i % 3}") for i in range(12)}  # episode: (sid, show)
DECODE_S = 0.3  # each generate call takes this long, so a burst builds up lag
BURST = 24


class SlowEcho(EchoBackend):
    """EchoBackend that takes DECODE_S per call and fails any call with a request of `u-boom`."""

    def generate(self, requests):
        time.sleep(DECODE_S)
        if any(r.user_id == "u-boom" for r in requests):
            raise RuntimeError("backend down for u-boom")
        return super().generate(requests)


@pytest.fixture(scope="module")
def worker(embedded_stack):
    """A running GLIDE worker with /metrics on a free port; yields (send, scrape)."""
    settings, _ = embedded_stack
    store = open_store(settings)
    now = pd.Timestamp.now(tz="UTC")
    push(store, "user_context", pd.DataFrame({"user_id": ["u1"], "locale": ["en-US"], "country": ["US"],
                                              "affinity_topics": [["news"]], "event_timestamp": [now]}))
    push(store, "user_recent_sids", pd.DataFrame({"user_id": ["u1"], "recent_episode_ids": [["e0"]],
                                                  "recent_sid_codes": [list(CATALOG["e0"][0])], "sid_levels": [2],
                                                  "event_timestamp": [now - pd.Timedelta(hours=1)]}))
    ids = list(CATALOG)
    codes = np.array([CATALOG[e][0] for e in ids])
    table = CollisionTable.from_arrays(ids, codes, [float(i) for i in range(len(ids))], locale=["en-US"] * len(ids))
    backend = SlowEcho(SidTrie(codes, K), sorted({CATALOG[e][0] for e in ids}))
    service = CandidateService(store, backend, table, {e: v[1] for e, v in CATALOG.items()}, "v-metrics",
                               CandidateConfig(refresh_ttl_s=600), quantizer_version="q-metrics")
    port = worker_metrics.serve("127.0.0.1", 0)
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    loop_ready, state = threading.Event(), {}

    async def main() -> None:
        state["loop"], state["stop"] = asyncio.get_running_loop(), asyncio.Event()
        loop_ready.set()
        await run_candidate_worker(settings, service, state["stop"], group_id=f"glide-metrics-{uuid.uuid4().hex[:8]}",
                                   max_batch=4, session_timeout_ms=6000, streams=StreamSettings(metrics_port=-1))

    thread = threading.Thread(target=lambda: asyncio.run(main()), daemon=True)
    thread.start()
    assert loop_ready.wait(10)

    def send(*values: bytes) -> None:
        for v in values:
            producer.send(S.SESSION_TOPIC, key=b"k", value=v)
        producer.flush()

    def scrape() -> str:
        with urllib.request.urlopen(f"http://127.0.0.1:{port}/metrics", timeout=5) as r:
            return r.read().decode()

    yield send, scrape
    state["loop"].call_soon_threadsafe(state["stop"].set)
    thread.join(60)
    producer.close()


def session(user: str, ts_ms: int | None = None) -> bytes:
    return orjson.dumps({"event_id": uuid.uuid4().hex, "user_id": user, "ts": ts_ms or int(time.time() * 1000),
                         "surface": "home", "context": {}})


def lag(text: str) -> float:
    from prometheus_client.parser import text_string_to_metric_families

    return sum(s.value for f in text_string_to_metric_families(text) for s in f.samples
               if s.name == "glide_worker_consumer_lag" and s.labels["topic"] == S.SESSION_TOPIC)


def wait_until(scrape, done, timeout: float = 60) -> str:
    deadline = time.monotonic() + timeout
    while True:
        text = scrape()
        if done(text):
            return text
        assert time.monotonic() < deadline, "timed out; last scrape:\n" + text
        time.sleep(0.1)


def test_outcomes_phases_model_errors_and_lag_are_scraped(worker):
    send, scrape = worker
    before = scrape()

    def delta(text: str, name: str, **labels) -> float:
        return metric(text, name, **labels) - metric(before, name, **labels)

    def outcomes(text: str) -> dict[str, float]:
        got = {o: delta(text, "glide_worker_sessions_total", outcome=o) for o in worker_metrics.SESSION_OUTCOMES}
        return {o: v for o, v in got.items() if v}

    steps = [  # one record at a time, each waited for: (record, outcomes so far)
        (session("u1"), {"served": 1}),
        (session("u1"), {"served": 1, "skipped_fresh": 1}),  # the cached sets are fresh
        (session("u-new"), {"served": 1, "skipped_fresh": 1, "cold_start": 1}),  # no features online
        (session("u1", int(time.time() * 1000) - 3_600_000), {"served": 1, "skipped_fresh": 1, "cold_start": 1,
                                                              "stale": 1}),
        (b"{not json", {"served": 1, "skipped_fresh": 1, "cold_start": 1, "stale": 1, "dead_letter": 1}),
        (session("u-boom"), {"served": 1, "skipped_fresh": 1, "cold_start": 1, "stale": 1, "dead_letter": 2}),
    ]
    for record, want in steps:
        send(record)
        text = wait_until(scrape, lambda t, w=want: outcomes(t) == w)
    assert delta(text, "glide_stream_dead_letter_total", topic=S.SESSION_TOPIC, reason=S.MALFORMED_JSON) == 1
    assert delta(text, "glide_stream_dead_letter_total", topic=S.SESSION_TOPIC, reason="inference_error") == 1
    assert delta(text, "glide_worker_backend_errors_total", backend="SlowEcho") == 1
    assert metric(text, "glide_worker_model_info", model_version="v-metrics", quantizer_version="q-metrics",
                  backend="SlowEcho") == 1

    # Real phases, not a split of the total: decode holds the backend's sleep, the others do not.
    # Generated: u1, u-new and the failed u-boom (decode only); the cache was read for every session.
    calls = {p: delta(text, "glide_worker_phase_seconds_count", phase=p) for p in worker_metrics.PHASES}
    assert calls == {"cache": 4, "features": 3, "decode": 3, "resolve": 2, "write": 2, "send": 3}
    decode = delta(text, "glide_worker_phase_seconds_sum", phase="decode")
    assert decode >= 3 * DECODE_S
    for p in ("features", "resolve", "write"):
        assert delta(text, "glide_worker_phase_seconds_sum", phase=p) < decode

    # A burst: the lag is reported while it is worked off, and is 0 once everything is served.
    wait_until(scrape, lambda t: lag(t) == 0, timeout=10)
    send(*(session(f"burst-{i}") for i in range(BURST)))
    peak, deadline = 0.0, time.monotonic() + 120
    while (text := scrape()) and outcomes(text).get("cold_start", 0) < 1 + BURST:
        peak = max(peak, lag(text))
        assert time.monotonic() < deadline, "the burst was not served"
        time.sleep(0.05)
    assert peak > 0, "no lag was reported during the burst"
    assert peak <= BURST
    wait_until(scrape, lambda t: lag(t) == 0, timeout=10)


def test_serve_with_a_busy_metrics_port_fails_in_one_line(tmp_path):
    env = {k: v for k, v in os.environ.items() if not k.startswith("GLIDE_")}
    env["GLIDE_DATA_DIR"] = str(tmp_path / "data")
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        for args, extra in ((["--metrics-port", str(port)], {}), ([], {"GLIDE_WORKER_METRICS_PORT": str(port)})):
            proc = subprocess.run([sys.executable, "-m", "glide_app.cli", "serve", *args], cwd=REPO,
                                  env=env | extra, capture_output=True, text=True, timeout=120)
            assert proc.returncode == 2, proc.stderr
            errors = [line for line in proc.stderr.splitlines() if line.strip()]
            assert len(errors) == 1 and errors[0].startswith("error: "), proc.stderr
            assert f"127.0.0.1:{port}" in errors[0] and "GLIDE_WORKER_METRICS_PORT" in errors[0]

"""`glide serve --backend vllm` from the main venv, for real: the worker (a subprocess, as deployed)
starts a vLLM server in infra/vllm/.venv, serves session starts from a real broker and Feast, and
its candidates are the HF backend's; stopping the worker stops the server.

~75 s on 2 cores (stack, worker imports, a vLLM engine start, HF in this process), so in the default
suite with the ``vllm`` marker; the backends' equality on more requests (sub-tries, cold users, a
trie that grows) is tests/glide_model/llm/test_vllm_process.py.
"""

from __future__ import annotations

import subprocess
import sys
import time
import uuid

import numpy as np
import orjson
import pandas as pd
import psutil
import pytest
from kafka import KafkaConsumer, KafkaProducer

from glide.catalog import CatalogDB
from glide_model.llm.vllm_process import DEFAULT_VLLM_PYTHON
from streams.candidate_worker import CANDIDATES_TOPIC
from streams.feature_store import apply_definitions, open_store, push
from streams.schemas import SessionStart
from streams.serving import build_service
from tests.infra.test_vllm_backend import D_CF, LEVELS, _export
from tests.infra.test_vllm_backend import K as CODEBOOK
from tests.streams.helpers import REPO, stop_worker, worker_env

pytestmark = [
    pytest.mark.vllm,
    pytest.mark.skipif(not DEFAULT_VLLM_PYTHON.exists(),
                       reason="no vLLM venv at infra/vllm/.venv (build it with `make vllm-env`)"),
]
USERS = ("u1", "u2", "u-cold")
BEAMS = 30


def _catalog(settings) -> None:
    """60 episodes of 6 shows, SIDs of the tiny export's shape (3 x 8), under its quantizer `q`."""
    rng = np.random.default_rng(3)
    codes = np.unique(rng.integers(0, CODEBOOK, size=(80, LEVELS)), axis=0)[:60]
    episodes = pd.DataFrame([{
        "episode_id": f"e{i:03d}", "show_id": f"s{i % 6}", "title": f"Episode {i}", "description": f"About {i}",
        "locale": "en-US", "playable": True, "popularity": float(rng.integers(0, 100)),
        "published_at": pd.Timestamp("2026-01-01", tz="UTC"), "duration_s": 1800, "topic": "news",
    } for i in range(len(codes))])
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"s{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(6)])
    db.upsert_episodes(episodes)
    # No quantizer artifact: the worker serves without live cold start (no text encoder to load).
    db.register_quantizer("q", "rkmeans", str(settings.data_dir / "no-artifact"), LEVELS, CODEBOOK, {})
    db.save_sid_assignments("q", {e: tuple(int(c) for c in row) for e, row in zip(episodes["episode_id"], codes)})
    db.close()


def _features(settings) -> None:
    store = open_store(settings)
    apply_definitions(store)
    now = pd.Timestamp.now(tz="UTC")
    rng = np.random.default_rng(4)
    push(store, "user_context", pd.DataFrame({
        "user_id": ["u1", "u2"], "locale": ["en-US", "en-US"], "country": ["US", "US"],
        "affinity_topics": [["news"], ["sports"]], "event_timestamp": [now, now]}))
    push(store, "user_cf_embedding", pd.DataFrame({
        "user_id": ["u1", "u2"], "cf_embedding": [rng.normal(size=D_CF).astype(np.float32).tolist() for _ in "12"],
        "cf_version": ["cf", "cf"], "event_timestamp": [now, now]}))


def _candidate_events(settings, want: set[tuple[str, str]], timeout_s: float,
                      worker: subprocess.Popen) -> dict[tuple[str, str], dict]:
    """(user, mode) -> the candidate event: a session start answers with one event per mode."""
    consumer = KafkaConsumer(CANDIDATES_TOPIC, bootstrap_servers=settings.bootstrap_servers(),
                             auto_offset_reset="earliest", consumer_timeout_ms=1000)
    got: dict[tuple[str, str], dict] = {}
    deadline = time.monotonic() + timeout_s
    try:
        while set(got) < want and time.monotonic() < deadline and worker.poll() is None:
            for record in consumer:
                event = orjson.loads(record.value)
                got[(event["user_id"], event["mode"])] = event
    finally:
        consumer.close()
    return got


def test_glide_serve_with_the_vllm_backend_serves_hf_candidates(embedded_stack, tmp_path):
    settings, _ = embedded_stack
    _catalog(settings)
    _features(settings)
    export = _export(tmp_path / "model", "glide")

    log_path = settings.data_dir / "serve-vllm.log"
    t0 = time.monotonic()
    with open(log_path, "wb") as log:
        worker = subprocess.Popen(
            [sys.executable, "-m", "glide_app.cli", "serve", "--backend", "vllm", "--model", str(export),
             "--beams", str(BEAMS)], cwd=REPO, env=worker_env(settings), stdout=log, stderr=subprocess.STDOUT,
            start_new_session=True)
    ts = int(time.time() * 1000)
    sessions = [SessionStart(uuid.uuid4().hex, user, ts, "home", {}) for user in USERS]
    producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers())
    for s in sessions:
        producer.send("session-start", key=s.user_id.encode(), value=orjson.dumps(
            {"event_id": s.event_id, "user_id": s.user_id, "ts": s.ts, "surface": s.surface, "context": {}}))
    producer.flush()
    try:
        want_pairs = {(u, m) for u in USERS for m in ("familiar", "unfamiliar")}
        events = _candidate_events(settings, want_pairs, 300, worker)
        served_s = time.monotonic() - t0
        output = log_path.read_text(errors="replace")
        assert set(events) == want_pairs, f"served {sorted(events)}; worker log:\n{output[-6000:]}"
        servers = [p for p in psutil.Process(worker.pid).children(recursive=True)
                   if "glide_model.llm.vllm_server" in " ".join(p.cmdline())]
        assert servers and str(DEFAULT_VLLM_PYTHON) in servers[0].cmdline()[0]
    finally:
        stop_worker(worker, timeout=60)
    assert worker.returncode == 0, log_path.read_text(errors="replace")[-6000:]
    assert not servers[0].is_running() or servers[0].status() == psutil.STATUS_ZOMBIE, "the vLLM server outlived the worker"

    # The same sessions through the HF backend, in this process: the same candidates.
    hf = build_service(settings, export, "hf", BEAMS).recommend(sessions)
    for want in hf:
        got = events[(want.user_id, want.mode)]
        assert got["episode_ids"], want.user_id
        overlap = len(set(got["episode_ids"][:10]) & set(want.episode_ids[:10]))
        assert overlap >= min(8, len(want.episode_ids[:10])), (want.user_id, got["episode_ids"], want.episode_ids)
        # The worker runs vLLM at dtype "auto" (HF here: float32): scores agree to ~1e-2, not 1e-5.
        for sid_score, episode in zip(got["scores"], got["episode_ids"]):
            if episode in want.episode_ids:
                assert sid_score == pytest.approx(want.scores[want.episode_ids.index(episode)], abs=0.05)
    print(f"glide serve --backend vllm: first candidates {served_s:.0f} s after the worker started")

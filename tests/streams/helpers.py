"""Shared helpers of the stream tests: worlds with SIDs, worker processes, waiting, the oracle."""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd
import redis
from kafka import KafkaConsumer, TopicPartition

from glide import habits
from glide.catalog import CatalogDB
from glide.config import GlideSettings
from streams import deadletter
from streams import schemas as S
from streams.progress import processed_offsets, wait_processed  # noqa: F401  (the tests' waiting)

REPO = Path(__file__).resolve().parents[2]
QUANTIZER = "test-q1"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def register_sids(settings: GlideSettings, episodes: pd.DataFrame, levels: int = 3, codebook: int = 16,
                  seed: int = 0) -> dict[str, tuple[int, ...]]:
    """What the offline SID pipeline leaves in the catalog: a quantizer and every episode's SID."""
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.register_quantizer(QUANTIZER, "test", "/nonexistent", levels, codebook)
    rng = np.random.default_rng(seed)
    codes = rng.integers(0, codebook, size=(len(episodes), levels))
    sids = {e: tuple(int(c) for c in row) for e, row in zip(episodes["episode_id"], codes)}
    db.save_sid_assignments(QUANTIZER, sids)
    db.close()
    return sids


def read_topic(bootstrap: str, topic: str, timeout_ms: int = 3000) -> list:
    """Every record of ``topic``, each partition read from offset 0 (no group, no ListOffsets: tansu's
    latest offset is wrong), until nothing arrives for ``timeout_ms``."""
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, consumer_timeout_ms=timeout_ms)
    tps = [TopicPartition(topic, p) for p in sorted(consumer.partitions_for_topic(topic))]
    consumer.assign(tps)
    for tp in tps:
        consumer.seek(tp, 0)
    records = list(consumer)
    consumer.close()
    return records


def dead_letters(bootstrap: str, source_topic: str) -> dict[tuple[int, int], str]:
    """(source partition, source offset) -> reason of every dead letter of ``source_topic``; a record
    dead-lettered twice (a batch repeated after a kill) must carry the same reason both times."""
    out: dict[tuple[int, int], str] = {}
    for m in read_topic(bootstrap, S.DEAD_LETTER_TOPIC):
        h = deadletter.parse_headers(m.headers)
        if h.get(deadletter.SOURCE_TOPIC) != source_topic:
            continue
        pos = (int(h[deadletter.SOURCE_PARTITION]), int(h[deadletter.SOURCE_OFFSET]))
        assert out.setdefault(pos, h[deadletter.REASON]) == h[deadletter.REASON], f"two reasons for {pos}"
    return out


def worker_env(settings: GlideSettings, **streams_env) -> dict[str, str]:
    env = dict(os.environ)
    env.update({
        "GLIDE_DATA_DIR": str(settings.data_dir),
        "GLIDE_PROFILE": settings.profile,
        "GLIDE_STREAMS_SESSION_TIMEOUT_S": "6",
        "GLIDE_STREAMS_METRICS_PORT": "0",
        "GLIDE_WORKER_METRICS_PORT": "0",  # several `glide serve` per test run: never the fixed default
        "GLIDE_STREAMS_LIVE_SIDS": "false",
        "PYTHONUNBUFFERED": "1",
    })
    if settings.kafka_bootstrap:
        env["GLIDE_KAFKA_BOOTSTRAP"] = settings.kafka_bootstrap
    if settings.profile == "cluster":
        env["GLIDE_POSTGRES_SCHEMA"] = settings.postgres_schema
    env.update({f"GLIDE_STREAMS_{k.upper()}": str(v) for k, v in streams_env.items()})
    return env


def start_worker(settings: GlideSettings, name: str = "worker", **streams_env) -> subprocess.Popen:
    """`glide streams worker` as a child process (its own session, so a kill takes only it)."""
    log = open(settings.data_dir / f"{name}.log", "ab")
    return subprocess.Popen([sys.executable, "-m", "glide_app.cli", "streams", "worker"], cwd=REPO,
                            env=worker_env(settings, **streams_env), stdout=log, stderr=subprocess.STDOUT,
                            start_new_session=True)


def stop_worker(proc: subprocess.Popen, kill: bool = False, timeout: float = 20) -> None:
    if proc.poll() is not None:
        return
    proc.send_signal(signal.SIGKILL if kill else signal.SIGTERM)
    try:
        proc.wait(timeout)
    except subprocess.TimeoutExpired:
        proc.kill()
        proc.wait(10)


def events_frame(listens: pd.DataFrame) -> pd.DataFrame:
    """The listens as they travel on the wire (timestamps in whole ms)."""
    out = listens.copy()
    out["ts"] = pd.to_datetime(S.ms_series(listens["ts"]), unit="ms", utc=True)
    return out


def online_pairs(store, pairs: pd.DataFrame) -> pd.DataFrame:
    feats = [f"user_show_listening_28d:{f}" for f in
             ("listen_seconds_28d", "ever_listened", "last_listened_at", "habitual")]
    rows = [{"user_id": u, "show_id": s} for u, s in zip(pairs["user_id"], pairs["show_id"])]
    got = store.get_online_features(features=feats, entity_rows=rows).to_dict()
    return pd.DataFrame(got)


def online_recent(store, users: list[str]) -> pd.DataFrame:
    feats = [f"user_recent_sids:{f}" for f in ("recent_episode_ids", "recent_sid_codes", "sid_levels")]
    got = store.get_online_features(features=feats, entity_rows=[{"user_id": u} for u in users]).to_dict()
    return pd.DataFrame(got)


def assert_features_match_oracle(store, listens: pd.DataFrame, sids: dict, as_of_ms: int,
                                 cap: int = habits.RECENT_SIDS_CAP) -> int:
    """Online features == glide.habits recomputed from the same events; returns pairs compared."""
    ev = events_frame(listens)
    as_of = pd.Timestamp(as_of_ms, unit="ms", tz="UTC")
    want = habits.user_show_features(ev, as_of).sort_values(["user_id", "show_id"]).reset_index(drop=True)
    got = online_pairs(store, want[["user_id", "show_id"]])
    assert got["listen_seconds_28d"].tolist() == want["listen_seconds_28d"].tolist()
    assert got["habitual"].tolist() == want["habitual"].tolist()
    assert got["ever_listened"].tolist() == [True] * len(want)
    # Feast's UnixTimestamp keeps whole seconds.
    want_last = [int(t.timestamp()) for t in want["last_listened_at"]]
    assert [int(t.timestamp()) for t in got["last_listened_at"]] == want_last

    hist = habits.user_recent_sids_history(ev, sids, cap=cap)
    last = hist.sort_values("event_timestamp").groupby("user_id").tail(1).sort_values("user_id")
    got_r = online_recent(store, last["user_id"].tolist())
    assert got_r["recent_episode_ids"].tolist() == last["recent_episode_ids"].tolist()
    assert got_r["recent_sid_codes"].tolist() == last["recent_sid_codes"].tolist()
    assert set(got_r["sid_levels"]) <= {len(next(iter(sids.values())))}
    return len(want)


def metric(text: str, name: str, **labels) -> float:
    """The value of one Prometheus sample (0.0 when absent)."""
    from prometheus_client.parser import text_string_to_metric_families

    for family in text_string_to_metric_families(text):
        for s in family.samples:
            if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
                return s.value
    return 0.0


def listening_addresses(port: int) -> set[str]:
    """IPv4 addresses with a listening TCP socket on ``port`` (from /proc/net/tcp)."""
    out = set()
    for line in Path("/proc/net/tcp").read_text().splitlines()[1:]:
        local, state = line.split()[1], line.split()[3]
        ip_hex, port_hex = local.split(":")
        if state == "0A" and int(port_hex, 16) == port:
            out.add(".".join(str(b) for b in bytes.fromhex(ip_hex)[::-1]))
    return out


class RedisServer:
    """One redis-server process of this test on its own port and folder; only it is ever killed."""

    def __init__(self, folder, port: int):
        self.folder, self.port = folder, port
        self.folder.mkdir(parents=True, exist_ok=True)
        self.proc: subprocess.Popen | None = None
        self.url = f"redis://127.0.0.1:{port}/0"

    def start(self, timeout: float = 15) -> None:
        log = open(self.folder / "redis.log", "ab")
        self.proc = subprocess.Popen(
            ["redis-server", "--port", str(self.port), "--bind", "127.0.0.1", "--save", "",
             "--appendonly", "yes", "--appendfsync", "always", "--dir", str(self.folder)],
            stdout=log, stderr=subprocess.STDOUT, start_new_session=True)
        client = redis.Redis(port=self.port, socket_connect_timeout=1)
        deadline = time.monotonic() + timeout
        while True:
            try:
                if client.ping():
                    return
            except redis.exceptions.RedisError:
                pass
            if time.monotonic() > deadline or self.proc.poll() is not None:
                raise RuntimeError(f"redis-server on {self.port} did not come up; see {self.folder}/redis.log")
            time.sleep(0.1)

    def kill(self) -> None:
        if self.proc is not None and self.proc.poll() is None:
            self.proc.send_signal(signal.SIGKILL)
            self.proc.wait(10)


def tiny_glide_export(folder: Path, levels: int, codebook_size: int, quantizer_version: str, seed: int = 0,
                      cf_version: str | None = None, serving_dtype: str = "float32") -> Path:
    """An untrained GLIDE export on a tiny random Llama (seconds): what the worker tests serve."""
    from glide_model.llm.backbone import tiny_llama
    from glide_model.llm.checkpoint import Manifest, export_merged, save_checkpoint
    from glide_model.llm.model import GlideLM
    from glide_model.llm.prompt import GLIDE, PromptBuilder
    from glide_model.llm.soft_prompt import SoftPromptProjector
    from glide_model.llm.vocab import extend_vocab

    model, tok = tiny_llama(seed=seed)
    model.save_pretrained(folder / "base")
    tok.save_pretrained(folder / "base")
    vocab = extend_vocab(model, tok, levels, codebook_size)
    glm = GlideLM(model, tok, vocab, PromptBuilder(tok, vocab, GLIDE), SoftPromptProjector(8, model.config.hidden_size))
    extra = {"cf_version": cf_version} if cf_version else {}
    save_checkpoint(folder / "ckpt", glm, Manifest(base_model=str(folder / "base"), variant="glide", levels=levels,
                                                   codebook_size=codebook_size, quantizer_version=quantizer_version,
                                                   catalog_version="c", serving_dtype=serving_dtype, **extra))
    return export_merged(folder / "ckpt", folder / "export")

"""`glide bench e2e`: a session start produced to Kafka -> its candidates readable by a ranker.

A fresh embedded stack (tansu broker, SQLite Feast) in a throwaway folder holds a 400-episode
catalog with 4 x 256 SIDs and users with their features online. Per model (``tiny`` and
``smollm2`` by default) a merged GLIDE export (soft-prompt variant, untrained SID rows: latency does
not depend on training) is served by `glide serve` as a child process, exactly as deployed. After one
warm-up session, sessions are produced one at a time, each for a user with nothing cached; the clock
runs from just before the produce until CandidateClient.get (the ranker's read path, `glide
candidates`) returns that user's sets for both modes. Sequential on purpose: this is latency, not
throughput, so no session queues behind another.

Each model runs once per serving dtype (``--dtype``; an export's ``serving_dtype``: float32, and
bfloat16, which CPUs with AMX or AVX512-BF16 run several times faster); a bfloat16 run is labelled
``<model> bf16``. ``p50_ms``, ``p99_ms``, ``n``, ``model`` describe the first run; ``models`` holds
every run's.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

from benchmarks import generate_setup as setup
from glide_model.serving.rules import MODES

REPO = Path(__file__).resolve().parents[1]
EPISODES, SHOWS = 400, 20
POLL_S = 0.002  # between two reads of the cache while waiting for a session's sets


@dataclass
class E2EConfig:
    models: tuple[str, ...] = ("tiny", "smollm2")
    dtypes: tuple[str, ...] = ("float32", "bfloat16")  # serving dtypes each model is exported with
    sessions: dict[str, int] = field(default_factory=lambda: {"tiny": 30, "smollm2": 15})  # per model; others: 15
    timeout_s: float = 120.0  # for one session's candidates
    start_timeout_s: float = 300.0  # for the worker's first candidates (model load, Feast import, group join)
    data_dir: Path = Path(".glide")  # where the SmolLM2 folder is cached


@dataclass
class E2EResult:
    model: str
    p50_ms: float
    p99_ms: float
    n: int
    models: dict[str, dict]
    device: str
    load_avg_1m: float
    notes: list[str] = field(default_factory=list)


def _catalog(settings, users: list[str]) -> None:
    """Episodes with SIDs of the exports' quantizer, and every user's features online."""
    import pandas as pd

    from glide.catalog import CatalogDB
    from streams.feature_store import open_store, push

    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, setup.CODEBOOK, size=(EPISODES, setup.LEVELS)), axis=0)
    ids = [f"ee{i:04d}" for i in range(len(codes))]
    db = CatalogDB.from_settings(settings)
    db.migrate()
    db.upsert_shows([{"show_id": f"es{j}", "title": f"Show {j}", "locale": "en-US"} for j in range(SHOWS)])
    db.upsert_episodes(pd.DataFrame([{
        "episode_id": e, "show_id": f"es{i % SHOWS}", "title": f"Episode {i}", "description": f"About {i}",
        "locale": "en-US", "playable": True, "popularity": float(i), "published_at": pd.Timestamp("2026-01-01", tz="UTC"),
        "duration_s": 1800, "topic": "news"} for i, e in enumerate(ids)]))
    db.register_quantizer(setup.QUANTIZER, "bench", "/nonexistent", setup.LEVELS, setup.CODEBOOK)
    db.save_sid_assignments(setup.QUANTIZER, {e: tuple(int(x) for x in c) for e, c in zip(ids, codes)})
    db.close()
    now = pd.Timestamp.now(tz="UTC")
    history = [[ids[j] for j in rng.choice(len(ids), 20, replace=False)] for _ in users]
    store = open_store(settings)
    push(store, "user_context", pd.DataFrame({"user_id": users, "locale": "en-US", "country": "US",
                                              "affinity_topics": [["news"]] * len(users), "event_timestamp": now}))
    push(store, "user_recent_sids", pd.DataFrame({
        "user_id": users, "recent_episode_ids": history,
        "recent_sid_codes": [[int(x) for e in h for x in codes[ids.index(e)]] for h in history],
        "sid_levels": setup.LEVELS, "event_timestamp": now}))


def _serve(settings, project: str, export: Path, log: Path) -> subprocess.Popen:
    """`glide serve --model export` as deployed, in its own session (only it is ever stopped)."""
    env = dict(os.environ, GLIDE_DATA_DIR=str(settings.data_dir), GLIDE_PROFILE="embedded",
               GLIDE_FEAST_PROJECT=project, GLIDE_STREAMS_METRICS_PORT="0", GLIDE_STREAMS_LIVE_SIDS="false",
               GLIDE_STREAMS_SESSION_TIMEOUT_S="6", GLIDE_CANDIDATES_SESSION_MODES="all", PYTHONUNBUFFERED="1")
    return subprocess.Popen([sys.executable, "-m", "glide_app.cli", "serve", "--model", str(export)], cwd=REPO,
                            env=env, stdout=open(log, "ab"), stderr=subprocess.STDOUT, start_new_session=True)


def _stop(proc: subprocess.Popen) -> None:
    if proc.poll() is None:
        proc.send_signal(signal.SIGTERM)
        try:
            proc.wait(30)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


class Sessions:
    """Produces session starts and times them until the ranker can read their candidates."""

    def __init__(self, settings, client, worker: subprocess.Popen, log: Path):
        from kafka import KafkaProducer

        self.producer = KafkaProducer(bootstrap_servers=settings.bootstrap_servers(), acks="all", linger_ms=0)
        self.client, self.worker, self.log = client, worker, log

    def one(self, user_id: str, timeout_s: float) -> float:
        """Seconds from just before the produce to the user's sets for every mode being readable."""
        from streams.schemas import SESSION_TOPIC

        event = {"event_id": f"e2e-{uuid.uuid4().hex[:12]}", "user_id": user_id, "ts": int(time.time() * 1000),
                 "surface": "home", "context": {}}
        t0 = time.perf_counter()
        self.producer.send(SESSION_TOPIC, key=user_id.encode(), value=json.dumps(event).encode())
        self.producer.flush()
        while True:
            got = self.client.get([user_id])[user_id]
            if len(got.sets) == len(MODES):
                return time.perf_counter() - t0
            if self.worker.poll() is not None:
                raise click.ClickException(f"glide serve exited with {self.worker.returncode}; see {self.log}")
            if time.perf_counter() - t0 > timeout_s:
                raise click.ClickException(f"no candidates for {user_id} within {timeout_s:.0f} s; see {self.log}")
            time.sleep(POLL_S)

    def close(self) -> None:
        self.producer.close()


def run_label(model: str, dtype: str) -> str:
    return model if dtype == "float32" else f"{model} bf16" if dtype == "bfloat16" else f"{model} {dtype}"


def _measure_model(model: str, dtype: str, n: int, settings, project: str, users: list[str], tmp: Path, client,
                   cfg: E2EConfig, progress) -> dict:
    label = run_label(model, dtype)
    progress(f"{label}: building a merged export")
    folder = tmp / f"model-{model.replace('/', '_')}-{dtype}"
    export = setup.build_export(model, cfg.data_dir, folder, variant="glide", serving_dtype=dtype)
    log = tmp / f"serve-{len(list(tmp.glob('serve-*.log')))}.log"
    t_start = time.perf_counter()
    worker = _serve(settings, project, export, log)
    sessions = Sessions(settings, client, worker, log)
    try:
        progress(f"{label}: starting glide serve (first candidates: model load, Feast, group join)")
        sessions.one(users.pop(), cfg.start_timeout_s)
        start_s = time.perf_counter() - t_start
        sessions.one(users.pop(), cfg.timeout_s)  # warm: the first decode after start is slower
        ms = []
        for i in range(n):
            progress(f"{label}: session {i + 1}/{n}" + (f", last {ms[-1]:.0f} ms" if ms else ""))
            ms.append(1000 * sessions.one(users.pop(), cfg.timeout_s))
    finally:
        sessions.close()
        _stop(worker)
    return {"model": label, "serving_dtype": dtype, "n": len(ms), "p50_ms": round(float(np.percentile(ms, 50)), 1),
            "p99_ms": round(float(np.percentile(ms, 99)), 1), "mean_ms": round(float(np.mean(ms)), 1),
            "max_ms": round(float(np.max(ms)), 1), "serve_start_s": round(start_s, 1),
            "load_avg_1m": os.getloadavg()[0]}


def run_e2e_bench(cfg: E2EConfig, progress=lambda msg: None) -> E2EResult:
    from benchmarks.ingest import _exported_feast_project
    from glide.config import load_settings
    from infra import stack
    from streams.candidate_client import CandidateClient

    tmp = Path(tempfile.mkdtemp(prefix="glide-bench-e2e-"))
    project = f"e2e{uuid.uuid4().hex[:8]}"
    settings = load_settings(data_dir=str(tmp / "data"), profile="embedded", feast_project=project)
    counts = {m: cfg.sessions.get(m, 15) for m in cfg.models}
    users = [f"eu{i:05d}" for i in range(len(cfg.dtypes) * (sum(counts.values()) + 2 * len(cfg.models)))]
    runs: dict[str, dict] = {}
    try:
        with _exported_feast_project(project):
            progress("starting the broker and applying Feast")
            stack.up(settings)
            progress(f"catalog of {EPISODES} episodes, {len(users)} users online")
            _catalog(settings, users)
            client = CandidateClient(settings)
            for model in cfg.models:
                for dtype in cfg.dtypes:
                    runs[run_label(model, dtype)] = _measure_model(model, dtype, counts[model], settings, project,
                                                                   users, tmp, client, cfg, progress)
    finally:
        stack.down(settings)
        shutil.rmtree(tmp, ignore_errors=True)
    first = runs[run_label(cfg.models[0], cfg.dtypes[0])]
    return E2EResult(model=first["model"], p50_ms=first["p50_ms"], p99_ms=first["p99_ms"], n=first["n"],
                     models=runs, device=setup.device_name(), load_avg_1m=os.getloadavg()[0])


def print_table(r: E2EResult) -> None:
    from rich.table import Table

    table = Table(title=f"glide bench e2e: session start produced -> both modes' candidates readable through "
                        f"CandidateClient ({r.device}, embedded stack)")
    for col in ("model", "sessions", "p50 ms", "p99 ms", "mean ms", "max ms", "serve start s", "load"):
        table.add_column(col, justify="left" if col == "model" else "right")
    for run in r.models.values():
        table.add_row(run["model"], str(run["n"]), f"{run['p50_ms']:,.0f}", f"{run['p99_ms']:,.0f}",
                      f"{run['mean_ms']:,.0f}", f"{run['max_ms']:,.0f}", f"{run['serve_start_s']:.0f}",
                      f"{run['load_avg_1m']:.1f}")
    setup.table_console().print(table)


@click.command("e2e")
@click.option("--quick", is_flag=True, help="Fewer sessions (tiny 15, SmolLM2 8); about 3 minutes here.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on the last stdout line.")
@click.option("--model", "models", multiple=True, help="tiny | smollm2 | HF folder; repeat for several "
              "(default: tiny and smollm2; the first is the top-level figure).")
@click.option("--dtype", "dtypes", multiple=True, type=click.Choice(["float32", "bfloat16"]),
              help="Serving dtype(s) of each model's export; repeat for several (default both, float32 first).")
@click.option("--sessions", type=click.IntRange(min=1), default=None, help="Timed sessions per model.")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".glide"), show_default=True,
              help="Where the SmolLM2 folder is cached.")
def e2e(quick: bool, as_json: bool, models: tuple[str, ...], dtypes: tuple[str, ...], sessions: int | None,
        data_dir: Path) -> None:
    """Session start -> candidates readable by a ranker, through `glide serve` on the embedded stack."""
    models = models or ("tiny", "smollm2")
    default = {"tiny": 15, "smollm2": 8} if quick else {"tiny": 30, "smollm2": 15}
    counts = {m: sessions or default.get(m, 8 if quick else 15) for m in models}
    cfg = E2EConfig(models=models, dtypes=dtypes or ("float32", "bfloat16"), sessions=counts, data_dir=data_dir)
    with setup.progress_reporter("bench e2e") as progress:
        result = run_e2e_bench(cfg, progress=progress)
    print_table(result)
    if as_json:
        click.echo(json.dumps(asdict(result)))

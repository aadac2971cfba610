"""`glide serve` (the session-start worker) and `glide recommend` (generate now, for people)."""

from __future__ import annotations

import asyncio
import signal
import time
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from glide.config import load_settings


@click.command()
@click.option("--model", "model_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="Merged GLIDE export (default: the registry's promoted model).")
@click.option("--backend", type=click.Choice(["hf", "vllm"]), default="hf", show_default=True)
@click.option("--beams", type=int, default=30, show_default=True)
@click.option("--max-batch", type=int, default=16, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--metrics-port", type=int, default=None,
              help="Prometheus port on 127.0.0.1 (GLIDE_WORKER_METRICS_PORT, default 9465; 0 = any free port, "
                   "-1 = off).")
@click.option("--threads", type=int, default=None,
              help="Decoder intra-op threads (GLIDE_SERVE_THREADS; default one less than the usable cores).")
def serve(model_dir: Path | None, backend: str, beams: int, max_batch: int, data_dir: str | None,
          metrics_port: int | None, threads: int | None) -> None:
    """Consume session-start events and cache GLIDE candidates in Feast.

    Without --model: the registry's promoted model, swapped for a newly promoted one without a restart
    (polled every GLIDE_WORKER_MODEL_POLL_S); collision popularity is recounted from the event log every
    GLIDE_WORKER_POPULARITY_REFRESH_S. Replicas split session starts and each sees every catalog update."""
    from streams import logs, worker_metrics
    from streams.candidate_worker import run_candidate_worker
    from streams.config import load_worker_settings
    from streams.serving import build_service
    from streams.service_lifecycle import ServiceLifecycle

    logs.configure(json=True)
    settings = load_settings(data_dir=data_dir)
    # a bad value fails here, not after loading the model
    worker = load_worker_settings(**({} if metrics_port is None else {"metrics_port": metrics_port}))
    worker_metrics.check_available(worker.metrics_host, worker.metrics_port)  # before minutes of model loading
    service = build_service(settings, model_dir, backend, beams, threads=threads)
    worker_metrics.set_model(service)
    worker_metrics.serve(worker.metrics_host, worker.metrics_port)  # logs the bound URL
    # A pinned --model is never swapped; the registry's promoted one is watched.
    load = None if model_dir else (lambda: build_service(settings, None, backend, beams, threads=threads))
    lifecycle = ServiceLifecycle.for_registry(settings, worker, load)
    handed = [service]  # the worker then holds the only reference: a swap frees the old model
    del service

    async def main() -> None:
        stop = asyncio.Event()
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGINT, signal.SIGTERM):
            loop.add_signal_handler(sig, stop.set)
        await run_candidate_worker(settings, handed.pop(), stop, max_batch=max_batch, lifecycle=lifecycle,
                                   catalog_replay_s=worker.catalog_replay_s)

    asyncio.run(main())


@click.command()
@click.argument("user_ids", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(["familiar", "unfamiliar"]), default=None,
              help="Generate only this mode (default: both); the other mode's cached set is left as it is.")
@click.option("--model", "model_dir", type=click.Path(path_type=Path, file_okay=False), default=None)
@click.option("--top", type=int, default=10, show_default=True)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def recommend(user_ids: tuple[str, ...], mode: str | None, model_dir: Path | None, top: int,
              data_dir: str | None) -> None:
    """Generate candidates for USER_IDS now (the worker's path, ignoring the cache), write them to the
    Feast cache (replacing those users' cached sets of the generated modes) and show them with titles.

    For people trying the model. Rankers read the cache instead, without generating: `glide
    candidates USER...` or streams.candidate_client.CandidateClient."""
    from glide.catalog import CatalogDB
    from streams.schemas import SessionStart
    from streams.serving import build_service

    settings = load_settings(data_dir=data_dir)
    service = build_service(settings, model_dir)
    now = int(time.time() * 1000)
    sessions = [SessionStart(f"cli-{u}-{now}", u, now, "home", {}) for u in user_ids]
    modes = (mode,) if mode else ("familiar", "unfamiliar")
    results = [c for sets in service.refresh(sessions, modes=modes, force=True) for c in sets]
    service.publish(results)
    db = CatalogDB.from_settings(settings)
    console = Console()
    for res in results:
        table = Table(title=f"{res.user_id}: {res.mode} candidates ({res.latency_ms:.0f} ms, model {res.model_version})")
        for col in ("#", "episode", "show", "title", "score"):
            table.add_column(col)
        for rank, (eid, score) in enumerate(zip(res.episode_ids[:top], res.scores[:top]), start=1):
            ep = db.get_episode(eid) or {}
            table.add_row(str(rank), eid, str(ep.get("show_id", "")), str(ep.get("title", ""))[:60], f"{score:.2f}")
        console.print(table)

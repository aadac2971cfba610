"""`glide replay`: stream a generated world into Kafka in event-time order."""

from __future__ import annotations

from pathlib import Path

import click
from rich.console import Console


@click.command()
@click.option("--world", "world_dir", type=click.Path(path_type=Path, file_okay=False), default=None,
              help="World folder [default: <data_dir>/world, as written by `glide world generate`].")
@click.option("--rate", type=float, default=0.0, show_default=True, help="Records per second; 0 = as fast as possible.")
@click.option("--limit", type=int, default=None, help="Replay only the first N listens (and what precedes them).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None, help="GLIDE_DATA_DIR (finds the broker).")
@click.option("--sessions/--no-sessions", default=True, show_default=True, help="Send session-start events.")
@click.option("--catalog/--no-catalog", default=True, show_default=True, help="Send catalog-updates as episodes get published.")
@click.option("--profiles/--no-profiles", default=True, show_default=True,
              help="First write the world's users to the `user_context` view (the listen processor "
                   "dead-letters listens of users without a profile).")
@click.option("--backfill", is_flag=True,
              help="Write the world's history straight into the catalog DB, the profiles and the offline "
                   "event log, as the streams would have (no broker needed): the bootstrap of `glide train`.")
@click.option("--config", "job_config", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="With --backfill and no world in the folder: generate the world this train config's "
                   "`world` section describes.")
def replay(world_dir: Path | None, rate: float, limit: int | None, data_dir: str | None, sessions: bool,
           catalog: bool, profiles: bool, backfill: bool, job_config: Path | None) -> None:
    """Replay a world's catalog updates, session starts and listens into Kafka."""
    from glide.config import load_settings
    from glide.world.generator import World
    from streams.replay import replay_world

    if rate < 0:
        raise click.BadParameter("must be >= 0 (0 = as fast as possible)", param_hint="--rate")
    if limit is not None and limit < 1:
        raise click.BadParameter("must be >= 1", param_hint="--limit")
    settings = load_settings(data_dir=data_dir)
    bootstrap = None
    if not backfill:  # fail fast (one line, bounded time) before loading the world
        from infra.stack import check_kafka

        bootstrap = settings.bootstrap_servers()
        check_kafka(bootstrap)
    world_dir = world_dir or settings.data_dir / "world"
    if backfill and job_config is not None and not (world_dir / "world.json").exists():
        from glide_app.jobs.job_inputs import saved_or_new_world
        from glide_app.jobs.train import load_job_config

        saved_or_new_world(world_dir, load_job_config(job_config).world)
    try:
        world = World.load(world_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    console = Console(stderr=True)
    if backfill:
        from glide.catalog import CatalogDB
        from glide_app.jobs.job_inputs import backfill_world

        db = CatalogDB.from_settings(settings)
        db.migrate()
        n = backfill_world(settings, world, db)
        console.print(f"backfilled {n:,} listens into the event log, {len(world.episodes):,} episodes into the catalog DB")
        return
    if profiles:
        from streams.replay import push_profiles

        with console.status("writing user profiles to the online store..."):
            n = push_profiles(settings, world.users, world.start)
        console.print(f"{n:,} user profiles written to user_context")
    stats = replay_world(world, bootstrap, rate=rate, limit=limit, sessions=sessions, catalog=catalog, progress=True)
    console.print(f"replayed {stats.listens:,} listens, {stats.sessions:,} session starts, {stats.catalog:,} "
                  f"catalog updates, {stats.watermarks} watermarks in {stats.seconds:.1f}s "
                  f"({stats.rate:,.0f} records/s) to {bootstrap}")

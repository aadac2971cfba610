"""`glide simulate ab [--quick] [--json]`: a simulated online A/B test of GLIDE through the real
pipeline (glide_app/jobs/ab/). The table goes to stdout; with --json the last stdout line is the
result as one JSON object (days, users_per_arm, lift_* and their _ci, aa_lift_ci, glide_share, ...).

It builds its own stack and world under <GLIDE_DATA_DIR>/ab (the demo's data is left alone), trains a
model on the replayed history with --config, runs the experiment and takes the stack down.
"""

from __future__ import annotations

import time
from pathlib import Path

import click
import orjson
from rich.console import Console

from glide.config import load_settings
from glide_app.jobs.ab.config import ABConfig


@click.group()
def simulate() -> None:
    """Simulations on the synthetic world through the real pipeline."""


@simulate.command("ab")
@click.option("--quick", is_flag=True, help="1,000 listeners, 7 experiment days: minutes with the demo's tiny model on a 2-core CPU.")
@click.option("--users", type=int, default=None, help="Listeners in the world (all take part).")
@click.option("--days", type=int, default=None, help="Experiment days.")
@click.option("--history-days", type=int, default=None, help="Days replayed (and trained on) before day 1.")
@click.option("--slots-per-day", type=int, default=None, help="Serving rounds per day (divides 24).")
@click.option("--seed", type=int, default=None, help="World and listener seed.")
@click.option("--salt", default=None, help="Assignment salt: another salt is another random split.")
@click.option("--config", "train_config", type=click.Path(path_type=Path, dir_okay=False, exists=True), default=None,
              help="Train config of the GLIDE model (default configs/demo.yaml; configs/train_smollm2.yaml for SmolLM2).")
@click.option("--threads", type=int, default=None, help="Decoder threads (default GLIDE_SERVE_THREADS / cores - 1).")
@click.option("--data-dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Where the experiment's stack lives (default <GLIDE_DATA_DIR>/ab; wiped at start).")
@click.option("--aa", is_flag=True, help="An A/A through the whole pipeline: treatment is served exactly as control.")
@click.option("--json", "as_json", is_flag=True, help="End with the result as one JSON line.")
def ab(quick: bool, users, days, history_days, slots_per_day, seed, salt, train_config, threads, data_dir,
       aa: bool, as_json: bool) -> None:
    """Treatment = control's sources + GLIDE's cached candidates, one shared ranker; lifts with CIs."""
    from glide_app.jobs.ab.run import run_ab

    given = {"users": users, "days": days, "history_days": history_days, "slots_per_day": slots_per_day,
             "seed": seed, "salt": salt, "train_config": train_config, "threads": threads,
             "glide_in_treatment": False if aa else None}
    given = {k: v for k, v in given.items() if v is not None}
    try:
        cfg = ABConfig.quick(**given) if quick else ABConfig(**given)
    except (TypeError, ValueError) as exc:
        raise click.UsageError(str(exc)) from None
    base = load_settings()
    settings = load_settings(data_dir=str(data_dir or base.data_dir / "ab"))
    console = Console(stderr=as_json)
    started = time.perf_counter()
    result = run_ab(settings, cfg, console)
    result["seconds"] = round(time.perf_counter() - started, 1)
    console.print(f"{result['seconds']:.0f} s; daily-lift plot {result['plot']}")
    if as_json:
        click.echo(orjson.dumps(result).decode())

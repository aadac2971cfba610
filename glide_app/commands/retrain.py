"""`glide retrain --config FILE [--min-gain X] [--every HOURS] [--json]`."""

from __future__ import annotations

import json
import time
from pathlib import Path

import click
from rich.console import Console

from glide.config import load_settings


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML/JSON train config (see configs/); defaults when omitted.")
@click.option("--min-gain", type=float, default=0.0, show_default=True,
              help="Recall@k the challenger must add over popularity and the incumbent to be promoted.")
@click.option("--every", "every_hours", type=float, default=None,
              help="Repeat every HOURS (a long-lived loop); default: one pass.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print each pass's record as JSON on its last line.")
def retrain(config_path: Path | None, min_gain: float, every_hours: float | None, data_dir: str | None,
            as_json: bool) -> None:
    """Retrain on the latest data; promote the new model only if it beats popularity and the promoted one."""
    from glide_app.jobs.retrain import run_retrain_job
    from glide_app.jobs.train import load_job_config

    if every_hours is not None and every_hours <= 0:
        raise click.BadParameter("must be > 0 hours", param_hint="--every")
    settings = load_settings(data_dir=data_dir)
    cfg = load_job_config(config_path)
    console = Console(stderr=as_json)
    while True:
        try:
            record = run_retrain_job(settings, cfg, console, min_gain)
        except Exception as exc:  # a failed pass (recorded in job_runs) must not end the schedule
            if every_hours is None:
                raise
            console.print(f"[red]retrain pass failed[/]: {exc!r}; the promoted model is unchanged")
        else:
            if as_json:
                click.echo(json.dumps(record, default=str))
            if every_hours is None:
                return
        console.print(f"next pass in {every_hours:g} h")
        time.sleep(every_hours * 3600)

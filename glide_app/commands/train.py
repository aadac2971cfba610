"""`glide train --config FILE`."""

from __future__ import annotations

import json
from pathlib import Path

import click
from rich.console import Console

from glide.config import load_settings


@click.command()
@click.option("--config", "config_path", type=click.Path(path_type=Path, dir_okay=False), default=None,
              help="YAML/JSON train config (see configs/); defaults when omitted.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the run record as JSON on the last line.")
def train(config_path: Path | None, data_dir: str | None, as_json: bool) -> None:
    """Ground and instruction-tune GLIDE from the feature store; evaluate; register the model."""
    from glide_app.jobs.train import load_job_config, run_train_job

    settings = load_settings(data_dir=data_dir)
    console = Console(stderr=as_json)
    record = run_train_job(settings, load_job_config(config_path), console)
    k = next(key for key in record if key.startswith("glide_recall@")).split("@")[1]
    console.print(f"[bold green]done[/] {record['run']} in {record['seconds']} s: GLIDE recall@{k} "
                  f"{record[f'glide_recall@{k}']:.4f} vs popularity {record[f'popularity_recall@{k}']:.4f}; "
                  f"export {record['export']}")
    if as_json:
        click.echo(json.dumps(record, default=str))

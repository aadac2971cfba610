"""`glide evaluate [--model VERSION] [--max-examples N] [--json]`."""

from __future__ import annotations

import json

import click
from rich.console import Console

from glide.config import load_settings


@click.command()
@click.option("--model", "version", default=None, help="Registry version; default: the promoted model, else the newest.")
@click.option("--max-examples", type=int, default=None,
              help="Held-out listens to score (default: the train config's window.max_val_examples).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation record as JSON on the last line.")
def evaluate(version: str | None, max_examples: int | None, data_dir: str | None, as_json: bool) -> None:
    """Score a registered GLIDE model against popularity, CF and topic x popularity on held-out listens."""
    from glide_app.jobs.evaluate import run_evaluate_job

    settings = load_settings(data_dir=data_dir)
    console = Console(stderr=as_json)
    record = run_evaluate_job(settings, version, max_examples, console)
    k = next(key for key in record if key.startswith("glide_recall@")).split("@")[1]
    gap = record["glide_minus_popularity"]
    console.print(f"[bold green]done[/] {record['model']} on {record['examples']} listens: GLIDE recall@{k} "
                  f"{record[f'glide_recall@{k}']:.4f} vs popularity {record[f'popularity_recall@{k}']:.4f} "
                  f"(diff {gap['diff']:+.3f}, 95% CI {gap['lo']:+.3f} .. {gap['hi']:+.3f})")
    if as_json:
        click.echo(json.dumps(record, default=str))

"""`glide evaluate [--model VERSION] [--max-examples N] [--dtype D] [--json]`: a registered GLIDE model on held-out listens;
`glide evaluate --source DIR|scientific [--sids FILE] [--quick] [--systems a,b] [--out DIR] [--json]`: every
sequential system on an interaction dataset (glide_app/jobs/evaluate_source.py)."""

from __future__ import annotations

import json

import click
from rich.console import Console

from glide.config import load_settings


@click.command()
@click.option("--model", "version", default=None, help="Registry version; default: the promoted model, else the newest.")
@click.option("--max-examples", type=int, default=None,
              help="Held-out listens to score (default: the train config's window.max_val_examples).")
@click.option("--dtype", type=click.Choice(["float32", "bfloat16"]), default=None,
              help="Score the model as if served in this precision (default: its export's serving_dtype): "
                   "check bfloat16 before setting model.serving_dtype.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the evaluation record as JSON on the last line.")
@click.option("--source", default=None,
              help="An interaction dataset folder (<name>.inter.json [+ <name>.item.json]) or 'scientific': "
                   "evaluate the sequential systems on it instead of a registered model.")
@click.option("--sids", "sids_file", type=click.Path(dir_okay=False), default=None,
              help="With --source: a SID table {item_id: ['<a_1>', '<b_2>', ...]} (default: computed from item text).")
@click.option("--quick", is_flag=True,
              help="With --source: short schedules, a test-user sample on datasets over 10,000 users, and for the "
                   "LLM systems a training-user subset and a 100-user test sample (glide_model/sequential/llm_config.py).")
@click.option("--systems", default=None,
              help="With --source: comma-separated systems (default: every registered one, the GLIDE LLM systems "
                   "included; the quantizer ablation, tiger_/sid_only_ + rkmeans|rqvae|rlfq, runs only when named).")
@click.option("--out", "out_dir", type=click.Path(file_okay=False), default=None,
              help="With --source: results, checkpoints and report (default: under the data dir).")
@click.option("--seed", type=int, default=0, show_default=True, help="With --source: split sample and training seed.")
def evaluate(version: str | None, max_examples: int | None, dtype: str | None, data_dir: str | None, as_json: bool,
             source: str | None, sids_file: str | None, quick: bool, systems: str | None, out_dir: str | None,
             seed: int) -> None:
    """Score a registered GLIDE model against popularity, CF and topic x popularity on held-out listens,
    or (with --source) popularity, item-kNN, SASRec, TIGER and any registered system on a dataset."""
    settings = load_settings(data_dir=data_dir)
    console = Console(stderr=as_json)
    if source is not None:
        if version is not None or max_examples is not None or dtype is not None:
            raise click.UsageError("--model, --max-examples and --dtype score a registered model; they do not go "
                                   "with --source")
        _evaluate_source(settings, source, sids_file, quick, systems, out_dir, seed, console, as_json)
        return
    if any(v for v in (sids_file, quick, systems, out_dir)):
        raise click.UsageError("--sids, --quick, --systems and --out need --source")
    from glide_app.jobs.evaluate import run_evaluate_job

    record = run_evaluate_job(settings, version, max_examples, console, dtype=dtype)
    k = next(key for key in record if key.startswith("glide_recall@")).split("@")[1]
    gap = record["glide_minus_popularity"]
    console.print(f"[bold green]done[/] {record['model']} ({record['serving_dtype']}) on {record['examples']} "
                  f"listens: GLIDE recall@{k} "
                  f"{record[f'glide_recall@{k}']:.4f} vs popularity {record[f'popularity_recall@{k}']:.4f} "
                  f"(diff {gap['diff']:+.3f}, 95% CI {gap['lo']:+.3f} .. {gap['hi']:+.3f})")
    if as_json:
        click.echo(json.dumps(record, default=str))


def _evaluate_source(settings, source: str, sids_file: str | None, quick: bool, systems: str | None,
                     out_dir: str | None, seed: int, console: Console, as_json: bool) -> None:
    from glide_app.jobs.evaluate_source import run_evaluate_source_job
    from glide_model.sequential.errors import DatasetError
    from glide_model.sequential.systems import SYSTEMS

    names = [s.strip() for s in systems.split(",") if s.strip()] if systems else None
    unknown = [n for n in names or [] if n not in SYSTEMS]
    if unknown:
        raise click.UsageError(f"unknown system(s) {', '.join(unknown)}; choose from {', '.join(SYSTEMS)}")
    try:
        result = run_evaluate_source_job(settings, source, sids_file=sids_file, quick=quick, systems=names,
                                         out_dir=out_dir, seed=seed, console=console)
    except DatasetError as exc:
        raise click.ClickException(str(exc)) from None
    if as_json:
        click.echo(json.dumps(result["summary"]))

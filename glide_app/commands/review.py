"""`glide review export --out DIR` and `glide review import FILE --key KEY`: the human-review loop
(glide_app/jobs/review.py). The key file (which list is which system, the judge's scores) is
written beside DIR, never inside it: send DIR to annotators, keep the key."""

from __future__ import annotations

import json
import math
from pathlib import Path

import click
from rich.console import Console
from rich.table import Table

from glide.config import load_settings
from glide.secrets import mask_secrets


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def _clean(value):
    """NaN -> None, so the JSON line is strict JSON."""
    if isinstance(value, float) and math.isnan(value):
        return None
    if isinstance(value, dict):
        return {k: _clean(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [_clean(v) for v in value]
    return value


@click.group()
def review() -> None:
    """Human review of recommendation lists: export a blinded packet, import the labels."""


@review.command("export")
@click.option("--out", "out_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="Annotators' folder [default: <data_dir>/review/packet].")
@click.option("--key", "key_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="Key file [default: <out>.key.json beside the folder].")
@click.option("--users", type=int, default=10, show_default=True)
@click.option("-k", "k", type=int, default=5, show_default=True, help="List length per system.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--quick", is_flag=True, help="A small fresh world instead of <data_dir>/world.")
@click.option("--world", "world_dir", type=click.Path(file_okay=False), default=None)
@click.option("--glide/--baselines", "with_glide", default=None,
              help="GLIDE (the registry's model) vs --baseline, or two baselines [default: GLIDE when the registry "
                   "holds a model and neither --quick nor --world is given].")
@click.option("--glide-version", default=None, help="The GLIDE model to review [default: the promoted one, else the newest].")
@click.option("--baseline", type=click.Choice(["popularity", "cf", "topic_popularity"]), default="popularity",
              show_default=True, help="What GLIDE's lists are compared with.")
@click.option("--no-judge", is_flag=True, help="Do not score the items with the judge (import then reports no agreement).")
@click.option("--backend", type=click.Choice(["hf", "openai"]), default=None)
@click.option("--model", default=None, help="Judge model (see `glide judge --help`).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True)
def export_cmd(out_dir: Path | None, key_path: Path | None, users: int, k: int, seed: int, quick: bool,
               world_dir: str | None, with_glide: bool | None, glide_version: str | None, baseline: str,
               no_judge: bool, backend: str | None, model: str | None, data_dir: str | None,
               as_json: bool) -> None:
    """Write review.csv + review.html for annotators and the key file for scoring."""
    from glide_app.jobs.review import ReviewExportConfig, export_review
    from glide_model.judge.config import load_judge_settings

    settings = load_settings(data_dir=data_dir)
    out_dir = out_dir or settings.data_dir / "review" / "packet"
    js = None if no_judge else load_judge_settings(backend=backend, model=model)
    cfg = ReviewExportConfig(users=users, k=k, seed=seed, judge=not no_judge, glide=with_glide,
                             version=glide_version, baseline=baseline)
    try:
        summary = export_review(settings, out_dir, key_path, js, cfg, quick=quick, world_dir=world_dir)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(mask_secrets(exc)) from None
    out = Console()
    out.print(f"wrote {summary['items']} items for {summary['users']} listeners: {summary['csv']}, {summary['html']}", highlight=False)
    out.print(f"key (keep it from annotators): {summary['key']}", highlight=False)
    out.print(f"systems: {' vs '.join(summary['systems'])}: {summary['systems_note']}", highlight=False)
    if as_json:
        click.echo(json.dumps(_clean(summary)))


@review.command("import")
@click.argument("labels_csv", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--key", "key_path", type=click.Path(exists=True, dir_okay=False, path_type=Path), default=None,
              help="Key file [default: <folder of FILE>.key.json beside it].")
@click.option("--json", "as_json", is_flag=True)
def import_cmd(labels_csv: Path, key_path: Path | None, as_json: bool) -> None:
    """Judge-human agreement (Cohen's kappa, pairwise) and the system reviewers prefer."""
    from glide_app.jobs.review import default_key_path, import_review

    key_path = key_path or default_key_path(labels_csv.resolve().parent)
    if not key_path.exists():
        raise click.ClickException(f"key file {key_path} not found: pass --key (the file `glide review export` wrote)")
    try:
        record = import_review(labels_csv, key_path)
    except ValueError as exc:
        raise click.ClickException(str(exc)) from None
    agreement, pref = record["agreement"], record["preference"]
    table = Table(title=f"review: {record['labelled']}/{record['items']} items labelled")
    table.add_column("measure")
    table.add_column("value")
    table.add_row("judge backend", str(record["judge_backend"]))
    table.add_row("judge-human kappa", _fmt(agreement["kappa"]))
    table.add_row("judge-human kappa (quadratic)", _fmt(agreement["kappa_quadratic"]))
    table.add_row(f"judge-human pairwise agreement ({agreement['n_pairs']} pairs)", _fmt(agreement["pairwise_agreement"]))
    for system, mean in pref["mean_label"].items():
        table.add_row(f"mean label: {system}", _fmt(mean))
        table.add_row(f"preferred by (share of {pref['n_users']} listeners): {system}", _fmt(pref["preferred_share"][system]))
    table.add_row("reviewers prefer", str(pref["preferred"]))
    Console().print(table)
    if as_json:
        click.echo(json.dumps(_clean(record)))

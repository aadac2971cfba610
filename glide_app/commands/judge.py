"""`glide judge [--quick] [--backend hf|openai] [--model M] [--json]`: the profile-aware LLM judge
calibrated against the synthetic world's ground truth (glide_app/jobs/judge.py).

Backend settings come from GLIDE_JUDGE_* variables (glide_model/judge/config.py); the options
override them. The API key is read from GLIDE_JUDGE_API_KEY only, never from an option (it would
show in the process list), and never printed. The table goes to stdout; with --json the last
stdout line is the record as one JSON object.
"""

from __future__ import annotations

import json
import math

import click
from rich.console import Console
from rich.table import Table

from glide.config import load_settings
from glide.secrets import mask_secrets


def _fmt(value) -> str:
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{value:.3f}" if isinstance(value, float) else str(value)


def judge_table(record: dict) -> Table:
    table = Table(title=f"judge vs ground truth ({record['backend']})")
    for col in ("scorer", "pairs", "pairwise agreement", "95% CI", "spearman", "AUC"):
        table.add_column(col)
    lo, hi = record["pairwise_agreement_ci"]
    table.add_row("judge: interest_aligned", str(record["n_pairs"]), _fmt(record["pairwise_agreement"]),
                  f"{_fmt(lo)} .. {_fmt(hi)}", _fmt(record["spearman"]), _fmt(record["auc"]))
    for field, value in record.get("fields", {}).items():
        if field != "interest_aligned":
            table.add_row(f"judge: {field}", "", _fmt(value), "", "", "")
    ref = record["reference_topic_share"]
    rlo, rhi = ref["pairwise_agreement_ci"]
    table.add_row("reference: profile topic share (no LLM)", str(record["n_pairs"]), _fmt(ref["pairwise_agreement"]),
                  f"{_fmt(rlo)} .. {_fmt(rhi)}", _fmt(ref["spearman"]), _fmt(ref["auc"]))
    return table


@click.command()
@click.option("--quick", is_flag=True, help="A small fresh world and ~24 users x 8 episodes, within ~15 min on a CPU.")
@click.option("--backend", type=click.Choice(["hf", "openai"]), default=None, help="[env GLIDE_JUDGE_BACKEND; default hf]")
@click.option("--model", default=None,
              help="hf: smollm2 | tiny | an HF folder; openai: the served model name [env GLIDE_JUDGE_MODEL].")
@click.option("--base-url", default=None, help="openai: the endpoint, e.g. http://127.0.0.1:8000/v1 [env GLIDE_JUDGE_BASE_URL].")
@click.option("--decoding", type=click.Choice(["constrained", "free"]), default=None,
              help="hf: schema-filled scores (default) or free generation parsed afterwards.")
@click.option("--users", type=int, default=None, help="Users to judge.")
@click.option("--per-user", type=int, default=None, help="Candidate episodes per user.")
@click.option("--max-seconds", type=float, default=None, help="Judging budget; stops taking new users after it.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--world", "world_dir", type=click.Path(file_okay=False), default=None,
              help="A world folder (default: <data_dir>/world if present, else a generated one; --quick: a small fresh one).")
@click.option("--no-cache", is_flag=True, help="Ask the backend even for pairs judged before.")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
@click.option("--json", "as_json", is_flag=True, help="Print the record as JSON on the last stdout line.")
def judge(quick: bool, backend: str | None, model: str | None, base_url: str | None, decoding: str | None,
          users: int | None, per_user: int | None, max_seconds: float | None, seed: int, world_dir: str | None,
          no_cache: bool, data_dir: str | None, as_json: bool) -> None:
    """Score world users' candidate episodes with the LLM judge and calibrate it against their true tastes."""
    from glide_app.jobs.judge import JudgeJobConfig, run_judge_job
    from glide_model.judge.config import load_judge_settings

    settings = load_settings(data_dir=data_dir)
    js = load_judge_settings(backend=backend, model=model, base_url=base_url, decoding=decoding)
    overrides = {k: v for k, v in dict(users=users, per_user=per_user, max_seconds=max_seconds).items() if v is not None}
    cfg = (JudgeJobConfig.quick if quick else JudgeJobConfig)(seed=seed, cache=not no_cache, **overrides)
    if cfg.users < 1 or cfg.per_user < 2:
        raise click.UsageError("--users must be >= 1 and --per-user >= 2 (pairs need two episodes)")
    err = Console(stderr=True)

    def progress(done: int, total: int) -> None:
        err.print(f"judged user {done}/{total}", highlight=False)

    try:
        record = run_judge_job(settings.data_dir, js, cfg, quick=quick, world_dir=world_dir, progress=progress)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(mask_secrets(exc)) from None
    out = Console(width=120)
    out.print(judge_table(record))
    stats = record["judge_stats"]
    rate = record["pairs_per_s"]
    out.print(f"{record['n_judged']} judged pairs over {record['n_users']} users; malformed {record['malformed']} "
              f"(retried {stats['retried']}, backend errors {stats['backend_errors']}); cached {stats['cached']}; "
              f"{_fmt(rate)} pairs/s; AUC label: {record['label']}", highlight=False)
    if as_json:
        from glide_app.commands.review import _clean

        click.echo(json.dumps(_clean(record), default=str))

"""`glide candidates USER...`: what a ranker sees, the candidate sets cached in Feast, read through
streams.candidate_client. Reads only; generating is the GLIDE worker's (or `glide recommend`'s)."""

from __future__ import annotations

import json

import click

from glide.config import load_settings


@click.command()
@click.argument("user_ids", nargs=-1, required=True)
@click.option("--mode", type=click.Choice(["familiar", "unfamiliar"]), default=None,
              help="Only this mode's set (default: both).")
@click.option("--json", "as_json", is_flag=True, help="One JSON object on the last stdout line, no table.")
@click.option("--max-age-s", type=click.FloatRange(min=0), default=None,
              help="Sets generated longer ago are reported as stale, not shown.")
@click.option("--top", type=int, default=10, show_default=True, help="Rows per table (JSON has every candidate).")
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def candidates(user_ids: tuple[str, ...], mode: str | None, as_json: bool, max_age_s: float | None, top: int,
               data_dir: str | None) -> None:
    """Show the candidates cached for USER_IDS, as rankers read them (Feast online store only)."""
    from streams.candidate_client import CandidateClient

    settings = load_settings(data_dir=data_dir)
    found = CandidateClient(settings).get(list(user_ids), mode=mode, max_age_s=max_age_s)
    if as_json:
        click.echo(json.dumps(_summary(found)))
        return
    _print_tables(settings, found, top)


def _summary(found: dict) -> dict:
    users = {u: {"sets": {m: c.as_dict() for m, c in got.sets.items()},
                 "stale": {m: round(age, 3) for m, age in got.stale.items()}, "missing": list(got.missing)}
             for u, got in found.items()}
    return {"users": users, "sets": sum(len(g.sets) for g in found.values()),
            "stale": sum(len(g.stale) for g in found.values()), "missing": sum(len(g.missing) for g in found.values())}


def _print_tables(settings, found: dict, top: int) -> None:
    from rich.console import Console
    from rich.table import Table

    from glide.catalog import CatalogDB

    db = CatalogDB.from_settings(settings)
    console = Console()
    for user_id, got in found.items():
        for mode, cached in got.sets.items():
            table = Table(title=f"{user_id}: {mode} candidates (model {cached.model_version}, quantizer "
                                f"{cached.quantizer_version}, surface {cached.surface or '-'}, "
                                f"{cached.age_s():.0f} s old)")
            for col in ("#", "episode", "show", "title", "score"):
                table.add_column(col)
            for rank, (eid, score) in enumerate(zip(cached.episode_ids[:top], cached.scores[:top]), start=1):
                ep = db.get_episode(eid) or {}
                table.add_row(str(rank), eid, str(ep.get("show_id", "")), str(ep.get("title", ""))[:60], f"{score:.2f}")
            console.print(table)
        for mode, age in got.stale.items():
            console.print(f"{user_id}: {mode} set is stale ({age:.0f} s old, over --max-age-s)")
        for mode in got.missing:
            console.print(f"{user_id}: no {mode} set cached (a session start through `glide serve`, or "
                          f"`glide recommend {user_id}`, generates one)")

"""`glide world ...`: generate a synthetic podcast world and summarise it."""

from __future__ import annotations

from dataclasses import replace
from pathlib import Path

import click
from rich.console import Console
from rich.progress import BarColumn, MofNCompleteColumn, Progress, TextColumn, TimeElapsedColumn
from rich.table import Table

from glide.world.catalog import Catalog
from glide.world.generator import World, WorldConfig, generate_world
from glide.world.stats import familiarity_shares


@click.group()
def world() -> None:
    """Synthetic podcast world: catalog, simulated listeners, sessions and listens."""


@world.command()
@click.option("--users", type=int, default=WorldConfig.users, show_default=True, help="Simulated listeners.")
@click.option("--days", type=int, default=WorldConfig.days, show_default=True, help="Length of the window.")
@click.option("--seed", type=int, default=WorldConfig.seed, show_default=True, help="Same seed, same files.")
@click.option("--out", type=click.Path(path_type=Path), default=None,
              help="Output folder [default: <data_dir>/world from GLIDE_DATA_DIR].")
@click.option("--catalog", "catalog_name", type=click.Choice(["synthetic", "itunes"]), default="synthetic",
              show_default=True, help="Synthetic shows, or the real 2017 iTunes sample in ../shared/data.")
@click.option("--shows", type=int, default=None,
              help=f"Synthetic: number of shows [default: {WorldConfig.shows}]; itunes: keep the first N.")
@click.option("--itunes-path", type=click.Path(path_type=Path), default=None,
              help="Folder holding shows_raw.zip and genre_IDs.txt [default: ../shared/data/podcasts_itunes_2017].")
def generate(users: int, days: int, seed: int, out: Path | None, catalog_name: str, shows: int | None,
             itunes_path: Path | None) -> None:
    """Generate a world and write it as Parquet + world.json."""
    if out is None:
        from glide.config import load_settings

        out = load_settings().data_dir / "world"
    try:
        config = WorldConfig(users=users, days=days, seed=seed)
        if shows is not None and catalog_name == "synthetic":
            config = replace(config, shows=shows)
        config.validate()
        catalog: Catalog | None = None
        if catalog_name == "itunes":
            from glide.world.itunes import DEFAULT_PATH, load_itunes_catalog

            catalog = load_itunes_catalog(
                itunes_path or DEFAULT_PATH, start=config.start, days=days, seed=seed, max_shows=shows
            )
        console = Console(stderr=True)
        with Progress(TextColumn("{task.description}"), BarColumn(), MofNCompleteColumn(), TimeElapsedColumn(),
                      console=console, transient=True) as bar:
            task = bar.add_task("generating", total=None)

            def report(stage: str, done: int, total: int) -> None:
                bar.update(task, description=stage, completed=done, total=total)

            w = generate_world(config, catalog=catalog, progress=report)
            bar.update(task, description="writing parquet", completed=0, total=None)
            w.save(out)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    Console().print(summary_table(w, out))


def summary_table(w: World, out: Path | None = None) -> Table:
    """Counts per table and the habitual / familiar / unfamiliar listen mix."""
    title = f"{w.catalog} world, seed {w.config.seed}"
    caption = f"{w.start:%Y-%m-%d} + {w.config.days} d" + (f" in {out}" if out else "")
    table = Table(title=title, caption=caption)
    table.add_column("what")
    table.add_column("value", justify="right")
    for name in ("shows", "episodes", "users", "sessions", "listens"):
        table.add_row(name, f"{len(getattr(w, name)):,}")
    shares = familiarity_shares(w.listens)
    table.add_row("habitual listens", f"{shares['habitual']:.1%}")
    table.add_row("non-habitual familiar listens", f"{shares['familiar']:.1%}")
    table.add_row("non-habitual unfamiliar listens", f"{shares['unfamiliar']:.1%}")
    return table


@world.command()
@click.argument("directory", type=click.Path(path_type=Path), required=False)
def summary(directory: Path | None) -> None:
    """Summarise a world folder [default: <data_dir>/world]."""
    if directory is None:
        from glide.config import load_settings

        directory = load_settings().data_dir / "world"
    try:
        w = World.load(directory)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    Console().print(summary_table(w, directory))


@world.command("dataset")
@click.argument("out", type=click.Path(file_okay=False, path_type=Path))
@click.option("--world", "directory", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="World folder [default: <data_dir>/world].")
@click.option("--name", default="world", show_default=True, help="File stem: <name>.inter.json, <name>.item.json.")
@click.option("--min-items", type=int, default=3, show_default=True,
              help="Leave out listeners with fewer episodes (leave-one-out needs 3).")
def dataset(out: Path, directory: Path | None, name: str, min_items: int) -> None:
    """Write the world as an interaction dataset folder, for `glide evaluate --source OUT`."""
    from glide.world.dataset_export import write_interaction_dataset

    if directory is None:
        from glide.config import load_settings

        directory = load_settings().data_dir / "world"
    if min_items < 3:
        raise click.BadParameter("must be >= 3 (a training, a validation and a test item)", param_hint="--min-items")
    try:
        counts = write_interaction_dataset(World.load(directory), out, name, min_items)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from exc
    Console().print(f"wrote {out / (name + '.inter.json')}: {counts['users']:,} listeners "
                    f"({counts['users_left_out']} with fewer than {min_items} episodes left out), "
                    f"{counts['interactions']:,} interactions, {counts['items']:,} episodes; "
                    f"next: glide evaluate --source {out} --quick", highlight=False)

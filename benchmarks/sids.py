"""`glide bench sids-cold-start`: seconds from `SidIndex.add_episode(new episode)` until that episode
is recommendable (its SID is in the decoding trie and its collision bucket), with no refit."""

from __future__ import annotations

import json
import time

import click
import numpy as np


@click.command("sids-cold-start")
@click.option("--episodes", "n_new", type=click.IntRange(1), default=50, show_default=True, help="New episodes to add.")
@click.option("--codebook", type=click.IntRange(2), default=256, show_default=True)
@click.option("--levels", type=click.IntRange(1, 16), default=4, show_default=True)
@click.option("--threads", type=click.IntRange(1), default=None, help="torch threads for the encoder.")
def cold_start(n_new: int, codebook: int, levels: int, threads: int | None) -> None:
    """Fit R-KMeans on the report world (seed 0), then add episodes of another world one by one."""
    from glide.config import load_settings
    from glide_model.sids.encoder import EmbeddingCache, EncoderConfig, TextEncoder, cache_dir_for
    from glide_model.sids.live import SidIndex
    from glide_model.sids.encoder import embed_catalog
    from glide_model.sids.rkmeans import RKMeans
    from glide_app.jobs.sid_sources import synthetic_world_episodes

    settings = load_settings()
    encoder = TextEncoder(EncoderConfig(num_threads=threads))
    catalog = synthetic_world_episodes(seed=0)
    kept, emb, _ = embed_catalog(catalog, encoder, EmbeddingCache(cache_dir_for(settings.data_dir, encoder.name)))
    quantizer = RKMeans(levels=levels, codebook_size=codebook, seed=0, num_threads=threads)
    quantizer.fit(emb, encoder=encoder.name)
    assignments = dict(zip(kept["episode_id"], map(tuple, quantizer.encode(emb).tolist())))
    index = SidIndex.build(quantizer, kept, encoder=encoder, assignments=assignments)
    encoder.encode(["warm-up"], progress=False)  # first call pays one-off allocation costs

    fresh = synthetic_world_episodes(seed=1).head(n_new)
    seconds = []
    for row in fresh.to_dict("records"):
        row["episode_id"] = "new_" + row["episode_id"]
        start = time.perf_counter()
        codes = index.add_episode(row)
        recommendable = codes in index.trie and row["episode_id"] in index.table.episodes(codes)
        seconds.append(time.perf_counter() - start)
        if not recommendable:
            raise click.ClickException(f"{row['episode_id']} is not recommendable after add_episode")
    ms = np.array(seconds) * 1000
    result = {
        "catalog_episodes": len(kept),
        "new_episodes": n_new,
        "p50_ms": round(float(np.percentile(ms, 50)), 1),
        "p95_ms": round(float(np.percentile(ms, 95)), 1),
        "max_ms": round(float(ms.max()), 1),
        "quantizer": quantizer.meta.version,
    }
    click.echo(
        f"cold start on {len(kept):,} episodes: add_episode -> recommendable p50 {result['p50_ms']} ms, "
        f"p95 {result['p95_ms']} ms, max {result['max_ms']} ms over {n_new} new episodes"
    )
    click.echo(json.dumps(result))

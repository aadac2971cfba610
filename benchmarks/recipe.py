"""The GLIDE recipe on a host without the feature store (e.g. a lent GPU box): everything the
offline job (glide/jobs/train.py) feeds the model, precomputed here into a small bundle, then
trained and evaluated there with the same library code.

    python -m benchmarks.recipe prepare BUNDLE      # here: world, SIDs (text encoder), CF embeddings
    python -m benchmarks.recipe run BUNDLE OUT      # there: examples, grounding + instruction tuning, eval

Examples come from `build_examples` (pure pandas), which a test checks is identical to the Feast
point-in-time path the job uses (tests/glide_model/data).
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import pandas as pd


def prepare(bundle: Path, users: int = 300, days: int = 35, seed: int = 0, shows: int = 120,
            episodes_per_show: int = 20, codebook: int = 256, cache_dir: Path | None = None,
            cf_days: float = 7, val_days: float = 4) -> None:
    from glide_model.cf import train_cf
    from glide_model.sids.encoder import EmbeddingCache, TextEncoder, cache_dir_for, embed_episodes
    from glide_model.sids.quantizer import make_quantizer
    from glide.world.generator import WorldConfig, generate_world

    world = generate_world(WorldConfig(users=users, days=days, seed=seed, shows=shows,
                                       episodes_per_show=episodes_per_show))
    world.save(bundle / "world")
    encoder = TextEncoder()
    cache = EmbeddingCache(cache_dir_for(cache_dir or bundle, encoder.name))
    emb = embed_episodes(encoder, world.episodes, cache=cache)
    quantizer = make_quantizer("rkmeans", 4, codebook, seed).fit(emb, encoder=encoder.name)
    codes = quantizer.encode(emb)
    pd.DataFrame({"episode_id": world.episodes["episode_id"], "codes": codes.tolist()}).to_parquet(
        bundle / "assignments.parquet")
    t0, t1 = world.listens["ts"].min(), world.listens["ts"].max()
    t_cf, t_val = t0 + pd.Timedelta(days=cf_days), t1 - pd.Timedelta(days=val_days)
    cf = train_cf(world.listens[world.listens["ts"] < t_cf])
    cf.save(bundle / "cf")
    (bundle / "meta.json").write_text(json.dumps({"quantizer_version": quantizer.meta.version, "codebook": codebook,
                                                  "t_cf": str(t_cf), "t_val": str(t_val)}))


def run(bundle: Path, out: Path, instruct_steps: int = 1500, grounding_steps: int = 300, batch: int = 32,
        max_val: int = 300, device: str = "auto", base_model: str = "smollm2") -> dict:
    from rich.console import Console

    from glide.jobs.train import JobData, compare_to_baselines, split_held_out
    from glide.world.generator import World
    from glide_model.cf import CFModel
    from glide_model.data.examples import ExampleSamplingConfig, build_examples
    from glide_model.evaluation.baselines import with_popularity
    from glide_model.llm.checkpoint import load_checkpoint
    from glide_model.llm.decoding import HFBackend, merge_for_serving
    from glide_model.llm.grounding import GroundingConfig
    from glide_model.llm.pipeline import GlideTrainConfig, train_glide
    from glide_model.llm.trainer import LoopConfig
    from glide_model.sids.trie import SidTrie

    started = time.perf_counter()
    world = World.load(bundle / "world")
    meta = json.loads((bundle / "meta.json").read_text())
    frame = pd.read_parquet(bundle / "assignments.parquet")
    assignments = {e: tuple(int(x) for x in c) for e, c in zip(frame["episode_id"], frame["codes"])}
    cf = CFModel.load(bundle / "cf")
    listens = world.listens
    window = {"t0": listens["ts"].min(), "t_cf": pd.Timestamp(meta["t_cf"]), "t_val": pd.Timestamp(meta["t_val"]),
              "t1": listens["ts"].max()}
    episodes = with_popularity(world.episodes, listens[listens["ts"] < window["t_val"]])

    # The same examples the job reads from Feast (a test checks the two paths agree).
    sampling = ExampleSamplingConfig(history_len=10, max_examples_per_episode=50)
    examples = build_examples(listens, assignments, world.users, cf.user_embeddings(), sampling)
    train_ex, val_ex = split_held_out(examples[examples["ts"] >= window["t_cf"]], window["t_val"], max_val)
    data = JobData(listens, episodes, assignments, meta["quantizer_version"], window, cf, sampling, train_ex, val_ex)

    cfg = GlideTrainConfig(
        out_dir=out / "run", base_model=base_model, data_dir=out, variant="glide", levels=4,
        codebook_size=meta["codebook"], quantizer_version=meta["quantizer_version"], catalog_version="bundle",
        max_history=10, max_text_chars=120, device=device,
        grounding=GroundingConfig(stage1=LoopConfig(max_steps=grounding_steps, batch_size=batch, lr=5e-3),
                                  stage2=LoopConfig(max_steps=grounding_steps, batch_size=batch, lr=5e-4),
                                  eval_episodes=200),
        instruct=LoopConfig(max_steps=instruct_steps, batch_size=batch, lr=5e-4, ckpt_every=0),
    )
    result = train_glide(cfg, episodes, assignments, data.train_ex, data.val_ex)
    glm, _ = load_checkpoint(result.checkpoint, device=device)
    trie = SidTrie(np.asarray(list(assignments.values())), meta["codebook"])
    comparison = compare_to_baselines(data, HFBackend(merge_for_serving(glm), trie), "glide", 30, Console())
    record = {"examples": {"train": len(data.train_ex), "val": len(data.val_ex)}, "grounding": result.grounding,
              "stages": result.stages, "seconds": round(time.perf_counter() - started, 1), **comparison}
    print(json.dumps(record, default=str))
    return record


if __name__ == "__main__":
    command, *args = sys.argv[1:]
    if command == "prepare":
        prepare(Path(args[0]), cache_dir=Path(args[1]) if len(args) > 1 else None)
    elif command == "run":
        run(Path(args[0]), Path(args[1]), *(int(a) for a in args[2:]))
    else:
        raise SystemExit("usage: python -m benchmarks.recipe prepare BUNDLE [CACHE] | run BUNDLE OUT [STEPS ...]")

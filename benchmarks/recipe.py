"""The GLIDE recipe on a host without the feature store (e.g. a lent GPU box): everything the
offline job (glide_app/jobs/train.py) feeds the model, precomputed here into a small bundle, then
trained and evaluated there with the same library code and the same job config file.

    python -m benchmarks.recipe prepare BUNDLE --config configs/train_smollm2.yaml   # here: world, SIDs, CF
    python -m benchmarks.recipe run BUNDLE OUT --config configs/train_smollm2.yaml \
        [--base-model FOLDER] [--device cuda] [--instruct-steps N] [--batch-size B] [--lr LR] [--max-val N]

Examples come from `build_examples` (pure pandas), which a test checks is identical to the Feast
point-in-time path the job uses (tests/glide_model/data). The run prints one JSON record last.
"""

from __future__ import annotations

import argparse
import json
import time
from dataclasses import replace
from pathlib import Path

import numpy as np
import pandas as pd

from glide_app.jobs.config_io import from_dict, to_dict
from glide_app.jobs.train import TrainJobConfig, load_job_config


def prepare(bundle: Path, cfg: TrainJobConfig, cache_dir: Path | None = None) -> None:
    from glide.world.generator import WorldConfig, generate_world
    from glide_model.cf import CFConfig, train_cf
    from glide_model.sids.encoder import EmbeddingCache, TextEncoder, cache_dir_for, embed_episodes
    from glide_model.sids.quantizer import make_quantizer

    world = generate_world(from_dict(WorldConfig, cfg.world, "world"))
    world.save(bundle / "world")
    encoder = TextEncoder()
    emb = embed_episodes(encoder, world.episodes, cache=EmbeddingCache(cache_dir_for(cache_dir or bundle, encoder.name)))
    sid = cfg.sids
    quantizer = make_quantizer(sid.quantizer, sid.levels, sid.codebook_size, sid.seed).fit(emb, encoder=encoder.name)
    pd.DataFrame({"episode_id": world.episodes["episode_id"], "codes": quantizer.encode(emb).tolist()}).to_parquet(
        bundle / "assignments.parquet")
    t0, t1 = world.listens["ts"].min(), world.listens["ts"].max()
    t_cf, t_val = t0 + pd.Timedelta(days=cfg.window.cf_days), t1 - pd.Timedelta(days=cfg.window.val_days)
    train_cf(world.listens[world.listens["ts"] < t_cf], **to_dict(from_dict(CFConfig, cfg.cf, "cf"))).save(bundle / "cf")
    (bundle / "meta.json").write_text(json.dumps({"quantizer_version": quantizer.meta.version,
                                                  "t_cf": str(t_cf), "t_val": str(t_val)}))


def run(bundle: Path, out: Path, cfg: TrainJobConfig, *, base_model: str | None = None, device: str = "auto",
        instruct_steps: int | None = None, batch_size: int | None = None, lr: float | None = None,
        max_val: int | None = None) -> dict:
    """Train and score the config's model on the bundle; the overrides change only what they name."""
    from rich.console import Console

    from glide_app.jobs.train import JobData, compare_to_baselines, split_held_out
    from glide.world.generator import World
    from glide_model.cf import CFModel
    from glide_model.data.examples import ExampleSamplingConfig, build_examples
    from glide_model.evaluation.baselines import with_popularity
    from glide_model.llm.checkpoint import load_checkpoint
    from glide_model.llm.decoding import HFBackend, merge_for_serving
    from glide_model.llm.pipeline import GlideTrainConfig, train_glide
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
    sampling = from_dict(ExampleSamplingConfig, cfg.examples, "examples")
    examples = build_examples(listens, assignments, world.users, cf.user_embeddings(), sampling)
    train_ex, val_ex = split_held_out(examples[examples["ts"] >= window["t_cf"]], window["t_val"],
                                      max_val if max_val is not None else cfg.window.max_val_examples)
    data = JobData(listens, episodes, assignments, meta["quantizer_version"], window, cf, sampling, train_ex, val_ex)

    model = {**cfg.model, "out_dir": str(out / "run"), "data_dir": str(out), "device": device}
    if base_model is not None:
        model["base_model"] = base_model
    model_cfg = from_dict(GlideTrainConfig, model, "model")
    model_cfg.levels, model_cfg.codebook_size = cfg.sids.levels, cfg.sids.codebook_size
    model_cfg.quantizer_version, model_cfg.catalog_version = meta["quantizer_version"], "bundle"
    model_cfg.instruct = replace(model_cfg.instruct, ckpt_every=0, validate_at_end=False,
                                 **{k: v for k, v in {"max_steps": instruct_steps, "batch_size": batch_size,
                                                      "lr": lr}.items() if v is not None})
    result = train_glide(model_cfg, episodes, assignments, data.train_ex, data.val_ex)
    trained = time.perf_counter()
    glm, _ = load_checkpoint(result.checkpoint, device=device)
    k = cfg.window.k
    trie = SidTrie(np.asarray(list(assignments.values())), cfg.sids.codebook_size)
    comparison = compare_to_baselines(data, HFBackend(merge_for_serving(glm), trie, num_beams=k), "glide", k, Console())
    record = {"device": str(glm.device), "examples": {"train": len(data.train_ex), "val": len(data.val_ex)},
              "instruct": to_dict(model_cfg.instruct), "grounding": result.grounding, "stages": result.stages,
              "train_seconds": round(trained - started, 1), "eval_seconds": round(time.perf_counter() - trained, 1),
              **comparison}
    print(json.dumps(record, default=str))
    return record


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.recipe", description=__doc__.split("\n\n")[0])
    sub = parser.add_subparsers(dest="command", required=True)
    prep = sub.add_parser("prepare", help="world, SIDs and CF embeddings into BUNDLE (needs the text encoder)")
    prep.add_argument("bundle", type=Path)
    prep.add_argument("--config", type=Path)
    prep.add_argument("--cache-dir", type=Path)
    go = sub.add_parser("run", help="train and score on BUNDLE, writing under OUT")
    go.add_argument("bundle", type=Path)
    go.add_argument("out", type=Path)
    go.add_argument("--config", type=Path)
    go.add_argument("--base-model")
    go.add_argument("--device", default="auto")
    go.add_argument("--instruct-steps", type=int)
    go.add_argument("--batch-size", type=int)
    go.add_argument("--lr", type=float)
    go.add_argument("--max-val", type=int)
    args = parser.parse_args(argv)
    cfg = load_job_config(args.config)
    if args.command == "prepare":
        prepare(args.bundle, cfg, args.cache_dir)
    else:
        run(args.bundle, args.out, cfg, base_model=args.base_model, device=args.device,
            instruct_steps=args.instruct_steps, batch_size=args.batch_size, lr=args.lr, max_val=args.max_val)


if __name__ == "__main__":
    main()

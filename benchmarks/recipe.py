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

import pandas as pd

from glide_app.jobs.config_io import from_dict, to_dict
from glide_app.jobs.train import (
    TrainJobConfig,
    data_window,
    fit_cf,
    fit_sids,
    glide_model_config,
    load_job_config,
    serving_backend,
)


def prepare(bundle: Path, cfg: TrainJobConfig, cache_dir: Path | None = None) -> None:
    from glide.world.generator import WorldConfig, generate_world

    world = generate_world(from_dict(WorldConfig, cfg.world, "world"))
    world.save(bundle / "world")
    quantizer, codes = fit_sids(world.episodes, cfg.sids, cache_dir or bundle)
    pd.DataFrame({"episode_id": world.episodes["episode_id"], "codes": codes.tolist()}).to_parquet(
        bundle / "assignments.parquet")
    window = data_window(world.listens, cfg.window)
    fit_cf(world.listens, window["t_cf"], cfg.cf).save(bundle / "cf")
    (bundle / "meta.json").write_text(json.dumps({"quantizer_version": quantizer.meta.version,
                                                  "t_cf": str(window["t_cf"]), "t_val": str(window["t_val"])}))


def run(bundle: Path, out: Path, cfg: TrainJobConfig, *, base_model: str | None = None, device: str = "auto",
        instruct_steps: int | None = None, batch_size: int | None = None, lr: float | None = None,
        max_val: int | None = None) -> dict:
    """Train and score the config's model on the bundle; the overrides change only what they name."""
    from rich.console import Console

    from glide.world.generator import World
    from glide_app.jobs.train import JobData, compare_to_baselines, split_held_out
    from glide_model.cf import CFModel
    from glide_model.data.examples import ExampleSamplingConfig, build_examples
    from glide_model.evaluation.baselines import with_popularity
    from glide_model.llm.pipeline import train_glide

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

    overrides = {"out_dir": str(out / "run"), "data_dir": str(out), "device": device}
    if base_model is not None:
        overrides["base_model"] = base_model
    model_cfg = glide_model_config(cfg, meta["quantizer_version"], "bundle", overrides=overrides)
    model_cfg.instruct = replace(model_cfg.instruct, ckpt_every=0,
                                 **{k: v for k, v in {"max_steps": instruct_steps, "batch_size": batch_size,
                                                      "lr": lr}.items() if v is not None})
    result = train_glide(model_cfg, episodes, assignments, data.train_ex, data.val_ex)
    trained = time.perf_counter()
    k = cfg.window.k
    backend = serving_backend(result.checkpoint, assignments, cfg.sids.codebook_size, k, device)
    comparison = compare_to_baselines(data, backend, "glide", k, Console())
    record = {"device": str(backend.glm.device), "examples": {"train": len(data.train_ex), "val": len(data.val_ex)},
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

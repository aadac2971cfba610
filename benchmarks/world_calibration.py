"""`glide bench world-calibration`: how taste-driven is the synthetic world, next to real data?

The issue-5 bar (GLIDE beats popularity) only means something if the world leaves personalization
the room real listening does. Two measurements, side by side for real data and for worlds:

- **taste lift** (glide.world.stats.taste_lift): how often a user's next non-habitual pick falls in
  their 3 most frequent past topics, divided by how often it would if picks followed popularity.
  Real reference: Amazon 2018 Industrial & Scientific (brand = show, 2nd-level category = topic,
  leave-one-out last item; familiar = a brand the user bought before). Read from ../shared, never copied.
- **headroom**: Recall@30 of popularity, CF (ALS) and history-topic x popularity on the world's
  held-out non-habitual listens, with the train job's windows (CF on days 0-7, last 4 days held out).

Worlds: `v1` (the generator's first, uncalibrated settings) and `default` (the calibrated defaults).
"""

from __future__ import annotations

import json
from dataclasses import asdict, replace
from pathlib import Path

import click

AMAZON_DIR = Path(__file__).resolve().parents[1].parent / "shared" / "data" / "amazon18_scientific"


def amazon_taste_lift(directory: Path):
    """taste_lift on Amazon Scientific: last item per user = target, earlier items = history."""
    import pandas as pd

    from glide.world.stats import taste_lift

    items = json.loads((directory / "Scientific.item.json").read_text())
    sequences = json.loads((directory / "Scientific.inter.json").read_text())
    topic = {k: (v.get("categories") or "").split(",")[1] if "," in (v.get("categories") or "") else "?" for k, v in items.items()}
    brand = {k: v.get("brand") or None for k, v in items.items()}
    hist_rows, target_rows = [], []
    for user, seq in sequences.items():
        seq = [str(i) for i in seq]
        for pos, item in enumerate(seq[:-1]):
            hist_rows.append((user, topic.get(item, "?"), pos, item))
        last = seq[-1]
        seen_brands = {brand.get(i) for i in seq[:-1]} - {None}
        target_rows.append((user, topic.get(last, "?"), len(seq) - 1, brand.get(last) in seen_brands))
    history = pd.DataFrame(hist_rows, columns=["user_id", "topic", "pos", "item"])
    targets = pd.DataFrame(target_rows, columns=["user_id", "topic", "pos", "familiar"])
    share = history["topic"].value_counts(normalize=True).to_dict()  # = popularity-weighted topic mix
    return taste_lift(history, targets, share)


def world_headroom(world, n_val: int, cf_days: float = 7, val_days: float = 4, seed: int = 0) -> dict[str, dict]:
    """Recall@30 of the three non-LLM recommenders on held-out non-habitual listens of `world`."""
    import pandas as pd

    from glide_model.cf import train_cf
    from glide_model.data.examples import ExampleSamplingConfig, build_examples
    from glide_model.evaluation.baselines import baseline_recommenders, with_popularity
    from glide_model.evaluation.metrics import evaluate

    listens = world.listens
    t_cf = listens["ts"].min() + pd.Timedelta(days=cf_days)
    t_val = listens["ts"].max() - pd.Timedelta(days=val_days)
    cf = train_cf(listens[listens["ts"] < t_cf])
    # Baselines never read SIDs: any distinct codes make valid example frames.
    codes = {e: (i // 256**3 % 256, i // 256**2 % 256, i // 256 % 256, i % 256) for i, e in enumerate(world.episodes["episode_id"])}
    examples = build_examples(listens, codes, world.users, cf.user_embeddings(), ExampleSamplingConfig(history_len=10))
    held = examples[examples["ts"] >= t_val]
    held = held.sample(n=min(len(held), n_val), random_state=seed).sort_values(["ts", "user_id"]).reset_index(drop=True)
    known = listens[listens["ts"] < t_val]
    episodes = with_popularity(world.episodes, known)
    out = {}
    # Rules read every listen before each request (as serving and the train job do); popularity
    # and CF learn only from before t_val.
    for rec in baseline_recommenders(known, episodes, cf, listens):
        table = evaluate(rec.recommend(held, 30), held, 30)
        out[rec.name] = {seg: {"n": int(table.loc[seg, "n"]), "recall@30": float(table.loc[seg, "recall@30"])}
                         for seg in table.index}
    return out


@click.command("world-calibration")
@click.option("--users", type=click.IntRange(1), default=300, show_default=True)
@click.option("--days", type=click.IntRange(8), default=35, show_default=True)
@click.option("--shows", type=click.IntRange(2), default=120, show_default=True)
@click.option("--episodes-per-show", type=click.IntRange(1), default=20, show_default=True)
@click.option("--seeds", default="0,1,2", show_default=True, help="World seeds, comma separated (lift is averaged).")
@click.option("--val", "n_val", type=click.IntRange(10), default=400, show_default=True, help="Held-out listens per world.")
@click.option("--amazon", "amazon_dir", type=click.Path(path_type=Path), default=AMAZON_DIR, show_default=True)
@click.option("--json", "as_json", is_flag=True, help="Print the results as JSON on the last line.")
def world_calibration(users: int, days: int, shows: int, episodes_per_show: int, seeds: str, n_val: int,
                      amazon_dir: Path, as_json: bool) -> None:
    """Taste lift of real data vs synthetic worlds, and how far personalization gets past popularity."""
    import numpy as np
    from rich.console import Console
    from rich.table import Table

    from glide.world.config import V1_BEHAVIOUR, WorldConfig
    from glide.world.generator import generate_world
    from glide.world.stats import world_taste_lift

    console = Console(stderr=as_json)
    seed_list = [int(s) for s in seeds.split(",") if s.strip()]
    base = WorldConfig(users=users, days=days, shows=shows, episodes_per_show=episodes_per_show)
    worlds = {"v1": replace(base, **V1_BEHAVIOUR), "default": base}
    lift_rows: dict[str, dict] = {}
    if (amazon_dir / "Scientific.inter.json").exists():
        lift_rows["amazon-scientific"] = amazon_taste_lift(amazon_dir).to_dict(orient="index")
    else:
        console.print(f"[yellow]no Amazon data at {amazon_dir}: real-data row skipped")
    headroom: dict[str, dict] = {}
    for name, cfg in worlds.items():
        frames, runs = [], []
        for seed in seed_list:
            world = generate_world(replace(cfg, seed=seed))
            frames.append(world_taste_lift(world.listens, world.episodes))
            runs.append(world_headroom(world, n_val, seed=seed))
            console.print(f"world {name} seed {seed}: done")
        lift_rows[f"world {name}"] = {seg: {col: float(np.mean([f.loc[seg, col] for f in frames])) for col in frames[0].columns}
                                      for seg in frames[0].index}
        headroom[name] = {rec: {seg: float(np.mean([r[rec][seg]["recall@30"] for r in runs])) for seg in runs[0][rec]}
                          for rec in runs[0]}

    table = Table(title="Taste lift: next non-habitual pick in the user's top-3 past topics (vs popularity mix)")
    for col in ("data", "segment", "n", "top-3 share", "null share", "lift", "top-1 share"):
        table.add_column(col, justify="left" if col in ("data", "segment") else "right")
    for data, segs in lift_rows.items():
        for seg in ("familiar", "unfamiliar", "all"):
            row = segs[seg]
            table.add_row(data, seg, f"{row['n']:.0f}", f"{row['top_share']:.3f}", f"{row['null_share']:.3f}",
                          f"{row['lift']:.2f}", f"{row['top1_share']:.3f}")
    console.print(table)
    table = Table(title=f"Headroom: Recall@30 on {n_val} held-out non-habitual listens per world (ratio vs popularity)")
    for col in ("world", "recommender", "overall", "familiar", "unfamiliar", "overall / popularity"):
        table.add_column(col, justify="left" if col in ("world", "recommender") else "right")
    for name, recs in headroom.items():
        pop = recs["popularity"]["overall"]
        for rec, segs in recs.items():
            table.add_row(name, rec, *(f"{segs.get(s, float('nan')):.3f}" for s in ("overall", "familiar", "unfamiliar")),
                          f"{segs['overall'] / pop:.2f}x" if pop else "-")
    console.print(table)
    result = {"seeds": seed_list, "worlds": {n: asdict(c) for n, c in worlds.items()}, "taste_lift": lift_rows,
              "headroom": headroom}
    if as_json:
        click.echo(json.dumps(result, default=float))

"""`glide train --config FILE`: the offline training job, end to end.

offline event log + catalog DB + online profiles (glide_app/jobs/job_inputs.py: what the streams
recorded, never a world's files) -> Semantic IDs -> CF embeddings -> Feast offline store ->
point-in-time training set (`glide_inputs` + listening state) -> grounding + instruction tuning ->
evaluation against baselines -> merged export -> model registry.

The data half (`prepare_job_data`) and the scoring half (`compare_to_baselines`) are also what
`glide evaluate` (glide_app/jobs/evaluate.py) and `glide retrain` (glide_app/jobs/retrain.py) run, so every
model is scored on the same listens under the same rules. The steps in between (`fit_sids`,
`data_window`, `fit_cf`, `glide_model_config`, `serving_backend`) are what benchmarks/recipe.py
runs on a host without the feature store, so each step has one copy.

Time layout of the data window [t0, t1]:
  [t0, t_cf)      CF model's training data; its embeddings are stamped t_cf (known from then on)
  [t_cf, t_val)   instruction-tuning targets
  [t_val, t1]     held-out validation targets (Recall@30 during and after training)
"""

from __future__ import annotations

import json
import time
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
from rich.console import Console

from glide.config import GlideSettings
from glide_app.jobs.config_io import from_dict, to_dict
from glide_app.jobs.job_config import (  # noqa: F401 - the job's config, importable from the job
    SidSettings,
    TrainJobConfig,
    WindowSettings,
    job_config_from_dict,
    load_job_config,
)


def fit_sids(episodes: pd.DataFrame, sid: SidSettings, cache_root: Path):
    """Embed the episodes' text (cached under ``cache_root``) and fit the configured quantizer;
    returns (quantizer, codes aligned with ``episodes``)."""
    from glide_model.sids.encoder import EmbeddingCache, TextEncoder, cache_dir_for, embed_episodes
    from glide_model.sids.quantizer import make_quantizer

    encoder = TextEncoder()
    emb = embed_episodes(encoder, episodes, cache=EmbeddingCache(cache_dir_for(cache_root, encoder.name)))
    quantizer = make_quantizer(sid.quantizer, sid.levels, sid.codebook_size, sid.seed).fit(emb, encoder=encoder.name)
    return quantizer, quantizer.encode(emb)


def sids_for_catalog(settings: GlideSettings, db, episodes: pd.DataFrame, sid: SidSettings,
                     console: Console) -> tuple[str, dict[str, tuple[int, ...]]]:
    """The catalog's current SID assignments; fits (and registers) a quantizer when none matches."""
    from glide_model.sids.store import save_fitted

    if not sid.refit:
        for q in reversed(db.list_quantizers()):
            if (q["kind"], q["levels"], q["codebook_size"]) == (sid.quantizer, sid.levels, sid.codebook_size):
                assigned = db.sid_assignments(q["version"])
                if set(episodes["episode_id"]) <= set(assigned):
                    return q["version"], assigned
    quantizer, codes = fit_sids(episodes, sid, settings.data_dir)
    version = quantizer.meta.version
    # Same layout as `glide sids fit`: artifacts + assignments, and CURRENT for serving/streams.
    artifact = save_fitted(quantizer, episodes["episode_id"].tolist(), codes, settings.data_dir)
    assigned = dict(zip(episodes["episode_id"], map(tuple, codes.tolist())))
    db.register_quantizer(version, sid.quantizer, str(artifact), sid.levels, sid.codebook_size,
                          dict(quantizer.meta.metrics or {}))
    db.save_sid_assignments(version, assigned)
    console.print(f"[bold]sids[/] fitted {version} on {len(episodes)} episodes")
    return version, assigned


def data_window(listens: pd.DataFrame, window: WindowSettings) -> dict[str, pd.Timestamp]:
    """t0, t_cf, t_val, t1 of the data (module docstring); raises when the configured days do not fit."""
    t0, t1 = listens["ts"].min(), listens["ts"].max()
    t_cf = t0 + pd.Timedelta(days=window.cf_days)
    t_val = t1 - pd.Timedelta(days=window.val_days)
    if not t0 < t_cf < t_val < t1:
        raise ValueError(f"window: cf_days={window.cf_days} + val_days={window.val_days} do not fit "
                         f"in the data's {(t1 - t0).days} days")
    return {"t0": t0, "t_cf": t_cf, "t_val": t_val, "t1": t1}


def fit_cf(listens: pd.DataFrame, t_cf: pd.Timestamp, cf: dict[str, Any], console: Console | None = None):
    """The CF model of the ``cf`` section (CFConfig fields), trained on the listens before ``t_cf``."""
    from glide_model.cf import CFConfig, train_cf

    history = listens[listens["ts"] < t_cf]
    if console is not None:
        console.print(f"[bold]cf[/] training on {len(history)} listens before {t_cf:%Y-%m-%d}")
    return train_cf(history, **to_dict(from_dict(CFConfig, cf, "cf")))


def catalog_version(episodes: pd.DataFrame) -> str:
    """Content hash of the episode ids a model was trained against."""
    import hashlib

    digest = hashlib.sha256("\n".join(sorted(episodes["episode_id"])).encode()).hexdigest()
    return f"catalog-{len(episodes)}-{digest[:10]}"


@dataclass
class JobData:
    """What the job derives from the logged events before any model trains (shared by train and evaluate)."""

    listens: pd.DataFrame
    episodes: pd.DataFrame  # with `popularity` frozen at t_val
    assignments: dict[str, tuple[int, ...]]
    quantizer_version: str
    window: dict[str, pd.Timestamp]  # t0, t_cf, t_val, t1
    cf_model: Any
    sampling: Any  # ExampleSamplingConfig
    train_ex: pd.DataFrame
    val_ex: pd.DataFrame

    @property
    def known(self) -> pd.DataFrame:
        """Listens a model or baseline may learn from: everything before t_val."""
        return self.listens[self.listens["ts"] < self.window["t_val"]]

    @property
    def show_of(self) -> dict[str, str]:
        return dict(zip(self.episodes["episode_id"], self.episodes["show_id"]))

    @property
    def published(self) -> dict[str, pd.Timestamp]:
        return dict(zip(self.episodes["episode_id"], self.episodes["published_at"]))


def prepare_job_data(settings: GlideSettings, cfg: TrainJobConfig, db, console: Console, *,
                     write_features: bool = True, quantizer_version: str | None = None) -> JobData:
    """Event log + catalog DB -> SIDs -> CF -> Feast offline store -> point-in-time examples.

    ``write_features=False`` reads the offline store as a previous job left it (``glide evaluate``).
    ``quantizer_version`` pins the SIDs (a registered model's own); the store's recent-SID codes may
    come from another quantizer, so history codes are then re-read from the episode ids.
    """
    from glide_app.jobs.job_inputs import load_job_inputs
    from glide_app.jobs.offline_features import feature_tables, write_tables
    from glide_app.jobs.training_set import historical_inputs
    from glide_model.data.examples import ExampleSamplingConfig, examples_from_features
    from glide_model.evaluation.baselines import with_popularity
    from streams.feature_store import apply_definitions, open_store

    store = open_store(settings)
    inputs = load_job_inputs(settings, db, store)
    listens, episodes = inputs.listens, inputs.episodes
    if quantizer_version is None:
        # Reading the store as a job left it must not fit (and make current) a new quantizer.
        sid_settings = cfg.sids if write_features else replace(cfg.sids, refit=False)
        qversion, assignments = sids_for_catalog(settings, db, episodes, sid_settings, console)
    else:
        qversion, assignments = quantizer_version, db.sid_assignments(quantizer_version)
        if not set(episodes["episode_id"]) <= set(assignments):
            from glide_model.llm.checkpoint import CheckpointMismatchError

            raise CheckpointMismatchError(f"quantizer {quantizer_version} has no SIDs for every catalog episode: "
                                          "run `glide sids refresh` or evaluate against the catalog it was fitted on")

    window = data_window(listens, cfg.window)
    t0, t_cf, t_val = window["t0"], window["t_cf"], window["t_val"]
    cf_model = fit_cf(listens, t_cf, cfg.cf, console)

    if write_features:
        # The collision tie-breaker the worker reads from the catalog DB: distinct listeners in the log.
        db.upsert_episodes(with_popularity(episodes, listens))
    episodes = with_popularity(episodes, listens[listens["ts"] < t_val])  # known at training time

    if write_features:
        tables = feature_tables(listens, inputs.users, episodes, assignments, qversion,
                                cf_embeddings=cf_model.user_embeddings(), cf_timestamp=t_cf,
                                cf_version=cf_model.version, context_timestamp=t0)
        counts = write_tables(settings, tables)
        apply_definitions(store)
        console.print(f"[bold]feast[/] offline rows {counts}")

    sampling = from_dict(ExampleSamplingConfig, cfg.examples, "examples")
    frame = historical_inputs(store, listens[listens["ts"] >= t_cf])
    examples = examples_from_features(frame, sampling, assignments)
    if quantizer_version is not None:
        examples["history_codes"] = [[tuple(assignments[e]) for e in ids] for ids in examples["history_episode_ids"]]
    train_ex, val_ex = split_held_out(examples, t_val, cfg.window.max_val_examples)
    console.print(f"[bold]examples[/] train {len(train_ex)}  val {len(val_ex)} of {int((examples['ts'] >= t_val).sum())}  "
                  f"(modes {train_ex['mode'].value_counts().to_dict()})")
    return JobData(listens, episodes, assignments, qversion, window, cf_model, sampling, train_ex, val_ex)


def split_held_out(examples: pd.DataFrame, t_val: pd.Timestamp, max_val: int) -> tuple[pd.DataFrame, pd.DataFrame]:
    """Training examples before t_val; a fixed random sample of at most ``max_val`` from t_val on, in time order."""
    train_ex = examples[examples["ts"] < t_val].reset_index(drop=True)
    val_all = examples[examples["ts"] >= t_val]
    val_ex = val_all.sample(n=min(len(val_all), max_val), random_state=0)
    return train_ex, val_ex.sort_values(["ts", "user_id"]).reset_index(drop=True)


def sid_structure(assignments: dict[str, tuple[int, ...]], codebook_size: int) -> dict[str, Any]:
    """How the SIDs split this catalog (items per prefix per level, collisions), recorded with the run."""
    from glide_model.sids.metrics import collision_stats, items_per_prefix

    codes = np.asarray(list(assignments.values()))
    return {"codebook_size": codebook_size, "items_per_prefix": items_per_prefix(codes),
            "collision_rate": round(collision_stats(codes)["collision_rate"], 4)}


def glide_recommender(data: JobData, backend, name: str = "glide"):
    """GLIDE under the serving rules: the rules (habitual shows out, the mode's show rule) read every
    listen before each request, as serving does from the stream-fed features; popularity (the
    collision tie-breaker) stays frozen at t_val."""
    from glide_model.evaluation.glide import GlideRecommender
    from glide_model.sids.collisions import CollisionTable

    table = CollisionTable.from_frame(data.episodes, data.assignments)
    return GlideRecommender(backend, table, data.show_of, data.listens, name=name, published_at=data.published)


def compare_to_baselines(data: JobData, backend, name: str, k: int, console: Console,
                         plot_path: Path | None = None) -> dict[str, Any]:
    """GLIDE vs popularity, CF and topic x popularity on the held-out listens, with a paired CI."""
    from glide_model.evaluation.baselines import baseline_recommenders
    from glide_model.evaluation.metrics import paired_bootstrap, score_examples, summarize
    from glide_model.evaluation.report import plot_results, print_results

    recommenders = [glide_recommender(data, backend, name),
                    *baseline_recommenders(data.known, data.episodes, data.cf_model, data.listens)]
    per_example = {r.name: score_examples(r.recommend(data.val_ex, k), data.val_ex, k) for r in recommenders}
    results = {n: summarize(frame) for n, frame in per_example.items()}
    print_results(results, console=console)
    # Is the gap real? Paired over the same held-out listens, examples resampled.
    gap = paired_bootstrap(per_example[name][f"recall@{k}"], per_example["popularity"][f"recall@{k}"])
    console.print(f"GLIDE - popularity recall@{k}: {gap['diff']:+.3f} (95% CI {gap['lo']:+.3f} .. {gap['hi']:+.3f}, "
                  f"n={gap['n']})")
    if plot_path is not None:
        plot_results(results, plot_path)
    return {
        "metrics": {n: res.reset_index().to_dict(orient="records") for n, res in results.items()},
        f"glide_recall@{k}": float(results[name].loc["overall", f"recall@{k}"]),
        f"popularity_recall@{k}": float(results["popularity"].loc["overall", f"recall@{k}"]),
        "glide_minus_popularity": gap,
    }


def glide_model_config(cfg: TrainJobConfig, quantizer_version: str, catalog_version: str, *,
                       defaults: dict[str, Any] | None = None, overrides: dict[str, Any] | None = None,
                       cf_version: str | None = None):
    """The ``model`` section as the GlideTrainConfig to train: ``defaults`` < the section < ``overrides``;
    the SID shape is the catalog's (``sids``), never a separate model setting that could disagree; the
    final model is scored by the caller (no validation at the end of instruction tuning)."""
    from glide_model.llm.pipeline import GlideTrainConfig

    model_cfg = from_dict(GlideTrainConfig, {**(defaults or {}), **cfg.model, **(overrides or {})}, "model")
    model_cfg.quantizer_version, model_cfg.catalog_version = quantizer_version, catalog_version
    model_cfg.cf_version = cf_version  # the CF space the soft prompt learns: checked online by the worker
    model_cfg.levels, model_cfg.codebook_size = cfg.sids.levels, cfg.sids.codebook_size
    model_cfg.instruct.validate_at_end = False  # the merged final model is evaluated below, faster
    return model_cfg


def serving_backend(checkpoint: Path, assignments: dict[str, tuple[int, ...]], codebook_size: int, k: int,
                    device: str = "auto"):
    """The trained checkpoint as the worker serves it (LoRA merged, its serving dtype), decoding
    ``k`` beams over the catalog's SID trie."""
    from glide_model.llm.decoding import HFBackend
    from glide_model.llm.serving_model import load_for_serving
    from glide_model.sids.trie import SidTrie

    glm, _ = load_for_serving(checkpoint, device=device)
    trie = SidTrie(np.asarray(list(assignments.values())), codebook_size)
    return HFBackend(glm, trie, num_beams=k)


def warm_start(model_cfg, init_from: str | Path | None, console: Console) -> Path | None:
    """``init_from`` when that model speaks the SIDs ``model_cfg`` trains on, else None (a fresh model:
    after a SID refit the old model's tokens mean other episodes)."""
    from glide_model.llm.checkpoint import Manifest

    if init_from is None:
        return None
    theirs = Manifest.read(init_from)
    if (theirs.levels, theirs.codebook_size, theirs.variant, theirs.quantizer_version) != (
            model_cfg.levels, model_cfg.codebook_size, model_cfg.variant, model_cfg.quantizer_version):
        console.print(f"[yellow]training from scratch[/]: {init_from} speaks quantizer {theirs.quantizer_version} "
                      f"({theirs.variant}), this run {model_cfg.quantizer_version} ({model_cfg.variant})")
        return None
    console.print(f"[bold]model[/] fine-tuning from {init_from}")
    return Path(init_from)


def _train_model(settings: GlideSettings, cfg: TrainJobConfig, data: JobData, out_dir: Path,
                 init_from: str | Path | None = None, console: Console | None = None):
    """Ground + instruction-tune on the job's examples (or fine-tune ``init_from`` when it speaks the
    same SIDs), validating on its held-out sample under the serving rules."""
    from glide_model.evaluation.metrics import evaluate
    from glide_model.llm.pipeline import train_glide

    model_cfg = glide_model_config(cfg, data.quantizer_version, catalog_version(data.episodes),
                                   defaults={"out_dir": str(out_dir), "data_dir": str(settings.data_dir)},
                                   cf_version=data.cf_model.version)
    model_cfg.init_from = warm_start(model_cfg, init_from, console or Console(quiet=True))
    k = cfg.window.k

    def validate(backend, val_examples):
        recs = glide_recommender(data, backend).recommend(val_examples, k)
        return {f"recall@{k}": float(evaluate(recs, val_examples, k).loc["overall", f"recall@{k}"])}

    return model_cfg, train_glide(model_cfg, data.episodes, data.assignments, data.train_ex, data.val_ex,
                                  validate=validate)


def run_train_job(settings: GlideSettings, cfg: TrainJobConfig, console: Console | None = None, *,
                  publish_cf: bool = True, init_from: str | Path | None = None) -> dict[str, Any]:
    """Run the whole job; returns the run record (also written to <out_dir>/run.json).

    With ``publish_cf`` the CF model's vectors go to the online store (glide_app/jobs/cf_publish.py)
    before the model is registered, when this model is promoted or none is: the online vectors stay
    those of a promoted incumbent this run does not replace. ``glide retrain`` passes False and
    publishes only a promoted challenger's. The CF model is saved under <out_dir>/cf either way."""
    from glide.catalog import CatalogDB
    from glide_app.jobs.cf_publish import publish_cf_vectors
    from glide_model.llm.checkpoint import export_merged

    console = console or Console()
    started = time.perf_counter()
    run_name = cfg.run_name or time.strftime("glide-%Y%m%d-%H%M%S")
    out_dir = settings.data_dir / "runs" / run_name
    out_dir.mkdir(parents=True, exist_ok=True)
    db = CatalogDB.from_settings(settings)
    db.migrate()

    phases: dict[str, float] = {}  # wall seconds of each part of the job, recorded with the run

    def lap(name: str, since: float) -> float:
        now = time.perf_counter()
        phases[name] = round(now - since, 1)
        return now

    with db.job_run("train", params=to_dict(cfg)):
        data = prepare_job_data(settings, cfg, db, console)
        t = lap("prepare_data", started)
        sid_shape = sid_structure(data.assignments, cfg.sids.codebook_size)
        model_cfg, result = _train_model(settings, cfg, data, out_dir, init_from, console)
        t = lap("train_model", t)

        k = cfg.window.k
        backend = serving_backend(result.checkpoint, data.assignments, model_cfg.codebook_size, k, model_cfg.device)
        comparison = compare_to_baselines(data, backend, f"glide ({model_cfg.variant})", k, console,
                                          out_dir / "metrics.png")
        t = lap("score_held_out", t)

        export_dir = export_merged(result.checkpoint, out_dir / "export")
        lap("export", t)
        glide_recall, pop_recall = comparison[f"glide_recall@{k}"], comparison[f"popularity_recall@{k}"]
        promote = cfg.promote and glide_recall > pop_recall
        cf_dir = data.cf_model.save(out_dir / "cf")  # what `glide retrain` publishes if it promotes this run
        online_cf_users = 0
        if publish_cf and (promote or db.promoted_model() is None):  # before promotion: see retrain.py
            online_cf_users = publish_cf_vectors(settings, data.cf_model)
            console.print(f"[bold]feast[/] online CF vectors {online_cf_users} ({data.cf_model.version})")
        window = data.window
        record = {
            "run": run_name, "export": str(export_dir), "quantizer_version": data.quantizer_version,
            "catalog_version": model_cfg.catalog_version, "sids": sid_shape,
            "cf_version": data.cf_model.version, "cf_model": str(cf_dir), "cf_users": len(data.cf_model.user_ids),
            "online_cf_users": online_cf_users,
            "fine_tuned_from": str(model_cfg.init_from) if model_cfg.init_from else None,
            "examples": {"train": len(data.train_ex), "val": len(data.val_ex)},
            "sampling": data.sampling.to_record(), "grounding": result.grounding, "stages": result.stages,
            "validations": result.validations, **comparison,
            "window": {name: str(ts) for name, ts in window.items()},
            "seconds": round(time.perf_counter() - started, 1), "phase_seconds": phases,
        }
        (out_dir / "run.json").write_text(json.dumps(record, indent=2, default=str))
        db.register_model(run_name, str(export_dir), {"glide_recall": glide_recall, "popularity_recall": pop_recall},
                          to_dict(cfg), (window["t0"].to_pydatetime(), window["t1"].to_pydatetime()))
        if promote:
            db.promote_model(run_name)
            record["promoted"] = True
        return record

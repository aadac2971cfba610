"""The loop's acceptance test (`pytest -m parity`): a world replayed through the real broker into the
stream worker, GLIDE trained from what the streams recorded (the offline event log), then for 60
sampled (user, time, mode):

a. the model input the GLIDE worker builds from the online store (token ids, soft-prompt vector,
   allowed SIDs) equals the one training/evaluation builds from the offline store by a
   point-in-time join at the same time;
b. the candidates the running worker caches for a session start equal the list evaluation scores
   for the same (user, time, mode).

Any change that makes training and serving diverge fails here; a planted skew (a shorter history
offline) shows the comparison is not blind.
"""

from __future__ import annotations

import shutil

import pandas as pd
import pytest
from rich.console import Console

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide.event_log import open_event_log
from glide.world.generator import WorldConfig, generate_world
from glide_app.jobs import parity
from glide_app.jobs.train import prepare_job_data, run_train_job, sids_for_catalog
from infra import stack
from streams.progress import wait_processed
from streams.replay import push_profiles, replay_world
from tests.glide_app.jobs.test_train_job import tiny_job_config
from tests.streams.helpers import start_worker, stop_worker

pytestmark = pytest.mark.parity
SAMPLE = 60


@pytest.fixture(scope="module")
def loop(tmp_path_factory):
    """Replay -> streams -> event log -> train: the settings, world, replay stats and run record."""
    data_dir = tmp_path_factory.mktemp("parity")
    settings = load_settings(data_dir=str(data_dir), profile="embedded")
    status = stack.up(settings)
    worker = None
    try:
        world = generate_world(WorldConfig(users=SAMPLE + 10, days=30, shows=40, episodes_per_show=8, seed=3))
        world.save(data_dir / "world")
        db = CatalogDB.from_settings(settings)
        db.migrate()
        db.upsert_shows(world.shows)  # the catalog the streams resolve episodes against
        db.upsert_episodes(world.episodes)
        cfg = tiny_job_config()  # its world settings unused: the world here is replayed, not backfilled
        sids_for_catalog(settings, db, world.episodes, cfg.sids, Console(quiet=True))
        push_profiles(settings, world.users, world.start)
        worker = start_worker(settings)
        stats = replay_world(world, status.bootstrap, sessions=False)
        wait_processed(settings, stats.end_offsets, timeout=180, procs=[worker])
        stop_worker(worker)
        record = run_train_job(settings, cfg, Console(quiet=True))
        yield settings, world, stats, record, cfg
    finally:
        if worker is not None:
            stop_worker(worker, kill=True)
        stack.down(settings)


def test_the_log_holds_every_replayed_listen_once(loop):
    settings, world, stats, _, _ = loop
    logged = open_event_log(settings).read("listens")
    assert len(logged) == stats.listens == len(world.listens)
    assert sorted(logged["event_id"]) == sorted(world.listens["event_id"])


def test_training_without_the_world_folder_gives_the_same_examples(loop):
    settings, _, _, _, cfg = loop
    db = CatalogDB.from_settings(settings)
    before = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False)
    shutil.rmtree(settings.data_dir / "world")
    after = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False)
    cols = ["user_id", "ts", "target_episode_id", "mode"]
    assert len(before.train_ex) > 0 and before.train_ex[cols].equals(after.train_ex[cols])
    assert before.val_ex[cols].equals(after.val_ex[cols])


@pytest.fixture(scope="module")
def sides(loop):
    """The serving side (the worker's service) and the evaluation side (the job's data) at one time."""
    from glide_app.jobs.train import glide_recommender, serving_backend
    from streams.feature_store import open_store
    from streams.serving import build_service

    settings, _, stats, record, cfg = loop
    db = CatalogDB.from_settings(settings)
    data = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False)
    at = pd.Timestamp(stats.final_ts_ms + 1, unit="ms", tz="UTC")
    pairs = parity.sample_requests(data.listens, SAMPLE, at)
    service = build_service(settings, record["export"])
    backend = serving_backend(record["export"], data.assignments, cfg.sids.codebook_size, cfg.window.k, "cpu")
    recommender = glide_recommender(parity.serving_view(data, db), backend)
    store = open_store(settings)
    history_len = int(data.sampling.history_len)
    return settings, service, recommender, store, pairs, history_len, data


def test_served_model_input_equals_the_training_input(sides):
    _, service, recommender, store, pairs, history_len, data = sides
    online, online_facts = parity.online_requests(service, pairs)
    offline_rows = parity.offline_requests(store, pairs, history_len)
    # The job's own held-out examples carry every input column these rows do (what evaluation reads).
    assert set(offline_rows.columns) - {"event_id"} <= set(data.val_ex.columns)
    report = parity.compare_inputs(service, recommender, service.backend.glm.prompts, online, online_facts,
                                   offline_rows)
    assert report.checked == len(pairs) >= 50
    assert report.mismatches == []
    # The comparison sees real differences: a history two episodes shorter offline is a skew.
    skewed = parity.offline_requests(store, pairs, history_len - 2)
    planted = parity.compare_inputs(service, recommender, service.backend.glm.prompts, online, online_facts, skewed)
    assert {m["field"] for m in planted.mismatches} >= {"token_ids"}


def test_cached_candidates_equal_the_evaluated_ones(sides):
    settings, service, recommender, store, pairs, history_len, _ = sides
    served = parity.serve_sessions(settings, service, pairs, group_id="glide-parity")
    rows = parity.offline_requests(store, pairs, history_len)
    scored = dict(zip(pairs["user_id"], recommender.recommend(rows, service.config.num_candidates)))
    report = parity.compare_candidates(served, scored)
    assert report.checked == len(pairs) >= 50
    assert sum(len(v) for v in scored.values()) > 0
    assert report.mismatches == []


def test_retrain_on_a_running_stack_fine_tunes_gates_and_publishes_cf_first(loop):
    """Events keep flowing while `glide retrain` reads the latest logged window: it refits CF,
    refreshes popularity from the log, fine-tunes the promoted model, promotes (min_gain -1: any
    challenger wins) with its CF vectors online first; a rerun is safe and leaves a registry row too."""
    import asyncio
    import dataclasses
    import threading

    from glide_app.jobs.retrain import run_retrain_job
    from glide_model.cf import CFModel
    from glide_model.llm.checkpoint import Manifest
    from glide_model.evaluation.baselines import episode_popularity
    from streams.feature_store import online_features, open_store
    from streams.replay import plan, produce

    settings, world, stats, record, cfg = loop
    db = CatalogDB.from_settings(settings)
    db.promote_model(record["run"])
    # A week more of listening: the last week's listens again, seven days later, as new events.
    later = world.listens[world.listens["ts"] > world.listens["ts"].max() - pd.Timedelta(days=7)].copy()
    later["ts"] += pd.Timedelta(days=7)
    later["event_id"] = "w2-" + later["event_id"]
    records, more = plan(dataclasses.replace(world, listens=later), sessions=False, catalog=False, partitions=4)
    worker = start_worker(settings, name="worker-retrain")
    flowing = threading.Thread(target=lambda: asyncio.run(produce(records, settings.bootstrap_servers(), rate=400,
                                                                  end_offsets=more.end_offsets)), daemon=True)
    try:
        flowing.start()
        first = run_retrain_job(settings, cfg, Console(quiet=True), min_gain=-1.0)
        flowing.join(120)
        wait_processed(settings, more.end_offsets, timeout=180, procs=[worker])
        again = run_retrain_job(settings, cfg, Console(quiet=True), min_gain=-1.0)
    finally:
        stop_worker(worker)
    assert first["incumbent"] == record["run"] and first["fine_tuned_from"] == record["export"]
    assert first["promoted"] and again["promoted"] and again["incumbent"] == first["run"]
    assert again["fine_tuned_from"] == first["export"]
    assert {record["run"], first["run"], again["run"]} <= {m["version"] for m in db.list_models()}
    assert db.promoted_model()["version"] == again["run"]
    # The promoted model's CF space is the one online, for every user CF was fitted on.
    assert Manifest.read(again["export"]).cf_version == again["cf_version"]
    store = open_store(settings)
    users = CFModel.load(again["cf_model"]).user_ids.tolist()
    got = online_features(store, ["user_cf_embedding:cf_version"], [{"user_id": u} for u in users])
    assert got["cf_version"] == [again["cf_version"]] * len(users) == [again["cf_version"]] * again["online_cf_users"]
    # The collision tie-breaker the worker reads is the distinct listeners in the log.
    logged = open_event_log(settings).read("listens")
    in_db = db.episodes_frame().set_index("episode_id")["popularity"]
    assert len(logged) == len(world.listens) + len(later)
    pop = episode_popularity(logged)
    assert (in_db.reindex(pop.index) == pop.astype(float)).all() and (in_db.drop(pop.index) == 0).all()

"""The offline training job end to end on a tiny model: every stage runs from the feature store,
the run is recorded in the model registry and the merged export serves with plain transformers."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from rich.console import Console

from glide.catalog import CatalogDB
from glide.config import load_settings
from glide_app.jobs.config_io import ConfigFileError
from glide_app.jobs.train import load_job_config, run_train_job

CONFIG = Path(__file__).resolve().parents[3] / "configs" / "train_tiny.yaml"


def tiny_job_config():
    cfg = load_job_config(CONFIG)
    cfg.world = {"users": 60, "days": 30, "seed": 1, "shows": 40, "episodes_per_show": 8}
    cfg.model["instruct"] = {"max_steps": 6, "batch_size": 8, "ckpt_every": 3}
    cfg.model["grounding"] = {"stage1": {"max_steps": 4}, "stage2": {"max_steps": 4}, "eval_episodes": 16}
    cfg.window.max_val_examples = 20
    return cfg


@pytest.fixture(scope="module")
def trained(tmp_path_factory):
    data_dir = tmp_path_factory.mktemp("train")
    settings = load_settings(data_dir=str(data_dir))
    cfg = tiny_job_config()
    backfill(settings, cfg)
    record = run_train_job(settings, cfg, Console(quiet=True))
    return settings, record


def backfill(settings, cfg) -> None:
    """The job reads only the event log and the catalog DB: fill them as the streams would have."""
    from glide_app.jobs.job_inputs import backfill_world, saved_or_new_world

    db = CatalogDB.from_settings(settings)
    db.migrate()
    backfill_world(settings, saved_or_new_world(settings.data_dir / "world", cfg.world), db)


def test_job_records_every_stage_and_registers_the_model(trained):
    settings, record = trained
    assert record["examples"]["train"] > 0 and record["examples"]["val"] > 0
    assert set(record["grounding"]) >= {"before", "after_stage1", "after_stage2"}
    assert {"grounding_stage1", "grounding_stage2", "instruct"} <= set(record["stages"])
    # Where the job's time went: each part timed, together no more than the whole job.
    phases = record["phase_seconds"]
    assert set(phases) == {"prepare_data", "train_model", "score_held_out", "export"}
    assert all(v >= 0 for v in phases.values()) and sum(phases.values()) <= record["seconds"] + 0.5
    assert all(record["stages"][s]["train_seconds"] <= phases["train_model"] for s in record["stages"])
    assert all(g["seconds"] >= 0 for g in record["grounding"].values())
    assert {"glide (glide)", "popularity", "cf", "topic_popularity"} <= set(record["metrics"])
    assert record["sampling"]["habit_threshold_seconds"] == 600
    per_prefix = record["sids"]["items_per_prefix"]
    assert len(per_prefix) == 4 and per_prefix == sorted(per_prefix, reverse=True) and per_prefix[-1] >= 1.0
    gap = record["glide_minus_popularity"]
    assert gap["n"] == record["examples"]["val"] and gap["lo"] <= gap["diff"] <= gap["hi"]
    assert gap["diff"] == pytest.approx(record["glide_recall@30"] - record["popularity_recall@30"])
    db = CatalogDB(settings.catalog_db_url)
    model = db.get_model(record["run"])
    assert model is not None and model["artifact_path"] == record["export"]
    assert db.job_runs("train")[0]["status"] == "succeeded"
    run_json = json.loads((settings.data_dir / "runs" / record["run"] / "run.json").read_text())
    assert run_json["quantizer_version"] == record["quantizer_version"]
    assert (settings.data_dir / "runs" / record["run"] / "metrics.png").stat().st_size > 0


def _online_cf(settings, users):
    from streams.feature_store import online_features, open_store

    got = online_features(open_store(settings), ["user_cf_embedding:cf_embedding", "user_cf_embedding:cf_version"],
                          [{"user_id": u} for u in users])
    return got["cf_embedding"], got["cf_version"]


def test_the_job_writes_every_users_cf_vector_online_with_the_models_cf_version(trained):
    """What the worker reads: a vector for every user CF was fitted on, of the CF version the run
    records and the model's manifest names (worker: streams/candidates.py)."""
    from glide_model.cf import CFModel
    from glide_model.llm.checkpoint import Manifest

    settings, record = trained
    cf = CFModel.load(record["cf_model"])
    assert record["cf_version"] == cf.version and record["online_cf_users"] == len(cf.user_ids) > 0
    assert Manifest.read(record["export"]).cf_version == record["cf_version"]
    run_json = json.loads((settings.data_dir / "runs" / record["run"] / "run.json").read_text())
    assert (run_json["cf_version"], run_json["online_cf_users"]) == (record["cf_version"], record["online_cf_users"])
    vectors, versions = _online_cf(settings, cf.user_ids.tolist())
    assert set(versions) == {record["cf_version"]}
    np.testing.assert_allclose(np.asarray(vectors, dtype=np.float32), cf.user_factors, rtol=1e-6)
    assert (_online_cf(settings, ["nobody"])[0]) == [None]


def test_merged_export_loads_with_plain_transformers_and_speaks_sids(trained):
    from transformers import AutoModelForCausalLM, AutoTokenizer

    _, record = trained
    model = AutoModelForCausalLM.from_pretrained(record["export"])
    tokenizer = AutoTokenizer.from_pretrained(record["export"])
    ids = tokenizer.convert_tokens_to_ids(["<SID_1=0>", "<SID_4=31>"])
    assert all(i != tokenizer.unk_token_id for i in ids)
    assert model.get_input_embeddings().num_embeddings >= len(tokenizer)
    assert np.isfinite(model.get_input_embeddings().weight[ids].detach().numpy()).all()


def test_config_file_with_an_unknown_key_is_a_clear_error(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("window: {cf_dayz: 3}\n")
    with pytest.raises(ConfigFileError, match="cf_dayz"):
        load_job_config(bad)


def test_evaluate_rescoring_the_registered_model_matches_the_job_and_can_widen(trained):
    """`glide evaluate` rebuilds the job's held-out window from the store it left: same listens, same
    GLIDE and popularity recall; a wider sample scores more listens."""
    from glide_app.jobs.evaluate import run_evaluate_job

    settings, record = trained
    again = run_evaluate_job(settings, record["run"], console=Console(quiet=True))
    assert again["model"] == record["run"] and again["examples"] == record["examples"]["val"]
    assert again["glide_recall@30"] == pytest.approx(record["glide_recall@30"])
    assert again["popularity_recall@30"] == pytest.approx(record["popularity_recall@30"])
    wider = run_evaluate_job(settings, None, max_examples=1000, console=Console(quiet=True))
    assert wider["examples"] > record["examples"]["val"]
    assert wider["glide_minus_popularity"]["n"] == wider["examples"]
    assert CatalogDB(settings.catalog_db_url).job_runs("evaluate")[0]["status"] == "succeeded"


def test_evaluate_scores_the_model_in_another_serving_precision_on_the_same_listens(trained):
    """`glide evaluate --dtype bfloat16`: the same held-out listens, the model held in bfloat16 (the
    check before setting model.serving_dtype); the export's own precision is the default."""
    from click.testing import CliRunner

    from glide_app.commands.evaluate import evaluate

    settings, record = trained
    runner = CliRunner()
    args = ["--model", record["run"], "--data-dir", str(settings.data_dir), "--json"]
    default = runner.invoke(evaluate, args)
    half = runner.invoke(evaluate, [*args, "--dtype", "bfloat16"])
    assert default.exit_code == 0 and half.exit_code == 0, default.output + half.output
    default, half = (json.loads(r.stdout.strip().splitlines()[-1]) for r in (default, half))
    assert (default["serving_dtype"], half["serving_dtype"]) == ("float32", "bfloat16")
    assert half["examples"] == default["examples"] == record["examples"]["val"]
    assert half["popularity_recall@30"] == default["popularity_recall@30"]  # same listens, same baseline
    assert 0 <= half["glide_recall@30"] <= 1
    bad = runner.invoke(evaluate, ["--source", "scientific", "--dtype", "bfloat16"])
    assert bad.exit_code == 2 and "--dtype" in bad.output


def test_evaluate_names_a_missing_model(trained):
    from glide.config import ConfigError
    from glide_app.jobs.evaluate import run_evaluate_job

    settings, _ = trained
    with pytest.raises(ConfigError, match="no model 'nope'"):
        run_evaluate_job(settings, "nope", console=Console(quiet=True))


def test_review_export_shows_the_registered_glide_model_against_a_baseline_blind(trained, tmp_path):
    """With a model in the registry, the review packet holds GLIDE's lists (as serving would resolve
    them: none of the listener's recent episodes) beside popularity's, blinded as A/B."""
    import pandas as pd

    from glide.habits import RECENT_SIDS_CAP

    from glide_app.jobs.review import ReviewExportConfig, export_review

    settings, record = trained
    packet = tmp_path / "packet"
    summary = export_review(settings, packet, None, None, ReviewExportConfig(users=4, k=5, judge=False))
    assert summary["systems"] == ["glide", "popularity"] and summary["model_version"] == record["run"]
    key = json.loads(Path(summary["key"]).read_text())
    rows = pd.read_csv(packet / "review.csv")
    assert len(rows) == summary["items"] and set(rows["list"]) == {"A", "B"}
    assert record["run"] not in (packet / "review.html").read_text() + (packet / "review.csv").read_text()
    assert not rows.astype(str).apply(lambda c: c.isin(["glide", "popularity"])).any().any()
    items = pd.DataFrame(key["items"].values())
    assert set(items["system"]) == {"glide", "popularity"} and items["user_id"].nunique() == 4
    from glide.event_log import open_event_log

    listens = open_event_log(settings).read("listens")  # the log, read as the job reads it
    for user in key["users"].values():
        as_of = pd.Timestamp(user["as_of"])
        mine = listens[listens["user_id"] == user["user_id"]]
        assert (mine["ts"] > as_of).any()  # shown before a listen that was held out
        recent = mine[mine["ts"] <= as_of].sort_values("ts", kind="stable").tail(RECENT_SIDS_CAP // 2)
        heard = set(recent["episode_id"])
        served = items.loc[(items["user_id"] == user["user_id"]) & (items["system"] == "glide"), "episode_id"]
        assert len(served) > 0 and not heard & set(served)
    by_system = items.groupby("system")["episode_id"].apply(set)
    assert by_system["glide"] != by_system["popularity"]


def _cf_users(record) -> list[str]:
    from glide_model.cf import CFModel

    return CFModel.load(record["cf_model"]).user_ids.tolist()


def _spy_on_publish_and_promote(monkeypatch, settings, probe_user: str):
    """Record, in order, the CF versions published online and the models promoted, with the CF
    version ``probe_user`` has online at the moment of each promotion."""
    import glide_app.jobs.cf_publish as cf_publish

    calls = []
    publish, promote = cf_publish.publish_cf_vectors, CatalogDB.promote_model

    def spy_publish(settings_, cf_model, *args, **kw):
        calls.append(("publish", cf_model.version))
        return publish(settings_, cf_model, *args, **kw)

    def spy_promote(self, version):
        calls.append(("promote", version, _online_cf(settings, [probe_user])[1][0]))
        return promote(self, version)

    monkeypatch.setattr(cf_publish, "publish_cf_vectors", spy_publish)
    monkeypatch.setattr(CatalogDB, "promote_model", spy_promote)
    return calls


def test_a_challenger_that_is_not_promoted_leaves_the_incumbents_cf_vectors_online(trained, monkeypatch):
    from glide_app.jobs.retrain import run_retrain_job

    settings, first = trained
    CatalogDB(settings.catalog_db_url).promote_model(first["run"])
    calls = _spy_on_publish_and_promote(monkeypatch, settings, _cf_users(first)[0])
    cfg = tiny_job_config()
    cfg.cf = {"seed": 1}  # another CF model: its vectors must not reach the online store
    record = run_retrain_job(settings, cfg, Console(quiet=True), min_gain=1.0)  # recall gain > 1: never promoted
    assert not record["promoted"] and record["cf_version"] != first["cf_version"]
    assert calls == [] and record["online_cf_users"] == 0
    assert set(_online_cf(settings, _cf_users(first))[1]) == {first["cf_version"]}


def test_retrain_scores_the_incumbent_on_the_challengers_listens_and_promotes_by_the_rule(trained, monkeypatch):
    from glide_app.jobs.retrain import run_retrain_job

    from glide_app.jobs.train import prepare_job_data

    settings, first = trained
    db = CatalogDB(settings.catalog_db_url)
    db.promote_model(first["run"])
    calls = _spy_on_publish_and_promote(monkeypatch, settings, _cf_users(first)[0])
    # The challenger refits SIDs with another K: the store's recent SIDs are then in its code space,
    # and scoring the incumbent must re-read history codes under the incumbent's own quantizer.
    cfg = tiny_job_config()
    cfg.sids.codebook_size = 16
    # min_gain -1: any challenger beats popularity and the incumbent, so it must be promoted.
    record = run_retrain_job(settings, cfg, Console(quiet=True), min_gain=-1.0)
    assert record["incumbent"] == first["run"] and record["run"] != first["run"]
    assert record["quantizer_version"] != first["quantizer_version"]
    pinned = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False,
                              quantizer_version=first["quantizer_version"])
    store_codes = prepare_job_data(settings, cfg, db, Console(quiet=True), write_features=False)
    assert store_codes.quantizer_version == record["quantizer_version"]
    old_sids = db.sid_assignments(first["quantizer_version"])
    for ids, codes in zip(pinned.val_ex["history_episode_ids"], pinned.val_ex["history_codes"]):
        assert [tuple(c) for c in codes] == [old_sids[e] for e in ids]
    assert any(list(map(tuple, a)) != list(map(tuple, b))
               for a, b in zip(pinned.val_ex["history_codes"], store_codes.val_ex["history_codes"]))
    assert 0.0 <= record["incumbent_recall@30"] <= 1.0
    assert record["promoted"] and db.promoted_model()["version"] == record["run"]
    # The challenger's CF vectors went online once, BEFORE its promotion (the worker of the promoted
    # model must never read another CF version's vectors).
    assert calls == [("publish", record["cf_version"]), ("promote", record["run"], record["cf_version"])]
    assert record["online_cf_users"] == len(_cf_users(record))
    assert set(_online_cf(settings, _cf_users(record))[1]) == {record["cf_version"]}
    # Same window and sample as the challenger's job: the incumbent's evaluation scored the same listens.
    scored = json.loads(sorted((settings.data_dir / "runs" / first["run"]).glob("evaluate-*.json"))[-1].read_text())
    assert scored["examples"] == record["examples"]["val"]
    assert scored["glide_recall@30"] == pytest.approx(record["incumbent_recall@30"])


def test_jobs_read_only_the_log_and_the_catalog(trained):
    """A deployment has no world files: with the world folder gone the job builds the same examples."""
    import shutil

    from glide_app.jobs.train import prepare_job_data

    settings, _ = trained
    db = CatalogDB.from_settings(settings)
    before = prepare_job_data(settings, tiny_job_config(), db, Console(quiet=True), write_features=False)
    shutil.rmtree(settings.data_dir / "world")
    after = prepare_job_data(settings, tiny_job_config(), db, Console(quiet=True), write_features=False)
    assert len(before.train_ex) > 0
    for a, b in ((before.train_ex, after.train_ex), (before.val_ex, after.val_ex)):
        cols = ["user_id", "target_episode_id", "ts", "mode"]
        assert a[cols].equals(b[cols])
        assert a["history_episode_ids"].map(list).tolist() == b["history_episode_ids"].map(list).tolist()


def test_an_empty_window_or_a_corrupt_log_partition_is_a_clear_error_and_promotes_nothing(tmp_path):
    from glide.event_log import EventLogError

    settings = load_settings(data_dir=str(tmp_path))
    cfg = tiny_job_config()
    with pytest.raises(EventLogError, match="empty training window"):
        run_train_job(settings, cfg, Console(quiet=True))
    cfg.world = {**cfg.world, "users": 20, "days": 14}
    backfill(settings, cfg)
    victim = sorted((tmp_path / "event_log" / "listens").glob("date=*/*.parquet"))[3]
    victim.write_bytes(b"PAR1 truncated")
    with pytest.raises(EventLogError, match=f"{victim}.*corrupt"):
        run_train_job(settings, cfg, Console(quiet=True))
    db = CatalogDB.from_settings(settings)
    assert db.promoted_model() is None and [r["status"] for r in db.job_runs("train")] == ["failed", "failed"]


@pytest.mark.parametrize(
    ("challenger", "popularity", "incumbent", "gain", "promote"),
    [
        (0.30, 0.25, None, 0.0, True),  # no incumbent: popularity is the bar
        (0.30, 0.31, None, 0.0, False),
        (0.30, 0.25, 0.29, 0.0, True),
        (0.30, 0.25, 0.30, 0.0, False),  # a tie keeps the incumbent
        (0.30, 0.25, 0.29, 0.02, False),  # must beat it by min_gain
    ],
)
def test_promotion_rule(challenger, popularity, incumbent, gain, promote):
    from glide_app.jobs.retrain import decide

    decision = decide(challenger, popularity, incumbent, gain)
    assert decision.promote is promote and decision.reason


def test_evaluation_reports_never_overwrite_each_other(tmp_path):
    from glide_app.jobs.evaluate import free_stem

    assert free_stem(tmp_path, "evaluate-20261124-101010") == "evaluate-20261124-101010"
    (tmp_path / "evaluate-20261124-101010.json").write_text("{}")
    assert free_stem(tmp_path, "evaluate-20261124-101010") == "evaluate-20261124-101010-2"
    (tmp_path / "evaluate-20261124-101010-2.png").write_bytes(b"")
    assert free_stem(tmp_path, "evaluate-20261124-101010") == "evaluate-20261124-101010-3"

"""Quantizers, SID assignments, model versions and job runs, on SQLite and PostgreSQL."""

from __future__ import annotations

from datetime import datetime, timedelta, timezone

import numpy as np
import pytest
import sqlalchemy as sa

from glide.catalog import CatalogDB, CatalogError
from glide.catalog import schema as t

WINDOW = (datetime(2026, 1, 1, tzinfo=timezone.utc), datetime(2026, 1, 29, tzinfo=timezone.utc))


def _catalog(db: CatalogDB) -> None:
    db.upsert_shows([{"show_id": "s1", "title": "Show"}])
    db.upsert_episodes(
        [
            {"episode_id": f"ep_{i}", "show_id": "s1", "title": f"e{i}", "published_at": WINDOW[0], "popularity": p}
            for i, p in enumerate([1.0, 5.0, 3.0, 0.5])
        ]
    )


def test_quantizer_and_sid_assignments(db: CatalogDB) -> None:
    _catalog(db)
    db.register_quantizer("rk-1", "rkmeans", "/artifacts/rk-1.safetensors", levels=3, codebook_size=8,
                          metrics={"collision_rate": np.float32(0.25), "per_level": np.array([1, 2])})
    q = db.get_quantizer("rk-1")
    assert (q["kind"], q["levels"], q["codebook_size"]) == ("rkmeans", 3, 8)
    assert q["metrics"] == {"collision_rate": 0.25, "per_level": [1, 2]}

    sids = {"ep_0": (1, 2, 3), "ep_1": (1, 2, 3), "ep_2": [1, 2, 3], "ep_3": np.array([7, 0, 1]), "ep_gone": (1, 2, 4)}
    assert db.save_sid_assignments("rk-1", sids) == 5
    got = db.sid_assignments("rk-1")
    assert got["ep_3"] == (7, 0, 1) and got["ep_0"] == (1, 2, 3) and len(got) == 5
    assert all(isinstance(c, int) for codes in got.values() for c in codes)

    # Collision group, most popular first; an assignment without a catalog episode comes last.
    assert db.episodes_with_sid("rk-1", (1, 2, 3)) == ["ep_1", "ep_2", "ep_0"]
    assert db.episodes_with_sid("rk-1", (1, 2, 4)) == ["ep_gone"]
    assert db.episodes_with_sid("rk-1", (0, 0, 0)) == []

    # Replace-or-insert: ep_0 moves, ep_new appears, the rest stay.
    db.save_sid_assignments("rk-1", {"ep_0": (7, 0, 1), "ep_new": (5, 5, 5)})
    got = db.sid_assignments("rk-1")
    assert len(got) == 6 and got["ep_0"] == (7, 0, 1) and got["ep_1"] == (1, 2, 3)
    assert db.episodes_with_sid("rk-1", (7, 0, 1)) == ["ep_0", "ep_3"]

    # Assignments are per quantizer version.
    db.register_quantizer("rq-2", "rqvae", "/artifacts/rq-2", levels=4, codebook_size=256, metrics={})
    db.save_sid_assignments("rq-2", {"ep_0": (255, 0, 13, 65)})
    assert db.sid_assignments("rq-2") == {"ep_0": (255, 0, 13, 65)}
    assert db.episodes_with_sid("rk-1", (7, 0, 1)) == ["ep_0", "ep_3"]
    assert [q["version"] for q in db.list_quantizers()] == ["rq-2", "rk-1"]


def test_sid_validation(db: CatalogDB) -> None:
    db.register_quantizer("rk-1", "rkmeans", "/a", levels=2, codebook_size=4, metrics={})
    with pytest.raises(CatalogError, match=r"quantizer version 'nope' is not registered \(known: rk-1\)"):
        db.save_sid_assignments("nope", {"ep_0": (1, 2)})
    with pytest.raises(CatalogError, match=r"episode 'ep_0'.*expected 2 codes"):
        db.save_sid_assignments("rk-1", {"ep_0": (1, 2, 3)})
    with pytest.raises(CatalogError, match=r"code 4 is outside \[0, 4\)"):
        db.save_sid_assignments("rk-1", {"ep_0": (1, 4)})
    with pytest.raises(CatalogError, match=r"codes must be ints"):
        db.save_sid_assignments("rk-1", {"ep_0": (1, 2.5)})
    with pytest.raises(CatalogError, match=r"expected 2 codes"):
        db.episodes_with_sid("rk-1", (1,))
    with pytest.raises(CatalogError, match="not registered"):
        db.sid_assignments("nope")
    assert db.sid_assignments("rk-1") == {}  # nothing half-written

    # Same shape: metrics/path update; a different shape would orphan the SIDs, so it is refused.
    db.register_quantizer("rk-1", "rkmeans", "/b", levels=2, codebook_size=4, metrics={"x": 1})
    assert db.get_quantizer("rk-1")["artifact_path"] == "/b"
    with pytest.raises(CatalogError, match=r"already registered with levels=2, codebook_size=4"):
        db.register_quantizer("rk-1", "rkmeans", "/b", levels=3, codebook_size=4, metrics={})
    with pytest.raises(CatalogError, match=r"levels must be an int in \[1, 16\]"):
        db.register_quantizer("rk-2", "rkmeans", "/b", levels=0, codebook_size=4, metrics={})
    with pytest.raises(CatalogError, match=r"metrics\['loss'\] is nan"):
        db.register_quantizer("rk-2", "rkmeans", "/b", levels=2, codebook_size=4, metrics={"loss": float("nan")})


def test_promote_keeps_exactly_one_promoted(db: CatalogDB) -> None:
    assert db.promoted_model() is None and db.list_models() == []
    for v in ("m1", "m2", "m3"):
        db.register_model(v, f"/models/{v}", metrics={"recall@30": 0.1}, params={"lr": 1e-4}, data_window=WINDOW)
    assert [m["version"] for m in db.list_models()] == ["m3", "m2", "m1"]
    assert not any(m["promoted"] for m in db.list_models())

    db.promote_model("m1")
    db.promote_model("m2")
    db.promote_model("m2")  # idempotent
    assert [m["version"] for m in db.list_models() if m["promoted"]] == ["m2"]
    best = db.promoted_model()
    assert best["version"] == "m2" and best["artifact_path"] == "/models/m2"
    assert best["params"] == {"lr": 1e-4} and best["metrics"] == {"recall@30": 0.1}
    assert (best["data_window_start"], best["data_window_end"]) == WINDOW

    with pytest.raises(CatalogError, match=r"cannot promote 'm9': not a registered model version \(known: m1, m2, m3\)"):
        db.promote_model("m9")
    assert db.promoted_model()["version"] == "m2"

    # The database itself refuses a second promoted row, whoever writes it.
    with pytest.raises(sa.exc.IntegrityError):
        with db.engine.begin() as conn:
            conn.execute(sa.update(t.model_versions).where(t.model_versions.c.version == "m3").values(promoted=True))


def test_register_model_validation(db: CatalogDB) -> None:
    db.register_model("m1", "/m1", metrics={}, params={}, data_window=WINDOW)
    with pytest.raises(CatalogError, match="'m1' is already registered"):
        db.register_model("m1", "/m1", metrics={}, params={}, data_window=WINDOW)
    with pytest.raises(CatalogError, match="timezone-naive"):
        db.register_model("m2", "/m2", metrics={}, params={}, data_window=(datetime(2026, 1, 1), WINDOW[1]))
    with pytest.raises(CatalogError, match="is after its end"):
        db.register_model("m2", "/m2", metrics={}, params={}, data_window=WINDOW[::-1])
    with pytest.raises(CatalogError, match=r"data_window must be a \(start, end\) pair"):
        db.register_model("m2", "/m2", metrics={}, params={}, data_window=WINDOW[0])
    with pytest.raises(CatalogError, match=r"params\['model'\]: object is not JSON-serialisable"):
        db.register_model("m2", "/m2", metrics={}, params={"model": object()}, data_window=WINDOW)
    assert [m["version"] for m in db.list_models()] == ["m1"]
    assert db.get_model("m1")["promoted"] is False and db.get_model("nope") is None


def test_job_run_success_and_failure(db: CatalogDB) -> None:
    with db.job_run("train", params={"epochs": 2, "since": WINDOW[0]}) as run:
        (running,) = db.job_runs("train")
        assert running["status"] == "running" and running["finished_at"] is None
        assert running["id"] == run.id and running["params"] == {"epochs": 2, "since": WINDOW[0].isoformat()}
    (done,) = db.job_runs("train")
    assert done["status"] == "succeeded" and done["error"] is None
    assert done["finished_at"] >= done["started_at"]

    with pytest.raises(RuntimeError, match="loss diverged"):
        with db.job_run("train", params={"epochs": 3}):
            raise RuntimeError("loss diverged at step 7")
    failed, succeeded = db.job_runs("train")
    assert failed["status"] == "failed" and succeeded["id"] == done["id"]
    assert "RuntimeError: loss diverged at step 7" in failed["error"]
    assert failed["finished_at"] - failed["started_at"] < timedelta(minutes=1)

    with db.job_run("materialize"):
        pass
    assert [r["job"] for r in db.job_runs()] == ["materialize", "train", "train"]
    assert db.job_runs("nothing") == []

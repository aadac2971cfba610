"""`glide retrain --every`: a failed pass is reported and the schedule goes on."""

from __future__ import annotations

import json

from click.testing import CliRunner

import glide_app.jobs.retrain as retrain_job
from glide_app.commands import retrain as retrain_cli


class StopSchedule(Exception):
    pass


def test_a_failed_pass_does_not_end_the_schedule(monkeypatch, tmp_path):
    passes, sleeps = [], []

    def one_pass(settings, cfg, console, min_gain):
        passes.append(min_gain)
        if len(passes) == 1:
            raise RuntimeError("offline store unreachable")
        return {"run": "glide-second", "promoted": False}

    def sleep(seconds):
        sleeps.append(seconds)
        if len(sleeps) == 2:
            raise StopSchedule

    monkeypatch.setattr(retrain_job, "run_retrain_job", one_pass)
    monkeypatch.setattr(retrain_cli.time, "sleep", sleep)
    result = CliRunner().invoke(retrain_cli.retrain, ["--every", "0.5", "--min-gain", "0.01", "--json",
                                                      "--data-dir", str(tmp_path)])
    assert isinstance(result.exception, StopSchedule)
    assert passes == [0.01, 0.01] and sleeps == [1800.0, 1800.0]
    assert "retrain pass failed" in result.stderr and "offline store unreachable" in result.stderr
    assert json.loads(result.stdout.strip().splitlines()[-1])["run"] == "glide-second"


def test_a_failed_single_pass_fails_the_command(monkeypatch, tmp_path):
    def one_pass(settings, cfg, console, min_gain):
        raise RuntimeError("offline store unreachable")

    monkeypatch.setattr(retrain_job, "run_retrain_job", one_pass)
    result = CliRunner().invoke(retrain_cli.retrain, ["--data-dir", str(tmp_path)])
    assert result.exit_code != 0 and isinstance(result.exception, RuntimeError)


def test_every_must_be_positive(tmp_path):
    result = CliRunner().invoke(retrain_cli.retrain, ["--every", "0", "--data-dir", str(tmp_path)])
    assert result.exit_code == 2 and "--every" in result.output

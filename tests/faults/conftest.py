"""The fault suite's stack: a tansu broker reached only through a :class:`TcpProxy` (so it can be cut
off without losing its topics), a redis-server of the suite's own (SIGKILLed and restarted; no other
Redis is touched), the machine's PostgreSQL under a schema of its own, and the cluster profile on
top. The suite's accounting table is printed at the end of the pytest run."""

from __future__ import annotations

import shutil
import subprocess
import time
import uuid

import pytest
import sqlalchemy

from tests.faults.report import render_table
from tests.streams.helpers import RedisServer, free_port

class FaultStack:
    def __init__(self, settings, redis_server, proxy, broker_proc):
        self.settings, self.redis, self.proxy, self.broker = settings, redis_server, proxy, broker_proc


def _start_tansu(folder, port: int, advertised: int) -> subprocess.Popen:
    from infra.stack import port_open, tansu_binary
    from glide.config import load_settings

    binary = tansu_binary(load_settings(data_dir=str(folder)))
    proc = subprocess.Popen([str(binary), "broker", "--listener-url", f"tcp://127.0.0.1:{port}",
                             "--advertised-listener-url", f"tcp://127.0.0.1:{advertised}",
                             "--storage-engine", "memory://tansu/"],
                            stdout=open(folder / "tansu.log", "ab"), stderr=subprocess.STDOUT,
                            start_new_session=True)
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            raise RuntimeError(f"tansu did not start; see {folder}/tansu.log")
        time.sleep(0.05)
    return proc


@pytest.fixture(scope="module")
def fault_stack(tmp_path_factory):
    if shutil.which("redis-server") is None:
        pytest.skip("redis-server is not installed")
    from glide.config import load_settings
    from infra import stack
    from tests.faults.proxy import TcpProxy

    root = tmp_path_factory.mktemp("faults")
    mp = pytest.MonkeyPatch()
    project, schema = f"f{uuid.uuid4().hex[:10]}", f"glide_f{uuid.uuid4().hex[:8]}"
    broker_port, proxy_port = free_port(), free_port()
    broker = _start_tansu(root, broker_port, proxy_port)
    proxy = TcpProxy(proxy_port, broker_port)
    proxy.start()
    redis_server = RedisServer(root / "redis", free_port())
    redis_server.start()
    mp.setenv("GLIDE_FEAST_PROJECT", project)
    mp.setenv("GLIDE_REDIS_URL", redis_server.url)
    settings = load_settings(data_dir=str(root / "data"), profile="cluster", kafka_bootstrap=f"127.0.0.1:{proxy_port}",
                             postgres_schema=schema, redis_url=redis_server.url)
    try:
        stack.up(settings)
        yield FaultStack(settings, redis_server, proxy, broker)
    finally:
        proxy.stop()
        broker.kill()
        redis_server.kill()
        engine = sqlalchemy.create_engine(settings.postgres_url)
        with engine.begin() as conn:
            conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
        engine.dispose()
        mp.undo()


def pytest_terminal_summary(terminalreporter):
    from tests.faults.report import ROWS

    if ROWS:
        terminalreporter.write_sep("=", "fault suite")
        terminalreporter.write_line(render_table(ROWS))

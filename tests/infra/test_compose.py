"""infra/docker-compose.yml against the code (no container engine here): every service that runs
`glide ...` runs a real command with flags that exist and values they accept, every GLIDE_* variable
it sets is a setting the code reads (with a value the settings accept), and the deployment has what
it must (Kafka, Redis, PostgreSQL, the stream and GLIDE workers, both backends, replicas, retrain).

The names the code reads are collected, not listed: the env names of every pydantic settings class
in the packages (env_prefix + field, nested fields too), plus every string literal that is exactly a
GLIDE_* name (os.environ reads, click ``envvar=``, tables such as streams/serving.CANDIDATE_ENV).
"""

from __future__ import annotations

import ast
import importlib
import inspect
import os
import re
import shlex
from contextlib import contextmanager
from pathlib import Path
from urllib.parse import urlsplit

import click
import pytest
import yaml
from pydantic import BaseModel
from pydantic_settings import BaseSettings

from tests.test_architecture import REPO, module_files

COMPOSE = REPO / "infra" / "docker-compose.yml"
GLIDE_NAME = re.compile(r"GLIDE_[A-Z0-9_]*[A-Z0-9]")


# --- what the code reads ---------------------------------------------------------------------------


def settings_classes() -> list[type[BaseSettings]]:
    """Every BaseSettings subclass defined in our packages (found in the AST, then imported)."""
    found = []
    for module, path in module_files().items():
        tree = ast.parse(path.read_text(), str(path))
        for node in ast.walk(tree):
            if isinstance(node, ast.ClassDef) and any(
                    (b.id if isinstance(b, ast.Name) else getattr(b, "attr", None)) == "BaseSettings"
                    for b in node.bases):
                found.append(getattr(importlib.import_module(module), node.name))
    return found


def _field_env_names(model: type[BaseModel], prefix: str, delimiter: str | None) -> set[str]:
    names = set()
    for name, field in model.model_fields.items():
        if isinstance(field.validation_alias, str):
            names.add(field.validation_alias.upper())
            continue
        names.add(f"{prefix}{name}".upper())
        kind = field.annotation
        if delimiter and inspect.isclass(kind) and issubclass(kind, BaseModel):
            names |= _field_env_names(kind, f"{prefix}{name}{delimiter}", delimiter)
    return names


def settings_env_names(cls: type[BaseSettings]) -> set[str]:
    config = cls.model_config
    return _field_env_names(cls, config.get("env_prefix", ""), config.get("env_nested_delimiter"))


def literal_glide_names() -> set[str]:
    """String literals of our code that are exactly a GLIDE_* variable name."""
    names = set()
    for path in module_files().values():
        for node in ast.walk(ast.parse(path.read_text(), str(path))):
            if isinstance(node, ast.Constant) and isinstance(node.value, str) and GLIDE_NAME.fullmatch(node.value):
                names.add(node.value)
    return names


@pytest.fixture(scope="module")
def known_env() -> set[str]:
    return set().union(*(settings_env_names(c) for c in settings_classes())) | literal_glide_names()


# --- the checker -----------------------------------------------------------------------------------


def _protected(ctx: click.Context) -> list[str]:
    return list(ctx._protected_args if hasattr(ctx, "_protected_args") else ctx.protected_args)


def command_problem(argv: list[str]) -> str | None:
    """Why ``glide ...`` would not run (no such command, flag or value), None when click accepts it.
    Parses exactly as `glide` does, command by command down the tree, invoking nothing."""
    from glide_app.cli import cli

    cmd: click.Command = cli
    name, args, ctx = "glide", argv[1:], None
    while True:
        try:
            ctx = cmd.make_context(name, list(args), parent=ctx)
        except click.ClickException as exc:
            return f"`{shlex.join(argv)}`: {exc.format_message()}"
        if not isinstance(cmd, click.Group):
            break
        rest = _protected(ctx) + list(ctx.args)
        sub = cmd.get_command(ctx, rest[0]) if rest else None
        if sub is None:
            return f"`{shlex.join(argv)}`: no command {rest[0] if rest else '(none)'!r} under `{ctx.command_path}`"
        cmd, name, args = sub, rest[0], rest[1:]
    for param in cmd.params:  # relative paths are read from the image's WORKDIR, a copy of the repo
        value = ctx.params.get(param.name)
        if isinstance(param.type, click.Path) and value and not Path(value).is_absolute():
            if not (REPO / value).exists():
                return f"`{shlex.join(argv)}`: {param.opts[0]} {value} does not exist in the repository"
    return None


@contextmanager
def _environment(env: dict[str, str]):
    saved = dict(os.environ)
    os.environ.clear()
    os.environ.update({k: v for k, v in saved.items() if not k.startswith("GLIDE_")} | env)
    try:
        yield
    finally:
        os.environ.clear()
        os.environ.update(saved)


def settings_problems(env: dict[str, str]) -> list[str]:
    """Values the settings classes refuse (their ConfigError, naming the variable)."""
    from glide.config import ConfigError, build_settings

    out = []
    with _environment(env):
        for cls in settings_classes():
            try:
                build_settings(cls)
            except ConfigError as exc:
                out.append(str(exc))
    return out


def service_env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.partition("=")[::2] for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def service_argv(service: dict) -> list[str]:
    command = service.get("command") or []
    return shlex.split(command) if isinstance(command, str) else [str(a) for a in command]


def compose_problems(text: str, known_env: set[str]) -> list[str]:
    """Everything wrong with a compose file's `glide` services, one line each."""
    doc = yaml.safe_load(text)
    services = doc.get("services") or {}
    volumes = set(doc.get("volumes") or {})
    out = []
    for name, service in services.items():
        for dep in service.get("depends_on") or []:
            if dep not in services:
                out.append(f"{name}: depends on {dep!r}, which is no service")
        for mount in service.get("volumes") or []:
            source = str(mount).split(":")[0]
            if ":" in str(mount) and not source.startswith((".", "/")) and source not in volumes:
                out.append(f"{name}: volume {source!r} is not declared")
        argv, env = service_argv(service), service_env(service)
        if argv[:1] == ["glide"] and (problem := command_problem(argv)):
            out.append(f"{name}: {problem}")
        for var in sorted(v for v in env if v.startswith("GLIDE_")):
            if var not in known_env:
                out.append(f"{name}: {var} is set, but no code reads it")
        if any(v.startswith("GLIDE_") for v in env):
            out.extend(f"{name}: {p}" for p in settings_problems(env))
    return out


# --- the checker on planted files ------------------------------------------------------------------

PLANTED_BAD = """
services:
  a: {image: x, command: ["glide", "serve", "--bakend", "hf"], environment: {GLIDE_REDIS_ULR: "redis://r"}}
  b: {image: x, command: "glide retrian --every 24"}
  c: {image: x, command: ["glide", "serve", "--backend", "vlm"], environment: {GLIDE_TOPIC_PARTITIONS: many}}
  d: {image: x, command: ["glide", "retrain", "--config", "configs/nope.yaml"], depends_on: [kafak]}
  e: {image: x, command: ["glide", "streams", "wroker"], volumes: ["glide-dta:/var/lib/glide"]}
volumes: {glide-data: {}}
"""
PLANTED_GOOD = """
services:
  kafka: {image: apache/kafka:3.9.0}
  w:
    image: x
    environment: [GLIDE_PROFILE=cluster, "GLIDE_KAFKA_BOOTSTRAP=kafka:9092", GLIDE_STREAMS_METRICS_PORT=9464]
    command: glide serve --backend vllm --beams 8
    depends_on: [kafka]
    volumes: ["glide-data:/var/lib/glide"]
  r: {image: x, command: ["glide", "retrain", "--config", "configs/train_tiny.yaml", "--every", "24"]}
  s: {image: x, command: ["glide", "streams", "worker", "--loglevel", "info"]}
volumes: {glide-data: {}}
"""


def test_the_checker_finds_every_planted_mistake(known_env):
    problems = compose_problems(PLANTED_BAD, known_env)
    text = "\n".join(problems)
    for mistake in ("--bakend", "retrian", "vlm", "GLIDE_REDIS_ULR", "GLIDE_TOPIC_PARTITIONS", "configs/nope.yaml",
                    "kafak", "wroker", "glide-dta"):
        assert mistake in text, f"{mistake!r} not reported in:\n{text}"
    assert compose_problems(PLANTED_GOOD, known_env) == []


def test_the_collected_names_are_the_code_s():
    names = set().union(*(settings_env_names(c) for c in settings_classes()))
    assert {"GLIDE_PROFILE", "GLIDE_KAFKA_BOOTSTRAP", "GLIDE_STREAMS_METRICS_HOST"} <= names
    assert {"GLIDE_FEAST_PROJECT", "GLIDE_VLLM_PYTHON", "GLIDE_SID_ENCODER"} <= literal_glide_names()
    assert "GLIDE_STREAMS_" not in literal_glide_names()  # prefixes and messages are no names


class _Nested(BaseModel):
    depth: int = 1


class _PlantedSettings(BaseSettings):
    model_config = {"env_prefix": "GLIDE_X_", "env_nested_delimiter": "__"}
    plain: int = 0
    inner: _Nested = _Nested()


def test_nested_settings_fields_are_collected():
    assert settings_env_names(_PlantedSettings) == {"GLIDE_X_PLAIN", "GLIDE_X_INNER", "GLIDE_X_INNER__DEPTH"}


# --- the real file ---------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def compose() -> dict:
    return yaml.safe_load(COMPOSE.read_text())


def test_every_glide_service_runs_a_real_command_with_settings_the_code_reads(known_env):
    problems = compose_problems(COMPOSE.read_text(), known_env)
    assert not problems, "infra/docker-compose.yml:\n" + "\n".join(problems)


def _glide_services(compose: dict, *command: str) -> dict[str, dict]:
    n = len(command)
    return {name: s for name, s in compose["services"].items() if service_argv(s)[:n] == list(command)}


def _option(service: dict, flag: str, default: str | None = None) -> str | None:
    argv = service_argv(service)
    return argv[argv.index(flag) + 1] if flag in argv else default


def test_the_deployment_has_every_part(compose):
    services = compose["services"]
    images = {s.get("image", "").split(":")[0] for s in services.values()}
    assert {"apache/kafka", "redis", "postgres"} <= images
    assert _glide_services(compose, "glide", "streams", "worker")
    serve = _glide_services(compose, "glide", "serve")
    hf = [s for s in serve.values() if _option(s, "--backend", "hf") == "hf"]
    vllm = [s for s in serve.values() if _option(s, "--backend") == "vllm"]
    assert hf and max(s.get("deploy", {}).get("replicas", 1) for s in hf) >= 2, "two HF GLIDE workers"
    assert vllm and all(s["build"]["target"] == "vllm" for s in vllm), "the vLLM worker needs the vllm image"
    retrain = _glide_services(compose, "glide", "retrain")
    assert retrain and all(_option(s, "--every") for s in retrain.values()), "a periodic retrain job"
    # Exports written by retrain are the models the workers serve: one shared data volume.
    data_dirs = {service_env(s)["GLIDE_DATA_DIR"] for s in [*serve.values(), *retrain.values()]}
    assert len(data_dirs) == 1
    mounts = {tuple(m for m in s["volumes"] if str(m).endswith(":" + next(iter(data_dirs))))
              for s in [*serve.values(), *retrain.values()]}
    assert len(mounts) == 1 and all(mounts), f"not one shared data volume: {mounts}"


def test_the_glide_services_reach_the_compose_stores(compose):
    names = set(compose["services"])
    for name, service in compose["services"].items():
        env = service_env(service)
        if env.get("GLIDE_PROFILE") != "cluster":
            continue
        hosts = [hp.split(":")[0] for hp in env["GLIDE_KAFKA_BOOTSTRAP"].split(",")]
        hosts += [urlsplit(env[k]).hostname for k in ("GLIDE_REDIS_URL", "GLIDE_POSTGRES_URL")]
        assert set(hosts) <= names, f"{name}: {hosts} are not all services of the file"


def test_the_dockerfile_copies_what_the_services_need():
    text = (REPO / "infra" / "Dockerfile").read_text()
    copied = set(re.findall(r"^COPY (\S+)", text, flags=re.M))
    packages = {"glide", "glide_app", "glide_model", "streams", "feature_repo", "benchmarks", "configs"}
    assert packages <= copied, f"not copied into the image: {sorted(packages - copied)}"
    assert re.search(r"^FROM .* AS vllm$", text, flags=re.M) and "infra/vllm/setup.sh" in text

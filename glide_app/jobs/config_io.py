"""Nested dataclass configs from YAML/JSON files (peft-examples style configs, file-driven)."""

from __future__ import annotations

import dataclasses
import difflib
import json
import typing
from collections.abc import Callable
from pathlib import Path
from typing import Any, TypeVar

T = TypeVar("T")


class ConfigFileError(ValueError):
    """A config file is unreadable or names a key the config does not have."""


SCHEMA_KEY = "config_schema"  # field metadata key: the dataclass a dict section must fit


def section_schema(loader: Callable[[], type]) -> dict[str, Any]:
    """``field(metadata=...)`` for a dict-valued section whose keys are the fields of the dataclass
    ``loader()`` returns (imported lazily): :func:`from_dict` rejects any other key at load time,
    while the section itself stays a plain dict of what the file set."""
    return {SCHEMA_KEY: loader}


def _unknown_keys_error(unknown: list[str], names: set[str], where: str, cls: type) -> ConfigFileError:
    place = f"section {where!r}" if where else f"the top level of {cls.__name__}"
    close = [m for key in unknown for m in difflib.get_close_matches(key, sorted(names), n=1)]
    suggest = f" (did you mean {', '.join(map(repr, close))}?)" if close else ""
    return ConfigFileError(f"unknown key(s) {unknown} in {place}{suggest}; allowed: {sorted(names)}")


def from_dict(cls: type[T], data: dict[str, Any] | None, where: str = "") -> T:
    """Build dataclass ``cls`` from ``data``, recursing into dataclass-typed fields; ``where`` is the
    section's dotted path (``model.instruct``), named in the error for a key ``cls`` does not have.

    A dict-typed field declared with :func:`section_schema` is checked the same way against its
    dataclass (and that one's nested dataclasses), so a typo fails here, not when the job reaches it."""
    data = dict(data or {})
    hints = typing.get_type_hints(cls)
    fields = {f.name: f for f in dataclasses.fields(cls)}
    unknown = sorted(set(data) - set(fields))
    if unknown:
        raise _unknown_keys_error(unknown, set(fields), where, cls)
    kwargs = {}
    for name, value in data.items():
        hint = hints.get(name)
        section = f"{where}.{name}" if where else name
        schema = fields[name].metadata.get(SCHEMA_KEY)
        if dataclasses.is_dataclass(hint) and isinstance(value, dict):
            value = from_dict(hint, value, section)
        elif schema is not None and isinstance(value, dict):
            check_section(schema(), value, section)
        elif hint is Path or hint == (Path | None):
            value = None if value is None else Path(value)
        elif isinstance(value, list) and typing.get_origin(hint) is tuple:
            value = tuple(value)
        kwargs[name] = value
    try:
        return cls(**kwargs)
    except ConfigFileError:
        raise
    except ValueError as exc:  # the dataclass's own check of a value (__post_init__)
        raise ConfigFileError(f"bad {f'section {where!r}' if where else cls.__name__}: {exc}") from None


def check_section(cls: type, data: dict[str, Any], where: str) -> None:
    """Raise ConfigFileError unless ``data`` builds dataclass ``cls`` (unknown keys, rejected values)."""
    try:
        from_dict(cls, data, where)
    except TypeError as exc:
        raise ConfigFileError(f"bad section {where!r}: {exc}") from None


def to_dict(obj: Any) -> Any:
    """JSON-able form of a (nested) dataclass config."""
    if dataclasses.is_dataclass(obj):
        return {f.name: to_dict(getattr(obj, f.name)) for f in dataclasses.fields(obj)}
    if isinstance(obj, (list, tuple)):
        return [to_dict(v) for v in obj]
    if isinstance(obj, dict):
        return {k: to_dict(v) for k, v in obj.items()}
    if isinstance(obj, Path):
        return str(obj)
    return obj


def read_config_file(path: str | Path) -> dict[str, Any]:
    path = Path(path)
    if not path.is_file():
        raise ConfigFileError(f"config file {path} does not exist")
    text = path.read_text()
    try:
        if path.suffix in (".yaml", ".yml"):
            import yaml

            data = yaml.safe_load(text)
        else:
            data = json.loads(text)
    except Exception as exc:  # noqa: BLE001 - any parse error gets the same message shape
        raise ConfigFileError(f"config file {path} is not valid {path.suffix.lstrip('.') or 'JSON'}: {exc}") from None
    if not isinstance(data, dict):
        raise ConfigFileError(f"config file {path} must hold a mapping at the top level")
    return data

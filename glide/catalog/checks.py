"""Argument checks shared by the catalog's registries (quantizers, models, job runs).

Rows of shows and episodes go through `rows.clean_rows`; these helpers cover the scalar arguments
and the free-form JSON (metrics, params) the registries store. They raise `CatalogError` with the
argument's name, so a caller learns which value to fix instead of getting a driver error later.
"""

from __future__ import annotations

import json
import math
from collections.abc import Iterator, Mapping, Sequence
from datetime import datetime
from pathlib import Path
from typing import Any

import numpy as np

from glide.catalog.errors import CatalogError

IN_CHUNK = 1000  # ids per IN (...) clause: well under SQLite's bound-parameter limit


def chunks(items: Sequence[str], size: int = IN_CHUNK) -> Iterator[Sequence[str]]:
    """`items` in slices of `size`, so an IN (...) filter over many ids stays within driver limits."""
    for start in range(0, len(items), size):
        yield items[start : start + size]


def check_name(value: Any, what: str, max_len: int) -> None:
    """A version or job name: a non-blank string that fits its column."""
    if not isinstance(value, str) or not value.strip() or len(value) > max_len:
        raise CatalogError(f"{what} must be a non-empty string of at most {max_len} characters, got {value!r}")


def check_int(value: Any, what: str, lo: int, hi: int) -> int:
    """An int (numpy ints too, bools not) in [lo, hi], returned as a Python int."""
    ok = isinstance(value, (int, np.integer)) and not isinstance(value, (bool, np.bool_))
    if not ok or not lo <= value <= hi:
        raise CatalogError(f"{what} must be an int in [{lo}, {hi}], got {value!r}")
    return int(value)


def jsonable(obj: Any, what: str) -> Any:
    """Plain JSON values (numpy scalars/arrays become Python); NaN/inf and other objects are errors.

    Checked before writing because a JSON column would otherwise store NaN as invalid JSON on one
    backend and reject it on the other."""
    if isinstance(obj, Mapping):
        out = {}
        for k, v in obj.items():
            if not isinstance(k, str):
                raise CatalogError(f"{what}: keys must be strings, got {k!r}")
            out[k] = jsonable(v, f"{what}[{k!r}]")
        return out
    if isinstance(obj, (list, tuple, np.ndarray)):
        items = obj.tolist() if isinstance(obj, np.ndarray) else obj
        return [jsonable(v, f"{what}[{i}]") for i, v in enumerate(items)]
    if isinstance(obj, np.generic):
        obj = obj.item()
    if isinstance(obj, float) and not math.isfinite(obj):
        raise CatalogError(f"{what} is {obj}: JSON has no NaN/inf; store None or a string instead")
    if obj is None or isinstance(obj, (str, bool, int, float)):
        return obj
    if isinstance(obj, datetime):
        return obj.isoformat()
    if isinstance(obj, Path):
        return str(obj)
    try:
        json.dumps(obj)
    except TypeError:
        raise CatalogError(f"{what}: {type(obj).__name__} is not JSON-serialisable: convert it first") from None
    return obj

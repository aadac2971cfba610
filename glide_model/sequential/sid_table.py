"""A given Semantic-ID table: {item_id: ["<a_113>", "<b_148>", ...]} read into an (items, levels) code array.

Tables built elsewhere spell their tokens in many ways (``<a_113>``, ``<SID_1=13>``, ``<L2-7>``,
``<113>``): any ``<label[sep]code>`` token is accepted, where ``code`` is the trailing integer and the
label (what stands before it) names the level. The level is the token's position in the list; the
label is only checked to be the same at a position for every item, so that a table with its levels
shuffled for some items fails loudly instead of producing SIDs that mean nothing. Collisions (two
items with one SID) are allowed: consumers break them (by popularity in TIGER's case).
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from glide_model.sequential.errors import DatasetError

# label (anything, possibly empty), an optional separator, the code: "<a_113>" -> ("a", 113)
_TOKEN = re.compile(r"<\s*([^<>]*?)[\s_=:\-]*(\d+)\s*>")


@dataclass(frozen=True)
class SidTable:
    codes: np.ndarray  # (n_items, levels) int64; row i is the SID of item index i
    codebook_size: int  # 1 + the largest code at any level
    labels: tuple[str, ...]  # the token label of each level as the table spells it
    source: str  # the file it came from, or how it was computed

    @property
    def levels(self) -> int:
        return int(self.codes.shape[1])

    def collided_items(self) -> int:
        """Items whose SID is shared with at least one other item."""
        _, inverse, counts = np.unique(self.codes, axis=0, return_inverse=True, return_counts=True)
        return int((counts[inverse.reshape(-1)] > 1).sum())


def parse_sid_token(token: object) -> tuple[str, int]:
    """``"<a_113>"`` -> ``("a", 113)``; a DatasetError for anything not of the ``<label code>`` shape."""
    if not isinstance(token, str):
        raise DatasetError(f"SID token {token!r} is not a string like '<a_113>'")
    match = _TOKEN.fullmatch(token.strip())
    if match is None:
        raise DatasetError(f"SID token {token!r} is not of the shape '<label_code>' (e.g. '<a_113>')")
    return match.group(1), int(match.group(2))


def sid_table_from_mapping(table: Mapping[str, Sequence[object]], item_ids: Sequence[str],
                           source: str = "<mapping>") -> SidTable:
    """Codes for ``item_ids`` (row order) from a parsed table; every item must be in it, and nothing else."""
    if not isinstance(table, Mapping) or not table:
        raise DatasetError(f"{source}: a SID table must be a non-empty JSON object {{item_id: [tokens]}}")
    table = {str(k): v for k, v in table.items()}
    known = set(item_ids)
    unknown = [k for k in table if k not in known]
    if unknown:
        raise DatasetError(f"{source}: {len(unknown)} item id(s) not in the dataset, e.g. {unknown[:5]}; "
                           "is this the table of another dataset?")
    missing = [i for i in item_ids if i not in table]
    if missing:
        raise DatasetError(f"{source}: {len(missing)} dataset item(s) have no SID, e.g. {missing[:5]}; "
                           "the table must cover every item")
    levels: int | None = None
    labels: list[str] = []
    rows = np.empty((len(item_ids), 0), dtype=np.int64)
    for row, item in enumerate(item_ids):
        tokens = table[item]
        if not isinstance(tokens, list) or not tokens:
            raise DatasetError(f"{source}: item {item!r} has {tokens!r}, not a non-empty list of SID tokens")
        parsed = [parse_sid_token(t) for t in tokens]
        if levels is None:
            levels, labels = len(parsed), [label for label, _ in parsed]
            rows = np.empty((len(item_ids), levels), dtype=np.int64)
        if len(parsed) != levels:
            raise DatasetError(f"{source}: item {item!r} has {len(parsed)} SID levels, the first item has {levels}")
        for level, (label, code) in enumerate(parsed):
            if label != labels[level]:
                raise DatasetError(f"{source}: item {item!r} has {tokens[level]!r} at level {level + 1}, "
                                   f"where the first item has label {labels[level]!r}")
            rows[row, level] = code
    return SidTable(codes=rows, codebook_size=int(rows.max()) + 1, labels=tuple(labels), source=source)


def read_sid_table(path: str | Path, item_ids: Sequence[str]) -> SidTable:
    """Load a SID table file for the dataset whose items are ``item_ids`` (in index order)."""
    path = Path(path)
    try:
        table = json.loads(path.read_text())
    except FileNotFoundError:
        raise DatasetError(f"SID table {path} does not exist") from None
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"SID table {path} is not readable JSON: {' '.join(str(exc).split())}") from None
    return sid_table_from_mapping(table, item_ids, source=str(path))

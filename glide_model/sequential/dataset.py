"""An interaction dataset folder, read into dense item indices: the input of every sequential system.

A folder holds ``<name>.inter.json`` ({user_id: [item_id, ...]} oldest first: position is time),
optionally ``<name>.item.json`` ({item_id: {title, description, brand, categories}}) and, given
separately, a SID table (glide_model/sequential/sid_table.py). In GLIDE terms an item is an episode,
a brand a show and categories are topics.

Item ids are kept as strings (JSON files write them as numbers or strings, and the item file's keys
are always strings), and mapped to indices 0..N-1 in order of first appearance in the interactions,
then the item file's remaining items: the ranking catalog is every item the folder names. Anything
malformed is a :class:`DatasetError` with one line naming the file and the problem, never a model
trained on half-read data.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

import numpy as np

from glide_model.sequential.errors import DatasetError
from glide_model.sequential.sid_table import SidTable, read_sid_table

ITEM_FIELDS = ("title", "description", "brand", "categories")
# --source NAME -> folder under the shared data folder (../shared/data beside the repository)
NAMED_SOURCES = {"scientific": "amazon18_scientific"}


@dataclass(frozen=True)
class ItemText:
    title: str = ""
    description: str = ""
    brand: str = ""
    categories: str = ""


@dataclass(frozen=True)
class SequenceDataset:
    name: str
    item_ids: tuple[str, ...]  # index -> the file's item id
    user_ids: tuple[str, ...]
    sequences: tuple[np.ndarray, ...]  # per user: item indices, oldest first
    items: tuple[ItemText, ...] | None = None  # per item index; None without an item file
    sids: SidTable | None = None

    @property
    def n_items(self) -> int:
        return len(self.item_ids)

    @property
    def n_interactions(self) -> int:
        return int(sum(len(s) for s in self.sequences))

    def brand_codes(self) -> np.ndarray | None:
        """Per item an integer brand id (-1 when the item has no brand); None without item text."""
        if self.items is None:
            return None
        index: dict[str, int] = {}
        return np.array([index.setdefault(t.brand, len(index)) if t.brand else -1 for t in self.items],
                        dtype=np.int64)

    def with_sids(self, sids: SidTable) -> SequenceDataset:
        if sids.codes.shape[0] != self.n_items:
            raise DatasetError(f"SID table {sids.source} has {sids.codes.shape[0]} rows for {self.n_items} items")
        return replace(self, sids=sids)


def shared_data_dir() -> Path:
    """``../shared/data`` beside the repository root (where the project's real data sets live)."""
    return Path(__file__).resolve().parents[2].parent / "shared" / "data"


def resolve_source(source: str | Path) -> Path:
    """A named source (``scientific``) or a folder path -> the dataset folder."""
    if str(source) in NAMED_SOURCES:
        folder = shared_data_dir() / NAMED_SOURCES[str(source)]
        if not folder.is_dir():
            raise DatasetError(f"source {source!r} needs {folder}, which does not exist")
        return folder
    folder = Path(source)
    if not folder.is_dir():
        raise DatasetError(f"source {str(source)!r} is neither a folder nor one of {sorted(NAMED_SOURCES)}")
    return folder


def _read_json(path: Path) -> Any:
    try:
        return json.loads(path.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise DatasetError(f"{path} is not readable JSON: {' '.join(str(exc).split())}") from None


def _item_id(value: Any, path: Path, user: str) -> str:
    # bool is an int subclass, and a float id would silently merge 1 and 1.0
    if isinstance(value, bool) or not isinstance(value, (int, str)) or (isinstance(value, str) and not value):
        kind = "a nested list (ragged sequence)" if isinstance(value, list) else repr(value)
        raise DatasetError(f"{path}: user {user!r} has {kind} where an item id (string or integer) belongs")
    return str(value)


def read_interactions(path: Path) -> dict[str, list[str]]:
    """{user_id: [item_id, ...]} with every id a string; empty, non-list or nested sequences raise."""
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected a non-empty JSON object {{user_id: [item_id, ...]}}")
    out: dict[str, list[str]] = {}
    for user, seq in data.items():
        if not isinstance(seq, list):
            raise DatasetError(f"{path}: user {user!r} has {type(seq).__name__} {str(seq)[:40]!r}, "
                               "not a list of item ids")
        if not seq:
            raise DatasetError(f"{path}: user {user!r} has an empty sequence; drop the user or add items")
        out[str(user)] = [_item_id(v, path, user) for v in seq]
    return out


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, list):  # categories are sometimes a list of strings
        return ",".join(str(v).strip() for v in value if v is not None)
    return " ".join(str(value).split())


def read_items(path: Path) -> dict[str, ItemText]:
    """{item_id: ItemText}; missing or null fields are empty strings."""
    data = _read_json(path)
    if not isinstance(data, dict) or not data:
        raise DatasetError(f"{path}: expected a non-empty JSON object {{item_id: {{title, ...}}}}")
    out = {}
    for item, record in data.items():
        if not isinstance(record, dict):
            raise DatasetError(f"{path}: item {item!r} has {type(record).__name__}, not an object "
                               f"with {', '.join(ITEM_FIELDS)}")
        out[str(item)] = ItemText(**{f: _text(record.get(f)) for f in ITEM_FIELDS})
    return out


def _find_inter_file(folder: Path) -> Path:
    found = sorted(folder.glob("*.inter.json"))
    if len(found) != 1:
        what = "no" if not found else f"{len(found)} ({', '.join(p.name for p in found)})"
        raise DatasetError(f"{folder} has {what} <name>.inter.json files; it needs exactly one")
    return found[0]


def load_dataset(source: str | Path, sids_file: str | Path | None = None) -> SequenceDataset:
    """Read a dataset folder (or a named source) and, when given, its SID table."""
    folder = resolve_source(source)
    inter_path = _find_inter_file(folder)
    name = inter_path.name[: -len(".inter.json")]
    interactions = read_interactions(inter_path)
    index: dict[str, int] = {}
    for seq in interactions.values():
        for item in seq:
            index.setdefault(item, len(index))
    items: tuple[ItemText, ...] | None = None
    item_path = folder / f"{name}.item.json"
    if item_path.exists():
        texts = read_items(item_path)
        missing = [i for i in index if i not in texts]
        if missing:
            raise DatasetError(f"{item_path}: {len(missing)} interacted item(s) are missing, e.g. {missing[:5]}")
        for item in texts:
            index.setdefault(item, len(index))
        items = tuple(texts[i] for i in index)
    item_ids = tuple(index)
    dataset = SequenceDataset(
        name=name,
        item_ids=item_ids,
        user_ids=tuple(interactions),
        sequences=tuple(np.fromiter((index[i] for i in seq), dtype=np.int64, count=len(seq))
                        for seq in interactions.values()),
        items=items,
    )
    if sids_file is not None:
        dataset = dataset.with_sids(read_sid_table(sids_file, item_ids))
    return dataset

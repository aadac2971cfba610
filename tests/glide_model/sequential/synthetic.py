"""Small dataset folders for the sequential tests, written where a test asks.

The pattern is learnable and popularity-proof: each user walks the item ring (item i is followed
by item i + 1 mod N) from a random start, so every item is about equally popular and only a model
of "what follows what" can rank the next item first.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np

BRANDS = ("acme", "globex", "initech", "umbrella")


def ring_sequences(n_items: int = 60, n_users: int = 150, seed: int = 0, min_len: int = 4,
                   max_len: int = 9) -> dict[str, list[int]]:
    rng = np.random.default_rng(seed)
    out = {}
    for user in range(n_users):
        start, length = int(rng.integers(n_items)), int(rng.integers(min_len, max_len + 1))
        out[f"u{user}"] = [(start + t) % n_items for t in range(length)]
    return out


def ring_items(n_items: int = 60) -> dict[str, dict[str, str]]:
    return {str(i): {"title": f"Widget model {i}", "description": f"A {BRANDS[i % 4]} widget, size {i}.",
                     "brand": BRANDS[(i // 6) % 4], "categories": f"Tools,Widgets,Size {i // 6}"}
            for i in range(n_items)}


def ring_sids(n_items: int = 60) -> dict[str, list[str]]:
    """Two levels in an unusual spelling, item i -> (i // 8, i % 8)."""
    return {str(i): [f"<L1-{i // 8}>", f"<L2-{i % 8}>"] for i in range(n_items)}


def write_dataset(folder: Path, name: str = "Ring", sequences: object = None, items: object = None,
                  sids: object = None) -> Path:
    """Write <name>.inter.json (and .item.json / <name>.sids.json when given); returns the folder."""
    folder.mkdir(parents=True, exist_ok=True)
    (folder / f"{name}.inter.json").write_text(json.dumps(ring_sequences() if sequences is None else sequences))
    if items is not None:
        (folder / f"{name}.item.json").write_text(json.dumps(items))
    if sids is not None:
        (folder / f"{name}.sids.json").write_text(json.dumps(sids))
    return folder

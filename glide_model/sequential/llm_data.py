"""Sequences -> GLIDE prompt rows: training transitions, familiarity modes, history titles and CF vectors.

A row is what glide_model/llm/instruct.py and PromptBuilder.encode_rec read: ``history_codes`` (the
SIDs of the last items, oldest first), ``history_titles`` (their titles, used by the text variants),
``mode`` (familiar when the target's brand is among the history's brands, the harness's segment
rule), ``cf_embedding`` and, for training, ``target_codes``.

CF vectors: a weighted-ALS model (glide_model/cf.py) fitted on the training split only, at item
level; every prompt's vector is the one-step fold-in of its own history against the item factors,
in training and at test alike. The users' fitted factors are not used: a training example's
factor would have seen the example's own target (later in the same sequence), which a test
prompt's never does.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd

from glide_model.sequential.dataset import SequenceDataset
from glide_model.sequential.semantic_ids import item_text


@dataclass(frozen=True)
class Transition:
    history: np.ndarray  # item indices, oldest first
    target: int


def training_transitions(train: Sequence[np.ndarray], users: int | None, seed: int = 0) -> list[Transition]:
    """Every next-item pair of the training sequences, or, with ``users``, the latest pair of a sample
    of that many users (the pairs closest in time to the held-out ones)."""
    if users is None:
        return [Transition(seq[:t], int(seq[t])) for seq in train for t in range(1, len(seq))]
    eligible = [u for u, seq in enumerate(train) if len(seq) >= 2]
    rng = np.random.default_rng(seed)
    picked = np.sort(rng.choice(len(eligible), size=min(users, len(eligible)), replace=False))
    return [Transition(train[eligible[i]][:-1], int(train[eligible[i]][-1])) for i in picked]


def is_familiar(history: np.ndarray, target: int, brands: np.ndarray | None) -> bool:
    if brands is None or brands[target] < 0:
        return False
    return bool(np.any(brands[np.asarray(history, dtype=np.int64)] == brands[target]))


def history_mode(history: np.ndarray, brands: np.ndarray | None, default: str) -> str:
    """A label-free mode for inference: "familiar" when most of the history's own next-item steps stayed
    within a brand already seen, else "unfamiliar"; ``default`` with fewer than two items."""
    if brands is None or len(history) < 2:
        return default
    steps = [is_familiar(history[:t], int(history[t]), brands) for t in range(1, len(history))]
    return "familiar" if np.mean(steps) >= 0.5 else "unfamiliar"


def majority_mode(transitions: Sequence[Transition], brands: np.ndarray | None) -> str:
    familiar = np.mean([is_familiar(t.history, t.target, brands) for t in transitions]) if transitions else 0.0
    return "familiar" if familiar >= 0.5 else "unfamiliar"


def item_titles(dataset: SequenceDataset, chars: int) -> list[str] | None:
    """Per item its title (else its other text), cut at a word boundary to ``chars``; None without item text."""
    if dataset.items is None:
        return None
    out = []
    for item in dataset.items:
        text = item.title or item_text(item)
        out.append(text if len(text) <= chars else text[:chars].rsplit(" ", 1)[0] + "...")
    return out


def catalog_frame(dataset: SequenceDataset) -> pd.DataFrame:
    """What glide_model/llm/grounding.py pairs with the SIDs: episode_id (the item index), title, description."""
    items = dataset.items or ()
    return pd.DataFrame({"episode_id": [str(i) for i in range(len(items))],
                         "title": [t.title or t.brand for t in items],
                         "description": [t.description or t.categories for t in items]})


def fit_sequence_cf(train: Sequence[np.ndarray], n_items: int, factors: int, seed: int):
    """Weighted ALS on the training split, items as columns (one listen = one interaction)."""
    from glide_model.cf import train_cf

    users = np.repeat(np.arange(len(train)), [len(s) for s in train])
    items = np.concatenate([np.asarray(s, dtype=np.int64) for s in train]) if train else np.zeros(0, np.int64)
    listens = pd.DataFrame({"user_id": users.astype(str), "episode_id": items.astype(str),
                            "listened_seconds": np.ones(len(items))})
    return train_cf(listens, factors=factors, level="episode", seed=seed)


def cf_vector(cf, history: np.ndarray) -> np.ndarray:
    counts: dict[str, float] = {}
    for item in np.asarray(history).tolist():
        counts[str(item)] = counts.get(str(item), 0.0) + 1.0
    return cf.fold_in(counts)


@dataclass
class RowBuilder:
    """Prompt rows for one variant's needs (titles and CF vectors only when the variant reads them)."""

    codes: np.ndarray  # (n_items, levels) SIDs
    max_history: int
    titles: list[str] | None = None
    cf: object | None = None  # a CFModel

    def row(self, history: np.ndarray, mode: str | None, target: int | None = None) -> dict:
        history = np.asarray(history, dtype=np.int64)
        recent = history[-self.max_history:] if self.max_history > 0 else history[:0]
        row: dict[str, Any] = {"history_codes": [tuple(int(c) for c in self.codes[i]) for i in recent], "mode": mode}
        if self.titles is not None:
            row["history_titles"] = [self.titles[i] for i in recent]
        if self.cf is not None:
            row["cf_embedding"] = cf_vector(self.cf, history)
        if target is not None:
            row["target_codes"] = tuple(int(c) for c in self.codes[target])
        return row

    def training_frame(self, transitions: Sequence[Transition], brands: np.ndarray | None,
                       multitask: bool) -> pd.DataFrame:
        rows = []
        for t in transitions:
            mode = ("familiar" if is_familiar(t.history, t.target, brands) else "unfamiliar") if multitask else None
            rows.append(self.row(t.history, mode, t.target))
        return pd.DataFrame(rows)

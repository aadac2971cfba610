"""Implicit-feedback collaborative filtering: the long-term user embedding of the soft prompt (§4.1.2).

Weighted-ALS (Hu, Koren & Volinsky 2008) through the ``implicit`` library: every (user, item) pair
with listening gets preference 1 and confidence ``1 + alpha * log1p(total listened seconds)``;
unobserved pairs get preference 0 and confidence 1. Items are shows (default: stable, dense) or
episodes. The user factors are the CF embeddings the LLM projects into one soft-prompt token; the
item factors serve the CF baseline.

Saved as ``cf.safetensors`` (user_factors, item_factors) + ``cf.json`` (config, ids).
"""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Literal

import numpy as np
import pandas as pd
import scipy.sparse as sp
from safetensors.numpy import load_file, save_file

FORMAT_VERSION = 1


@dataclass(frozen=True)
class CFConfig:
    factors: int = 64
    regularization: float = 0.1
    iterations: int = 15
    alpha: float = 2.0  # confidence = 1 + alpha * log1p(seconds)
    level: Literal["show", "episode"] = "show"
    seed: int = 0

    def __post_init__(self) -> None:
        if self.level not in ("show", "episode"):
            raise ValueError(f"CF level must be 'show' or 'episode', got {self.level!r}")
        if self.factors < 1 or self.iterations < 1 or self.alpha < 0 or self.regularization < 0:
            raise ValueError(f"bad CF config {self}: factors/iterations >= 1, alpha/regularization >= 0")


def _item_column(level: str) -> str:
    return "show_id" if level == "show" else "episode_id"


def interaction_matrix(
    listens: pd.DataFrame, level: str = "show", alpha: float = 1.0
) -> tuple[sp.csr_matrix, np.ndarray, np.ndarray]:
    """(confidence matrix users x items, sorted user ids, sorted item ids) from raw listens."""
    item_col = _item_column(level)
    missing = {"user_id", item_col, "listened_seconds"} - set(listens.columns)
    if missing:
        raise ValueError(f"listens lack {sorted(missing)} needed for CF at level {level!r}")
    sums = listens.groupby(["user_id", item_col], sort=False)["listened_seconds"].sum()
    sums = sums[sums > 0]  # zero-second plays carry no preference
    if sums.empty:
        raise ValueError("no listens with listened_seconds > 0: nothing to train CF on")
    users, u = np.unique(sums.index.get_level_values(0).to_numpy(dtype=str), return_inverse=True)
    items, i = np.unique(sums.index.get_level_values(1).to_numpy(dtype=str), return_inverse=True)
    conf = (1.0 + alpha * np.log1p(sums.to_numpy(dtype=np.float64))).astype(np.float32)
    matrix = sp.csr_matrix((conf, (u, i)), shape=(len(users), len(items)), dtype=np.float32)
    matrix.sort_indices()
    return matrix, users, items


class CFModel:
    """Trained user and item factors with their ids."""

    def __init__(self, config: CFConfig, user_ids: np.ndarray, item_ids: np.ndarray,
                 user_factors: np.ndarray, item_factors: np.ndarray):
        if user_factors.shape != (len(user_ids), config.factors) or item_factors.shape != (len(item_ids), config.factors):
            raise ValueError("factor shapes do not match ids and config.factors")
        self.config = config
        self.user_ids = np.asarray(user_ids, dtype=str)
        self.item_ids = np.asarray(item_ids, dtype=str)
        self.user_factors = np.ascontiguousarray(user_factors, dtype=np.float32)
        self.item_factors = np.ascontiguousarray(item_factors, dtype=np.float32)
        self._user_index = {u: k for k, u in enumerate(self.user_ids)}
        self._item_index = {i: k for k, i in enumerate(self.item_ids)}

    @property
    def dim(self) -> int:
        return self.config.factors

    @property
    def version(self) -> str:
        """Content hash of the user vectors and their ids: the CF version a GLIDE model is trained
        against, stamped on every vector written to the feature store, checked by the worker."""
        import hashlib

        digest = hashlib.sha256()
        digest.update("\n".join(self.user_ids.tolist()).encode())
        digest.update(self.user_factors.tobytes())
        return f"cf-{self.dim}-{digest.hexdigest()[:12]}"

    def user_embeddings(self) -> pd.DataFrame:
        """DataFrame[user_id, embedding (np.float32 array of length dim)]."""
        return pd.DataFrame({"user_id": self.user_ids, "embedding": list(self.user_factors)})

    def item_embeddings(self) -> pd.DataFrame:
        """DataFrame[item_id, embedding]; items are shows or episodes per ``config.level``."""
        return pd.DataFrame({"item_id": self.item_ids, "embedding": list(self.item_factors)})

    def user_vector(self, user_id: str) -> np.ndarray | None:
        k = self._user_index.get(user_id)
        return None if k is None else self.user_factors[k]

    def item_index(self, item_ids: Iterable[str]) -> np.ndarray:
        """Row of each item in ``item_factors`` (-1 when unknown)."""
        return np.array([self._item_index.get(i, -1) for i in item_ids], dtype=np.int64)

    def scores(self, user_vectors: np.ndarray) -> np.ndarray:
        """(n_users, n_items) preference scores for a batch of user vectors."""
        return np.asarray(user_vectors, dtype=np.float32) @ self.item_factors.T

    def recommend(self, user_id: str, k: int = 30, exclude: Iterable[str] = ()) -> list[str]:
        """Top-k items for a known user (empty list for an unknown one)."""
        vec = self.user_vector(user_id)
        if vec is None:
            return []
        s = self.scores(vec[None])[0]
        banned = self.item_index(exclude)
        s[banned[banned >= 0]] = -np.inf
        top = np.argsort(-s, kind="stable")[:k]
        return [self.item_ids[j] for j in top if np.isfinite(s[j])]

    def fold_in(self, item_seconds: Mapping[str, float]) -> np.ndarray:
        """Embedding of a user unseen at training time from their item -> listened seconds.

        One exact ALS user step against the fixed item factors (what ``implicit`` computes for a
        recalculated user); unknown items are ignored, so no known items gives the zero vector.
        """
        y = self.item_factors.astype(np.float64)
        idx = self.item_index(item_seconds.keys())
        secs = np.fromiter(item_seconds.values(), dtype=np.float64, count=len(item_seconds))
        keep = (idx >= 0) & (secs > 0)
        yi, conf = y[idx[keep]], 1.0 + self.config.alpha * np.log1p(secs[keep])
        a = y.T @ y + self.config.regularization * np.eye(self.dim) + (yi.T * (conf - 1.0)) @ yi
        b = yi.T @ conf
        return np.linalg.solve(a, b).astype(np.float32)

    def save(self, directory: str | Path) -> Path:
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        save_file({"user_factors": self.user_factors, "item_factors": self.item_factors},
                  str(directory / "cf.safetensors"))
        meta = {
            "format_version": FORMAT_VERSION,
            "config": asdict(self.config),
            "user_ids": self.user_ids.tolist(),
            "item_ids": self.item_ids.tolist(),
        }
        (directory / "cf.json").write_text(json.dumps(meta))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> CFModel:
        directory = Path(directory)
        meta_path = directory / "cf.json"
        if not meta_path.exists():
            raise FileNotFoundError(f"{meta_path} not found: is {directory} a folder written by CFModel.save?")
        meta = json.loads(meta_path.read_text())
        if meta.get("format_version") != FORMAT_VERSION:
            raise ValueError(f"{meta_path} has format_version {meta.get('format_version')}, expected {FORMAT_VERSION}")
        tensors = load_file(str(directory / "cf.safetensors"))
        return cls(CFConfig(**meta["config"]), np.array(meta["user_ids"], dtype=str),
                   np.array(meta["item_ids"], dtype=str), tensors["user_factors"], tensors["item_factors"])


def train_cf(
    listens: pd.DataFrame,
    factors: int = 64,
    regularization: float = 0.1,
    iterations: int = 15,
    alpha: float = 2.0,
    level: Literal["show", "episode"] = "show",
    seed: int = 0,
    show_progress: bool = False,
) -> CFModel:
    """Weighted ALS on user x item listen seconds; same data and seed give identical factors."""
    from implicit.cpu.als import AlternatingLeastSquares
    from threadpoolctl import threadpool_limits

    config = CFConfig(factors=factors, regularization=regularization, iterations=iterations,
                      alpha=alpha, level=level, seed=seed)
    matrix, users, items = interaction_matrix(listens, level=level, alpha=alpha)
    # implicit parallelises over users itself; a multi-threaded BLAS underneath only thrashes.
    with threadpool_limits(1, "blas"):
        # The matrix already holds the confidences, so implicit's own alpha stays 1.
        als = AlternatingLeastSquares(factors=factors, regularization=regularization, alpha=1.0,
                                      iterations=iterations, random_state=seed, dtype=np.float32)
        als.fit(matrix, show_progress=show_progress)
    return CFModel(config, users, items, np.asarray(als.user_factors), np.asarray(als.item_factors))

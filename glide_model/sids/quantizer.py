"""What every SID quantizer shares: input checks, the fit/encode/decode/save/load protocol, and
versioned artifacts (``quantizer.safetensors`` for the weights + ``quantizer.json`` for metadata).

Concrete quantizers: :class:`~glide_model.sids.rkmeans.RKMeans` (production, paper §4.1.1),
:class:`~glide_model.sids.rqvae.RQVAE` and :class:`~glide_model.sids.rlfq.RLFQ` (baselines, §5.2.2).
"""

from __future__ import annotations

import hashlib
import importlib
import json
import time
from abc import ABC, abstractmethod
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, ClassVar, Self

import numpy as np

WEIGHTS_FILE = "quantizer.safetensors"
META_FILE = "quantizer.json"

# kind -> "module:Class"; imported on demand so R-KMeans users never pay for torch.
KINDS: dict[str, str] = {
    "rkmeans": "glide_model.sids.rkmeans:RKMeans",
    "rqvae": "glide_model.sids.rqvae:RQVAE",
    "rlfq": "glide_model.sids.rlfq:RLFQ",
}


class NotFittedError(RuntimeError):
    """encode/decode/save called before fit (or load)."""


@dataclass
class QuantizerMeta:
    """Everything needed to know where a SID space came from; saved as quantizer.json."""

    version: str
    kind: str
    levels: int
    codebook_size: int
    dim: int
    seed: int
    encoder: str
    fit_seconds: float
    created_at: str
    n_items: int
    config: dict[str, Any] = field(default_factory=dict)
    metrics: dict[str, Any] = field(default_factory=dict)


def check_embeddings(x: np.ndarray, dim: int | None = None, what: str = "embeddings") -> np.ndarray:
    """(N, D) finite float32 array or a ValueError saying which rows are bad."""
    arr = np.asarray(x)
    if arr.ndim != 2 or arr.shape[0] == 0:
        raise ValueError(f"{what} must be a non-empty (N, D) array, got shape {arr.shape}")
    if not np.issubdtype(arr.dtype, np.number):
        raise ValueError(f"{what} must be numeric, got dtype {arr.dtype}")
    arr = arr.astype(np.float32, copy=False)
    if dim is not None and arr.shape[1] != dim:
        raise ValueError(f"{what} have dimension {arr.shape[1]} but the quantizer was fitted on {dim}")
    bad = ~np.isfinite(arr).all(axis=1)
    if bad.any():
        rows = np.flatnonzero(bad)
        raise ValueError(
            f"{what} contain NaN/inf in {len(rows)} row(s) (first: {rows[:10].tolist()}); "
            "re-embed those items or drop them before quantizing"
        )
    return arr


def check_codes(codes: np.ndarray, levels: int, codebook_size: int) -> np.ndarray:
    """(N, M') int64 array with M' <= levels and codes in [0, K)."""
    arr = np.asarray(codes)
    if arr.ndim == 1:
        arr = arr[None, :]
    if arr.ndim != 2 or not 1 <= arr.shape[1] <= levels or not np.issubdtype(arr.dtype, np.integer):
        raise ValueError(f"codes must be an integer (N, <= {levels}) array, got {arr.dtype} {arr.shape}")
    if arr.size and (arr.min() < 0 or arr.max() >= codebook_size):
        raise ValueError(f"codes must lie in [0, {codebook_size})")
    return arr.astype(np.int64, copy=False)


class Quantizer(ABC):
    """Maps (N, D) embeddings to (N, M) codes in [0, K) and back to approximate embeddings."""

    kind: ClassVar[str]

    def __init__(self, levels: int = 4, codebook_size: int = 256, seed: int = 0):
        if levels < 1 or codebook_size < 2:
            raise ValueError(f"need levels >= 1 and codebook_size >= 2, got {levels} x {codebook_size}")
        self.levels = levels
        self.codebook_size = codebook_size
        self.seed = seed
        self.meta: QuantizerMeta | None = None

    # --- to implement -------------------------------------------------------------------------
    @abstractmethod
    def _fit(self, x: np.ndarray) -> dict[str, Any]:
        """Learn parameters from checked embeddings; return fit metrics for the metadata."""

    @abstractmethod
    def _encode(self, x: np.ndarray) -> np.ndarray:
        """Codes for checked embeddings, (N, M) int64."""

    @abstractmethod
    def _decode(self, codes: np.ndarray) -> np.ndarray:
        """Reconstruction from the first codes.shape[1] levels, (N, D) float32."""

    @abstractmethod
    def _tensors(self) -> dict[str, np.ndarray]:
        """Learned parameters as named numpy arrays (what goes into safetensors)."""

    @abstractmethod
    def _load_tensors(self, tensors: dict[str, np.ndarray], dim: int) -> None:
        """Inverse of :meth:`_tensors`."""

    def config(self) -> dict[str, Any]:
        """Hyperparameters recorded in the metadata and used to rebuild the object on load."""
        return {"levels": self.levels, "codebook_size": self.codebook_size, "seed": self.seed}

    # --- shared behaviour ---------------------------------------------------------------------
    @property
    def fitted(self) -> bool:
        return self.meta is not None

    def _require_fitted(self) -> QuantizerMeta:
        if self.meta is None:
            raise NotFittedError(f"{type(self).__name__} is not fitted: call fit() or load() first")
        return self.meta

    def fit(self, x: np.ndarray, encoder: str = "unknown") -> Self:
        """Fit on (N, D) embeddings; N must be at least the codebook size."""
        x = check_embeddings(x)
        if x.shape[0] < self.codebook_size:
            raise ValueError(
                f"codebook_size K={self.codebook_size} is larger than the catalog (N={x.shape[0]}): "
                f"use a codebook of at most {x.shape[0]} codes (e.g. --codebook {_pow2_below(x.shape[0])})"
            )
        start = time.perf_counter()
        metrics = self._fit(x)
        fit_seconds = time.perf_counter() - start
        created = datetime.now(timezone.utc)
        digest = hashlib.sha256()
        for name, arr in sorted(self._tensors().items()):
            digest.update(name.encode())
            digest.update(np.ascontiguousarray(arr).tobytes())
        self.meta = QuantizerMeta(
            version=f"{self.kind}-{self.levels}x{self.codebook_size}-{created:%Y%m%dT%H%M%S}-{digest.hexdigest()[:8]}",
            kind=self.kind,
            levels=self.levels,
            codebook_size=self.codebook_size,
            dim=int(x.shape[1]),
            seed=self.seed,
            encoder=encoder,
            fit_seconds=round(fit_seconds, 4),
            created_at=created.isoformat(),
            n_items=int(x.shape[0]),
            config=self.config(),
            metrics=metrics,
        )
        return self

    def encode(self, x: np.ndarray) -> np.ndarray:
        """SID codes (N, M) int64 for embeddings seen or unseen at fit time."""
        meta = self._require_fitted()
        return self._encode(check_embeddings(x, meta.dim))

    def decode(self, codes: np.ndarray) -> np.ndarray:
        """Approximate embeddings from (N, M') codes, M' <= M (a prefix decodes coarsely)."""
        self._require_fitted()
        return self._decode(check_codes(codes, self.levels, self.codebook_size))

    def reconstruction_error(self, x: np.ndarray) -> float:
        """Mean squared L2 distance between embeddings and their decoded SIDs."""
        x = check_embeddings(x, self._require_fitted().dim)
        return float(np.mean(np.sum((x - self.decode(self.encode(x))) ** 2, axis=1)))

    def save(self, directory: str | Path) -> Path:
        """Write quantizer.safetensors + quantizer.json into ``directory`` (created)."""
        from safetensors.numpy import save_file

        meta = self._require_fitted()
        directory = Path(directory)
        directory.mkdir(parents=True, exist_ok=True)
        tensors = {k: np.ascontiguousarray(v) for k, v in self._tensors().items()}
        save_file(tensors, str(directory / WEIGHTS_FILE), metadata={"version": meta.version, "kind": meta.kind})
        (directory / META_FILE).write_text(json.dumps(asdict(meta), indent=2, sort_keys=True))
        return directory

    @classmethod
    def load(cls, directory: str | Path) -> Quantizer:
        """Rebuild a fitted quantizer from :meth:`save` output (any kind when called on the base)."""
        return load_quantizer(directory, expect=None if cls is Quantizer else cls)


def _pow2_below(n: int) -> int:
    return 1 << max(1, int(n).bit_length() - 1)


def quantizer_class(kind: str) -> type[Quantizer]:
    if kind not in KINDS:
        raise ValueError(f"unknown quantizer kind {kind!r}; choose one of {sorted(KINDS)}")
    module_name, attr = KINDS[kind].split(":")
    return getattr(importlib.import_module(module_name), attr)


def make_quantizer(kind: str, levels: int = 4, codebook_size: int = 256, seed: int = 0, **config: Any) -> Quantizer:
    """An unfitted quantizer of ``kind`` (rkmeans | rqvae | rlfq)."""
    return quantizer_class(kind)(levels=levels, codebook_size=codebook_size, seed=seed, **config)


def read_meta(directory: str | Path) -> QuantizerMeta:
    path = Path(directory) / META_FILE
    if not path.exists():
        raise FileNotFoundError(f"no {META_FILE} in {directory}: not a saved quantizer (run `glide sids fit`)")
    return QuantizerMeta(**json.loads(path.read_text()))


def load_quantizer(directory: str | Path, expect: type[Quantizer] | None = None) -> Quantizer:
    """Load any saved quantizer; ``expect`` checks the kind."""
    from safetensors.numpy import load_file

    directory = Path(directory)
    meta = read_meta(directory)
    cls = quantizer_class(meta.kind)
    if expect is not None and not issubclass(cls, expect):
        raise ValueError(f"{directory} holds a {meta.kind!r} quantizer, not {expect.kind!r}")
    quantizer = cls(**meta.config)
    quantizer._load_tensors(load_file(str(directory / WEIGHTS_FILE)), meta.dim)
    quantizer.meta = meta
    return quantizer

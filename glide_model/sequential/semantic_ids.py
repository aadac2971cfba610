"""Semantic IDs for a dataset without a given table: the project's own pipeline on the items' text.

Item text -> TextEncoder (all-MiniLM, glide_model/sids/encoder.py) -> a quantizer of
glide_model/sids/quantizer.py (residual k-means by default, GLIDE's production choice). Embeddings
are cached on disk (keyed by encoder and text), so a rerun of an evaluation never re-embeds.
The text is what GLIDE embeds for an episode, title and description; an item with neither falls
back to its brand and categories, and a dataset with items that have no text at all gets no SIDs
(:func:`missing_text_reason` says why, and TIGER is skipped).
"""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path

from glide_model.sequential.dataset import ItemText, SequenceDataset
from glide_model.sequential.sid_table import SidTable
from glide_model.sids.encoder import EmbeddingCache, TextEncoder, cache_dir_for, embed_texts, episode_text
from glide_model.sids.quantizer import make_quantizer


@dataclass(frozen=True)
class QuantizeConfig:
    kind: str = "rkmeans"  # rkmeans | rqvae | rlfq
    levels: int = 3
    codebook_size: int = 256  # capped at the largest power of two <= the catalog size
    seed: int = 0


def item_text(item: ItemText) -> str:
    return episode_text(item.title, item.description) or episode_text(item.brand, item.categories)


def missing_text_reason(dataset: SequenceDataset) -> str | None:
    """Why SIDs cannot be computed from text for ``dataset``, or None when they can."""
    if dataset.items is None:
        return f"no {dataset.name}.item.json (item text) and no --sids table"
    empty = sum(1 for item in dataset.items if not item_text(item))
    if empty:
        return f"{empty} item(s) have no title, description, brand or categories, and no --sids table was given"
    return None


def text_sid_table(dataset: SequenceDataset, cfg: QuantizeConfig | None = None,
                   encoder: TextEncoder | None = None, cache_root: str | Path | None = None,
                   progress: bool = False) -> SidTable:
    """Fit a quantizer on the items' text embeddings; row i of the table is item index i's SID."""
    cfg = cfg or QuantizeConfig()
    reason = missing_text_reason(dataset)
    if reason is not None:
        raise ValueError(f"cannot compute Semantic IDs for {dataset.name}: {reason}")
    encoder = encoder or TextEncoder()
    cache = EmbeddingCache(cache_dir_for(cache_root, encoder.name)) if cache_root is not None else None
    vectors = embed_texts(encoder, [item_text(item) for item in dataset.items], cache=cache, progress=progress)
    size = min(cfg.codebook_size, 1 << (dataset.n_items.bit_length() - 1))
    quantizer = make_quantizer(cfg.kind, cfg.levels, size, cfg.seed).fit(vectors, encoder=encoder.name)
    codes = quantizer.encode(vectors)
    return SidTable(codes=codes, codebook_size=size, labels=tuple(f"SID_{m}" for m in range(1, cfg.levels + 1)),
                    source=f"{cfg.kind} {cfg.levels}x{size} on {encoder.name} embeddings of item text")

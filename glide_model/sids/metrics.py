"""Quality measures of a SID assignment (paper §4.4.1 collisions, §5.2.2 Table 2 intra-bucket similarity)."""

from __future__ import annotations

import math
from typing import Any

import numpy as np


def _buckets(codes: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Bucket id per item and bucket sizes, a bucket being one distinct full SID."""
    codes = np.asarray(codes)
    _, inverse, counts = np.unique(codes, axis=0, return_inverse=True, return_counts=True)
    return inverse.reshape(-1), counts


def collision_stats(codes: np.ndarray) -> dict[str, Any]:
    """Share of items whose full SID is shared with another item, and the colliding buckets' sizes."""
    inverse, counts = _buckets(codes)
    colliding = counts[counts > 1]
    return {
        "n_items": int(len(inverse)),
        "unique_sids": int(len(counts)),
        "collision_rate": float((counts[inverse] > 1).mean()),
        "colliding_sids": int(len(colliding)),
        "mean_items_per_colliding_sid": float(colliding.mean()) if len(colliding) else 0.0,
        "max_items_per_sid": int(counts.max()),
    }


def codebook_usage(codes: np.ndarray, codebook_size: int) -> dict[str, list[float]]:
    """Per level: share of the K codes used at least once, and code entropy (bits; log2 K is perfectly even)."""
    codes = np.asarray(codes)
    usage, entropy = [], []
    for m in range(codes.shape[1]):
        counts = np.bincount(codes[:, m], minlength=codebook_size)
        p = counts[counts > 0] / counts.sum()
        usage.append(round(float((counts > 0).mean()), 4))
        entropy.append(round(float(-(p * np.log2(p)).sum()), 4))
    return {"codebook_usage": usage, "codebook_entropy_bits": entropy, "max_entropy_bits": math.log2(codebook_size)}


def intra_bucket_similarity(codes: np.ndarray, embeddings: np.ndarray) -> float:
    """Mean over colliding SIDs of the mean pairwise cosine among their items (NaN when nothing collides).

    Each bucket counts once however large it is, so a few huge buckets of duplicates do not dominate.
    """
    inverse, counts = _buckets(codes)
    colliding = counts[inverse] > 1
    if not colliding.any():
        return float("nan")
    # only items in colliding buckets, grouped by bucket: memory stays O(colliding items), not O(N)
    rows = np.flatnonzero(colliding)
    rows = rows[np.argsort(inverse[rows], kind="stable")]
    emb = np.asarray(embeddings)[rows].astype(np.float64)
    emb /= np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    _, starts, b = np.unique(inverse[rows], return_index=True, return_counts=True)
    sums = np.add.reduceat(emb, starts, axis=0)
    b = b.astype(np.float64)
    # sum over ordered pairs i != j of <e_i, e_j> = ||sum e||^2 - sum ||e||^2 (unit vectors: - b)
    pair_sums = np.einsum("kd,kd->k", sums, sums) - b
    return float(np.mean(pair_sums / (b * (b - 1))))


def random_pair_similarity(embeddings: np.ndarray, n_pairs: int = 20_000, seed: int = 0) -> float:
    """Mean cosine of random distinct item pairs: the floor the intra-bucket similarity should clear."""
    emb = np.asarray(embeddings, dtype=np.float64)
    emb = emb / np.maximum(np.linalg.norm(emb, axis=1, keepdims=True), 1e-12)
    rng = np.random.default_rng(seed)
    i = rng.integers(len(emb), size=n_pairs)
    j = rng.integers(len(emb), size=n_pairs)
    keep = i != j
    return float(np.mean(np.einsum("nd,nd->n", emb[i[keep]], emb[j[keep]])))


def items_per_prefix(codes: np.ndarray) -> list[float]:
    """Per level m: catalog items per distinct m-token prefix.

    The coarse-to-fine structure the LM leans on (paper §4.1.1) needs many items per short prefix;
    when K is large for the catalog, level 1 already splits it into near-singletons and the
    remaining levels carry little information (K=256 over 2.4k episodes: 9.2, 1.05, 1.04, 1.03).
    """
    codes = np.asarray(codes)
    return [round(len(codes) / len(np.unique(codes[:, : m + 1], axis=0)), 3) for m in range(codes.shape[1])]


def sid_report(codes: np.ndarray, embeddings: np.ndarray, codebook_size: int) -> dict[str, Any]:
    """All code-only measures for one SID table (no quantizer needed: works for given tables too)."""
    out = collision_stats(codes)
    out["intra_bucket_similarity"] = intra_bucket_similarity(codes, embeddings)
    out.update(codebook_usage(codes, codebook_size))
    out["items_per_prefix"] = items_per_prefix(codes)
    return out

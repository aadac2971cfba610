"""`glide sids report`: fit every quantizer on one catalog's embeddings and compare the SID spaces
(paper §5.2.2, Table 2) on collisions, code usage, intra-bucket similarity, reconstruction, fit time."""

from __future__ import annotations

import json
import math
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
from rich.table import Table

from glide_model.sids.metrics import random_pair_similarity, sid_report
from glide_model.sids.quantizer import make_quantizer

QUANTIZERS = ("rkmeans", "rqvae", "rlfq")


def score(codes: np.ndarray, embeddings: np.ndarray, codebook_size: int) -> dict[str, Any]:
    out = sid_report(codes, embeddings, codebook_size)
    out["random_pair_similarity"] = random_pair_similarity(embeddings)
    return out


def compare_quantizers(
    embeddings: np.ndarray,
    kinds: Sequence[str] = QUANTIZERS,
    levels: int = 4,
    codebook_size: int = 256,
    seed: int = 0,
    encoder_name: str = "unknown",
    overrides: dict[str, dict[str, Any]] | None = None,
    num_threads: int | None = None,
) -> dict[str, dict[str, Any]]:
    """kind -> measures, each quantizer fitted on ``embeddings`` with the same levels, K and seed."""
    results = {}
    for kind in kinds:
        kw = {"num_threads": num_threads} if num_threads else {}
        q = make_quantizer(kind, levels, codebook_size, seed, **{**kw, **(overrides or {}).get(kind, {})})
        q.fit(embeddings, encoder=encoder_name)
        entry = score(q.encode(embeddings), embeddings, codebook_size)
        entry["reconstruction_mse"] = q.reconstruction_error(embeddings)
        entry["fit_seconds"] = q.meta.fit_seconds
        entry["version"] = q.meta.version
        results[kind] = entry
    return results


def _fmt(v: Any, pct: bool = False) -> str:
    if v is None or (isinstance(v, float) and math.isnan(v)):
        return "-"
    if pct:
        return f"{100 * v:.1f}%"
    return f"{v:.3f}" if isinstance(v, float) else str(v)


def render(results: dict[str, dict[str, Any]], title: str) -> Table:
    table = Table(title=title)
    for col in (
        "SID space", "collision rate", "unique SIDs", "mean / max per colliding SID", "intra-bucket cos",
        "codebook usage per level", "entropy bits per level", "items per prefix", "recon MSE", "fit s",
    ):
        table.add_column(col, justify="left" if col == "SID space" else "right")
    for name, r in results.items():
        table.add_row(
            name,
            _fmt(r["collision_rate"], pct=True),
            f"{r['unique_sids']:,} / {r['n_items']:,}",
            f"{r['mean_items_per_colliding_sid']:.2f} / {r['max_items_per_sid']}",
            _fmt(r["intra_bucket_similarity"]),
            " ".join(f"{u:.2f}" for u in r["codebook_usage"]),
            " ".join(f"{e:.1f}" for e in r["codebook_entropy_bits"]),
            " ".join(f"{n:.1f}" for n in r.get("items_per_prefix", [])),
            _fmt(r.get("reconstruction_mse")),
            _fmt(r.get("fit_seconds")),
        )
    first = next(iter(results.values()), None)
    if first is not None:
        table.caption = (
            f"intra-bucket cos: mean pairwise cosine of content embeddings among items sharing a full SID "
            f"(random pairs: {first['random_pair_similarity']:.3f}); entropy max {first['max_entropy_bits']:.0f} bits"
        )
    return table


def plot(results: dict[str, dict[str, Any]], path: str | Path, title: str) -> Path:
    """Bar charts of the headline measures, one bar per SID space."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    names = list(results)
    fig, axes = plt.subplots(1, 4, figsize=(16, 3.8))
    panels = [
        ("collision rate", [results[n]["collision_rate"] for n in names]),
        ("intra-bucket cosine", [np.nan_to_num(results[n]["intra_bucket_similarity"]) for n in names]),
        ("fit seconds", [results[n].get("fit_seconds") or 0.0 for n in names]),
    ]
    for ax, (label, values) in zip(axes, panels):
        ax.bar(names, values, color="tab:blue")
        ax.set_title(label)
        ax.tick_params(axis="x", rotation=30)
    ax = axes[3]
    for n in names:
        ax.plot(range(1, len(results[n]["codebook_entropy_bits"]) + 1), results[n]["codebook_entropy_bits"], marker="o", label=n)
    ax.set_title("code entropy per level (bits)")
    ax.set_xlabel("level")
    ax.set_xticks(range(1, len(results[names[0]]["codebook_entropy_bits"]) + 1))
    ax.legend(fontsize=7)
    fig.suptitle(title)
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def _clean(v: Any) -> Any:
    if isinstance(v, float | np.floating):
        return None if math.isnan(v) else round(float(v), 6)
    if isinstance(v, np.integer):
        return int(v)
    if isinstance(v, dict):
        return {k: _clean(x) for k, x in v.items()}
    if isinstance(v, list | tuple):
        return [_clean(x) for x in v]
    return v


def to_json(results: dict[str, dict[str, Any]]) -> str:
    """One line of strict JSON (NaN -> null)."""
    return json.dumps(_clean(results), allow_nan=False, separators=(",", ":"))

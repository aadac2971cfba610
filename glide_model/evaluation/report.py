"""Show evaluation results: a rich table (optionally relative to a baseline, as in the paper's
tables) and a grouped bar plot PNG. ``results`` maps a method name to :func:`metrics.evaluate`'s
frame (index overall/familiar/unfamiliar)."""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from pathlib import Path

import numpy as np
import pandas as pd
from rich.console import Console
from rich.table import Table

from glide_model.evaluation.metrics import SEGMENTS


def results_frame(results: Mapping[str, pd.DataFrame]) -> pd.DataFrame:
    """Long frame: one row per (method, segment)."""
    if not results:
        raise ValueError("no results to report")
    parts = [frame.reset_index().assign(method=name) for name, frame in results.items()]
    out = pd.concat(parts, ignore_index=True)
    return out[["method", "segment"] + [c for c in out.columns if c not in ("method", "segment")]]


def _metric_columns(results: Mapping[str, pd.DataFrame], metrics: Sequence[str] | None) -> list[str]:
    first = next(iter(results.values()))
    cols = list(metrics) if metrics else [c for c in first.columns if c != "n"]
    missing = [c for c in cols if c not in first.columns]
    if missing:
        raise ValueError(f"unknown metrics {missing}; available: {[c for c in first.columns if c != 'n']}")
    return cols


def results_table(
    results: Mapping[str, pd.DataFrame],
    metrics: Sequence[str] | None = None,
    baseline: str | None = None,
    title: str = "Offline retrieval on held-out non-habitual listens",
) -> Table:
    """Rows: segment x method; cells: value, plus relative change vs ``baseline`` when given."""
    cols = _metric_columns(results, metrics)
    if baseline is not None and baseline not in results:
        raise ValueError(f"baseline {baseline!r} is not one of {list(results)}")
    table = Table(title=title)
    table.add_column("segment")
    table.add_column("method")
    table.add_column("n", justify="right")
    for c in cols:
        table.add_column(c, justify="right")
    for segment in SEGMENTS:
        for name, frame in results.items():
            if segment not in frame.index:
                continue
            row = frame.loc[segment]
            cells = []
            for c in cols:
                value = float(row[c])
                text = "-" if np.isnan(value) else f"{value:.4f}"
                if baseline is not None and name != baseline:
                    base = float(results[baseline].loc[segment, c])
                    if base > 0 and not np.isnan(value):
                        text += f" ({(value - base) / base:+.1%})"
                cells.append(text)
            table.add_row(segment, name, str(int(row["n"])), *cells)
        table.add_section()
    return table


def print_results(results: Mapping[str, pd.DataFrame], console: Console | None = None, **kwargs) -> None:
    (console or Console()).print(results_table(results, **kwargs))


def plot_results(
    results: Mapping[str, pd.DataFrame], path: str | Path, metric: str = "recall@30", title: str | None = None
) -> Path:
    """Grouped bars: one group per segment, one bar per method; written as a PNG."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    _metric_columns(results, [metric])
    methods = list(results)
    width = 0.8 / len(methods)
    x = np.arange(len(SEGMENTS))
    fig, ax = plt.subplots(figsize=(1.5 + 1.2 * len(SEGMENTS) * max(1, len(methods) / 2), 4))
    for i, name in enumerate(methods):
        frame = results[name]
        values = [float(frame.loc[s, metric]) if s in frame.index else np.nan for s in SEGMENTS]
        ax.bar(x + (i - (len(methods) - 1) / 2) * width, values, width, label=name)
    ax.set_xticks(x, SEGMENTS)
    ax.set_ylabel(metric)
    ax.set_title(title or f"{metric} by familiarity segment")
    ax.legend()
    fig.tight_layout()
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

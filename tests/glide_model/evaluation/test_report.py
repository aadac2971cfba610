"""glide_model.evaluation.report: the rich table and the bar plot."""

from __future__ import annotations

import pandas as pd
import pytest
from rich.console import Console

from glide_model.evaluation.report import plot_results, print_results, results_frame


def result(recall: float) -> pd.DataFrame:
    return pd.DataFrame(
        {"n": [10, 4, 6], "recall@30": [recall, recall * 2, recall / 2], "ndcg@30": [0.1, 0.2, 0.05]},
        index=pd.Index(["overall", "familiar", "unfamiliar"], name="segment"),
    )


def test_table_shows_relative_change_against_the_baseline():
    console = Console(record=True, width=140)
    print_results({"popularity": result(0.2), "glide": result(0.25)}, console=console, baseline="popularity")
    text = console.export_text()
    assert "0.2500 (+25.0%)" in text and "popularity" in text and "unfamiliar" in text
    with pytest.raises(ValueError, match="baseline"):
        print_results({"a": result(0.1)}, console=console, baseline="b")
    with pytest.raises(ValueError, match="unknown metrics"):
        print_results({"a": result(0.1)}, console=console, metrics=["mrr"])


def test_long_frame_and_png(tmp_path):
    results = {"popularity": result(0.2), "cf": result(0.3)}
    long = results_frame(results)
    assert len(long) == 6 and list(long.columns[:2]) == ["method", "segment"]
    path = plot_results(results, tmp_path / "plots" / "recall.png")
    data = path.read_bytes()
    assert data[:8] == b"\x89PNG\r\n\x1a\n" and len(data) > 5_000

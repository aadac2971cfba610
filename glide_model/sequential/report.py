"""Show a harness record (glide_model/sequential/harness.py): the one-line JSON summary, per-protocol
frames for the project's rich tables and bar plots (glide_model/evaluation/report.py), and a
markdown report with its PNG plots: per-segment bars, and, when LLM systems ran, the decoding
ablation and the learning curves (glide_model/sequential/llm_report.py).
"""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import pandas as pd

from glide_model.evaluation.metrics import SEGMENTS
from glide_model.evaluation.report import plot_results
from glide_model.sequential.llm_report import (
    decoding_section, learning_curve_section, llm_fit_summary, quantizer_section,
)
from glide_model.sequential.metrics import METRICS

JSON_PROTOCOL = "history_excluded"  # GLIDE's: it never recommends a consumed episode
JSON_METRICS = ("recall@10", "ndcg@10", "recall@30", "ndcg@30", "hr@30")


def json_summary(record: dict[str, Any], protocol: str = JSON_PROTOCOL) -> dict[str, Any]:
    """{system: {recall@10, ndcg@10, recall@30, ndcg@30, hr@30, recall@30_familiar,
    recall@30_unfamiliar, n}, "source", "protocol", "skipped": {system: reason}}; a segment that does
    not exist (no item text, so no brands) is null."""
    out: dict[str, Any] = {}
    for name, result in record["systems"].items():
        segments = result["metrics"][protocol]
        row = {m: _number(segments["overall"][m]) for m in JSON_METRICS}
        for segment in ("familiar", "unfamiliar"):
            row[f"recall@30_{segment}"] = _number(segments[segment]["recall@30"]) if segment in segments else None
        row["n"] = segments["overall"]["n"]
        out[name] = row
    out["source"] = record["source"]
    out["protocol"] = protocol
    out["skipped"] = dict(record["skipped"])
    return out


def _number(value: float) -> float | None:
    return None if value is None or math.isnan(value) else round(float(value), 5)


def protocol_frames(record: dict[str, Any], protocol: str) -> dict[str, pd.DataFrame]:
    """{system: frame indexed by segment, columns METRICS + n}: what results_table/plot_results take."""
    return {name: pd.DataFrame.from_dict(result["metrics"][protocol], orient="index")[[*METRICS, "n"]]
            .rename_axis("segment") for name, result in record["systems"].items()}


def _fmt(value: Any) -> str:
    if isinstance(value, float):
        return "-" if math.isnan(value) else f"{value:.4f}"
    return str(value)


def _table(header: list[str], rows: list[list[Any]]) -> list[str]:
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    return lines + ["| " + " | ".join(_fmt(v) for v in row) + " |" for row in rows]


def _fit_summary(info: dict[str, Any]) -> str:
    llm = llm_fit_summary(info)
    if llm is not None:
        return llm
    fit = info.get("fit") or {}
    parts = []
    if "best_epoch" in fit:
        parts.append(f"best epoch {fit['best_epoch']} of {len(fit.get('epochs', []))}, "
                     f"valid recall@10 {fit['best_valid']:.4f}")
    if "config" in info:
        parts.append(", ".join(f"{k}={v}" for k, v in info["config"].items() if k not in ("threads",)))
    if "sids" in info:
        parts.append(f"SIDs: {info['sids']['source']} ({info['sids']['collided_items']} items in collisions)")
    return "; ".join(parts) or "-"


def write_markdown(record: dict[str, Any], out_dir: str | Path, title: str | None = None) -> Path:
    """``report.md`` + ``segments-<protocol>.png`` in ``out_dir``; returns the markdown's path."""
    out_dir = Path(out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    ds = record["dataset"]
    lines = [f"# {title or 'Sequential evaluation: ' + ds['name']}", "",
             f"Source `{record['source']}`: {ds['users']} users, {ds['items']} items, {ds['interactions']} "
             f"interactions; leave-one-out, full ranking over all items, {ds['test_users']} test users"
             f"{' (quick run, see glide_model/sequential/baselines.py)' if record['quick'] else ''}; seed {record['seed']}.", ""]
    for protocol in record["protocols"]:
        frames = protocol_frames(record, protocol) if record["systems"] else {}
        lines += [f"## {protocol.replace('_', ' ')}", ""]
        if not frames:
            lines += ["No system ran.", ""]
            continue
        lines += _table(["system", "n", *METRICS],
                        [[name, int(f.loc["overall", "n"]), *f.loc["overall", list(METRICS)]] for name, f in frames.items()])
        segs = [s for s in SEGMENTS if s in next(iter(frames.values())).index]
        if len(segs) > 1:
            lines += ["", "Per segment (n, recall@30, ndcg@10):", ""]
            lines += _table(["system", *segs], [[name, *(f"{int(f.loc[s, 'n'])}: {f.loc[s, 'recall@30']:.4f}, "
                                                          f"{f.loc[s, 'ndcg@10']:.4f}" for s in segs)]
                                                 for name, f in frames.items()])
            png = plot_results(frames, out_dir / f"segments-{protocol}.png", metric="recall@30",
                               title=f"Recall@30 by segment ({protocol.replace('_', ' ')})")
            lines += ["", f"![recall@30 by segment]({png.name})"]
        lines.append("")
    if record["comparisons"]:
        lines += ["## Paired bootstrap, 95% CI of the difference", ""]
        rows = []
        for name, refs in record["comparisons"].items():
            for ref, protocols in refs.items():
                for protocol, metrics in protocols.items():
                    rows.append([f"{name} {ref}", protocol, *(f"{c['diff']:+.4f} [{c['lo']:+.4f}, {c['hi']:+.4f}]"
                                                              for c in metrics.values())])
        metric_names = list(next(iter(next(iter(record["comparisons"].values())).values())).values())[0]
        lines += _table(["system", "protocol", *metric_names], rows) + [""]
    lines += decoding_section(record, out_dir)
    lines += learning_curve_section(record, out_dir)
    lines += quantizer_section(record)
    lines += ["## Systems", ""]
    lines += _table(["system", "seconds", "how it was fit"],
                    [[name, f"{r['seconds']:.1f}", _fit_summary(r["info"])] for name, r in record["systems"].items()])
    for name, reason in record["skipped"].items():
        lines.append(f"| {name} | skipped | {reason} |")
    path = out_dir / "report.md"
    path.write_text("\n".join(lines) + "\n")
    return path

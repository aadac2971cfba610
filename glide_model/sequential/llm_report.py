"""The LLM systems' part of the markdown report: the decoding ablation (paper Table 3) and learning curves.

Decoding: for each system whose ranker reported prefix ceilings (glide_model/sequential/llm_ranker.py),
its Recall@30 (history excluded) and prefix ceilings at 1..M codes, each also as the relative change
against GLIDE's beam search (``glide``) at the same scope (Recall@30 against its Recall@30, the
N-code ceiling against its N-code ceiling), the paper's "Δ Recall@30" by scope.
Learning curves: the training loss of every LLM stage (grounding 1 and 2, once per run, and each
variant's instruction tuning) against the optimizer step.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

BEAM_REFERENCE = "glide"


def _rel(value: float | None, ref: float | None) -> str:
    if value is None or ref is None or ref == 0:
        return "-"
    return f"{100 * (value - ref) / ref:+.1f}%"


def decoding_rows(record: dict[str, Any]) -> list[dict[str, Any]]:
    """One row per system with prefix ceilings: name, decoding, n, recall@30, ceilings {depth: value}."""
    rows = []
    for name, result in record["systems"].items():
        diag = result.get("diagnostics") or {}
        if "prefix_ceiling@30" not in diag:
            continue
        rows.append({"system": name, "decoding": diag.get("decoding", diag.get("decoder", "")), "n": diag["n"],
                     "recall@30": result["metrics"]["history_excluded"]["overall"]["recall@30"],
                     "ceilings": diag["prefix_ceiling@30"], "sids_per_user": diag.get("sids_per_user")})
    return rows


def decoding_section(record: dict[str, Any], out_dir: Path) -> list[str]:
    rows = decoding_rows(record)
    if not rows:
        return []
    ref = next((r for r in rows if r["system"] == BEAM_REFERENCE), None)
    depths = list(rows[0]["ceilings"])
    full = depths[-1]
    header = ["system", "decoding", "n", "SIDs/user", "recall@30", "Δ recall@30"]
    header += [f"prefix ceiling {d}" for d in depths]
    lines = ["## Decoding (paper Table 3)", "",
             f"Recall@30 with history excluded; prefix ceiling N = share of examples whose target's first N SID "
             f"codes match one of the 30 best decoded SIDs' (N = {full}: SID-level Recall@30). Δ: relative to "
             f"{BEAM_REFERENCE} (beam search) at the same scope.", ""]
    lines += ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    for r in rows:
        cells = [r["system"], r["decoding"], str(r["n"]), str(r["sids_per_user"]), f"{r['recall@30']:.4f}",
                 _rel(r["recall@30"], ref["recall@30"] if ref else None)]
        for d in depths:
            value = r["ceilings"].get(d)
            cells.append("-" if value is None else
                         f"{value:.4f} ({_rel(value, ref['ceilings'].get(d) if ref else None)})")
        lines.append("| " + " | ".join(cells) + " |")
    png = plot_decoding(rows, out_dir / "decoding.png")
    return lines + ["", f"![decoding ablation]({png.name})", ""]


def plot_decoding(rows: list[dict[str, Any]], path: Path) -> Path:
    """Grouped bars per system: item Recall@30 and the prefix ceiling at each depth."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    depths = list(rows[0]["ceilings"])
    series = [("recall@30", [r["recall@30"] for r in rows])]
    series += [(f"ceiling {d}", [r["ceilings"].get(d) or 0.0 for r in rows]) for d in depths]
    width = 0.8 / len(series)
    fig, ax = plt.subplots(figsize=(max(5.0, 1.6 * len(rows)), 3.6))
    x = np.arange(len(rows))
    for n, (label, values) in enumerate(series):
        ax.bar(x + (n - (len(series) - 1) / 2) * width, values, width, label=label)
    ax.set_xticks(x, [r["system"] for r in rows], rotation=15)
    ax.set_ylabel("share of test users")
    ax.set_title("Decoding: Recall@30 and prefix ceilings@30")
    ax.legend(fontsize=8)
    fig.tight_layout()
    fig.savefig(path, dpi=110)
    plt.close(fig)
    return path


def curves(record: dict[str, Any]) -> dict[str, list[list[float]]]:
    """{label: [[step, loss], ...]}: grounding stages once, then each trained variant's instruction tuning."""
    out: dict[str, list[list[float]]] = {}
    for name, result in record["systems"].items():
        info = result.get("info") or {}
        grounding = info.get("grounding")
        if isinstance(grounding, dict) and "grounding stage1" not in out:
            offset = 0  # stage 2 continues where stage 1 stopped
            for stage in ("stage1", "stage2"):
                curve = (grounding.get(stage) or {}).get("curve")
                if curve:
                    out[f"grounding {stage}"] = [[step + offset, loss] for step, loss in curve]
                    offset += curve[-1][0]
        curve = (info.get("instruct") or {}).get("curve")
        key = f"{info.get('variant')}{'' if info.get('grounding', True) else ' (no grounding)'}"
        if curve and not any(curve == c for c in out.values()):  # the decoding ablations share glide's
            out[f"instruct {key if info.get('variant') else name}"] = curve
    return out


def learning_curve_section(record: dict[str, Any], out_dir: Path) -> list[str]:
    lines_by = curves(record)
    if not lines_by:
        return []
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    fig, ax = plt.subplots(figsize=(8.4, 3.6))
    for label, points in lines_by.items():
        ax.plot([p[0] for p in points], [p[1] for p in points], label=label,
                linestyle="--" if "grounding" in label else "-")
    ax.set_xlabel("optimizer step")
    ax.set_ylabel("training loss (target tokens)")
    ax.set_title("LLM learning curves")
    ax.legend(fontsize=7, loc="upper left", bbox_to_anchor=(1.01, 1.0))
    fig.tight_layout()
    path = out_dir / "learning-curve.png"
    fig.savefig(path, dpi=110)
    plt.close(fig)
    rows = [f"| {label} | {len(points)} | {points[0][1]:.3f} | {points[-1][1]:.3f} |"
            for label, points in lines_by.items()]
    return ["## Learning curves", "", "| stage | points | first loss | last loss |", "|---|---|---|---|", *rows, "",
            f"![learning curves]({path.name})", ""]


def quantizer_section(record: dict[str, Any]) -> list[str]:
    """HR@30 per quantizer and model (paper Table 2), from the llm_quantizers systems that ran."""
    rows = []
    for name, result in record["systems"].items():
        info = result.get("info") or {}
        if "quantizer" not in info:
            continue
        overall = result["metrics"]["history_excluded"]["overall"]
        rows.append(f"| {info['model']} | {info['quantizer']} | {overall['n']} | {overall['hr@30']:.4f} | "
                    f"{overall['recall@10']:.4f} | {info['sids']['collided_items']} |")
    if not rows:
        return []
    return ["## Quantizers (paper Table 2)", "", "History excluded; each model trained on its quantizer's SIDs of the "
            "same item-text embeddings.", "", "| model | quantizer | n | HR@30 | recall@10 | items in collisions |",
            "|---|---|---|---|---|---|", *sorted(rows), ""]


def llm_fit_summary(info: dict[str, Any]) -> str | None:
    """One line for the systems table, for an LLM system's info; None for any other system."""
    if "instruct" not in info:
        return None
    inst = info["instruct"]
    parts = [f"{info.get('backbone')} {info.get('variant')}", info.get("decoding", ""),
             f"instruct {inst['steps']} steps over {info.get('train_transitions')} transitions "
             f"({inst['tokens_per_s']:.0f} tok/s, loss {inst['final_loss']})"]
    grounding = info.get("grounding")
    if isinstance(grounding, dict) and "stage1" in grounding:
        parts.append(f"grounding {grounding['stage1']['steps']}+{grounding['stage2']['steps']} steps")
    else:
        parts.append("no grounding" if grounding is False else str(grounding))
    parts.append(f"modes: {info.get('mode_policy')}")
    return "; ".join(p for p in parts if p)

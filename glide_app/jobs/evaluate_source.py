"""`glide evaluate --source DIR|scientific`: every registered sequential system on an interaction
dataset in one run (glide_model/sequential/harness.py), shown as rich tables, a markdown report
with PNG plots, and the one-line JSON summary (history-excluded protocol).

Output goes to ``--out`` (default ``<data_dir>/evaluate_source/<dataset>-<quick|full>-seed<seed>``);
finished systems are checkpointed there, so the same command run again resumes where it stopped.
"""

from __future__ import annotations

import re
import time
from pathlib import Path
from typing import Any

from rich.console import Console

from glide.config import GlideSettings
from glide_model.evaluation.report import results_table
from glide_model.sequential.harness import evaluate_source
from glide_model.sequential.report import json_summary, protocol_frames, write_markdown
from glide_model.sequential.systems import default_systems


def default_out_dir(settings: GlideSettings, source: str, quick: bool, seed: int) -> Path:
    stem = re.sub(r"[^A-Za-z0-9._-]+", "_", Path(source).name or "source")
    return Path(settings.data_dir) / "evaluate_source" / f"{stem}-{'quick' if quick else 'full'}-seed{seed}"


def run_evaluate_source_job(settings: GlideSettings, source: str, *, sids_file: str | None = None,
                            quick: bool = False, systems: list[str] | None = None, out_dir: str | None = None,
                            seed: int = 0, console: Console | None = None) -> dict[str, Any]:
    """Run the harness, print and write the reports; returns {"record", "summary", "report", "out_dir"}.
    ``systems`` None: every registered system, the GLIDE LLM systems included."""
    console = console or Console()
    out = Path(out_dir) if out_dir else default_out_dir(settings, source, quick, seed)
    started = time.perf_counter()
    console.print(f"[bold]evaluate[/] {source} ({'quick' if quick else 'full'} run) -> {out}")
    systems = default_systems(include_llm=True) if systems is None else systems
    record = evaluate_source(source, systems=systems, quick=quick, sids_file=sids_file, seed=seed, out_dir=out,
                             progress=lambda message: console.print(f"  {message}", highlight=False))
    for protocol in record["protocols"]:
        frames = protocol_frames(record, protocol)
        if frames:
            console.print(results_table(frames, metrics=["recall@10", "ndcg@10", "recall@30", "ndcg@30", "hr@30"],
                                        baseline="sasrec" if "sasrec" in frames else None,
                                        title=f"{record['dataset']['name']}: {protocol.replace('_', ' ')}"))
    for name, reason in record["skipped"].items():
        console.print(f"[yellow]skipped[/] {name}: {reason}")
    report = write_markdown(record, out)
    console.print(f"[bold green]done[/] in {time.perf_counter() - started:.0f}s; report {report}")
    return {"record": record, "summary": json_summary(record), "report": str(report), "out_dir": str(out)}

"""One simulated A/B from start to verdict: prepare the pipeline, run the slots, read the outcomes
back from the event log, report; the stream worker and the stack are stopped whatever happens."""

from __future__ import annotations

from rich.console import Console

from glide.config import GlideSettings
from glide_app.jobs.ab import report
from glide_app.jobs.ab.config import ABConfig
from glide_app.jobs.ab.loop import run_experiment
from glide_app.jobs.ab.pipeline import prepare


def run_ab(settings: GlideSettings, cfg: ABConfig, console: Console) -> dict:
    from infra import stack

    console.rule("[bold cyan]1. the pipeline: stack, world history through the streams, GLIDE trained on it")
    setup = prepare(settings, cfg, console)
    try:
        console.rule(f"[bold cyan]2. {cfg.days} experiment days x {cfg.slots_per_day} slots through the pipeline")
        run = run_experiment(settings, cfg, setup, console)
        console.rule("[bold cyan]3. outcomes from the event log: lifts, A/A, GLIDE's share")
        result, daily, lifts = report.summarise(settings, cfg, run)
        result["model_version"] = setup.record.get("run")
        result["plot"] = str(report.plot_daily(daily, settings.data_dir / "report" / "ab_daily_lift.png"))
        daily.to_csv(settings.data_dir / "report" / "ab_daily_lift.csv")
        report.show(console, result, lifts, daily)
        return result
    finally:
        setup.stream_worker.terminate()
        setup.stream_worker.wait(timeout=60)
        stack.down(settings)

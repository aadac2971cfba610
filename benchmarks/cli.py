"""`glide bench`: one subcommand per benchmark, imported only when run (add yours to BENCHES)."""

from __future__ import annotations

import importlib

import click

# name -> "module:attribute" of a click command.
BENCHES: dict[str, str] = {
    "e2e": "benchmarks.e2e:e2e",
    "generate": "benchmarks.generate:generate",
    "ingest": "benchmarks.ingest:ingest",
    "llm": "benchmarks.llm:llm",
    "lookup": "benchmarks.lookup:lookup",
    "sids-cold-start": "benchmarks.sids:cold_start",
    "world-calibration": "benchmarks.world_calibration:world_calibration",
}


class _LazyBenches(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(set(BENCHES) | set(self.commands))

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        if name in self.commands:
            return self.commands[name]
        target = BENCHES.get(name)
        if target is None:
            return None
        module, attr = target.split(":")
        return getattr(importlib.import_module(module), attr)


@click.group(cls=_LazyBenches)
def bench() -> None:
    """Measure GLIDE's components; results go in benchmarks/RESULTS.md."""

"""`glide stack up|down|status`."""

from __future__ import annotations

import click
from rich.console import Console
from rich.table import Table

from glide.config import load_settings
from infra import stack as stack_lib

console = Console()


def _print(status: stack_lib.StackStatus) -> None:
    table = Table(title=f"GLIDE stack ({status.profile})", show_header=False)
    table.add_row("kafka", f"{status.bootstrap or '-'}" + (f"  (pid {status.broker_pid})" if status.broker_pid else ""))
    table.add_row("running", "yes" if status.broker_running else "no")
    table.add_row("topics", ", ".join(t for t in status.topics if not t.startswith("__")) or "-")
    table.add_row("feature views", ", ".join(status.feature_views) or "-")
    console.print(table)


@click.group()
def stack() -> None:
    """Start, stop and inspect the Kafka broker + Feast stores."""


@stack.command()
@click.option("--port", type=int, default=None, help="Broker port (default: GLIDE_KAFKA_PORT, else a free port).")
@click.option("--profile", type=click.Choice(["embedded", "cluster"]), default=None)
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def up(port: int | None, profile: str | None, data_dir: str | None) -> None:
    """Start the stack (idempotent)."""
    settings = load_settings(kafka_port=port, profile=profile, data_dir=data_dir)
    with console.status("starting broker, creating topics, applying Feast definitions..."):
        status = stack_lib.up(settings)
    _print(status)


@stack.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def down(data_dir: str | None) -> None:
    """Stop what `up` started."""
    stopped = stack_lib.down(load_settings(data_dir=data_dir))
    console.print("broker stopped" if stopped else "nothing to stop")


@stack.command()
@click.option("--data-dir", type=click.Path(file_okay=False), default=None)
def status(data_dir: str | None) -> None:
    """Show what is running."""
    _print(stack_lib.status(load_settings(data_dir=data_dir)))

"""The one `glide` console script. Each subcommand lives beside the code it runs and is imported
only when invoked, so `glide --help` stays fast (feast and torch take seconds to import)."""

from __future__ import annotations

import importlib
import sys

import click

from glide.config import ConfigError
from glide.event_log import EventLogError
from glide.secrets import mask_secrets

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "stack": "glide_app.commands.stack:stack",
    "world": "glide_app.commands.world:world",
    "catalog": "glide_app.commands.catalog:catalog",
    "replay": "glide_app.commands.replay:replay",
    "streams": "glide_app.commands.streams:streams",
    "sids": "glide_app.commands.sids:sids",
    "train": "glide_app.commands.train:train",
    "evaluate": "glide_app.commands.evaluate:evaluate",
    "retrain": "glide_app.commands.retrain:retrain",
    "serve": "glide_app.commands.serve:serve",
    "recommend": "glide_app.commands.serve:recommend",
    "candidates": "glide_app.commands.candidates:candidates",
    "judge": "glide_app.commands.judge:judge",
    "review": "glide_app.commands.review:review",
    "simulate": "glide_app.commands.simulate:simulate",
    "bench": "benchmarks.cli:bench",
    "demo": "glide_app.demo:demo",
}


class LazyGroup(click.Group):
    def list_commands(self, ctx: click.Context) -> list[str]:
        return sorted(COMMANDS)

    def get_command(self, ctx: click.Context, name: str) -> click.Command | None:
        target = COMMANDS.get(name)
        if target is None:
            return None
        module_name, attr = target.split(":")
        try:
            module = importlib.import_module(module_name)
        except ModuleNotFoundError as exc:
            if exc.name and module_name.startswith(exc.name):
                raise click.ClickException(f"`glide {name}` is not available in this build") from exc
            raise
        return getattr(module, attr)


@click.group(cls=LazyGroup)
def cli() -> None:
    """GLIDE: Semantic-ID generative retrieval for podcast discovery."""


def _one_line_errors() -> tuple[type[Exception], ...]:
    """Errors whose message names the fix: printed as one line, rc 2. CatalogError is looked up only if
    its module was imported (it then may have been raised), so `glide --help` imports no SQLAlchemy."""
    catalog = sys.modules.get("glide.catalog.errors")
    return (ConfigError, EventLogError) + ((catalog.CatalogError,) if catalog else ())


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.message = mask_secrets(exc.message)
        exc.show()
        sys.exit(exc.exit_code)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)
    except Exception as exc:
        if not isinstance(exc, _one_line_errors()):
            raise
        message = " ".join(mask_secrets(exc).split())  # one line, no credentials
        click.echo(f"error: {message}", err=True)
        sys.exit(2)


if __name__ == "__main__":
    main()

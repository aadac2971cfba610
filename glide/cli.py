"""The one `glide` console script. Each subcommand lives beside the code it runs and is imported
only when invoked, so `glide --help` stays fast (feast and torch take seconds to import)."""

from __future__ import annotations

import importlib
import sys

import click

from glide.config import ConfigError

# name -> "module:attribute" of a click command or group.
COMMANDS: dict[str, str] = {
    "stack": "infra.stack_cli:stack",
    "world": "glide.world.cli:world",
    "catalog": "glide.catalog.cli:catalog",
    "replay": "streams.replay_cli:replay",
    "streams": "streams.cli:streams",
    "sids": "glide_model.sids.cli:sids",
    "train": "glide.jobs.train_cli:train",
    "evaluate": "glide.jobs.evaluate_cli:evaluate",
    "retrain": "glide.jobs.retrain_cli:retrain",
    "serve": "streams.serve_cli:serve",
    "recommend": "streams.serve_cli:recommend",
    "bench": "benchmarks.cli:bench",
    "demo": "glide.demo:demo",
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


def main() -> None:
    try:
        cli(standalone_mode=False)
    except click.exceptions.Abort:
        sys.exit(130)
    except click.ClickException as exc:
        exc.show()
        sys.exit(exc.exit_code)
    except ConfigError as exc:
        click.echo(f"error: {exc}", err=True)
        sys.exit(2)
    except click.exceptions.Exit as exc:
        sys.exit(exc.exit_code)


if __name__ == "__main__":
    main()

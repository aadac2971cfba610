"""`glide catalog ...`: create/upgrade the catalog tables and show what is in them.
(Also runnable on its own: `python -m glide_app.commands.catalog migrate`.)"""

from __future__ import annotations

import click

from glide.catalog.db import CatalogDB
from glide.catalog.errors import CatalogError


def _db() -> CatalogDB:
    try:
        return CatalogDB.from_settings()
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None


@click.group()
def catalog() -> None:
    """The catalog / metadata database (GLIDE_CATALOG_URL, or the profile's default)."""


@catalog.command()
def migrate() -> None:
    """Create or upgrade the catalog tables to the newest revision (idempotent)."""
    db = _db()
    try:
        revision = db.migrate()
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{db!r}: at revision {revision}")


@catalog.command()
def status() -> None:
    """Revision, row counts, the promoted model and the latest job runs."""
    db = _db()
    try:
        revision = db.revision()
        if revision is None:
            raise click.ClickException(f"{db!r} has no catalog tables: run `python -m glide_app.commands.catalog migrate`")
        counts = db.counts()
        promoted = db.promoted_model()
        runs = db.job_runs(limit=5)
    except CatalogError as exc:
        raise click.ClickException(str(exc)) from None
    click.echo(f"{db!r} at revision {revision}")
    click.echo("  " + ", ".join(f"{name}={n}" for name, n in counts.items()))
    click.echo(f"  promoted model: {promoted['version'] if promoted else 'none'}")
    for r in runs:
        click.echo(f"  job {r['id']} {r['job']} {r['status']} started {r['started_at']:%Y-%m-%d %H:%M:%S}Z")


if __name__ == "__main__":
    catalog()

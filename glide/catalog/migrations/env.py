"""Alembic environment for the catalog. `glide.catalog.migrate` passes an open connection in
`config.attributes["connection"]`; the `sqlalchemy.url` option is the fallback for the alembic CLI."""

from __future__ import annotations

import sqlalchemy as sa
from alembic import context

from glide.catalog.schema import metadata

config = context.config


def _run(connection: sa.Connection) -> None:
    context.configure(
        connection=connection,
        target_metadata=metadata,
        render_as_batch=connection.dialect.name == "sqlite",  # SQLite cannot ALTER most things in place
        compare_type=True,
    )
    with context.begin_transaction():
        context.run_migrations()


connection = config.attributes.get("connection")
if connection is not None:
    _run(connection)
else:
    url = config.get_main_option("sqlalchemy.url")
    if not url:
        raise SystemExit("set sqlalchemy.url, or run migrations through glide.catalog.CatalogDB.migrate()")
    engine = sa.create_engine(url, poolclass=sa.pool.NullPool)
    with engine.connect() as conn:
        _run(conn)
    engine.dispose()

"""`CatalogDB`: the catalog/metadata database (shows, episodes, quantizers, SID assignments, model
versions, job runs) over SQLite (embedded profile) or PostgreSQL (cluster profile).

One class for callers, one module per concept for readers: each concept is a class over the shared
`CatalogConnection` (engine, transactions, migrations, bulk upsert), and `CatalogDB` composes them.
All of them share one engine and one set of tables, so a single `CatalogDB` object serves every
concept, and a method keeps its name whichever module defines it.

- content.py: shows and episodes (`upsert_*`, `*_frame`, `get_show`, `get_episode`)
- sid_registry.py: SID quantizers and assignments (`register_quantizer`, `save_sid_assignments`, ...)
- model_registry.py: model versions (`register_model`, `promote_model`, `promoted_model`, ...)
- job_runs.py: job runs (`job_run`, `job_runs`)
"""

from __future__ import annotations

from glide.catalog.content import CatalogContent
from glide.catalog.job_runs import JobRuns
from glide.catalog.model_registry import ModelRegistry
from glide.catalog.sid_registry import SidRegistry


class CatalogDB(CatalogContent, SidRegistry, ModelRegistry, JobRuns):
    """Catalog access. Construction is cheap (no connection); call `migrate()` once to create tables.

    `schema` only matters on PostgreSQL: tables live in that schema (created by `migrate()`), default
    `GLIDE_POSTGRES_SCHEMA` ("glide"). SQLite has no schemas and ignores it.
    """

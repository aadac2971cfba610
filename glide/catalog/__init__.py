"""The catalog and metadata DB: shows, episodes, SID quantizers and assignments, model versions, job runs."""

from glide.catalog.db import CatalogDB, JobRun
from glide.catalog.errors import CatalogError

__all__ = ["CatalogDB", "CatalogError", "JobRun"]

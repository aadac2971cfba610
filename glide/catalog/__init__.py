"""The catalog and metadata DB: shows, episodes, SID quantizers and assignments, model versions, job runs."""

from glide.catalog.db import CatalogDB
from glide.catalog.errors import CatalogError
from glide.catalog.job_runs import JobRun

__all__ = ["CatalogDB", "CatalogError", "JobRun"]

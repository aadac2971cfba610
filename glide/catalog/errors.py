"""The one error type the catalog raises; its message names the offending row/field and the fix."""

from __future__ import annotations


class CatalogError(ValueError):
    """Bad input or an unusable catalog database; the message says what to change."""

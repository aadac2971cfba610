"""The one error of this package that callers are expected to catch and show."""

from __future__ import annotations


class DatasetError(ValueError):
    """An input file is missing or malformed; the one-line message names the file and what is wrong."""

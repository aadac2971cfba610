"""The one place that hides credentials before a URL or a message reaches an error or a log.

``mask_url("postgresql+psycopg://user:pw@host/db")`` -> ``postgresql+psycopg://user:***@host/db``;
``mask_secrets(message)`` does the same to every URL-with-password inside any text, and to
``password=...`` options (URL query strings, Feast's Redis connection string ``host:port,password=...``).
Pure string work: no SQLAlchemy or Redis import, never raises.
"""

from __future__ import annotations

import re
from typing import Any

MASK = "***"

# scheme://user:password@ -- the password runs to the last "@" before any whitespace, "/" or quote, so a
# raw "@" inside it (should have been %40) is hidden too.
_URL_PASSWORD = re.compile(r"(?P<head>\b[A-Za-z][A-Za-z0-9+.\-]*://[^:/@\s'\"]*):(?P<pw>[^\s/'\"]*)@")
# password=... in a query string or a comma-separated connection string.
_PASSWORD_OPTION = re.compile(r"(?P<head>\b(?:password|passwd|pwd)=)(?P<pw>[^&,;\s'\"]*)", re.IGNORECASE)


def mask_secrets(message: Any) -> str:
    """``message`` as text with every URL password and ``password=`` value replaced by ``***``."""
    text = str(message)
    text = _URL_PASSWORD.sub(lambda m: f"{m['head']}:{MASK}@" if m["pw"] else m[0], text)
    return _PASSWORD_OPTION.sub(lambda m: f"{m['head']}{MASK}" if m["pw"] else m[0], text)


def mask_url(url: Any) -> str:
    """The URL (a string or a ``sqlalchemy.URL``) with its password hidden: safe for errors and logs."""
    return mask_secrets(url)

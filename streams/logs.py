"""Structured logs: one JSON object per line for the `glide` loggers (GLIDE_STREAMS_LOG_JSON).
Every line, JSON or plain, passes through glide.secrets.mask_secrets: no credential reaches a log."""

from __future__ import annotations

import logging
import sys
from datetime import datetime, timezone

import orjson

from glide.secrets import mask_secrets

_STANDARD = set(vars(logging.LogRecord("", 0, "", 0, "", (), None))) | {"message", "asctime", "taskName"}


class JsonFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        out = {
            "ts": datetime.fromtimestamp(record.created, timezone.utc).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "msg": record.getMessage(),
        }
        for k, v in vars(record).items():
            if k not in _STANDARD:
                out[k] = v
        if record.exc_info:
            out["exc"] = self.formatException(record.exc_info)
        return mask_secrets(orjson.dumps(out, default=str).decode())


class PlainFormatter(logging.Formatter):
    def format(self, record: logging.LogRecord) -> str:
        return mask_secrets(super().format(record))


def configure(json: bool = True, level: int | str = logging.INFO) -> None:
    """Route the `glide` loggers to stderr, as JSON lines or plain text; idempotent."""
    logger = logging.getLogger("glide")
    for h in list(logger.handlers):
        if getattr(h, "_glide", False):
            logger.removeHandler(h)
    # sys.__stderr__: faust's worker replaces sys.stderr with a proxy that re-logs every line.
    handler = logging.StreamHandler(sys.__stderr__ or sys.stderr)
    handler._glide = True  # type: ignore[attr-defined]
    handler.setFormatter(JsonFormatter() if json else PlainFormatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    logger.addHandler(handler)
    logger.setLevel(level)
    logger.propagate = False

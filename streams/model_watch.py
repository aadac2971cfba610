"""Notice a newly promoted model: poll the registry and load the new one off the serving path.

The poll and the load run in a background thread (loading a model takes seconds to minutes), beside
the serving model, which keeps serving meanwhile; the worker swaps the loaded service in between two
batches (streams/service_lifecycle.py). A model that fails to load is logged and counted, and not
tried again until another version is promoted: the serving model stays.
"""

from __future__ import annotations

import gc
import logging
import threading
from collections.abc import Callable
from concurrent.futures import Future
from typing import Any

from prometheus_client import Counter

log = logging.getLogger("glide.worker")

MODEL_SWAPS = Counter("glide_worker_model_swaps_total", "Newly promoted models, by outcome (swapped: serving "
                      "it; failed: it did not load, the previous model serves on)", ["outcome"])


def in_thread(fn: Callable[[], Any], name: str) -> Future:
    """``fn()`` in a daemon thread: a model still loading never holds up the process's exit."""
    future: Future = Future()

    def run() -> None:
        try:
            future.set_result(fn())
        except BaseException as exc:  # noqa: BLE001 - handed to whoever reads the future
            future.set_exception(exc)

    threading.Thread(target=run, name=name, daemon=True).start()
    return future


class ModelWatch:
    """``promoted()``: the registry's promoted version (None: none); ``load()``: a CandidateService of
    the promoted model; ``prepare(service)``: brings a loaded one up to date before it is handed over."""

    def __init__(self, promoted: Callable[[], str | None], load: Callable[[], Any],
                 prepare: Callable[[Any], None] = lambda service: None):
        self.promoted = promoted
        self.load = load
        self.prepare = prepare
        self.failed: str | None = None  # the version that did not load, not retried while promoted

    def check(self, serving_version: str) -> Any | None:
        """A loaded and prepared service of a newly promoted model, or None (no change, or it failed)."""
        version = self.promoted()
        if version is None or version == serving_version or version == self.failed:
            return None
        log.info("model %s promoted (serving %s): loading it beside the serving one", version, serving_version)
        try:
            service = self.load()
            if service.model_version == serving_version:  # promoted back meanwhile: nothing to swap
                release(service)
                return None
            self.prepare(service)
        except Exception:  # noqa: BLE001 - a broken export must not stop the serving model
            log.exception("the promoted model %s did not load: still serving %s", version, serving_version)
            self.failed = version
            MODEL_SWAPS.labels("failed").inc()
            return None
        self.failed = None
        return service


def release(service: Any) -> None:
    """Free a retired service's model: close its backend (a vLLM server process) and collect it."""
    close = getattr(getattr(service, "backend", None), "close", None)
    if close is not None:
        try:
            close()
        except Exception:  # noqa: BLE001 - it is retired either way
            log.exception("closing the retired model %s failed", getattr(service, "model_version", "?"))
    gc.collect()

"""A fresh data dir for a job that builds its whole loop (the demo, the simulated A/B): the stack is
stopped (the broker keeps topics in memory) and every state is removed, except the caches that are
slow to rebuild and keyed by content, so reusing them cannot leak an earlier run's data."""

from __future__ import annotations

import shutil

from glide.config import GlideSettings

KEEP = ("embeddings", "models")


def reset_data_dir(settings: GlideSettings) -> None:
    from infra import stack

    stack.down(settings)
    if settings.data_dir.is_dir():
        for child in settings.data_dir.iterdir():
            if child.name not in KEEP:
                shutil.rmtree(child) if child.is_dir() else child.unlink()

"""What the neural baselines share while training: a fit log, early stopping on validation Recall@10
that keeps the best epoch's weights, and a scoped torch thread count."""

from __future__ import annotations

import copy
import time
from collections.abc import Callable
from dataclasses import asdict, dataclass, field
from typing import Any

import torch
from torch import nn


@dataclass
class FitLog:
    """What a fit did: per-epoch loss and validation Recall@10, the best epoch, and wall time."""

    epochs: list[dict[str, float]] = field(default_factory=list)
    best_epoch: int = 0
    best_valid: float = float("-inf")
    seconds: float = 0.0

    def improved(self, epoch: int, recall: float) -> bool:
        """Record a validation result; True when it is the best so far. NaN (no validation set)
        counts as a gain, so training without validation keeps its newest weights and never stops early."""
        if recall <= self.best_valid:
            return False
        self.best_valid, self.best_epoch = recall, epoch
        return True

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


class EarlyStopping:
    """Per epoch: log loss and validation recall, keep the best weights, say when to stop (no gain for
    ``patience`` epochs); :meth:`finish` puts the best weights back and returns the log."""

    def __init__(self, net: nn.Module, name: str, patience: int, progress: Callable[[str], None] | None = None):
        self.net, self.name, self.patience, self.progress = net, name, patience, progress
        self.log, self._best = FitLog(), copy.deepcopy(net.state_dict())
        self._started = time.perf_counter()

    def epoch_done(self, epoch: int, loss: float, recall: float) -> bool:
        """Record one epoch; True when training should stop."""
        self.log.epochs.append({"epoch": epoch, "loss": round(loss, 5), "valid_recall@10": round(recall, 5)})
        if self.log.improved(epoch, recall):
            self._best = copy.deepcopy(self.net.state_dict())
        if self.progress is not None:
            self.progress(f"{self.name} epoch {epoch}: loss {loss:.4f}, valid recall@10 {recall:.4f} "
                          f"(best {self.log.best_valid:.4f} @ {self.log.best_epoch})")
        return epoch - self.log.best_epoch >= self.patience

    def finish(self) -> FitLog:
        self.net.load_state_dict(self._best)
        self.log.seconds = round(time.perf_counter() - self._started, 1)
        return self.log


class torch_threads:
    """Use ``n`` torch intra-op threads inside the block (None: leave as is), then restore.

    On a CPU shared with other jobs, 1 thread is often faster than all: idle OpenMP threads spin.
    """

    def __init__(self, n: int | None):
        self.n, self.old = n, torch.get_num_threads()

    def __enter__(self) -> None:
        if self.n:
            torch.set_num_threads(self.n)

    def __exit__(self, *exc: object) -> None:
        torch.set_num_threads(self.old)

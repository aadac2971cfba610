"""Intra-op threads of a decoding process, set on purpose rather than left to torch.

torch sizes its OpenMP pool from the machine, not from the cores this process may run on (a
cgroup or taskset can allow fewer) and not from what else runs there. More threads than free
cores is oversubscription: every parallel region waits for its slowest thread, and a thread the
kernel has parked behind another process stalls the whole matmul (on the shared 2-core box the
decoder went from ~1 s to 10-14 s per request). So the worker picks its count: by default one less
than the cores it may use (at least 1), overridable (``GLIDE_SERVE_THREADS``, ``auto`` = that default).

Why one less: the worker process is not only the decoder (its Kafka consumer, Feast reads and pushes
run beside it), and a machine is rarely the worker's alone. Measured by `glide bench generate` on the
shared 2-core box (load 5-8, 2026-12-03), SmolLM2 beside a busy neighbour: 1 thread decoded 2-8x
faster than 2 (batch 1: 1.4-1.9 s vs 9-15 s per request; batch 16: 0.86-1.26 s vs 2.6-3.0 s).
"""

from __future__ import annotations

import os
from collections.abc import Mapping

THREADS_ENV = "GLIDE_SERVE_THREADS"


def usable_cores() -> int:
    """The cores this process may run on (its CPU affinity), at least 1."""
    try:
        return max(1, len(os.sched_getaffinity(0)))
    except (AttributeError, OSError):  # no sched_getaffinity (macOS)
        return max(1, os.cpu_count() or 1)


def default_threads() -> int:
    """One less than the usable cores, at least 1 (module docstring)."""
    return max(1, usable_cores() - 1)


def parse_threads(value: str | int | None, *, name: str = THREADS_ENV) -> int:
    """A thread count from a setting: a positive integer, or ``auto``/empty/None/0 for
    :func:`default_threads`. ValueError naming ``name`` otherwise (counts above the usable cores are refused too:
    they can only oversubscribe)."""
    cores = usable_cores()
    if value is None or (isinstance(value, str) and value.strip().lower() in ("", "auto")):
        return default_threads()
    try:
        n = int(value)
    except (TypeError, ValueError):
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}") from None
    if n < 0:
        raise ValueError(f"{name} must be a positive integer or 'auto', got {value!r}")
    if n > cores:
        raise ValueError(f"{name}={n} exceeds the {cores} cores this process may use: it would oversubscribe them")
    return n or default_threads()


def threads_from_env(environ: Mapping[str, str] | None = None) -> int:
    """The decoder's intra-op threads: GLIDE_SERVE_THREADS, else :func:`default_threads`."""
    environ = os.environ if environ is None else environ
    return parse_threads(environ.get(THREADS_ENV))


def set_intra_op_threads(n: int) -> int:
    """Set torch's intra-op pool to ``n`` threads; returns the count torch now reports."""
    import torch

    if n < 1:
        raise ValueError(f"threads must be >= 1, got {n}")
    torch.set_num_threads(n)
    return torch.get_num_threads()

"""The model a server decodes with, built one way for every caller: the worker, evaluation, the
training job's held-out scoring and the benchmarks all load an export through :func:`load_for_serving`,
so a served request is scored by exactly the weights and precision evaluation measured.

Precision is the model's own ``serving_dtype`` (manifest; set by the training config): float32 by
default; bfloat16 halves the weights and, on CPUs with AMX or AVX512-BF16, runs the linears several
times faster (benchmarks/RESULTS.md) at the price of slightly different beams.
"""

from __future__ import annotations

import logging
from pathlib import Path

import torch

from glide_model.llm.checkpoint import Manifest, load_checkpoint, serving_torch_dtype
from glide_model.llm.model import GlideLM

log = logging.getLogger("glide.serving_model")


def cpu_has_native_bf16() -> bool:
    """Whether this CPU multiplies bfloat16 in hardware (AVX512-BF16 or AMX). Without it torch
    emulates bf16 and a bf16 model decodes slower than float32 (an AVX2 EPYC: the LM head 1.5x slower)."""
    checks = (getattr(torch.cpu, "_is_avx512_bf16_supported", None), getattr(torch.cpu, "_is_amx_tile_supported", None))
    return any(check() for check in checks if check is not None)


def merge_for_serving(glm: GlideLM, dtype: str = "float32") -> GlideLM:
    """Fold LoRA adapters into the base weights (PEFT's wrapper makes beam search ~6x slower) and
    hold the LM in ``dtype`` (the soft-prompt projector stays float32: its vectors are cast on
    injection)."""
    torch_dtype = serving_torch_dtype(dtype)
    model = glm.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(torch_dtype)
    if dtype == "bfloat16" and model.device.type == "cpu" and not cpu_has_native_bf16():
        log.warning("serving in bfloat16 on a CPU without AVX512-BF16 or AMX: torch emulates it, slower "
                    "than float32 here; set model.serving_dtype: float32 (or glide evaluate --dtype float32)")
    model.eval()
    if glm.projector is not None:
        glm.projector.eval()
    return GlideLM(model, glm.tokenizer, glm.vocab, glm.prompts, glm.projector)


def load_for_serving(path: str | Path, *, device: str | torch.device | None = "auto",
                     dtype: str | None = None) -> tuple[GlideLM, Manifest]:
    """A checkpoint or merged export, LoRA merged, in its manifest's serving dtype (``dtype``
    overrides it: benchmarks compare precisions on one export)."""
    glm, manifest = load_checkpoint(path, device=device)
    return merge_for_serving(glm, dtype or manifest.serving_dtype), manifest

"""The model a server decodes with, built one way for every caller: the worker, evaluation, the
training job's held-out scoring and the benchmarks all load an export through :func:`load_for_serving`,
so a served request is scored by exactly the weights and precision evaluation measured.

Precision is the model's own ``serving_dtype`` (manifest; set by the training config): float32 by
default; bfloat16 halves the weights and, on CPUs with AMX or AVX512-BF16, runs the linears several
times faster (benchmarks/RESULTS.md) at the price of slightly different beams.
"""

from __future__ import annotations

from pathlib import Path

import torch

from glide_model.llm.checkpoint import Manifest, load_checkpoint, serving_torch_dtype
from glide_model.llm.model import GlideLM


def merge_for_serving(glm: GlideLM, dtype: str = "float32") -> GlideLM:
    """Fold LoRA adapters into the base weights (PEFT's wrapper makes beam search ~6x slower) and
    hold the LM in ``dtype`` (the soft-prompt projector stays float32: its vectors are cast on
    injection)."""
    torch_dtype = serving_torch_dtype(dtype)
    model = glm.model
    if hasattr(model, "merge_and_unload"):
        model = model.merge_and_unload()
    model = model.to(torch_dtype)
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

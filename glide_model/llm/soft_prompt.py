"""Soft prompt (paper §4.1.2, §4.4.3): a CF user embedding becomes one input vector of the LM.

``Proj(v_u)``: LayerNorm -> Linear -> GELU -> Linear (the paper's two-layer MLP), then an RMS
norm whose gain starts at the RMS of the pretrained token embeddings, so the soft token enters
the residual stream at the scale of a real token rather than at whatever scale the CF model
uses. Users without a CF embedding (cold start) get a learned default vector instead.
The vector replaces the input embedding at the ``<user_emb>`` placeholder position, in training
and in generation alike (both go through ``inputs_embeds``).
"""

from __future__ import annotations

import torch
from torch import nn


class SoftPromptProjector(nn.Module):
    def __init__(self, d_cf: int, d_model: int, hidden: int | None = None, *, embed_rms: float = 1.0):
        super().__init__()
        hidden = hidden or d_model
        self.d_cf, self.d_model, self.hidden = d_cf, d_model, hidden
        self.mlp = nn.Sequential(
            nn.LayerNorm(d_cf),
            nn.Linear(d_cf, hidden),
            nn.GELU(),
            nn.Linear(hidden, d_model),
        )
        self.out_norm = nn.RMSNorm(d_model, eps=1e-6)
        with torch.no_grad():
            self.out_norm.weight.fill_(embed_rms)
        self.default = nn.Parameter(torch.randn(d_model) * embed_rms)

    def config(self) -> dict[str, int]:
        return {"d_cf": self.d_cf, "d_model": self.d_model, "hidden": self.hidden}

    def forward(self, cf: torch.Tensor, has_cf: torch.Tensor) -> torch.Tensor:
        """cf (B, d_cf) float, has_cf (B,) bool -> (B, d_model); rows without CF get the default vector."""
        if cf.shape[-1] != self.d_cf:
            raise ValueError(f"CF embedding has dim {cf.shape[-1]}, the projector expects {self.d_cf}")
        param = self.default
        # fp32 even under bf16 autocast: the projector is tiny and its RMS norm wants matching dtypes.
        with torch.autocast(device_type=param.device.type, enabled=False):
            projected = self.out_norm(self.mlp(cf.to(param.dtype)))
        return torch.where(has_cf.to(projected.device)[:, None], projected, param[None, :].expand_as(projected))


def inject_soft_prompt(
    inputs_embeds: torch.Tensor, input_ids: torch.Tensor, vectors: torch.Tensor, placeholder_id: int
) -> torch.Tensor:
    """Put vectors[b] at the placeholder position of row b; every row must hold exactly one placeholder."""
    mask = input_ids == placeholder_id
    counts = mask.sum(1)
    if not bool((counts == 1).all()):
        raise ValueError(
            f"each prompt needs exactly one soft-prompt placeholder, got counts {counts.tolist()}; "
            "build prompts with a soft-prompt variant (and never put <user_emb> in free text)"
        )
    return torch.where(mask[..., None], vectors[:, None, :].to(inputs_embeds.dtype), inputs_embeds)

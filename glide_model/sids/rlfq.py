"""R-LFQ baseline (paper §5.2.2): lookup-free quantization (LFQ, MAGVIT-v2, Yu et al. 2023) applied
residually. A learned MLP projects the embedding to log2(K) latent dims; level m takes the signs of
the residual (the code is that bit pattern, so there is no codebook to look up), scaled by 2^-(m-1),
and the next level quantizes what remains (as in vector-quantize-pytorch's ResidualLFQ). Four levels
of 8 bits thus place each latent dim on a 16-step grid.

Against collapse: inputs are centred (see ResidualAutoencoder) and LFQ's entropy penalty, mean
per-item code entropy (confident assignments) minus the entropy of the batch's average code
distribution (use all K codes), is applied at every level.
"""

from __future__ import annotations

from typing import Any

import torch

from glide_model.sids.neural import NeuralQuantizer, ResidualAutoencoder, entropy_bits, log2_int


class RLFQNet(ResidualAutoencoder):
    def __init__(
        self,
        dim: int,
        hidden: list[int],
        levels: int,
        codebook_size: int,
        beta: float,
        entropy_weight: float,
        temperature: float,
    ):
        bits = log2_int(codebook_size)
        super().__init__(dim, hidden, bits, levels, codebook_size)
        self.bits = bits
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.temperature = temperature
        self.register_buffer("powers", 2 ** torch.arange(bits), persistent=False)
        self.register_buffer("level_scales", 2.0 ** -torch.arange(levels, dtype=torch.float32), persistent=False)
        # every code's +-1 corner of the hypercube, for the entropy term: (K, bits)
        corners = ((torch.arange(codebook_size)[:, None] // self.powers) % 2) * 2.0 - 1.0
        self.register_buffer("corners", corners, persistent=False)

    def quantize(self, z):
        r = z
        zq = torch.zeros_like(z)
        aux = z.new_zeros(())
        codes, residuals = [], []
        for m in range(self.levels):
            residuals.append(r)
            s = self.level_scales[m]
            q = torch.where(r > 0, s, -s)
            if self.training and self.entropy_weight:
                # -||r/s - c||^2 = 2 (r/s).c + const: soft assignment over all K codes is a softmax of that
                p = torch.softmax(2.0 * (r / s) @ self.corners.T / self.temperature, dim=1)
                aux = aux + self.entropy_weight * (entropy_bits(p).mean() - entropy_bits(p.mean(0)))
            zq = zq + q
            r = r - q
            codes.append(((q > 0).long() * self.powers).sum(1))
        aux = aux + self.beta * ((z - zq) ** 2).sum(1).mean()  # commitment: keep z near its grid point
        zq_st = z + (zq - z).detach()  # straight-through
        return zq_st, torch.stack(codes, dim=1), aux, residuals

    def dequantize(self, codes):
        out = torch.zeros(codes.shape[0], self.bits)
        for m in range(codes.shape[1]):
            bits = ((codes[:, m : m + 1] // self.powers) % 2) * 2.0 - 1.0
            out = out + bits * self.level_scales[m]
        return out


class RLFQ(NeuralQuantizer):
    """Residual lookup-free quantizer; K must be a power of two (latent width is log2 K)."""

    kind = "rlfq"

    def __init__(
        self,
        levels: int = 4,
        codebook_size: int = 256,
        seed: int = 0,
        beta: float = 0.25,
        entropy_weight: float = 0.1,
        temperature: float = 1.0,
        **kw: Any,
    ):
        kw["latent_dim"] = log2_int(codebook_size)  # fail at construction, not after training
        super().__init__(levels, codebook_size, seed, **kw)
        self.beta = beta
        self.entropy_weight = entropy_weight
        self.temperature = temperature

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "beta": self.beta,
            "entropy_weight": self.entropy_weight,
            "temperature": self.temperature,
        }

    def _build(self, dim: int) -> RLFQNet:
        return RLFQNet(
            dim, self.hidden, self.levels, self.codebook_size, self.beta, self.entropy_weight, self.temperature
        )

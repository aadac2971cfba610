"""RQ-VAE baseline (Lee et al. 2022; TIGER's SIDs; paper §5.2.2): MLP encoder -> residual VQ with M
learned codebooks of K vectors -> MLP decoder. Straight-through gradients, codebook + commitment
losses; against code collapse the codebooks start from residual k-means on the initial latents and
codes unused for ``maintain_every`` steps restart on random residuals of the current batch.
"""

from __future__ import annotations

from typing import Any

import torch
from torch import nn

from glide_model.sids.neural import NeuralQuantizer, ResidualAutoencoder
from glide_model.sids.rkmeans import kmeans


class RQVAENet(ResidualAutoencoder):
    def __init__(self, dim: int, hidden: list[int], latent_dim: int, levels: int, codebook_size: int, beta: float):
        super().__init__(dim, hidden, latent_dim, levels, codebook_size)
        self.beta = beta
        self.codebooks = nn.Parameter(0.1 * torch.randn(levels, codebook_size, latent_dim))

    def _nearest(self, r: torch.Tensor, m: int) -> torch.Tensor:
        book = self.codebooks[m]
        d = (book * book).sum(1)[None, :] - 2.0 * r @ book.T
        return d.argmin(dim=1)

    def quantize(self, z):
        r = z
        zq = torch.zeros_like(z)
        aux = z.new_zeros(())
        codes, residuals = [], []
        for m in range(self.levels):
            residuals.append(r)
            idx = self._nearest(r.detach(), m)
            e = self.codebooks[m][idx]
            # codebook loss pulls codes to residuals; commitment keeps the encoder near its codes
            aux = aux + ((r.detach() - e) ** 2).sum(1).mean() + self.beta * ((r - e.detach()) ** 2).sum(1).mean()
            zq = zq + e
            r = r - e.detach()
            codes.append(idx)
        zq_st = z + (zq - z).detach()  # straight-through: the decoder's gradient reaches the encoder
        return zq_st, torch.stack(codes, dim=1), aux, residuals

    def dequantize(self, codes):
        out = torch.zeros(codes.shape[0], self.codebooks.shape[2])
        for m in range(codes.shape[1]):
            out = out + self.codebooks[m][codes[:, m]]
        return out

    def prepare(self, x, generator):
        super().prepare(x, generator)
        sample = x[torch.randperm(len(x), generator=generator)[:20_000]]
        r = self.embed(sample).numpy()
        seed = int(torch.randint(2**31 - 1, (1,), generator=generator))
        for m in range(self.levels):
            res = kmeans(r, self.codebook_size, seed=seed + m, max_iter=20)
            self.codebooks.data[m] = torch.from_numpy(res.centroids)
            r = r - res.centroids[res.labels]

    def maintain(self, usage, residuals, generator):
        restarted = 0
        for m in range(self.levels):
            dead = torch.nonzero(usage[m] == 0).flatten()
            if len(dead):
                pick = torch.randint(len(residuals[m]), (len(dead),), generator=generator)
                self.codebooks.data[m, dead] = residuals[m][pick]
                restarted += len(dead)
        return restarted


class RQVAE(NeuralQuantizer):
    """Residual-quantized VAE quantizer."""

    kind = "rqvae"

    def __init__(self, levels: int = 4, codebook_size: int = 256, seed: int = 0, beta: float = 0.25, **kw: Any):
        super().__init__(levels, codebook_size, seed, **kw)
        self.beta = beta

    def config(self) -> dict[str, Any]:
        return super().config() | {"beta": self.beta}

    def _build(self, dim: int) -> RQVAENet:
        return RQVAENet(dim, self.hidden, self.latent_dim, self.levels, self.codebook_size, self.beta)



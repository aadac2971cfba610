"""What the two learned baselines (RQ-VAE, R-LFQ; paper §5.2.2) share: an MLP autoencoder around a
residual quantizer, trained end to end on CPU with torch, and the Quantizer plumbing around it."""

from __future__ import annotations

import math
from abc import abstractmethod
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm

from glide_model.sids.quantizer import Quantizer


def mlp(sizes: list[int]) -> nn.Sequential:
    """Linear layers with ReLU between them (none after the last)."""
    layers: list[nn.Module] = []
    for i, (a, b) in enumerate(zip(sizes, sizes[1:])):
        layers.append(nn.Linear(a, b))
        if i < len(sizes) - 2:
            layers.append(nn.ReLU())
    return nn.Sequential(*layers)


class ResidualAutoencoder(nn.Module):
    """encoder MLP -> M-level residual quantizer (subclass) -> decoder MLP."""

    def __init__(self, dim: int, hidden: list[int], latent_dim: int, levels: int, codebook_size: int):
        super().__init__()
        self.levels = levels
        self.codebook_size = codebook_size
        self.encoder = mlp([dim, *hidden, latent_dim])
        self.decoder = mlp([latent_dim, *reversed(hidden), dim])
        # Text embeddings share a large mean direction and vary little around it; the autoencoder
        # works on centred, unit-variance inputs (set from the data in prepare) and adds them back.
        self.register_buffer("shift", torch.zeros(dim))
        self.register_buffer("scale", torch.ones(()))

    def embed(self, x: torch.Tensor) -> torch.Tensor:
        return self.encoder((x - self.shift) / self.scale)

    def reconstruct(self, zq: torch.Tensor) -> torch.Tensor:
        return self.decoder(zq) * self.scale + self.shift

    @abstractmethod
    def quantize(self, z: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        """Latent (B, d) -> (straight-through quantized latent, codes (B, M), auxiliary loss, residual inputs per level)."""

    @abstractmethod
    def dequantize(self, codes: torch.Tensor) -> torch.Tensor:
        """Codes (B, M') -> quantized latent (B, d) from the first M' levels."""

    def prepare(self, x: torch.Tensor, generator: torch.Generator) -> None:
        """Data-dependent init before training (subclasses add e.g. k-means codebooks)."""
        self.shift.copy_(x.mean(0))
        self.scale.copy_((x - self.shift).pow(2).sum(1).mean().sqrt() / x.shape[1] ** 0.5)

    def maintain(self, usage: torch.Tensor, residuals: list[torch.Tensor], generator: torch.Generator) -> int:
        """Hook every few steps with per-level code counts since the last call; returns codes restarted."""
        return 0

    def forward(self, x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor, list[torch.Tensor]]:
        zq, codes, aux, residuals = self.quantize(self.embed(x))
        return self.reconstruct(zq), codes, aux, residuals


class NeuralQuantizer(Quantizer):
    """Training loop, (de)serialisation and encode/decode for ResidualAutoencoder subclasses."""

    def __init__(
        self,
        levels: int = 4,
        codebook_size: int = 256,
        seed: int = 0,
        latent_dim: int = 32,
        hidden: tuple[int, ...] | list[int] = (256, 128),
        steps: int = 1500,
        batch_size: int = 256,
        lr: float = 1e-3,
        maintain_every: int = 100,
        num_threads: int = 1,
    ):
        super().__init__(levels, codebook_size, seed)
        self.latent_dim = latent_dim
        self.hidden = list(hidden)
        self.steps = steps
        self.batch_size = batch_size
        self.lr = lr
        self.maintain_every = maintain_every
        self.num_threads = num_threads
        self.net: ResidualAutoencoder | None = None

    def config(self) -> dict[str, Any]:
        return super().config() | {
            "latent_dim": self.latent_dim,
            "hidden": self.hidden,
            "steps": self.steps,
            "batch_size": self.batch_size,
            "lr": self.lr,
            "maintain_every": self.maintain_every,
            "num_threads": self.num_threads,
        }

    @abstractmethod
    def _build(self, dim: int) -> ResidualAutoencoder: ...

    def _fit(self, x: np.ndarray) -> dict[str, Any]:
        # Small MLPs: one thread is fastest, and on a busy CPU extra OpenMP threads spin against
        # each other (measured 19 ms/step with 1 thread vs 170-580 ms with 2 on a shared 2-core box).
        threads = torch.get_num_threads()
        torch.set_num_threads(self.num_threads)
        try:
            return self._train(x)
        finally:
            torch.set_num_threads(threads)

    def _train(self, x: np.ndarray) -> dict[str, Any]:
        torch.manual_seed(self.seed)
        gen = torch.Generator().manual_seed(self.seed)
        data = torch.from_numpy(x)
        net = self._build(x.shape[1])
        net.train()
        with torch.no_grad():
            net.prepare(data, gen)
        opt = torch.optim.Adam(net.parameters(), lr=self.lr)
        usage = torch.zeros(self.levels, self.codebook_size)
        restarted = 0
        bar = tqdm(range(1, self.steps + 1), desc=f"{self.kind} {self.levels}x{self.codebook_size}", unit="step")
        recon = aux = torch.tensor(0.0)
        for step in bar:
            batch = data[torch.randint(len(data), (min(self.batch_size, len(data)),), generator=gen)]
            x_hat, codes, aux, residuals = net(batch)
            recon = ((x_hat - batch) ** 2).sum(dim=1).mean()
            loss = recon + aux
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            with torch.no_grad():
                for m in range(self.levels):
                    usage[m] += torch.bincount(codes[:, m], minlength=self.codebook_size)
                if step % self.maintain_every == 0 and step < self.steps:
                    restarted += net.maintain(usage, [r.detach() for r in residuals], gen)
                    usage.zero_()
            if step % 50 == 0:
                bar.set_postfix(recon=f"{recon.item():.4f}", aux=f"{aux.item():.4f}")
        net.eval()
        self.net = net
        return {"final_recon_loss": round(recon.item(), 6), "final_aux_loss": round(aux.item(), 6), "codes_restarted": restarted}

    def _encode(self, x: np.ndarray) -> np.ndarray:
        out = []
        with torch.no_grad():
            for lo in range(0, len(x), 8192):
                _, codes, _, _ = self.net.quantize(self.net.embed(torch.from_numpy(x[lo : lo + 8192])))
                out.append(codes.numpy())
        return np.concatenate(out).astype(np.int64)

    def _decode(self, codes: np.ndarray) -> np.ndarray:
        with torch.no_grad():
            return self.net.reconstruct(self.net.dequantize(torch.from_numpy(codes))).numpy().astype(np.float32)

    def _tensors(self) -> dict[str, np.ndarray]:
        return {k: v.detach().cpu().numpy() for k, v in self.net.state_dict().items()}

    def _load_tensors(self, tensors: dict[str, np.ndarray], dim: int) -> None:
        net = self._build(dim)
        net.load_state_dict({k: torch.from_numpy(v) for k, v in tensors.items()})
        net.eval()
        self.net = net


def entropy_bits(p: torch.Tensor) -> torch.Tensor:
    return -(p * torch.log2(p.clamp_min(1e-12))).sum(-1)


def log2_int(k: int) -> int:
    bits = int(math.log2(k))
    if 1 << bits != k:
        raise ValueError(f"R-LFQ needs a power-of-two codebook size (log2 K binary dims), got K={k}")
    return bits

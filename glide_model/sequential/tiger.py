"""TIGER-style generative retrieval (Rajput et al. 2023): a small encoder-decoder trained from scratch
to write the next item's Semantic ID, token by token, given the SID tokens of the history.

The paper's "SID-only is similar to TIGER" made concrete: the same SID space and trie as GLIDE, but
no pretrained LM. The encoder reads the last ``history`` items as M tokens each (code embedding +
level embedding + how many items ago), the decoder emits level 1..M codes; decoding is beam search
over the SID trie (glide_model/sequential/tiger_decode.py), so only catalog SIDs come out;
training is glide_model/sequential/tiger_train.py.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from torch import nn



@dataclass
class TigerConfig:
    hidden: int = 128
    layers: int = 2  # encoder layers, and as many decoder layers
    heads: int = 4
    history: int = 20  # items of history the encoder reads
    dropout: float = 0.2
    lr: float = 1e-3
    batch_size: int = 256
    max_epochs: int = 40
    patience: int = 4
    beams: int = 50  # > 30: beams that land on consumed items are dropped in the history-excluded protocol
    valid_users: int | None = 2000  # validation sample scored each epoch (beam search is the slow part)
    seed: int = 0
    threads: int | None = None


class TigerNet(nn.Module):
    """Token of code c at level m: 1 + m * K + c; 0 is padding. The decoder's start token is its own."""

    def __init__(self, levels: int, codebook_size: int, cfg: TigerConfig):
        super().__init__()
        self.levels, self.codebook_size, self.cfg = levels, codebook_size, cfg
        d = cfg.hidden
        self.codes = nn.Embedding(1 + levels * codebook_size, d, padding_idx=0)
        self.level = nn.Embedding(levels + 1, d)  # + 1: the decoder's start position
        self.age = nn.Embedding(cfg.history, d)  # 0 = the newest history item
        self.start = nn.Parameter(torch.zeros(d))
        self.dropout = nn.Dropout(cfg.dropout)
        enc = nn.TransformerEncoderLayer(d, cfg.heads, 4 * d, cfg.dropout, "gelu", batch_first=True, norm_first=True)
        dec = nn.TransformerDecoderLayer(d, cfg.heads, 4 * d, cfg.dropout, "gelu", batch_first=True, norm_first=True)
        self.encoder = nn.TransformerEncoder(enc, cfg.layers, norm=nn.LayerNorm(d), enable_nested_tensor=False)
        self.decoder = nn.TransformerDecoder(dec, cfg.layers, norm=nn.LayerNorm(d))
        self.head = nn.Linear(d, levels * codebook_size)

    def encode(self, tokens: torch.Tensor, ages: torch.Tensor, levels: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        """(B, S) history tokens -> memory (B, S, d) and its padding mask."""
        pad = tokens == 0
        x = self.codes(tokens) + self.level(levels) + self.age(ages)
        return self.encoder(self.dropout(x), src_key_padding_mask=pad), pad

    def decode(self, prefix: torch.Tensor, memory: torch.Tensor, memory_pad: torch.Tensor) -> torch.Tensor:
        """(B, W, m) codes of levels 1..m for W beams per history (m may be 0) -> (B, W, K) logits of
        level m + 1. The W beams of a history are one decoder sequence whose self-attention is masked
        to stay inside each beam, so the memory is used once per history, not copied W times."""
        n, width, m = prefix.shape
        steps = [self.start.expand(n, width, 1, -1)]
        if m:
            offsets = 1 + torch.arange(m) * self.codebook_size
            steps.append(self.codes(prefix + offsets) + self.level(torch.arange(m)))
        x = (torch.cat(steps, dim=2) + self.level.weight[self.levels]).reshape(n, width * (m + 1), -1)
        beam = torch.arange(width).repeat_interleave(m + 1)
        pos = torch.arange(m + 1).repeat(width)
        blocked = (beam[:, None] != beam[None, :]) | (pos[None, :] > pos[:, None])
        out = self.decoder(self.dropout(x), memory, tgt_mask=blocked, memory_key_padding_mask=memory_pad)
        last = out.reshape(n, width, m + 1, -1)[:, :, -1]
        return self.head(last)[..., m * self.codebook_size: (m + 1) * self.codebook_size]

    def loss(self, batch: dict[str, torch.Tensor]) -> torch.Tensor:
        """Teacher-forced cross-entropy of every level of the target SID."""
        memory, pad = self.encode(batch["tokens"], batch["ages"], batch["levels"])
        target = batch["target"]  # (B, M)
        n = len(target)
        offsets = 1 + torch.arange(self.levels - 1) * self.codebook_size
        steps = [self.start.expand(n, 1, -1),
                 self.codes(target[:, :-1] + offsets) + self.level(torch.arange(self.levels - 1))[None]]
        x = torch.cat(steps, dim=1) + self.level.weight[self.levels]
        causal = torch.triu(torch.ones(self.levels, self.levels, dtype=torch.bool), diagonal=1)
        out = self.head(self.decoder(self.dropout(x), memory, tgt_mask=causal, memory_key_padding_mask=pad))
        logits = out.view(n, self.levels, self.levels, self.codebook_size)[:, torch.arange(self.levels),
                                                                           torch.arange(self.levels)]
        return nn.functional.cross_entropy(logits.reshape(-1, self.codebook_size), target.reshape(-1))


def history_tokens(histories: Sequence[np.ndarray], codes: np.ndarray, codebook_size: int,
                   history: int) -> dict[str, torch.Tensor]:
    """Encoder inputs for item-index histories: tokens, item ages and levels, right-padded."""
    levels = codes.shape[1]
    width = levels * max(min(len(h), history) for h in histories) if len(histories) else 0
    tokens = np.zeros((len(histories), width), dtype=np.int64)
    ages = np.zeros_like(tokens)
    level_ids = np.zeros_like(tokens)
    for row, h in enumerate(histories):
        recent = np.asarray(h[-history:], dtype=np.int64)
        n = len(recent) * levels
        tokens[row, :n] = (1 + np.arange(levels) * codebook_size + codes[recent]).reshape(-1)
        ages[row, :n] = np.repeat(np.arange(len(recent))[::-1], levels)
        level_ids[row, :n] = np.tile(np.arange(levels), len(recent))
    return {"tokens": torch.from_numpy(tokens), "ages": torch.from_numpy(ages), "levels": torch.from_numpy(level_ids)}

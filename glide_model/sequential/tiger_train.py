"""Training of the TIGER-style model (glide_model/sequential/tiger.py) on the training split.

Training pairs are every (prefix, next item) of the training sequences, batched by similar length
so padding stays small (most Scientific histories are a few items, a few are 70). Every epoch the
validation Recall@10 (history excluded) of beam search on a validation sample is measured; the best
epoch's weights are kept and training stops after ``patience`` epochs without a gain, like SASRec.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence

import numpy as np
import torch

from glide_model.sequential.ranking import validation_recall
from glide_model.sequential.split import EvalSet
from glide_model.sequential.tiger import TigerConfig, TigerNet, history_tokens
from glide_model.sequential.tiger_decode import TigerRanker
from glide_model.sequential.training import EarlyStopping, FitLog, torch_threads


def training_pairs(train: Sequence[np.ndarray], history: int) -> tuple[list[np.ndarray], np.ndarray]:
    """Every (history prefix, next item) pair of the training sequences."""
    prefixes, targets = [], []
    for seq in train:
        seq = np.asarray(seq, dtype=np.int64)
        for t in range(1, len(seq)):
            prefixes.append(seq[max(0, t - history): t])
            targets.append(int(seq[t]))
    return prefixes, np.asarray(targets, dtype=np.int64)


def length_batches(lengths: np.ndarray, batch_size: int, rng: np.random.Generator) -> list[np.ndarray]:
    """Shuffled batches of similar lengths: sort within chunks of 32 batches, then shuffle the batches."""
    order = rng.permutation(len(lengths))
    chunk = batch_size * 32
    batches = []
    for lo in range(0, len(order), chunk):
        part = order[lo: lo + chunk]
        part = part[np.argsort(lengths[part], kind="stable")]
        batches.extend(part[i: i + batch_size] for i in range(0, len(part), batch_size))
    return [batches[i] for i in rng.permutation(len(batches))]


def fit_tiger(train: Sequence[np.ndarray], valid: EvalSet, codes: np.ndarray, popularity: np.ndarray,
              cfg: TigerConfig | None = None, progress: Callable[[str], None] | None = None) -> tuple[TigerRanker, FitLog]:
    """Train on the training split; ``codes`` (n_items, M) are the items' SIDs (collisions allowed)."""
    cfg = cfg or TigerConfig()
    torch.manual_seed(cfg.seed)
    rng = np.random.default_rng(cfg.seed)
    codes = np.asarray(codes, dtype=np.int64)
    prefixes, targets = training_pairs(train, cfg.history)
    if not prefixes:
        raise ValueError("TIGER needs at least one training sequence of two or more items")
    net = TigerNet(codes.shape[1], int(codes.max()) + 1, cfg)
    optimizer = torch.optim.Adam(net.parameters(), lr=cfg.lr)
    ranker = TigerRanker(net, codes, popularity, beams=cfg.beams, threads=cfg.threads)
    probe = valid.sample(cfg.valid_users, seed=cfg.seed)
    lengths = np.array([len(p) for p in prefixes])
    stopping = EarlyStopping(net, "tiger", cfg.patience, progress)
    with torch_threads(cfg.threads):
        for epoch in range(1, cfg.max_epochs + 1):
            net.train()
            total, batches = 0.0, length_batches(lengths, cfg.batch_size, rng)
            for batch in batches:
                inputs = history_tokens([prefixes[i] for i in batch], codes, net.codebook_size, cfg.history)
                loss = net.loss({**inputs, "target": torch.from_numpy(codes[targets[batch]])})
                optimizer.zero_grad()
                loss.backward()
                optimizer.step()
                total += float(loss.detach())
            recall = validation_recall(ranker, probe) if len(probe) else float("nan")
            if stopping.epoch_done(epoch, total / len(batches), recall):
                break
    return ranker, stopping.finish()

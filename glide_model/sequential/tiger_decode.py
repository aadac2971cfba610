"""Beam search over the SID trie for :class:`~glide_model.sequential.tiger.TigerNet`, and SIDs -> items.

At each level a beam may only continue with a code the trie allows after its prefix, so every
finished beam is a SID some item has. Beams are ranked by summed log-probability; a SID shared by
several items (a collision) stands for all of them, most popular first (popularity in the training
split), which is how GLIDE's serving rule breaks collisions too. In the history-excluded protocol
consumed items are dropped after decoding, which is why the beam is wider than the 30 items kept.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch

from glide_model.sequential.ranking import PAD
from glide_model.sequential.tiger import TigerNet, history_tokens
from glide_model.sequential.training import torch_threads
from glide_model.sids.trie import SidTrie


class TrieMasks:
    """Per prefix, the (K,) boolean mask of codes the trie allows next; cached (a catalog has few prefixes)."""

    def __init__(self, trie: SidTrie):
        self.trie = trie
        self._cache: dict[tuple[int, ...], np.ndarray] = {}

    def mask(self, prefix: tuple[int, ...]) -> np.ndarray:
        found = self._cache.get(prefix)
        if found is None:
            found = np.zeros(self.trie.codebook_size, dtype=bool)
            found[self.trie.children(prefix)] = True
            self._cache[prefix] = found
        return found

    def masks(self, prefixes: np.ndarray) -> torch.Tensor:
        return torch.from_numpy(np.stack([self.mask(tuple(p)) for p in prefixes.tolist()]))


def items_by_sid(codes: np.ndarray, popularity: np.ndarray) -> dict[tuple[int, ...], list[int]]:
    """SID -> its items, most popular first (then lower index)."""
    order = np.lexsort((np.arange(len(codes)), -np.asarray(popularity, dtype=np.float64)))
    out: dict[tuple[int, ...], list[int]] = {}
    for item in order.tolist():
        out.setdefault(tuple(codes[item].tolist()), []).append(item)
    return out


def beam_search(net: TigerNet, inputs: dict[str, torch.Tensor], masks: TrieMasks, beams: int) -> np.ndarray:
    """(B, beams, M) SIDs per history, best first; rows with fewer valid SIDs repeat nothing (-1 rows)."""
    memory, pad = net.encode(inputs["tokens"], inputs["ages"], inputs["levels"])
    n = memory.shape[0]
    prefixes = np.zeros((n, 1, 0), dtype=np.int64)
    scores = torch.zeros(n, 1)
    for _ in range(net.levels):
        width = prefixes.shape[1]
        logp = torch.log_softmax(net.decode(torch.from_numpy(prefixes), memory, pad), dim=-1)
        allowed = masks.masks(prefixes.reshape(n * width, -1)).reshape(n, width, -1)
        logp = logp.masked_fill(~allowed, -torch.inf)
        total = (scores[..., None] + logp).reshape(n, width * net.codebook_size)
        keep = min(beams, total.shape[1])
        scores, picked = torch.topk(total, keep, dim=1)
        parent, code = (picked // net.codebook_size).numpy(), (picked % net.codebook_size).numpy()
        prefixes = np.concatenate([np.take_along_axis(prefixes, parent[..., None], axis=1), code[..., None]], axis=2)
    # beams that ran into a dead end (fewer valid SIDs than beams) have score -inf
    return np.where(torch.isinf(scores).numpy()[..., None], -1, prefixes)


class TigerRanker:
    def __init__(self, net: TigerNet, codes: np.ndarray, popularity: np.ndarray, beams: int = 50,
                 threads: int | None = None, batch_size: int = 64):
        self.net, self.codes, self.beams, self.threads = net, np.asarray(codes, dtype=np.int64), beams, threads
        self.batch_size = batch_size
        self.masks = TrieMasks(SidTrie(self.codes, net.codebook_size))
        self.items = items_by_sid(self.codes, popularity)

    def top_k(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool) -> np.ndarray:
        out = np.full((len(histories), k), PAD, dtype=np.int64)
        self.net.eval()
        with torch.no_grad(), torch_threads(self.threads):
            for lo in range(0, len(histories), self.batch_size):
                part = list(histories[lo: lo + self.batch_size])
                inputs = history_tokens(part, self.codes, self.net.codebook_size, self.net.cfg.history)
                sids = beam_search(self.net, inputs, self.masks, max(self.beams, k))
                for row, (history, found) in enumerate(zip(part, sids)):
                    out[lo + row] = self._items(found, set(np.asarray(history).tolist()) if exclude_history else set(), k)
        return out

    def _items(self, sids: np.ndarray, consumed: set[int], k: int) -> np.ndarray:
        picked: list[int] = []
        for sid in sids.tolist():
            if sid[0] < 0:
                break
            picked.extend(i for i in self.items[tuple(sid)] if i not in consumed)
            if len(picked) >= k:
                break
        return np.asarray((picked + [PAD] * k)[:k], dtype=np.int64)

"""Prefix trie over the catalog's valid SID sequences, for constrained decoding.

Stored as one sorted int array per depth so that `children` is a binary search, not a dict walk:
the whole catalog's trie for 1M episodes x 4 levels is a few tens of MB of numpy.
"""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np


class SidTrie:
    def __init__(self, codes: np.ndarray, codebook_size: int):
        codes = np.asarray(codes, dtype=np.int64)
        if codes.ndim != 2 or codes.shape[0] == 0:
            raise ValueError("SidTrie needs a non-empty (N, M) array of SID codes")
        if codes.min() < 0 or codes.max() >= codebook_size:
            raise ValueError(f"SID codes must lie in [0, {codebook_size})")
        if codebook_size ** codes.shape[1] >= 2**63:
            # prefixes are folded into one int64 key
            raise ValueError(f"codebook_size**levels = {codebook_size}**{codes.shape[1]} overflows int64 keys")
        self.levels = codes.shape[1]
        self.codebook_size = codebook_size
        # prefix key of depth d: codes[:, :d] folded into one integer (base K). Unique 1-D keys, not
        # np.unique(axis=0): per-request sub-tries (eligibility-aware decoding) are built often.
        full = np.unique(self._fold(codes))
        self._keys: list[np.ndarray] = []
        for depth in range(1, self.levels + 1):
            shift = codebook_size ** (self.levels - depth)
            self._keys.append(full if depth == self.levels else np.unique(full // shift))
        self.size = len(full)

    def _fold(self, prefixes: np.ndarray) -> np.ndarray:
        key = np.zeros(prefixes.shape[0], dtype=np.int64)
        for col in range(prefixes.shape[1]):
            key = key * self.codebook_size + prefixes[:, col]
        return key

    def _in_range(self, codes: Sequence[int]) -> bool:
        # an out-of-range code would alias another prefix once folded (e.g. (0, K) == (1, 0))
        return all(0 <= int(c) < self.codebook_size for c in codes)

    def children(self, prefix: Sequence[int]) -> np.ndarray:
        """Codes allowed at level len(prefix)+1 after ``prefix`` (empty when prefix is invalid/full)."""
        depth = len(prefix)
        if depth >= self.levels or not self._in_range(prefix):
            return np.empty(0, dtype=np.int64)
        base = 0
        for c in prefix:
            base = base * self.codebook_size + int(c)
        lo = base * self.codebook_size
        keys = self._keys[depth]
        left, right = np.searchsorted(keys, [lo, lo + self.codebook_size])
        return keys[left:right] - lo

    def __contains__(self, codes: Sequence[int]) -> bool:
        if len(codes) != self.levels or not self._in_range(codes):
            return False
        key = self._fold(np.asarray([codes], dtype=np.int64))[0]
        keys = self._keys[-1]
        i = np.searchsorted(keys, key)
        return bool(i < len(keys) and keys[i] == key)

    def add(self, codes: Sequence[int]) -> None:
        """Insert one SID sequence (live cold start); O(number of prefixes), no refit."""
        row = np.asarray([codes], dtype=np.int64)
        if row.ndim != 2 or row.shape[1] != self.levels or row.min() < 0 or row.max() >= self.codebook_size:
            raise ValueError(f"not a valid {self.levels}-level SID: {tuple(codes)}")
        if tuple(codes) in self:
            return
        for depth in range(1, self.levels + 1):
            key = self._fold(row[:, :depth])[0]
            keys = self._keys[depth - 1]
            i = np.searchsorted(keys, key)
            if i >= len(keys) or keys[i] != key:
                self._keys[depth - 1] = np.insert(keys, i, key)
        self.size += 1

    def __len__(self) -> int:
        """Number of distinct full SIDs."""
        return self.size

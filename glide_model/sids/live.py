"""Live cold start (paper §4.1: new episodes "must be recommendable immediately"): a new episode is
embedded, encoded with the current quantizer and inserted into the decoding trie and the collision
table, with no refit. Called by the catalog-updates stream processor; deliberately free of any
kafka/faust/feast import.
"""

from __future__ import annotations

import threading
from collections.abc import Mapping, Sequence
from pathlib import Path
from typing import Any

import numpy as np

from glide_model.sids.collisions import CollisionTable, Eligibility, Sid
from glide_model.sids.encoder import EmbeddingCache, TextEncoder, embed_episodes, episode_texts
from glide_model.sids.quantizer import Quantizer, load_quantizer
from glide_model.sids.trie import SidTrie


class SidIndex:
    """Everything that maps content to SIDs and SIDs back to episodes, for one quantizer version."""

    def __init__(self, quantizer: Quantizer, encoder: TextEncoder, trie: SidTrie, table: CollisionTable):
        if not quantizer.fitted:
            raise ValueError("SidIndex needs a fitted quantizer")
        if trie.levels != quantizer.levels or table.levels != quantizer.levels:
            raise ValueError("trie, collision table and quantizer disagree on the number of SID levels")
        if quantizer.meta.encoder not in ("unknown", encoder.name):
            raise ValueError(
                f"quantizer {quantizer.meta.version} was fitted on {quantizer.meta.encoder!r} embeddings, "
                f"not {encoder.name!r}: new episodes would land in the wrong SID space"
            )
        self.quantizer = quantizer
        self.encoder = encoder
        self.trie = trie
        self.table = table
        self._lock = threading.Lock()  # the decoder may read while the stream processor adds

    @property
    def version(self) -> str:
        return self.quantizer.meta.version

    @classmethod
    def build(
        cls,
        quantizer: Quantizer | str | Path,
        episodes: Any,
        encoder: TextEncoder | None = None,
        assignments: Mapping[str, Sequence[int]] | None = None,
        cache: EmbeddingCache | None = None,
    ) -> SidIndex:
        """From a fitted quantizer (or its artifact folder) and a world-contract episodes frame.
        Without ``assignments`` every episode is embedded and encoded now."""
        if not isinstance(quantizer, Quantizer):
            quantizer = load_quantizer(quantizer)
        encoder = encoder or TextEncoder()
        if assignments is None:
            codes = quantizer.encode(embed_episodes(encoder, episodes, cache=cache))
            assignments = dict(zip(episodes["episode_id"], map(tuple, codes.tolist())))
        table = CollisionTable.from_frame(episodes, assignments)
        trie = SidTrie(np.asarray(list(assignments.values()), dtype=np.int64), quantizer.codebook_size)
        return cls(quantizer, encoder, trie, table)

    @classmethod
    def from_catalog(
        cls,
        catalog_db: Any,
        data_dir: str | Path,
        version: str | None = None,
        encoder: TextEncoder | None = None,
        cache: EmbeddingCache | None = None,
    ) -> SidIndex:
        """Serving index from a ``glide.catalog.CatalogDB``: the quantizer ``version`` (default CURRENT)
        from ``<data_dir>/sids``, its stored assignments, and any catalog episode that has none yet
        (published since the last `glide sids refresh`) encoded now."""
        from glide_model.sids.store import load_version

        quantizer = load_version(data_dir, version)
        episodes = catalog_db.episodes_frame()
        stored = catalog_db.sid_assignments(quantizer.meta.version)
        known = set(episodes["episode_id"])
        assignments = {e: c for e, c in stored.items() if e in known}
        missing = episodes[~episodes["episode_id"].isin(list(assignments))]
        if not assignments:
            return cls.build(quantizer, episodes, encoder=encoder, cache=cache)
        index = cls.build(quantizer, episodes[episodes["episode_id"].isin(list(assignments))], encoder, assignments)
        if len(missing):
            index.add_episodes(missing, cache=cache)
        return index

    def add_episodes(self, episodes: Any, cache: EmbeddingCache | None = None) -> dict[str, Sid]:
        """Batch form of :meth:`add_episode` for a world-contract frame (one embedding pass; no progress
        bar: workers call this for every catalog batch, and a bar per batch floods their logs)."""
        codes = self.quantizer.encode(embed_episodes(self.encoder, episodes, cache=cache, progress=False))
        out: dict[str, Sid] = {}
        with self._lock:
            for row, c in zip(episodes.to_dict("records"), codes.tolist()):
                out[str(row["episode_id"])] = self._insert(row, tuple(int(x) for x in c))
        return out

    def _insert(self, episode: Mapping[str, Any], codes: Sid) -> Sid:
        self.trie.add(codes)
        self.table.add_episode(
            str(episode["episode_id"]),
            codes,
            popularity=episode.get("popularity", 0.0) or 0.0,
            playable=bool(episode.get("playable", True)),
            locale=episode.get("locale"),
        )
        return codes

    def encode_episode(self, episode: Mapping[str, Any]) -> Sid:
        """Codes for one episode dict under the current quantizer (no state change)."""
        text = episode_texts([episode])[0]
        return tuple(int(c) for c in self.quantizer.encode(self.encoder.encode([text], progress=False))[0])

    def add_episode(self, episode: Mapping[str, Any]) -> Sid:
        """Embed, encode and make one new (or revised) episode recommendable; returns its SID codes.

        ``episode`` follows the world contract: episode_id, title, description, and optionally
        popularity (default 0), playable (default True), locale. A revised episode moves to its new
        SID; its old SID stays in the trie (tries only grow) and resolves to nothing once empty.
        """
        if not episode.get("episode_id"):
            raise ValueError(f"episode has no episode_id: {dict(episode)!r:.200}")
        codes = self.encode_episode(episode)  # the slow part, outside the lock
        with self._lock:
            return self._insert(episode, codes)

    def resolve(
        self, codes: Sequence[int], eligible: Eligibility | None = None, exclude: Sequence[str] = ()
    ) -> str | None:
        return self.table.resolve(codes, eligible, frozenset(exclude))

    def __contains__(self, episode_id: object) -> bool:
        return episode_id in self.table

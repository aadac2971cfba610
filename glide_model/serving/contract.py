"""The serving contract, torch-free: what a caller hands a generation backend and gets back.

``GenerationBackend.generate(requests) -> [[(codes, score), ...] per request]`` is all a caller
(evaluation, the serving worker) needs. :class:`~glide_model.llm.decoding.HFBackend` (transformers)
and :class:`~glide_model.llm.vllm_backend.VLLMBackend` (vLLM, its own venv) implement it; callers
import these types from here, so they need neither torch nor a backend to build requests.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import Protocol, runtime_checkable

import numpy as np
import pandas as pd

from glide_model.sids.trie import SidTrie

Candidate = tuple[tuple[int, ...], float]


@dataclass(frozen=True)
class RecRequest:
    """One user's recommendation request (the serving-side mirror of a training example)."""

    history_codes: Sequence[Sequence[int]] = ()
    mode: str | None = "unfamiliar"
    locale: str | None = None
    affinity_topics: Sequence[str] = ()
    cf_embedding: np.ndarray | None = field(default=None, compare=False)
    user_id: str | None = None
    # Eligibility-aware decoding: the SIDs this request may produce (those with at least one
    # episode the user may be served). None: the whole catalog trie. Must lie inside it.
    allowed: SidTrie | None = field(default=None, compare=False)

    def as_row(self) -> dict:
        return {
            "history_codes": self.history_codes,
            "mode": self.mode,
            "locale": self.locale,
            "affinity_topics": self.affinity_topics,
        }


def requests_from_examples(frame: pd.DataFrame) -> list[RecRequest]:
    """Requests for the rows of a training/validation example frame (targets are ignored)."""
    out = []
    for r in frame.itertuples(index=False):
        topics = getattr(r, "affinity_topics", None)
        history = getattr(r, "history_codes", None)
        if topics is not None and not isinstance(topics, (list, tuple, np.ndarray)):
            topics = None  # NaN from a missing feature
        if history is not None and not isinstance(history, (list, tuple, np.ndarray)):
            history = None
        out.append(
            RecRequest(
                history_codes=[tuple(int(x) for x in c) for c in (history if history is not None else ())],
                mode=getattr(r, "mode", None),
                locale=getattr(r, "locale", None),
                affinity_topics=list(topics) if topics is not None else [],
                cf_embedding=getattr(r, "cf_embedding", None),
                user_id=getattr(r, "user_id", None),
            )
        )
    return out


@runtime_checkable
class GenerationBackend(Protocol):
    def generate(self, requests: Sequence[RecRequest]) -> list[list[Candidate]]: ...

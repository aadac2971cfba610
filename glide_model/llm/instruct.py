"""Instruction tuning (paper §4.3): LoRA + the soft-prompt projector, trained jointly on recommendations.

Training examples come from the example builder (``glide_model.data``) as a DataFrame, one row
per (user, time, non-habitual target):

    user_id, ts, target_episode_id, target_codes (tuple of M ints), mode ("familiar"|"unfamiliar"),
    history_codes (list of M-tuples, oldest first, may be empty), locale, affinity_topics (list[str]),
    cf_embedding (float32 array or None), weight (sampling weight)

The loss covers only the target SID tokens and eos; ``weight`` drives the sampler (exploration
upweighting and popularity capping happen in the builder, as weights and row counts).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import pandas as pd
import torch

from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import Encoded
from glide_model.llm.trainer import BatchSampler, LoopConfig, LoopResult, train_loop
from glide_model.llm.vocab import UnknownSidError
from glide_model.sids.trie import SidTrie

REQUIRED_COLUMNS = ("target_codes", "history_codes")


@dataclass
class InstructData:
    items: list[Encoded]
    cf: list[np.ndarray | None]
    weights: np.ndarray

    def __len__(self) -> int:
        return len(self.items)


def infer_d_cf(frames: Sequence[pd.DataFrame | None]) -> int | None:
    """Dimension of the CF embeddings in the frames (None when no row has one); all must agree."""
    dims = set()
    for frame in frames:
        if frame is None or "cf_embedding" not in frame.columns:
            continue
        for v in frame["cf_embedding"]:
            if v is not None and not (isinstance(v, float) and np.isnan(v)):
                dims.add(int(np.asarray(v).size))
    if len(dims) > 1:
        raise ValueError(f"CF embeddings of different sizes {sorted(dims)}: use one CF model version")
    return dims.pop() if dims else None


def _cf_value(v: Any) -> np.ndarray | None:
    if v is None or (isinstance(v, float) and np.isnan(v)):
        return None
    return np.asarray(v, dtype=np.float32).reshape(-1)


def instruct_data(glm: GlideLM, frame: pd.DataFrame, *, trie: SidTrie | None = None) -> InstructData:
    """Tokenize an example frame; unknown SIDs (and, given a trie, targets outside the catalog) raise."""
    missing = [c for c in REQUIRED_COLUMNS if c not in frame.columns]
    if glm.prompts.variant.multitask and "mode" not in frame.columns:
        missing.append("mode")
    if missing:
        raise ValueError(f"example frame lacks columns {missing}; see glide_model.llm.instruct for the contract")
    if len(frame) == 0:
        raise ValueError("example frame is empty")
    rows = frame.to_dict("records")
    for r in rows:
        if r.get("history_codes") is None or (isinstance(r.get("history_codes"), float)):
            r["history_codes"] = []
        topics = r.get("affinity_topics")
        r["affinity_topics"] = [] if topics is None or isinstance(topics, float) else list(topics)
        locale = r.get("locale")
        r["locale"] = None if locale is None or isinstance(locale, float) else locale
    if trie is not None:
        outside = [tuple(int(c) for c in r["target_codes"]) for r in rows]
        outside = [c for c in outside if c not in trie]
        if outside:
            raise UnknownSidError(
                f"{len(outside)} target SIDs (first {outside[0]}) are not in the catalog's SID assignments: "
                "build the examples and the catalog with the same quantizer/catalog version"
            )
    items = glm.prompts.encode_rec(rows, with_target=True)
    cf = [_cf_value(r.get("cf_embedding")) for r in rows] if "cf_embedding" in frame.columns else [None] * len(rows)
    weights = frame["weight"].to_numpy(dtype=np.float64) if "weight" in frame.columns else np.ones(len(rows))
    return InstructData(items, cf, weights)


def instruct_params(glm: GlideLM) -> list[torch.nn.Parameter]:
    """LoRA parameters + the projector (when the variant uses a soft prompt)."""
    params = [p for p in glm.model.parameters() if p.requires_grad]
    if glm.projector is not None and glm.uses_soft_prompt:
        params += list(glm.projector.parameters())
    return params


def train_instruct(glm: GlideLM, data: InstructData, cfg: LoopConfig, **loop_kwargs: Any) -> LoopResult:
    """Instruction tuning: weighted sampling of examples, loss on target tokens only."""
    if not hasattr(glm.model, "peft_config"):
        raise ValueError("instruction tuning trains a LoRA adapter: call grounding.add_lora first")
    glm.train()
    sampler = BatchSampler(len(data), cfg.batch_size, weights=data.weights, seed=cfg.seed,
                           lengths=[len(e.input_ids) for e in data.items], group=cfg.length_group)
    return train_loop(
        "instruct", instruct_params(glm), glm.step_fn(data.items, data.cf, share_prefix=cfg.share_prefix), sampler, cfg, device=glm.device,
        model=glm.model, **loop_kwargs
    )

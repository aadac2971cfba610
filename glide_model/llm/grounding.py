"""Semantic grounding (paper §4.2): teach the LM what SID tokens mean before any recommendation.

Bidirectional translation over the catalog: SID -> episode text and episode text -> SID.
Two stages:
1. only the new SID token rows train (backbone frozen). PEFT's trainable-token deltas hold just
   those rows (M*K x d instead of an optimizer state over the whole vocabulary), then merge
   into the embedding matrix;
2. LoRA on the transformer blocks, every embedding frozen. The same adapter continues through
   instruction tuning.
No soft prompt here: grounding stays free of collaborative signals (the paper's choice).
"""

from __future__ import annotations

import logging
import warnings
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import pandas as pd
import torch
from peft import LoraConfig, TrainableTokensConfig, get_peft_model

from glide_model.llm.decoding import constrained_beam_search
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import Encoded
from glide_model.llm.trainer import BatchSampler, LoopConfig, LoopResult, train_loop
from glide_model.sids.trie import SidTrie

log = logging.getLogger(__name__)


@dataclass
class LoraSettings:
    r: int = 16
    alpha: int = 32
    # No LoRA dropout by default: its masks over every block input cost 28% of a GLIDE step on a
    # 2-core CPU (1.38x tokens/s without), and the recipe trains under 2 epochs, where it is not
    # needed as a regulariser (RESULTS.md, sixth session).
    dropout: float = 0.0
    target_modules: str | tuple[str, ...] = "all-linear"  # every Linear in the blocks, not lm_head

    def to_config(self) -> LoraConfig:
        targets = self.target_modules if isinstance(self.target_modules, str) else list(self.target_modules)
        return LoraConfig(
            r=self.r, lora_alpha=self.alpha, lora_dropout=self.dropout, target_modules=targets, task_type="CAUSAL_LM"
        )


@dataclass
class GroundingConfig:
    stage1: LoopConfig = field(default_factory=lambda: LoopConfig(max_steps=300, batch_size=16, lr=5e-3))
    stage2: LoopConfig = field(default_factory=lambda: LoopConfig(max_steps=300, batch_size=16, lr=5e-4))
    eval_episodes: int = 200  # episodes for text->SID match / SID->text loss (0: skip evaluation)
    eval_beams: int = 5


@dataclass
class GroundingData:
    episode_ids: list[str]
    codes: list[tuple[int, ...]]
    texts: list[str]
    sid_to_text: list[Encoded]
    text_to_sid: list[Encoded]

    @property
    def items(self) -> list[Encoded]:
        """Both directions, for training."""
        return self.sid_to_text + self.text_to_sid


def grounding_data(
    glm: GlideLM, catalog: pd.DataFrame, assignments: Mapping[str, Sequence[int]]
) -> GroundingData:
    """Pair each assigned episode's SID with its text (title, topic, description) in both directions."""
    missing_cols = {"episode_id", "title"} - set(catalog.columns)
    if missing_cols:
        raise ValueError(f"catalog frame lacks columns {sorted(missing_cols)} (needs episode_id, title[, description, topic])")
    ids, codes, texts = [], [], []
    unassigned = 0
    for row in catalog.itertuples(index=False):
        eid = str(row.episode_id)
        sid = assignments.get(eid)
        if sid is None:
            unassigned += 1
            continue
        ids.append(eid)
        codes.append(glm.vocab.check_codes(sid, f"SID of episode {eid}"))
        texts.append(
            glm.prompts.episode_text(row.title, getattr(row, "description", "") or "", getattr(row, "topic", None))
        )
    if not ids:
        raise ValueError("no catalog episode has a SID assignment: pass the assignments of this catalog")
    if unassigned:
        log.warning("%d catalog episodes have no SID assignment; they are left out of grounding", unassigned)
    return GroundingData(
        ids, codes, texts, glm.prompts.encode_sid_to_text(codes, texts), glm.prompts.encode_text_to_sid(texts, codes)
    )


def _module_name(model: torch.nn.Module, module: torch.nn.Module) -> str:
    for name, m in model.named_modules():
        if m is module:
            return name.rsplit(".", 1)[-1]
    raise ValueError("module not found in model")


def add_trainable_tokens(glm: GlideLM) -> None:
    """Stage 1: wrap the model so only the SID token rows (input, and output when untied) train."""
    model = glm.model
    targets = [_module_name(model, model.get_input_embeddings())]
    out = model.get_output_embeddings()
    if out is not None and out.weight is not model.get_input_embeddings().weight:
        targets.append(_module_name(model, out))
    cfg = TrainableTokensConfig(token_indices=glm.vocab.sid_ids.reshape(-1).tolist(), target_modules=targets)
    with warnings.catch_warnings():
        # Tied embeddings: PEFT warns it cannot tie adapters, yet applies the delta on both sides.
        warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
        glm.model = get_peft_model(model, cfg)


def add_lora(glm: GlideLM, lora: LoraSettings) -> None:
    """Stage 2 (and instruction tuning): LoRA on the blocks; every base weight, embeddings included, frozen."""
    if hasattr(glm.model, "peft_config"):
        raise ValueError("model already carries an adapter: merge it first (merge_adapter)")
    glm.model = get_peft_model(glm.model, lora.to_config())


def merge_adapter(glm: GlideLM) -> None:
    """Fold the current adapter into the base weights (end of stage 1)."""
    if hasattr(glm.model, "merge_and_unload"):
        glm.model = glm.model.merge_and_unload()


def train_grounding_stage(
    name: str,
    glm: GlideLM,
    data: GroundingData,
    cfg: LoopConfig,
    **loop_kwargs: Any,
) -> LoopResult:
    """One grounding stage over both translation directions (the adapter must already be in place)."""
    items = data.items
    glm.train()
    params = [p for p in glm.model.parameters() if p.requires_grad]
    sampler = BatchSampler(len(items), cfg.batch_size, seed=cfg.seed, lengths=[len(e.input_ids) for e in items],
                           group=cfg.length_group)
    return train_loop(name, params, glm.step_fn(items, share_prefix=cfg.share_prefix), sampler, cfg, device=glm.device,
                      model=glm.model, **loop_kwargs)


def evaluate_grounding(
    glm: GlideLM, data: GroundingData, trie: SidTrie, *, n: int = 200, beams: int = 5, seed: int = 0
) -> dict[str, float]:
    """text->SID exact / prefix-1 / prefix-2 match of the top constrained beam, and SID->text / text->SID loss."""
    rng = np.random.default_rng(seed)
    pick = rng.permutation(len(data.codes))[: min(n, len(data.codes))]
    t2s_prompts = glm.prompts.encode_text_to_sid([data.texts[i] for i in pick])
    top = constrained_beam_search(glm, t2s_prompts, trie, num_beams=beams, num_return=1)
    truth = [data.codes[i] for i in pick]
    pred = [c[0][0] if c else (-1,) * glm.vocab.levels for c in top]
    out = {
        "text_to_sid_exact": float(np.mean([p == t for p, t in zip(pred, truth)])),
        "text_to_sid_prefix1": float(np.mean([p[:1] == t[:1] for p, t in zip(pred, truth)])),
        "text_to_sid_prefix2": float(np.mean([p[:2] == t[:2] for p, t in zip(pred, truth)])),
        "sid_to_text_loss": glm.mean_loss([data.sid_to_text[i] for i in pick]),
        "text_to_sid_loss": glm.mean_loss([data.text_to_sid[i] for i in pick]),
        "n": float(len(pick)),
    }
    return out

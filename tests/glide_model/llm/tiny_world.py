"""Tiny GLIDE fixtures for the LLM tests: 24 episodes with 3-level x 8-code SIDs, 20 users, a tiny Llama."""

from __future__ import annotations

import numpy as np
import pandas as pd
import torch

from glide_model.llm.backbone import tiny_llama
from glide_model.llm.grounding import GroundingConfig, LoraSettings
from glide_model.llm.model import GlideLM
from glide_model.llm.pipeline import GlideTrainConfig
from glide_model.llm.prompt import GLIDE, PromptBuilder
from glide_model.llm.soft_prompt import SoftPromptProjector
from glide_model.llm.trainer import LoopConfig
from glide_model.llm.vocab import extend_vocab

M, K = 3, 8
TOPICS = ["comedy", "crime", "news", "sports", "science", "history", "music", "health"]


def make_world(n_episodes: int = 24, n_users: int = 20, seed: int = 0):
    rng = np.random.default_rng(seed)
    codes: dict[str, tuple[int, ...]] = {}
    rows = []
    for i in range(n_episodes):
        c = (i % K, int(rng.integers(0, K)), int(rng.integers(0, K)))
        while c in codes.values():
            c = (i % K, int(rng.integers(0, K)), int(rng.integers(0, K)))
        codes[f"ep{i}"] = c
        topic = TOPICS[i % len(TOPICS)]
        rows.append(
            {"episode_id": f"ep{i}", "title": f"The {topic} hour, part {i}", "description": f"Episode {i} about {topic}.", "topic": topic}
        )
    examples = []
    for u in range(n_users):
        target = f"ep{u % n_episodes}"
        examples.append(
            {
                "user_id": f"u{u}",
                "ts": pd.Timestamp("2026-01-01", tz="UTC") + pd.Timedelta(hours=u),
                "target_episode_id": target,
                "target_codes": codes[target],
                "mode": ("familiar", "unfamiliar")[u % 2],
                "history_codes": [codes[f"ep{(u + j) % n_episodes}"] for j in (3, 5)] if u % 4 else [],
                "locale": ("en-US", "de-DE")[u % 2],
                "affinity_topics": [TOPICS[u % len(TOPICS)]],
                "cf_embedding": rng.normal(size=8).astype(np.float32) if u % 5 else None,
                "weight": 1.0,
            }
        )
    return pd.DataFrame(rows), codes, pd.DataFrame(examples)


def run_config(out_dir) -> GlideTrainConfig:
    return GlideTrainConfig(
        out_dir=out_dir,
        levels=M,
        codebook_size=K,
        quantizer_version="q-test",
        catalog_version="c-test",
        cf_version="cf-test",
        progress=False,
        lora=LoraSettings(r=8, alpha=16, dropout=0.05),
        grounding=GroundingConfig(
            stage1=LoopConfig(max_steps=20, batch_size=16, lr=3e-2, warmup_steps=2),
            stage2=LoopConfig(max_steps=20, batch_size=16, lr=1e-2, warmup_steps=2),
            eval_episodes=24,
        ),
        instruct=LoopConfig(max_steps=90, batch_size=10, lr=1e-2, warmup_steps=2, ckpt_every=45),
    )


def make_glm(tied: bool = True, d_cf: int = 8, seed: int = 0) -> GlideLM:
    model, tok = tiny_llama(tie_word_embeddings=tied, seed=seed)
    vocab = extend_vocab(model, tok, M, K)
    torch.manual_seed(seed)
    proj = SoftPromptProjector(d_cf, model.config.hidden_size, embed_rms=0.02)
    return GlideLM(model, tok, vocab, PromptBuilder(tok, vocab, GLIDE), proj)

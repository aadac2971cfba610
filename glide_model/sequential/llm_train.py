"""Train the GLIDE variants on a sequential dataset with the project's LLM stack (glide_model/llm/).

The recipe is glide_model/llm/pipeline.py's, run in memory without its checkpoints: backbone ->
SID vocabulary (rows initialised from the items' text) -> grounding stage 1 (SID rows only) ->
stage 2 (LoRA) -> instruction tuning (the same LoRA, plus the soft-prompt projector for GLIDE).
Grounding does not depend on the variant (no soft prompt, no history), so it runs once per run
and every grounded variant instruction-tunes its own copy of the grounded model; the no-grounding
ablation starts from the text-initialised vocabulary and a fresh LoRA.

Trained models are cached per run (:func:`trained_variant`): the decoding ablations
(``glide_greedy``, ``glide_sampling``) decode with the one GLIDE model the ``glide`` system trained.
"""

from __future__ import annotations

import copy
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glide_model.llm.backbone import pick_device, resolve_backbone, set_training_attention
from glide_model.llm.serving_model import merge_for_serving
from glide_model.llm.grounding import (
    LoraSettings, add_lora, add_trainable_tokens, evaluate_grounding, grounding_data, merge_adapter,
    train_grounding_stage,
)
from glide_model.llm.instruct import instruct_data, train_instruct
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import PromptBuilder, PromptVariant
from glide_model.llm.soft_prompt import SoftPromptProjector
from glide_model.llm.trainer import LoopConfig
from glide_model.llm.vocab import extend_vocab, init_sid_rows_from_text
from glide_model.sequential.llm_config import LLMEvalConfig, Schedule
from glide_model.sequential.llm_data import (
    RowBuilder, catalog_frame, fit_sequence_cf, item_titles, majority_mode, training_transitions,
)
from glide_model.sequential.systems import TrainingData
from glide_model.sequential.training import torch_threads
from glide_model.sids.trie import SidTrie

CURVE_POINTS = 50  # loss points kept per stage for the report's learning curve


@dataclass
class TrainedLM:
    glm: GlideLM  # merged for serving, eval mode
    trie: SidTrie
    rows: RowBuilder
    default_mode: str  # the training majority mode (multi-task inference without history signal)
    info: dict[str, Any] = field(default_factory=dict)


def _loop(s: Schedule, seed: int) -> LoopConfig:
    return LoopConfig(max_steps=s.steps, batch_size=s.batch_size, lr=s.lr, warmup_steps=max(1, s.steps // 10),
                      seed=seed, validate_at_end=False)


def _curve(losses: list[float]) -> list[list[float]]:
    """(step, loss) pairs, at most CURVE_POINTS, each the mean of its stretch of steps."""
    if not losses:
        return []
    cuts = np.array_split(np.arange(len(losses)), min(CURVE_POINTS, len(losses)))
    return [[int(c[-1]) + 1, round(float(np.mean([losses[i] for i in c])), 4)] for c in cuts]


def _data_dir() -> Path:
    from glide.config import load_settings

    return Path(load_settings().data_dir)


def _stage_info(loop) -> dict[str, Any]:
    return {"steps": loop.steps, "tokens_per_s": round(loop.tokens_per_s, 1), "train_seconds": round(loop.seconds, 1),
            "final_loss": round(float(np.mean(loop.losses[-5:])), 4) if loop.losses else None,
            "curve": _curve(loop.losses)}


class _Run:
    """One evaluation run's shared pieces: the base model, its grounded copy, the CF model."""

    def __init__(self, data: TrainingData, cfg: LLMEvalConfig, sid_kind: str | None = None):
        self.data, self.cfg = data, cfg
        self.sids = data.sids(sid_kind)
        self.trie = SidTrie(self.sids.codes, self.sids.codebook_size)
        self.has_text = data.dataset.items is not None
        self._base: GlideLM | None = None
        self._grounded: GlideLM | None = None
        self.grounding_info: dict[str, Any] = {}
        self._cf = None
        self.cf_seconds = 0.0
        self.device = pick_device("auto")  # the full run is meant for a GPU

    def base(self) -> GlideLM:
        """Backbone + SID vocabulary (text-initialised rows when there is text); never trained itself."""
        if self._base is None:
            started = time.perf_counter()
            model, tokenizer, _ = resolve_backbone(self.cfg.backbone, _data_dir(), device=self.device)
            vocab = extend_vocab(model, tokenizer, self.sids.levels, self.sids.codebook_size, seed=self.data.seed)
            prompts = PromptBuilder(tokenizer, vocab, PromptVariant.parse("sid_only"), max_history=self.cfg.max_history,
                                    max_text_chars=self.cfg.grounding_chars)
            glm = GlideLM(model, tokenizer, vocab, prompts, None)
            if self.has_text:
                self._gdata = grounding_data(glm, catalog_frame(self.data.dataset),
                                             {str(i): tuple(c) for i, c in enumerate(self.sids.codes.tolist())})
                init_sid_rows_from_text(model, tokenizer, vocab, self._gdata.texts, np.asarray(self._gdata.codes))
            self._base = glm
            self.grounding_info["load_seconds"] = round(time.perf_counter() - started, 1)
        return self._base

    def grounded(self) -> GlideLM:
        """The base after both grounding stages (LoRA of stage 2 still attached, to continue training)."""
        if self._grounded is None:
            base = self.base()
            glm = GlideLM(copy.deepcopy(base.model), base.tokenizer, base.vocab, base.prompts, None)
            set_training_attention(glm.model, "auto", self.device)
            self.data.progress(f"LLM grounding: {self.cfg.stage1.steps} + {self.cfg.stage2.steps} steps "
                               f"on {len(self._gdata.items)} SID<->text pairs")
            add_trainable_tokens(glm)
            s1 = train_grounding_stage("grounding_stage1", glm, self._gdata, _loop(self.cfg.stage1, self.data.seed),
                                       progress=False)
            merge_adapter(glm)
            add_lora(glm, LoraSettings())
            s2 = train_grounding_stage("grounding_stage2", glm, self._gdata, _loop(self.cfg.stage2, self.data.seed),
                                       progress=False)
            self.grounding_info.update(stage1=_stage_info(s1), stage2=_stage_info(s2))
            if self.cfg.grounding_eval > 0:
                self.grounding_info["after"] = evaluate_grounding(glm, self._gdata, self.trie, n=self.cfg.grounding_eval)
            self._grounded = glm
        return self._grounded

    def cf(self):
        if self._cf is None:
            started = time.perf_counter()
            self._cf = fit_sequence_cf(self.data.split.train, self.data.dataset.n_items, self.cfg.cf_factors,
                                       self.data.seed)
            self.cf_seconds = round(time.perf_counter() - started, 1)
        return self._cf

    def train(self, variant_name: str, grounding: bool) -> TrainedLM:
        variant = PromptVariant.parse(variant_name)
        grounding = grounding and self.has_text
        start = self.grounded() if grounding else self.base()
        model = copy.deepcopy(start.model)
        set_training_attention(model, "auto", self.device)
        tok, vocab = start.tokenizer, start.vocab
        prompts = PromptBuilder(tok, vocab, variant, max_history=self.cfg.max_history)
        projector = None
        rows = RowBuilder(self.sids.codes, self.cfg.max_history)
        if variant.text_context:
            rows.titles = item_titles(self.data.dataset, self.cfg.title_chars)
        if variant.soft_prompt:
            rows.cf = self.cf()
            emb = model.get_input_embeddings().weight[: int(vocab.sid_ids.min())]
            with torch.random.fork_rng(devices=[]):
                torch.manual_seed(self.data.seed)
                projector = SoftPromptProjector(self.cfg.cf_factors, model.config.hidden_size,
                                                embed_rms=float(emb.detach().pow(2).mean().sqrt()))
            projector = projector.to(self.device)
        glm = GlideLM(model, tok, vocab, prompts, projector)
        if not hasattr(glm.model, "peft_config"):
            add_lora(glm, LoraSettings())
        brands = self.data.dataset.brand_codes()
        transitions = training_transitions(self.data.split.train, self.cfg.train_users, self.data.seed)
        frame = rows.training_frame(transitions, brands, variant.multitask)
        examples = instruct_data(glm, frame, trie=self.trie)
        self.data.progress(f"LLM {variant_name}{'' if grounding else ' (no grounding)'}: {self.cfg.instruct.steps} "
                           f"steps x {self.cfg.instruct.batch_size} over {len(examples)} transitions")
        loop = train_instruct(glm, examples, _loop(self.cfg.instruct, self.data.seed), progress=False)
        info = {"variant": variant_name, "grounding": grounding, "backbone": self.cfg.backbone,
                "train_transitions": len(examples),
                "prompt_tokens": round(float(np.mean([len(e.input_ids) for e in examples.items])), 1),
                "instruct": _stage_info(loop), "config": _config_summary(self.cfg)}
        if grounding:
            info["grounding"] = self.grounding_info
        elif not self.has_text:
            info["grounding"] = "skipped: no item text to ground the SIDs on"
        if variant.soft_prompt:
            info["cf"] = {"factors": self.cfg.cf_factors, "fit_seconds": self.cf_seconds,
                          "vectors": "fold-in of each prompt's history, item factors from the training split"}
        return TrainedLM(merge_for_serving(glm), self.trie, rows, majority_mode(transitions, brands), info)


def _config_summary(cfg: LLMEvalConfig) -> dict[str, Any]:
    out = asdict(cfg)
    for stage in ("stage1", "stage2", "instruct"):
        s = out.pop(stage)
        out[stage] = f"{s['steps']}x{s['batch_size']} lr {s['lr']}"
    out["decode"] = ", ".join(f"{k}={v}" for k, v in out["decode"].items())
    return out


_CACHE: dict[str, Any] = {"key": None, "run": None, "models": {}}


def trained_variant(data: TrainingData, cfg: LLMEvalConfig, variant: str, grounding: bool = True,
                    keep: bool = False, sid_kind: str | None = None) -> TrainedLM:
    """The variant trained on ``data``; with ``keep``, once per run (later calls in the same run get the
    same model: the decoding ablations reuse GLIDE's). Unkept models go when their ranker does.
    ``sid_kind``: SIDs of that quantizer (the quantizer ablation), else the run's table (``data.sids()``)."""
    key = (id(data), id(data.dataset), repr(cfg), sid_kind)
    if _CACHE["key"] != key:
        # a new run: drop the previous run's models (hundreds of MB each); hold ``data`` so its id stays unique
        _CACHE.update(key=key, run=_Run(data, cfg, sid_kind), models={}, data=data)
    models = _CACHE["models"]
    name = f"{variant}|{grounding}"
    if name in models:
        return models[name]
    with torch_threads(data.threads):
        trained = _CACHE["run"].train(variant, grounding)
    if keep:
        models[name] = trained
    return trained


def clear_cache() -> None:
    _CACHE.update(key=None, run=None, models={}, data=None)

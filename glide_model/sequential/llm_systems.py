"""The GLIDE LLM systems as the harness sees them (glide_model/sequential/systems.py registers them).

==================  ===========================================================================
sid_only            history as SIDs only; grounded (when there is item text), multi-task
sid_text            + each history item's title beside its SID (the paper's SID+Text)
glide               + the CF soft prompt (ALS fitted on the training split); the full model
glide_single_task   GLIDE without the familiarity control: one "recommend an episode" task
glide_no_grounding  GLIDE instruction-tuned straight from the vocabulary init (no §4.2 stage)
glide_greedy        the trained ``glide`` model decoded greedily (one SID per mode)
glide_sampling      the trained ``glide`` model, trie-constrained sampling (temperature, top-p)
==================  ===========================================================================

All decode over the same SID trie as TIGER, beam search unless said otherwise, and are scored on
``LLMEvalConfig.test_users`` test users (quick: a 100-user sample; glide_model/sequential/llm_config.py).
Without SIDs every system is skipped; without item text the text systems are, and ``sid_only``
runs ungrounded on a given SID table.
"""

from __future__ import annotations

from glide_model.sequential.llm_config import LLMEvalConfig, eval_config
from glide_model.sequential.systems import Fitted, TrainingData


class LLMSystem:
    name = "sid_only"
    variant = "sid_only"
    grounding = True
    decoder = "beam"
    needs_text = False
    keep = False  # cache the trained model for later systems of the run (the decoding ablations)

    def config(self, data: TrainingData) -> LLMEvalConfig:
        return eval_config(data.quick)

    def skip_reason(self, data: TrainingData) -> str | None:
        reason = data.sid_skip_reason()
        if reason is not None:
            return f"no Semantic IDs: {reason}"
        if self.needs_text and data.dataset.items is None:
            return (f"no item text ({data.dataset.name}.item.json): {self.name} reads the history items' titles "
                    "and grounds the SIDs on item text")
        return None

    def test_users(self, data: TrainingData) -> int | None:
        return self.config(data).test_users

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.llm_ranker import Decoder, LLMRanker
        from glide_model.sequential.llm_train import trained_variant

        cfg = self.config(data)
        lm = trained_variant(data, cfg, self.variant, self.grounding, keep=self.keep)
        decoder = Decoder(self.decoder, cfg.decode, seed=data.seed)
        ranker = LLMRanker(lm, decoder, data.popularity, data.dataset.brand_codes(), threads=data.threads)
        return Fitted(ranker, {**lm.info, "decoding": decoder.describe(),
                               "mode_policy": cfg.decode.mode_policy if ranker.multitask else "single task"})


class SidOnlySystem(LLMSystem):
    pass


class SidTextSystem(LLMSystem):
    name = variant = "sid_text"
    needs_text = True


class GlideSystem(LLMSystem):
    name = variant = "glide"
    needs_text = True
    keep = True


class GlideSingleTaskSystem(LLMSystem):
    name = variant = "glide_single_task"
    needs_text = True


class GlideNoGroundingSystem(LLMSystem):
    name = "glide_no_grounding"
    variant = "glide"
    grounding = False
    needs_text = True


class GlideGreedySystem(LLMSystem):
    name = "glide_greedy"
    variant = "glide"
    decoder = "greedy"
    needs_text = True
    keep = True


class GlideSamplingSystem(LLMSystem):
    name = "glide_sampling"
    variant = "glide"
    decoder = "sampling"
    needs_text = True
    keep = True

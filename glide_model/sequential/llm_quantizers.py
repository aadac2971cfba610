"""The quantizer ablation (paper Table 2): one generative model per quantizer, each on its own SID table.

``tiger_<kind>`` trains the TIGER-style model (glide_model/sequential/tiger.py) and ``sid_only_<kind>``
the SID-only LLM (glide_model/sequential/llm_systems.py) on the SIDs that quantizer ``kind`` (rkmeans |
rqvae | rlfq, glide_model/sids/) computes from the item text: the same item embeddings, levels and
codebook size, so only the quantizer differs. The harness reports HR@30 (= Recall@30 with one
target) for each. They need item text (a given SID table is one quantizer's, not three) and run
only when named, e.g. ``--systems tiger_rkmeans,tiger_rqvae,tiger_rlfq``: TIGER on the full test
set costs ~3 minutes per quantizer in quick mode on the 2-core CPU, the LLM like ``sid_only``.
The TIGER rows are the cheaper, less noisy reading of the ablation on a CPU (every test user,
and a model that learns within its quick schedule); the LLM rows are the paper's setting.
"""

from __future__ import annotations

from dataclasses import asdict, replace
from functools import partial

from glide_model.sequential.llm_systems import LLMSystem
from glide_model.sequential.systems import Fitted, TrainingData

KINDS = ("rkmeans", "rqvae", "rlfq")


def _skip(data: TrainingData, kind: str) -> str | None:
    from glide_model.sequential.semantic_ids import missing_text_reason

    reason = missing_text_reason(data.dataset)
    return None if reason is None else f"the {kind} SIDs are computed from item text: {reason}"


def _sid_info(table) -> dict:
    return {"source": table.source, "levels": table.levels, "codebook_size": table.codebook_size,
            "collided_items": table.collided_items()}


class TigerQuantizerSystem:
    def __init__(self, kind: str):
        self.kind, self.name = kind, f"tiger_{kind}"

    def skip_reason(self, data: TrainingData) -> str | None:
        return _skip(data, self.kind)

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.baselines import QUICK_TIGER
        from glide_model.sequential.tiger import TigerConfig
        from glide_model.sequential.tiger_train import fit_tiger

        sids = data.sids(self.kind)
        cfg = TigerConfig(seed=data.seed, threads=data.threads)
        if data.quick:
            cfg = replace(cfg, **QUICK_TIGER)
        ranker, log = fit_tiger(data.split.train, data.split.valid, sids.codes, data.popularity, cfg, data.progress)
        return Fitted(ranker, {"quantizer": self.kind, "model": "tiger", "config": asdict(cfg), "fit": log.as_dict(),
                               "sids": _sid_info(sids)})


class SidOnlyQuantizerSystem(LLMSystem):
    variant = "sid_only"

    def __init__(self, kind: str):
        self.kind, self.name = kind, f"sid_only_{kind}"

    def skip_reason(self, data: TrainingData) -> str | None:
        return _skip(data, self.kind)

    def fit(self, data: TrainingData) -> Fitted:
        from glide_model.sequential.llm_ranker import Decoder, LLMRanker
        from glide_model.sequential.llm_train import trained_variant

        cfg = self.config(data)
        lm = trained_variant(data, cfg, self.variant, grounding=True, sid_kind=self.kind)
        decoder = Decoder("beam", cfg.decode, seed=data.seed)
        ranker = LLMRanker(lm, decoder, data.popularity, data.dataset.brand_codes(), threads=data.threads)
        return Fitted(ranker, {**lm.info, "quantizer": self.kind, "model": "sid_only", "decoding": decoder.describe(),
                               "mode_policy": cfg.decode.mode_policy, "sids": _sid_info(data.sids(self.kind))})


tiger_rkmeans = partial(TigerQuantizerSystem, "rkmeans")
tiger_rqvae = partial(TigerQuantizerSystem, "rqvae")
tiger_rlfq = partial(TigerQuantizerSystem, "rlfq")
sid_only_rkmeans = partial(SidOnlyQuantizerSystem, "rkmeans")
sid_only_rqvae = partial(SidOnlyQuantizerSystem, "rqvae")
sid_only_rlfq = partial(SidOnlyQuantizerSystem, "rlfq")

"""The registry of systems the harness can evaluate, and what a system gets to train on.

A system is a small object with a ``name``, ``skip_reason(data)`` (None when it can run on this
data, else the sentence the report shows) and ``fit(data) -> Fitted`` (a ranker, see
glide_model/sequential/ranking.py, and what it tuned). Optionally ``test_users(data) -> int | None``:
a system whose scoring is costly (the LLM's decoding) is scored on that many of the harness's test
examples, a seeded sample that is the same for every system asking for the same number, and its
``n`` says so. A ranker may also offer ``diagnostics(test) -> dict`` (the LLM's prefix ceilings),
which goes into the result beside the metrics. Systems are registered by import path
("module:attribute", imported only when asked for, so popularity never pays for torch), in
:data:`SYSTEMS` (the four baselines, the GLIDE LLM systems and the opt-in quantizer ablation); any
other module adds its own with :func:`register_system`, without touching the harness.

Every system trains on ``data.split.train`` and may tune on ``data.split.valid``; the test examples
are the harness's alone.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

import numpy as np

from glide_model.sequential.dataset import SequenceDataset
from glide_model.sequential.ranking import Ranker
from glide_model.sequential.sid_table import SidTable
from glide_model.sequential.split import LeaveOneOut

# name -> "module:attribute" of a System (or a zero-argument callable returning one); run in this order
SYSTEMS: dict[str, str] = {
    "popularity": "glide_model.sequential.baselines:PopularitySystem",
    "itemknn": "glide_model.sequential.baselines:ItemKNNSystem",
    "sasrec": "glide_model.sequential.baselines:SASRecSystem",
    "tiger": "glide_model.sequential.baselines:TigerSystem",
    # the GLIDE LLM systems (glide_model/sequential/llm_systems.py); the decoding ablations reuse glide's model
    "sid_only": "glide_model.sequential.llm_systems:SidOnlySystem",
    "sid_text": "glide_model.sequential.llm_systems:SidTextSystem",
    "glide": "glide_model.sequential.llm_systems:GlideSystem",
    "glide_single_task": "glide_model.sequential.llm_systems:GlideSingleTaskSystem",
    "glide_no_grounding": "glide_model.sequential.llm_systems:GlideNoGroundingSystem",
    "glide_greedy": "glide_model.sequential.llm_systems:GlideGreedySystem",
    "glide_sampling": "glide_model.sequential.llm_systems:GlideSamplingSystem",
}

# The quantizer ablation (paper Table 2, glide_model/sequential/llm_quantizers.py): a model per quantizer,
# each on its own SID table; run only when named (--systems), never by default.
QUANTIZER_SYSTEMS = tuple(f"{model}_{kind}" for model in ("tiger", "sid_only") for kind in ("rkmeans", "rqvae", "rlfq"))
SYSTEMS.update({name: "glide_model.sequential.llm_quantizers:" + name for name in QUANTIZER_SYSTEMS})

# Trained with the LLM stack (minutes to hours): the CLI runs them by default, the harness only when named.
LLM_SYSTEMS = ("sid_only", "sid_text", "glide", "glide_single_task", "glide_no_grounding", "glide_greedy",
               "glide_sampling")


def default_systems(include_llm: bool) -> list[str]:
    """Every registered system, in order, but the quantizer ablation; without ``include_llm``, also
    without the LLM systems."""
    return [name for name in SYSTEMS
            if name not in QUANTIZER_SYSTEMS and (include_llm or name not in LLM_SYSTEMS)]


@dataclass
class TrainingData:
    """Everything a system may learn from, plus the run's settings."""

    dataset: SequenceDataset
    split: LeaveOneOut
    popularity: np.ndarray  # interactions per item in the training split
    quick: bool = False
    seed: int = 0
    work_dir: Path | None = None  # for caches that outlive one run (text embeddings)
    threads: int | None = None
    progress: Callable[[str], None] = lambda message: None
    _sid_tables: dict[str, SidTable] = field(default_factory=dict, repr=False)

    def sid_skip_reason(self) -> str | None:
        """Why this data has no Semantic IDs (no table given and no text to compute them from)."""
        if self.dataset.sids is not None:
            return None
        from glide_model.sequential.semantic_ids import missing_text_reason

        return missing_text_reason(self.dataset)

    def sids(self, kind: str | None = None) -> SidTable:
        """The given SID table, else one computed once from the item text (glide_model/sequential/semantic_ids.py).
        ``kind`` (rkmeans | rqvae | rlfq): that quantizer's table from the item text even when a table was
        given (the quantizer ablation)."""
        if kind is None and self.dataset.sids is not None:
            return self.dataset.sids
        kind = kind or "rkmeans"
        if kind not in self._sid_tables:
            from glide_model.sequential.semantic_ids import QuantizeConfig, text_sid_table

            self.progress(f"computing {kind} Semantic IDs from item text (embeddings cached)")
            cache = self.work_dir / "embeddings" if self.work_dir is not None else None
            self._sid_tables[kind] = text_sid_table(self.dataset, QuantizeConfig(kind=kind, seed=self.seed),
                                                    cache_root=cache)
        return self._sid_tables[kind]


@dataclass
class Fitted:
    ranker: Ranker
    info: dict[str, Any] = field(default_factory=dict)  # tuned settings, fit log: goes into the report


@runtime_checkable
class System(Protocol):
    name: str

    def skip_reason(self, data: TrainingData) -> str | None: ...

    def fit(self, data: TrainingData) -> Fitted: ...


def register_system(name: str, target: str) -> None:
    """Make ``name`` evaluable; ``target`` is "module:attribute" of a System class or factory."""
    if ":" not in target:
        raise ValueError(f"system target {target!r} must be 'module:attribute'")
    SYSTEMS[name] = target


def load_system(name: str) -> System:
    if name not in SYSTEMS:
        raise ValueError(f"unknown system {name!r}; registered: {', '.join(SYSTEMS)}")
    module_name, attr = SYSTEMS[name].split(":")
    system = getattr(importlib.import_module(module_name), attr)()
    if not isinstance(system, System):
        raise TypeError(f"{SYSTEMS[name]} did not give a System (name, skip_reason, fit)")
    return system

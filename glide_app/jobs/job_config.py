"""The train job's config file (configs/train_*.yaml): typed sections, checked when the file loads.

``sids`` and ``window`` are the job's own dataclasses; ``world``, ``cf``, ``examples`` and ``model``
stay plain dicts of what the file set (the run record keeps them so), but each is checked against
the library dataclass it becomes (WorldConfig, CFConfig, ExampleSamplingConfig, GlideTrainConfig
and its nested LoRA / grounding / loop sections), so a typo fails at load with the key and the
section named, before any data is prepared.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from glide_app.jobs.config_io import ConfigFileError, from_dict, read_config_file, section_schema


def _world_config() -> type:
    from glide.world.generator import WorldConfig

    return WorldConfig


def _cf_config() -> type:
    from glide_model.cf import CFConfig

    return CFConfig


def _sampling_config() -> type:
    from glide_model.data.examples import ExampleSamplingConfig

    return ExampleSamplingConfig


def _model_config() -> type:
    from glide_model.llm.pipeline import GlideTrainConfig

    return GlideTrainConfig


@dataclass
class SidSettings:
    quantizer: str = "rkmeans"
    levels: int = 4
    codebook_size: int = 256
    seed: int = 0
    refit: bool = False  # False: reuse the newest matching quantizer in the catalog DB


@dataclass
class WindowSettings:
    cf_days: float = 7.0
    val_days: float = 4.0
    max_val_examples: int = 300
    k: int = 30


@dataclass
class TrainJobConfig:
    # The world a bootstrap backfills into the log (tests, benchmarks, `glide replay --backfill`); the
    # job itself reads only the event log. Default <data_dir>/world, generated from `world` when missing.
    world_dir: Path | None = None
    world: dict[str, Any] = field(default_factory=lambda: {"users": 300, "days": 35, "seed": 0},
                                  metadata=section_schema(_world_config))  # WorldConfig fields
    sids: SidSettings = field(default_factory=SidSettings)
    cf: dict[str, Any] = field(default_factory=dict, metadata=section_schema(_cf_config))  # CFConfig fields
    window: WindowSettings = field(default_factory=WindowSettings)
    examples: dict[str, Any] = field(default_factory=dict,
                                     metadata=section_schema(_sampling_config))  # ExampleSamplingConfig fields
    model: dict[str, Any] = field(default_factory=dict, metadata=section_schema(_model_config))  # GlideTrainConfig
    run_name: str | None = None
    promote: bool = True  # promote when GLIDE beats popularity on overall Recall@k


def job_config_from_dict(data: dict[str, Any] | None, source: str = "train config") -> TrainJobConfig:
    """A TrainJobConfig with every section checked; a bad key raises ConfigFileError naming ``source``,
    the section and the key."""
    try:
        return from_dict(TrainJobConfig, data)
    except ConfigFileError as exc:
        raise ConfigFileError(f"{source}: {exc}") from None


def load_job_config(path: str | Path | None) -> TrainJobConfig:
    """The job config file at ``path`` (YAML or JSON), or the defaults when ``path`` is None."""
    if not path:
        return job_config_from_dict({})
    return job_config_from_dict(read_config_file(path), f"train config {path}")

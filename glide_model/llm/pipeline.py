"""``train_glide``: the whole GLIDE training recipe in one call (grounding stage 1 -> stage 2 -> instruction tuning).

    from glide_model.llm.pipeline import GlideTrainConfig, train_glide
    result = train_glide(GlideTrainConfig(base_model="smollm2", out_dir=Path("runs/x")),
                         catalog_frame, assignments, train_examples, val_examples)
    result.checkpoint  # -> load_checkpoint / export_merged / HFBackend

Every stage checkpoints into ``out_dir/checkpoints/<stage>-step<N>`` (every ``ckpt_every`` steps
and at the end of each stage); ``resume_from=<that folder>`` continues exactly where it stopped.
A stage with ``max_steps=0`` is skipped (e.g. the "no grounding" ablation of §5.2.4).
"""

from __future__ import annotations

import logging
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import asdict, dataclass, field
from pathlib import Path
from typing import Any

import numpy as np
import pandas as pd
import torch

from glide_model.llm.backbone import TINY, pick_device, resolve_backbone, set_training_attention
from glide_model.llm.checkpoint import Manifest, load_checkpoint, load_train_state, save_checkpoint, serving_torch_dtype
from glide_model.llm.decoding import HFBackend
from glide_model.llm.grounding import (
    GroundingConfig,
    LoraSettings,
    add_lora,
    add_trainable_tokens,
    evaluate_grounding,
    grounding_data,
    merge_adapter,
    train_grounding_stage,
)
from glide_model.llm.instruct import infer_d_cf, instruct_data, train_instruct
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import PromptBuilder, PromptVariant
from glide_model.llm.soft_prompt import SoftPromptProjector
from glide_model.llm.trainer import LoopConfig
from glide_model.llm.vocab import extend_vocab, init_sid_rows_from_text
from glide_model.serving.contract import GenerationBackend
from glide_model.sids.trie import SidTrie

log = logging.getLogger(__name__)

STAGES = ("grounding_stage1", "grounding_stage2", "instruct")

# validate(backend, val_examples) -> metrics, e.g. the evaluation package's Recall@30.
ValidateFn = Callable[[GenerationBackend, pd.DataFrame], Mapping[str, float]]


@dataclass
class GlideTrainConfig:
    out_dir: Path = Path(".glide/runs/glide")
    base_model: str = TINY  # "tiny" | "smollm2" | path of any HF causal-LM folder
    data_dir: Path = Path(".glide")  # where "smollm2" is converted and cached
    variant: str = "glide"  # sid_only | sid_text | glide [+ _single_task]
    levels: int = 4
    codebook_size: int = 256
    quantizer_version: str = "unversioned"
    catalog_version: str = "unversioned"
    cf_version: str | None = None  # CFModel.version of the examples' cf_embedding, recorded in the manifest
    # Fine-tune from a trained model (a merged export speaking the same SIDs, e.g. the promoted
    # one): its SID rows, weights and soft-prompt projector are the start; grounding is skipped.
    init_from: Path | None = None
    max_history: int = 20
    max_text_chars: int = 300
    d_cf: int | None = None  # inferred from the examples' cf_embedding when None
    soft_prompt_hidden: int | None = None  # default: the LM's hidden size
    init_noise: float = 0.1  # new-token init noise, in stds of the pretrained rows
    sid_init: str = "text"  # "text": + catalog-text direction per SID token (vocab.py); "noise": mean + noise only
    lora: LoraSettings = field(default_factory=LoraSettings)
    grounding: GroundingConfig = field(default_factory=GroundingConfig)
    instruct: LoopConfig = field(
        default_factory=lambda: LoopConfig(max_steps=1000, batch_size=16, lr=5e-4, eval_every=200, ckpt_every=200)
    )
    val_loss_examples: int = 256  # validation-loss subset size (0: no built-in validation loss)
    val_beams: int = 30
    # Precision the exported model is served and evaluated in (glide_model/llm/serving_model.py):
    # float32 | bfloat16 (several times faster on CPUs with AMX or AVX512-BF16, slightly other beams).
    serving_dtype: str = "float32"
    device: str = "auto"
    attention: str = "auto"  # training attention kernel: auto = eager on CPU, sdpa elsewhere (backbone.py)
    seed: int = 0
    progress: bool = True

    def __post_init__(self) -> None:
        serving_torch_dtype(self.serving_dtype)


@dataclass
class GlideTrainResult:
    checkpoint: Path
    grounding: dict[str, dict[str, float]] = field(default_factory=dict)  # before / after_stage1 / after_stage2
    stages: dict[str, dict[str, float]] = field(default_factory=dict)  # steps, final_loss, tokens_per_s
    validations: list[dict[str, float]] = field(default_factory=list)


def _catalog_trie(assignments: Mapping[str, Sequence[int]], cfg: GlideTrainConfig) -> SidTrie:
    codes = np.asarray([tuple(c) for c in assignments.values()], dtype=np.int64)
    if codes.ndim != 2 or codes.shape[1] != cfg.levels:
        raise ValueError(f"assignments must map episode_id -> {cfg.levels} codes (config.levels)")
    return SidTrie(codes, cfg.codebook_size)


def _new_model(
    cfg: GlideTrainConfig, d_cf: int | None, device: torch.device, out_dir: Path
) -> tuple[GlideLM, Path]:
    model, tokenizer, folder = resolve_backbone(cfg.base_model, cfg.data_dir, device="cpu")
    if folder is None:  # the tiny test model has no folder: keep one so checkpoints can point at it
        folder = out_dir / "base_model"
        model.save_pretrained(folder)
        tokenizer.save_pretrained(folder)
    vocab = extend_vocab(model, tokenizer, cfg.levels, cfg.codebook_size, noise_scale=cfg.init_noise, seed=cfg.seed)
    variant = PromptVariant.parse(cfg.variant)
    prompts = PromptBuilder(tokenizer, vocab, variant, max_history=cfg.max_history, max_text_chars=cfg.max_text_chars)
    projector = None
    if variant.soft_prompt:
        if d_cf is None:
            raise ValueError(
                f"variant {cfg.variant!r} injects a CF soft prompt but no example has a cf_embedding: "
                "set config.d_cf, attach CF embeddings, or use variant 'sid_text'"
            )
        emb = model.get_input_embeddings().weight[: vocab.sid_ids.min()]
        with torch.random.fork_rng(devices=[]):
            torch.manual_seed(cfg.seed)
            projector = SoftPromptProjector(
                d_cf, model.config.hidden_size, cfg.soft_prompt_hidden, embed_rms=float(emb.detach().pow(2).mean().sqrt())
            )
    glm = GlideLM(model.to(device), tokenizer, vocab, prompts, projector.to(device) if projector else None)
    return glm, folder.resolve()


def _stage_steps(cfg: GlideTrainConfig) -> dict[str, int]:
    return {
        "grounding_stage1": cfg.grounding.stage1.max_steps,
        "grounding_stage2": cfg.grounding.stage2.max_steps,
        "instruct": cfg.instruct.max_steps,
    }


@dataclass
class _Run:
    """What the stages of one :func:`train_glide` call share: the model, its checkpoints and the result."""

    cfg: GlideTrainConfig
    glm: GlideLM
    trie: SidTrie
    out_dir: Path
    base_path: Path
    result: GlideTrainResult
    gdata: Any = None  # grounding data, when a grounding stage runs

    def manifest(self, stage: str, step: int) -> Manifest:
        cfg = self.cfg
        return Manifest(
            base_model=str(self.base_path),
            variant=cfg.variant,
            levels=cfg.levels,
            codebook_size=cfg.codebook_size,
            quantizer_version=cfg.quantizer_version,
            catalog_version=cfg.catalog_version,
            cf_version=cfg.cf_version,
            max_history=cfg.max_history,
            max_text_chars=cfg.max_text_chars,
            lora=asdict(cfg.lora),
            serving_dtype=cfg.serving_dtype,
            stage=stage,
            step=step,
        )

    def saver(self, stage: str) -> Callable[[int, dict[str, Any]], Path]:
        def save(step: int, state: dict[str, Any] | None) -> Path:
            return save_checkpoint(
                self.out_dir / "checkpoints" / f"{stage}-step{step:06d}", self.glm, self.manifest(stage, step), state
            )

        return save

    def record(self, stage: str, loop) -> None:
        stages = self.result.stages
        stages[stage] = {
            "steps": float(loop.steps),
            "final_loss": float(np.mean(loop.losses[-10:])) if loop.losses else float("nan"),
            "tokens_per_s": loop.tokens_per_s,
            "bf16": loop.bf16,
            "train_seconds": round(loop.seconds, 1),  # optimizer steps only; checkpoints and validation excluded
        }
        log.info("%s: %d steps, loss %.4f, %.0f tokens/s", stage, loop.steps, stages[stage]["final_loss"], loop.tokens_per_s)

    def eval_grounding(self, label: str) -> None:
        g = self.cfg.grounding
        if self.gdata is not None and g.eval_episodes > 0:
            started = time.perf_counter()
            grounding = self.result.grounding
            grounding[label] = evaluate_grounding(self.glm, self.gdata, self.trie, n=g.eval_episodes, beams=g.eval_beams)
            grounding[label]["seconds"] = round(time.perf_counter() - started, 1)
            log.info("grounding %s: %s", label, grounding[label])


def _resume(resume_from: str | Path, cfg: GlideTrainConfig, device: torch.device, steps: dict[str, int]):
    """(model, base model folder, stage index, step, train state) of the checkpoint to continue from."""
    glm, manifest = load_checkpoint(resume_from, device=device, trainable=True)
    if (manifest.levels, manifest.codebook_size, manifest.variant, manifest.quantizer_version) != (
        cfg.levels, cfg.codebook_size, cfg.variant, cfg.quantizer_version
    ):
        raise ValueError(f"checkpoint {resume_from} was trained with another SID shape/variant/quantizer than config")
    base_path = Path(manifest.base_model)
    start, start_step = STAGES.index(manifest.stage) if manifest.stage in STAGES else len(STAGES), manifest.step
    if start < len(STAGES) and start_step >= steps[STAGES[start]]:
        start, start_step = start + 1, 0  # that stage had finished
    train_state = load_train_state(resume_from) if start_step > 0 else None
    log.info("resuming at %s step %d", STAGES[start] if start < len(STAGES) else "done", start_step)
    return glm, base_path, start, start_step, train_state


def _warm(cfg: GlideTrainConfig, device: torch.device):
    """(model, base model folder) of the trained model to fine-tune; it must speak the same SIDs."""
    glm, manifest = load_checkpoint(cfg.init_from, device=device, trainable=True)
    if (manifest.levels, manifest.codebook_size, manifest.variant, manifest.quantizer_version) != (
        cfg.levels, cfg.codebook_size, cfg.variant, cfg.quantizer_version
    ):
        raise ValueError(f"init_from {cfg.init_from} was trained with another SID shape/variant/quantizer than config")
    return glm, Path(cfg.init_from).resolve()


def _fresh(cfg: GlideTrainConfig, catalog_frame: pd.DataFrame, assignments: Mapping[str, Sequence[int]],
           d_cf: int | None, device: torch.device, out_dir: Path):
    """(model, base model folder, grounding data or None): a new model, its SID rows initialised per ``sid_init``."""
    torch.manual_seed(cfg.seed)
    glm, base_path = _new_model(cfg, d_cf, device, out_dir)
    catalog = None  # grounding data, built once when the SID init needs it too
    if cfg.sid_init not in ("text", "noise"):
        raise ValueError(f"sid_init must be 'text' or 'noise', got {cfg.sid_init!r}")
    if cfg.sid_init == "text":
        catalog = grounding_data(glm, catalog_frame, assignments)
        init_sid_rows_from_text(glm.model, glm.tokenizer, glm.vocab, catalog.texts, np.asarray(catalog.codes))
    return glm, base_path, catalog


def _stage1(run: _Run, start: int, start_step: int, train_state, steps: dict[str, int]):
    """Grounding stage 1, new SID rows only; returns the (stage, step, train state) to continue from."""
    if start == 0 and steps["grounding_stage1"] > 0:
        if start_step == 0:
            run.eval_grounding("before")
            add_trainable_tokens(run.glm)
        loop = train_grounding_stage("grounding_stage1", run.glm, run.gdata, run.cfg.grounding.stage1,
                                     save=run.saver("grounding_stage1"), resume=train_state, progress=run.cfg.progress)
        run.record("grounding_stage1", loop)
        merge_adapter(run.glm)
        run.saver("grounding_stage1")(loop.steps, None)
        run.eval_grounding("after_stage1")
        return 1, 0, None
    return (1 if start == 0 else start), start_step, train_state


def _stage2(run: _Run, start: int, start_step: int, train_state, steps: dict[str, int]):
    """Grounding stage 2, LoRA with the embeddings frozen; returns the (stage, step, train state) to continue from."""
    if start == 1 and steps["grounding_stage2"] > 0:
        if start_step == 0:
            if not run.result.grounding and run.gdata is not None:
                run.eval_grounding("before_stage2")
            add_lora(run.glm, run.cfg.lora)
        loop = train_grounding_stage("grounding_stage2", run.glm, run.gdata, run.cfg.grounding.stage2,
                                     save=run.saver("grounding_stage2"), resume=train_state, progress=run.cfg.progress)
        run.record("grounding_stage2", loop)
        run.saver("grounding_stage2")(loop.steps, None)
        run.eval_grounding("after_stage2")
        return 2, 0, None
    return (2 if start == 1 else start), start_step, train_state


def _instruct(run: _Run, train_examples: pd.DataFrame, val_examples: pd.DataFrame | None,
              validate: ValidateFn | None, train_state) -> None:
    """Instruction tuning: LoRA (continued) + soft-prompt projector, validated per ``cfg.instruct``."""
    cfg, glm, trie = run.cfg, run.glm, run.trie
    if not hasattr(glm.model, "peft_config"):
        add_lora(glm, cfg.lora)  # no grounding stage 2 ran (ablation): fresh adapter
    tdata = instruct_data(glm, train_examples, trie=trie)
    vdata = instruct_data(glm, val_examples) if val_examples is not None and len(val_examples) else None

    def run_validation(step: int) -> dict[str, float]:
        metrics: dict[str, float] = {}
        if vdata is not None and cfg.val_loss_examples > 0:
            n = cfg.val_loss_examples
            metrics["val_loss"] = glm.mean_loss(vdata.items[:n], vdata.cf[:n])
        if validate is not None and val_examples is not None:
            backend = HFBackend(glm, trie, num_beams=cfg.val_beams)
            metrics.update({k: float(v) for k, v in validate(backend, val_examples).items()})
        return metrics

    loop = train_instruct(
        glm,
        tdata,
        cfg.instruct,
        validate=run_validation if (vdata is not None or validate is not None) else None,
        save=run.saver("instruct"),
        resume=train_state,
        progress=cfg.progress,
    )
    run.record("instruct", loop)
    run.result.validations = loop.validations


def train_glide(
    config: GlideTrainConfig,
    catalog_frame: pd.DataFrame,
    assignments: Mapping[str, Sequence[int]],
    train_examples: pd.DataFrame,
    val_examples: pd.DataFrame | None = None,
    *,
    validate: ValidateFn | None = None,
    resume_from: str | Path | None = None,
) -> GlideTrainResult:
    """Ground the SID tokens on the catalog, then instruction-tune; returns the final checkpoint and metrics."""
    cfg = config
    out_dir = Path(cfg.out_dir)
    out_dir.mkdir(parents=True, exist_ok=True)
    device = pick_device(cfg.device)
    trie = _catalog_trie(assignments, cfg)
    d_cf = cfg.d_cf or infer_d_cf([train_examples, val_examples])
    steps = _stage_steps(cfg)
    result = GlideTrainResult(checkpoint=out_dir / "final")

    if resume_from is not None:
        glm, base_path, start, start_step, train_state = _resume(resume_from, cfg, device, steps)
        catalog = None
    elif cfg.init_from is not None:
        glm, base_path = _warm(cfg, device)
        start, start_step, train_state, catalog = 2, 0, None, None  # grounded already: instruction tuning only
    else:
        glm, base_path, catalog = _fresh(cfg, catalog_frame, assignments, d_cf, device, out_dir)
        start, start_step, train_state = 0, 0, None
    set_training_attention(glm.model, cfg.attention, device)

    run = _Run(cfg, glm, trie, out_dir, base_path, result)
    needs_grounding = start < 2 and (steps["grounding_stage1"] > 0 or steps["grounding_stage2"] > 0)
    if needs_grounding and catalog is None:
        catalog = grounding_data(glm, catalog_frame, assignments)
    run.gdata = catalog if needs_grounding else None

    start, start_step, train_state = _stage1(run, start, start_step, train_state, steps)
    start, start_step, train_state = _stage2(run, start, start_step, train_state, steps)
    if start == 2 and steps["instruct"] > 0:
        _instruct(run, train_examples, val_examples, validate, train_state)

    save_checkpoint(result.checkpoint, glm, run.manifest("done", 0))
    return result

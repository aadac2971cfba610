"""A small, readable training loop shared by the grounding stages and instruction tuning.

AdamW + linear warmup / cosine decay, gradient clipping, bf16 autocast on CUDA and bf16-capable
CPUs (fp32 master weights), tqdm progress with loss and tokens/s, a validation callback every
``eval_every`` steps, a checkpoint callback every ``ckpt_every`` steps, and exact resume: optimizer,
scheduler, sampler position and every RNG are part of the saved state.
"""

from __future__ import annotations

import math
import random
import time
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torch import nn
from tqdm.auto import tqdm


@dataclass
class LoopConfig:
    max_steps: int = 200
    batch_size: int = 8
    lr: float = 2e-4
    weight_decay: float = 0.0
    warmup_steps: int = 10
    min_lr_ratio: float = 0.1  # cosine decays to lr * min_lr_ratio
    grad_clip: float = 1.0
    eval_every: int = 0  # 0: validate only at the end
    validate_at_end: bool = True  # False when the caller evaluates the final model itself
    ckpt_every: int = 0  # 0: no intermediate checkpoints
    log_every: int = 10
    seed: int = 0
    # Batches drawn together and grouped by prompt length (BatchSampler); 1 = plain random batches.
    length_group: int = 16
    # Run the prompt prefix all rows of a batch share (system prompt, chat header) once per batch
    # (GlideLM.step_fn; same loss and gradients).
    share_prefix: bool = True
    # bf16 autocast (fp32 master weights): "auto" = on CUDA, and on CPUs with native bf16 matmuls
    # (AVX512-BF16 / AMX: 1.4-1.7x the fp32 tokens/s of the GLIDE stages on this 2-core EPYC,
    # RESULTS.md); "on"; "off".
    bf16: str = "auto"

    def __post_init__(self) -> None:
        if self.bf16 not in ("auto", "on", "off"):
            raise ValueError(f"bf16 must be auto, on or off, got {self.bf16!r}")


def cpu_has_native_bf16() -> bool:
    """Does oneDNN run bf16 matmuls natively here (AVX512-BF16 or AMX), rather than emulating them?"""
    try:
        return bool(torch.ops.mkldnn._is_mkldnn_bf16_supported())
    except (AttributeError, RuntimeError):  # a torch build without oneDNN
        return False


def use_bf16(mode: str, device: torch.device) -> bool:
    if mode == "auto":
        return device.type == "cuda" or (device.type == "cpu" and cpu_has_native_bf16())
    return mode == "on"


class FrozenLinears:
    """The frozen ``nn.Linear`` weights of a model, also held in a lower precision for the training steps.

    Under bf16 autocast every frozen weight is cast again on every forward. Holding a bf16 copy for
    the whole stage gives the same matmuls (autocast would cast them to bf16 anyway) without the
    copies: 1.18x the GLIDE instruction tokens/s on the 2-core CPU. ``low()`` before the steps,
    ``original()`` before any validation or checkpoint and at the end, so those (and merges) only
    ever see the original fp32 weights. Tied output embeddings (``lm_head``) are left alone.
    """

    def __init__(self, model: nn.Module, dtype: torch.dtype):
        tied = {id(m.weight) for m in model.modules() if isinstance(m, nn.Embedding)}
        self.pairs = [
            (m, m.weight.data, m.weight.data.to(dtype))
            for name, m in model.named_modules()
            if type(m) is nn.Linear and not m.weight.requires_grad and id(m.weight) not in tied
            and not name.endswith("lm_head")
        ]

        self.is_low = False

    def low(self) -> None:
        if not self.is_low:
            for m, _, low in self.pairs:
                m.weight.data = low
            self.is_low = True

    def original(self) -> None:
        if self.is_low:
            for m, original, _ in self.pairs:
                m.weight.data = original
            self.is_low = False


class BatchSampler:
    """Index batches: shuffled epochs when weights are uniform, weighted draws with replacement otherwise.

    With ``lengths`` and ``group > 1``, ``group`` batches are drawn at once, sorted by length, cut
    into batches and served in random order: which examples are seen (and how often) is unchanged,
    but each batch pads to a near-uniform length. GLIDE prompts vary 78-122 tokens, so random
    batches of 8 are 16% padding, all of it computed.
    """

    def __init__(self, n: int, batch_size: int, weights: Sequence[float] | None = None, seed: int = 0,
                 lengths: Sequence[int] | None = None, group: int = 1):
        if n == 0:
            raise ValueError("no training examples")
        if lengths is not None and len(lengths) != n:
            raise ValueError(f"lengths must have one entry per example ({n}), got {len(lengths)}")
        self.n, self.batch_size = n, batch_size
        w = None if weights is None else torch.tensor(np.array(weights, dtype=np.float64))
        if w is not None:
            if w.shape[0] != n or not torch.isfinite(w).all() or (w < 0).any() or w.sum() <= 0:
                raise ValueError("sampling weights must be finite, >= 0, one per example, and not all 0")
            if torch.allclose(w, w[0].expand_as(w)):
                w = None
        self.weights = w
        self.lengths = None if lengths is None or min(group, n // max(1, batch_size)) <= 1 else np.asarray(lengths, dtype=np.int64)
        # A pool larger than the data would put repeats of one example side by side in a batch.
        self.group = max(1, min(group, n // max(1, batch_size)))
        self.gen = torch.Generator().manual_seed(seed)
        self._perm: torch.Tensor | None = None
        self._pos = 0
        self._queue: list[list[int]] = []

    def _draw(self, size: int) -> list[int]:
        if self.weights is not None:
            return torch.multinomial(self.weights, size, replacement=True, generator=self.gen).tolist()
        out: list[int] = []
        while len(out) < size:
            if self._perm is None or self._pos >= self.n:
                self._perm, self._pos = torch.randperm(self.n, generator=self.gen), 0
            take = min(size - len(out), self.n - self._pos)
            out += self._perm[self._pos : self._pos + take].tolist()
            self._pos += take
        return out

    def next(self) -> list[int]:
        if self.lengths is None:
            return self._draw(self.batch_size)
        if not self._queue:
            pool = sorted(self._draw(self.batch_size * self.group), key=lambda i: self.lengths[i])
            batches = [pool[s : s + self.batch_size] for s in range(0, len(pool), self.batch_size)]
            order = torch.randperm(len(batches), generator=self.gen).tolist()
            self._queue = [batches[o] for o in order]
        return self._queue.pop()

    def state_dict(self) -> dict[str, Any]:
        return {"gen": self.gen.get_state(), "perm": self._perm, "pos": self._pos,
                "queue": [list(b) for b in self._queue]}

    def load_state_dict(self, state: dict[str, Any]) -> None:
        self.gen.set_state(state["gen"])
        self._perm, self._pos = state["perm"], state["pos"]
        self._queue = [list(b) for b in state.get("queue", [])]


def rng_state() -> dict[str, Any]:
    """Every RNG's state as tensors and plain Python values only (no numpy arrays), so a checkpoint can
    hold it in a file that loads with ``torch.load(weights_only=True)``, i.e. without unpickling code."""
    name, keys, pos, has_gauss, cached = np.random.get_state()
    state = {"torch": torch.get_rng_state(), "python": random.getstate(),
             "numpy": (name, torch.from_numpy(keys.astype(np.int64)), int(pos), int(has_gauss), float(cached))}
    if torch.cuda.is_available():
        state["cuda"] = torch.cuda.get_rng_state_all()
    return state


def set_rng_state(state: dict[str, Any]) -> None:
    torch.set_rng_state(state["torch"])
    random.setstate(state["python"])
    name, keys, *rest = state["numpy"]
    keys = keys.numpy() if isinstance(keys, torch.Tensor) else keys
    np.random.set_state((name, np.asarray(keys, dtype=np.uint32), *rest))
    if "cuda" in state and torch.cuda.is_available():
        torch.cuda.set_rng_state_all(state["cuda"])


@dataclass
class LoopResult:
    steps: int
    losses: list[float] = field(default_factory=list)  # one per step
    validations: list[dict[str, float]] = field(default_factory=list)
    tokens: int = 0
    seconds: float = 0.0
    bf16: bool = False  # ran under bf16 autocast

    @property
    def tokens_per_s(self) -> float:
        return self.tokens / self.seconds if self.seconds > 0 else 0.0


# step_fn(indices) -> (loss, tokens in the batch)
StepFn = Callable[[list[int]], tuple[torch.Tensor, int]]


def trainable(name: str, params: Sequence[nn.Parameter]) -> list[nn.Parameter]:
    """The parameters that require grad; a stage with none is an error."""
    params = [p for p in params if p.requires_grad]
    if not params:
        raise ValueError(f"{name}: nothing to train (no parameter requires grad)")
    return params


def make_optimizer(params: Sequence[nn.Parameter], cfg: LoopConfig) -> torch.optim.AdamW:
    """AdamW with weight decay on matrices only (biases, norms and 1-d parameters undecayed)."""
    decay = [p for p in params if p.ndim >= 2]
    no_decay = [p for p in params if p.ndim < 2]
    return torch.optim.AdamW(
        [{"params": decay, "weight_decay": cfg.weight_decay}, {"params": no_decay, "weight_decay": 0.0}], lr=cfg.lr
    )


def lr_multiplier(step: int, cfg: LoopConfig) -> float:
    """Linear warmup over ``warmup_steps``, then cosine decay to ``min_lr_ratio`` at ``max_steps``."""
    if step < cfg.warmup_steps:
        return (step + 1) / cfg.warmup_steps
    span = max(1, cfg.max_steps - cfg.warmup_steps)
    progress_ = min(1.0, (step - cfg.warmup_steps) / span)
    return cfg.min_lr_ratio + (1 - cfg.min_lr_ratio) * 0.5 * (1 + math.cos(math.pi * progress_))


def restore_loop(resume: dict[str, Any], name: str, opt, sched, sampler: BatchSampler, result: LoopResult) -> int:
    """Load a state that ``save`` received into the optimizer, scheduler, sampler, RNGs and ``result``;
    returns the step to continue from."""
    if resume.get("name") != name:
        raise ValueError(f"resume state belongs to stage {resume.get('name')!r}, not {name!r}")
    opt.load_state_dict(resume["optimizer"])
    sched.load_state_dict(resume["scheduler"])
    sampler.load_state_dict(resume["sampler"])
    set_rng_state(resume["rng"])
    result.losses = list(resume.get("losses", []))
    return int(resume["step"])


def loop_state(name: str, step: int, opt, sched, sampler: BatchSampler, result: LoopResult) -> dict[str, Any]:
    """Everything exact resume needs at ``step`` (what ``save`` receives)."""
    return {
        "name": name,
        "step": step,
        "optimizer": opt.state_dict(),
        "scheduler": sched.state_dict(),
        "sampler": sampler.state_dict(),
        "rng": rng_state(),
        "losses": list(result.losses),
    }


def optimizer_step(name: str, step: int, step_fn: StepFn, sampler: BatchSampler, params: Sequence[nn.Parameter],
                   opt, sched, cfg: LoopConfig, autocast, frozen: FrozenLinears | None, result: LoopResult) -> None:
    """One batch forward/backward, clipped AdamW step and scheduler step; loss, tokens and train time into ``result``."""
    t_step = time.perf_counter()
    if frozen is not None:
        frozen.low()  # no-op after the first step
    with autocast:
        loss, n_tokens = step_fn(sampler.next())
    if not torch.isfinite(loss):
        raise FloatingPointError(f"{name}: loss is {loss.item()} at step {step}; lower the learning rate")
    loss.backward()
    if cfg.grad_clip > 0:
        torch.nn.utils.clip_grad_norm_(params, cfg.grad_clip)
    opt.step()
    sched.step()
    opt.zero_grad(set_to_none=True)
    result.losses.append(float(loss.detach()))  # syncs the device, so the timing below is honest
    result.tokens += n_tokens
    result.seconds += time.perf_counter() - t_step  # training time only: validation/saving excluded


def validation_due(step: int, cfg: LoopConfig) -> bool:
    """Every ``eval_every`` steps before the last, and at the last when ``validate_at_end``."""
    at_end = step == cfg.max_steps and cfg.validate_at_end
    return bool((cfg.eval_every and step % cfg.eval_every == 0 and step < cfg.max_steps) or at_end)


def checkpoint_due(step: int, cfg: LoopConfig) -> bool:
    """Every ``ckpt_every`` steps before the last (the caller saves the finished stage itself)."""
    return bool(cfg.ckpt_every and step % cfg.ckpt_every == 0 and step < cfg.max_steps)


def train_loop(
    name: str,
    params: Sequence[nn.Parameter],
    step_fn: StepFn,
    sampler: BatchSampler,
    cfg: LoopConfig,
    *,
    device: torch.device,
    validate: Callable[[int], dict[str, float]] | None = None,
    save: Callable[[int, dict[str, Any]], Any] | None = None,
    resume: dict[str, Any] | None = None,
    progress: bool = True,
    model: nn.Module | None = None,
) -> LoopResult:
    """Run ``cfg.max_steps`` optimizer steps (continuing from ``resume``, a state that ``save`` received).

    ``model``: the module the steps run, so that under bf16 its frozen linears are cast once per
    stage (:class:`FrozenLinears`) rather than on every forward."""
    params = trainable(name, params)
    opt = make_optimizer(params, cfg)
    sched = torch.optim.lr_scheduler.LambdaLR(opt, lambda step: lr_multiplier(step, cfg))
    result = LoopResult(steps=0)
    step = 0 if resume is None else restore_loop(resume, name, opt, sched, sampler, result)

    result.bf16 = use_bf16(cfg.bf16, device)
    autocast = torch.autocast(device_type=device.type, dtype=torch.bfloat16, enabled=result.bf16)
    frozen = FrozenLinears(model, torch.bfloat16) if result.bf16 and model is not None else None
    bar = tqdm(total=cfg.max_steps, initial=step, desc=name, disable=not progress, dynamic_ncols=True)
    try:
        while step < cfg.max_steps:
            optimizer_step(name, step, step_fn, sampler, params, opt, sched, cfg, autocast, frozen, result)
            step += 1
            bar.update(1)
            if step % max(1, cfg.log_every) == 0 or step == cfg.max_steps:
                bar.set_postfix(loss=f"{np.mean(result.losses[-cfg.log_every:]):.4f}", tok_s=f"{result.tokens_per_s:.0f}")
            if frozen is not None and (validate is not None or save is not None):
                frozen.original()  # validation and checkpoints see the fp32 weights
            if validate is not None and validation_due(step, cfg):
                metrics = {"step": step, **validate(step)}
                result.validations.append(metrics)
                bar.write(f"[{name}] step {step}: " + ", ".join(f"{k}={v:.4g}" for k, v in metrics.items() if k != "step"))
            if save is not None and checkpoint_due(step, cfg):
                save(step, loop_state(name, step, opt, sched, sampler, result))
    finally:
        if frozen is not None:
            frozen.original()  # even when a step fails: never leave the model in bf16
    bar.close()
    result.steps = step
    return result

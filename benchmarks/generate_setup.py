"""What `glide bench generate` decodes with: one merged GLIDE export every engine loads, the engines
behind one call shape, the model's FLOPs per request, the device's measured matmul peak, and the
busy neighbour process of the contended run."""

from __future__ import annotations

import os
import platform
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path

LEVELS, CODEBOOK = 4, 256  # the paper's SID shape: 4 tokens of 256 codes
QUANTIZER = "bench-generate-q"

Generate = Callable[[Sequence], list]  # requests -> candidates per request


@dataclass
class Engines:
    """The engines of one run on one export: ``generate`` per name, what they decode, and ``close``."""

    generate: dict[str, Generate]
    glm: object  # the GlideLM ours and hf decode with (prompts, config)
    trie: object
    closers: list[Callable[[], None]]

    def close(self) -> None:
        for close in self.closers:
            try:
                close()
            except Exception:  # noqa: BLE001 - a failed engine stop must not hide the results
                pass


def build_export(model_name: str, data_dir: Path, folder: Path, variant: str = "sid_text",
                 serving_dtype: str = "float32") -> Path:
    """A merged GLIDE export of ``model_name`` (tiny | smollm2 | HF folder) with 4 x 256 SID tokens
    (untrained rows: speed does not depend on training) in ``folder``/export, served in ``serving_dtype``."""
    from glide_model.llm.backbone import resolve_backbone
    from glide_model.llm.checkpoint import Manifest, export_merged, save_checkpoint
    from glide_model.llm.model import GlideLM
    from glide_model.llm.prompt import PromptBuilder, PromptVariant
    from glide_model.llm.soft_prompt import SoftPromptProjector
    from glide_model.llm.vocab import extend_vocab

    model, tok, base = resolve_backbone(model_name, data_dir, device="cpu")
    if base is None:  # the tiny model lives in memory only: the checkpoint needs a base folder
        base = folder / "base"
        model.save_pretrained(base)
        tok.save_pretrained(base)
    vocab = extend_vocab(model, tok, LEVELS, CODEBOOK)
    kind = PromptVariant.parse(variant)
    projector = SoftPromptProjector(64, model.config.hidden_size, embed_rms=0.02) if kind.soft_prompt else None
    glm = GlideLM(model, tok, vocab, PromptBuilder(tok, vocab, kind), projector)
    manifest = Manifest(base_model=str(base), variant=variant, levels=LEVELS, codebook_size=CODEBOOK,
                        quantizer_version=QUANTIZER, catalog_version="bench", serving_dtype=serving_dtype)
    save_checkpoint(folder / "ckpt", glm, manifest)
    return export_merged(folder / "ckpt", folder / "export")


def vllm_available() -> bool:
    from glide.config import ConfigError
    from glide_model.llm.vllm_process import vllm_python

    try:
        vllm_python()
    except ConfigError:
        return False
    return True


def open_engines(export: Path, codes, *, beams: int, batch: int, with_hf: bool, with_vllm: bool,
                 device: str = "auto", with_bf16: bool = False) -> Engines:
    """ours_b1 / ours_b16 (our single-prefill SID engine, float32), ours_bf16_b1 (the same engine on
    the model held in bfloat16, a serving_dtype option), hf (`transformers.generate` + the trie
    LogitsProcessor, one request at a time) and vllm (vLLM's beam_search in its own venv), all on
    ``export`` and the same trie."""
    from glide_model.llm.decoding import HFBackend
    from glide_model.llm.serving_model import load_for_serving
    from glide_model.sids.trie import SidTrie

    trie = SidTrie(codes, CODEBOOK)
    glm, _ = load_for_serving(export, device=device, dtype="float32")
    ours = HFBackend(glm, trie, num_beams=beams, batch_size=batch, engine="sid")
    gens: dict[str, Generate] = {"ours_b1": ours.generate, f"ours_b{batch}": ours.generate}
    if with_bf16:
        half, _ = load_for_serving(export, device=device, dtype="bfloat16")
        gens["ours_bf16_b1"] = HFBackend(half, trie, num_beams=beams, batch_size=1, engine="sid").generate
    closers: list[Callable[[], None]] = []
    if with_hf:
        gens["hf"] = HFBackend(glm, trie, num_beams=beams, batch_size=1, engine="hf").generate
    if with_vllm:
        from glide_model.llm.vllm_process import VLLMProcessBackend

        # float32 like ours, so the two rank on the same numbers (auto picks bf16 on some CPUs).
        vllm = VLLMProcessBackend(export, trie, num_beams=beams, dtype="float32")
        gens["vllm"] = vllm.generate
        closers.append(vllm.close)
    return Engines(gens, glm, trie, closers)


def flops_per_request(config, prompt_tokens: float, beams: int, levels: int = LEVELS) -> float:
    """Model FLOPs one request needs: the prompt's prefill (one LM-head row) and ``levels - 1`` steps
    of ``beams`` tokens (an LM-head row each); linear layers 2 x weights per token, attention
    4 x hidden per layer per key seen. Engine-independent: recomputation an engine does is its cost."""
    h, layers, inter, vocab = config.hidden_size, config.num_hidden_layers, config.intermediate_size, config.vocab_size
    heads = config.num_attention_heads
    kv = getattr(config, "num_key_value_heads", heads) * (getattr(config, "head_dim", None) or h // heads)
    linear = 2 * layers * (2 * h * h + 2 * h * kv + 3 * h * inter)
    head = 2 * h * vocab
    t = float(prompt_tokens)
    prefill = t * linear + layers * 4 * h * t * (t + 1) / 2 + head
    decode = sum(beams * (linear + layers * 4 * h * (t + depth) + head) for depth in range(1, levels))
    return prefill + decode


def matmul_peak_flops(n: int = 1024, seconds: float = 1.0) -> float:
    """Best measured fp32 matmul FLOP/s at the current torch threads (the roofline decoding is held to)."""
    import torch

    a, b = torch.randn(n, n), torch.randn(n, n)
    a @ b  # warm-up: thread pool, allocator
    best, deadline = 0.0, time.perf_counter() + seconds
    while time.perf_counter() < deadline:
        t0 = time.perf_counter()
        for _ in range(4):
            a @ b
        best = max(best, 4 * 2 * n**3 / (time.perf_counter() - t0))
    return best


def device_name(device: str = "auto") -> str:
    """The device in words: the GPU's name, or the CPU's model and the cores this process may use."""
    import torch

    from glide_model.llm.backbone import pick_device
    from glide_model.llm.threads import usable_cores

    dev = pick_device(device)
    if dev.type == "cuda":
        return torch.cuda.get_device_name(dev)
    model = platform.processor() or "cpu"
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                model = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return f"CPU {model}, {usable_cores()} cores"


# The neighbour of the contended run: another job's training, i.e. torch matmuls on every core.
_BUSY = "import sys, torch; torch.set_num_threads(int(sys.argv[1])); a = torch.randn(768, 768)\nwhile True: a @ a"


class Contender:
    """A busy process on the same cores for the ``with`` block (its own session; only it is killed)."""

    def __init__(self, threads: int):
        self.threads = threads
        self.proc: subprocess.Popen | None = None

    def __enter__(self) -> Contender:
        self.proc = subprocess.Popen([sys.executable, "-c", _BUSY, str(self.threads)], stdout=subprocess.DEVNULL,
                                     stderr=subprocess.DEVNULL, start_new_session=True)
        time.sleep(3)  # torch imported and spinning before the first timing
        if self.proc.poll() is not None:
            raise RuntimeError("the contending process exited at start")
        return self

    def __exit__(self, *exc) -> None:
        if self.proc is not None and self.proc.poll() is None:
            os.killpg(self.proc.pid, signal.SIGKILL)
            self.proc.wait()


@contextmanager
def progress_reporter(prefix: str) -> Iterator[Callable[[str], None]]:
    """A ``progress(msg)`` callback: a live status line on a terminal, else timestamped lines on
    stderr (a run piped to a file still shows where it is)."""
    from rich.console import Console

    console = Console(stderr=True)
    if console.is_terminal:
        with console.status("starting...") as status:
            yield status.update
        return
    t0 = time.perf_counter()

    def line(msg: str) -> None:
        print(f"[{prefix} {time.perf_counter() - t0:6.1f} s] {msg}", file=sys.stderr, flush=True)

    yield line


def table_console():
    """Console for the result tables on stdout: the terminal's width, or 160 columns in a file or
    pipe (rich's 80 would wrap them, and the tables go into RESULTS.md)."""
    from rich.console import Console

    console = Console()
    return console if console.is_terminal else Console(width=160)

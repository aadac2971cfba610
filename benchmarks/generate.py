"""`glide bench generate`: beam-30 trie-constrained SID generation, our engine against
`transformers.generate` and vLLM's `beam_search`, on the same model and the same GLIDE prompts.

One merged export (benchmarks/generate_setup.py) is decoded by every engine in one run:

- ``ours`` at batch 1 and batch 16 (HFBackend's single-prefill SID engine, what `glide serve` runs),
- ``ours_bf16_b1``: the same engine at batch 1 on the model held in bfloat16 (an export's
  ``serving_dtype`` option), its agreement measured against ours in float32,
- ``hf``: `model.generate(num_beams=30)` with the trie LogitsProcessor, one request at a time,
- ``vllm``: vLLM's built-in `beam_search` with the trie logits processor, in infra/vllm/.venv through
  VLLMProcessBackend (when that venv exists; one request at a time: batching does not help it here).

The N requests are random users with 20-episode histories over a random 20k-SID catalog, encoded by
the export's own prompt builder (``sid_text``: token prompts, which vLLM's beam_search accepts).
Engines take turns request by request (the batch passes spread over the run), so a change of load
on the shared machine lands on all of them. Then, unless ``--no-contended``, a busy process (torch
matmuls on every core, like a neighbour's training job) starts and ours and vLLM are timed again:
with the worker's thread setting and with the other choice (issue 18 item 12: oversubscription).

Rates are requests per second (``*_rps``); ``speedup`` = ours_rps / hf_rps and ``speedup_vllm`` =
ours_rps / vllm_rps, ``ours_rps`` being the batch-16 rate; ``same_top1_fraction`` /
``same_set_fraction``: requests where ours and hf return the same best SID / the same 30 SIDs.
``flop_utilization``: model FLOPs per request x ours_rps over the measured fp32 matmul peak.
"""

from __future__ import annotations

import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import click
import numpy as np

from benchmarks import generate_setup as setup


@dataclass
class GenerateConfig:
    model: str = "smollm2"
    requests: int = 16
    batch: int = 16
    beams: int = 30
    catalog: int = 20_000
    threads: int | None = None  # None: the worker's setting (GLIDE_SERVE_THREADS, else usable cores - 1)
    vllm: str = "auto"  # auto (when infra/vllm/.venv exists) | on | off
    hf: bool = True
    bf16: bool = True  # also ours at batch 1 on the model held in bfloat16 (Manifest.serving_dtype)
    contended: bool = True
    contended_requests: int = 4
    single_requests: int | None = None  # requests the one-at-a-time engines decode (None: all; hf is slow)
    variant: str = "sid_text"
    device: str = "auto"
    data_dir: Path = Path(".glide")


@dataclass
class GenerateResult:
    model: str
    device: str
    ours_rps: float  # batch `batch`
    hf_rps: float | None
    vllm_rps: float | None
    speedup: float | None  # ours_rps / hf_rps
    speedup_vllm: float | None  # ours_rps / vllm_rps
    same_top1_fraction: float | None  # ours vs hf
    same_set_fraction: float | None
    flop_utilization: float
    ours_batch1_rps: float
    bf16_batch1_rps: float | None  # ours at batch 1, model in bfloat16
    speedup_bf16_batch1: float | None  # bf16_batch1_rps / ours_batch1_rps (agreement: agreement["ours_bf16_b1"])
    speedup_batch1: float | None  # ours at batch 1 / hf
    speedup_vllm_batch1: float | None
    agreement: dict[str, dict[str, float]]  # other engine -> same_top1 / same_set against ours at batch 1
    rps: dict[str, float]  # every engine of the quiet run
    contended: dict | None
    requests: int
    single_requests: int  # of them, decoded by the one-at-a-time engines (their rates and agreement)
    batch: int
    beams: int
    catalog_sids: int
    prompt_tokens: float
    threads: int
    flops_per_request: float
    matmul_peak_gflops: float
    vllm_path: str | None
    load_avg_1m: float
    seconds: float
    notes: list[str] = field(default_factory=list)


def _agreement(ours: list, other: list) -> dict[str, float]:
    """Share of requests where both return the same best SID, and the same set of SIDs."""
    pairs = [(a, b) for a, b in zip(ours, other) if a is not None and b is not None]
    top1 = [bool(a) and bool(b) and a[0][0] == b[0][0] for a, b in pairs]
    same = [{c for c, _ in a} == {c for c, _ in b} for a, b in pairs]
    return {"same_top1": round(float(np.mean(top1)), 4), "same_set": round(float(np.mean(same)), 4)}


def time_engines(gens: dict, reqs: list, batch: int, progress, passes: int = 2,
                 singles_on: int | None = None) -> tuple[dict[str, float], dict[str, list]]:
    """Requests/s per engine and each engine's candidates per request (None where not run):
    single-request engines take turns on each of the first ``singles_on`` requests (default all; the
    order rotating), the batch engine's passes over all requests are spread between them."""
    batched = f"ours_b{batch}"
    singles = [name for name in gens if name != batched]
    seconds = {name: 0.0 for name in gens}
    counts = {name: 0 for name in gens}
    outputs: dict[str, list] = {name: [None] * len(reqs) for name in gens}
    every = max(1, len(reqs) // passes)
    singles_on = len(reqs) if singles_on is None else min(singles_on, len(reqs))

    def run_batched() -> None:
        for start in range(0, len(reqs), batch):
            chunk = reqs[start:start + batch]
            t0 = time.perf_counter()
            got = gens[batched](chunk)
            seconds[batched] += time.perf_counter() - t0
            counts[batched] += len(chunk)
            outputs[batched][start:start + len(chunk)] = got

    for i, req in enumerate(reqs):
        if batched in gens and i % every == 0:
            progress(f"batch of {batch} ({counts[batched] // len(reqs) + 1}/{passes})")
            run_batched()
        if not singles or i >= singles_on:
            continue
        progress(f"request {i + 1}/{singles_on}: {', '.join(singles)}")
        for name in singles[i % len(singles):] + singles[:i % len(singles)]:
            t0 = time.perf_counter()
            outputs[name][i] = gens[name]([req])[0]
            seconds[name] += time.perf_counter() - t0
            counts[name] += 1
    return {n: counts[n] / seconds[n] for n in gens if counts[n]}, outputs


def _warm(gens: dict, reqs: list, batch: int, progress) -> None:
    """One untimed call per engine and shape (allocator growth, kernel choice, vLLM compilation)."""
    for name, gen in gens.items():
        progress(f"warming up {name}")
        gen(reqs[:batch] if name == f"ours_b{batch}" else reqs[:1])


def _contended(engines, reqs: list, cfg: GenerateConfig, threads: int, progress) -> dict:
    """Ours and vLLM again while a busy process holds every core: at ``threads``, then ours at the
    other choice (every usable core if ``threads`` is fewer, else 1) as ``*_alt``."""
    from glide_model.llm.threads import set_intra_op_threads, usable_cores

    batched = f"ours_b{cfg.batch}"
    few = reqs[: max(1, cfg.contended_requests)]
    out: dict = {"threads": threads, "neighbour": f"torch matmuls on {usable_cores()} threads"}
    with setup.Contender(usable_cores()):
        gens = {n: g for n, g in engines.generate.items() if n in ("ours_b1", "vllm")}
        rps, _ = time_engines(gens, few, cfg.batch, lambda m: progress(f"contended: {m}"))
        brps, _ = time_engines({batched: engines.generate[batched]}, reqs[: cfg.batch], cfg.batch,
                               lambda m: progress(f"contended: {m}"), passes=1)
        out.update(ours_rps=brps[batched], ours_batch1_rps=rps["ours_b1"], vllm_rps=rps.get("vllm"))
        alt = usable_cores() if threads < usable_cores() else 1
        if alt != threads:
            set_intra_op_threads(alt)
            label = lambda m: progress(f"contended, {alt} threads: {m}")  # noqa: E731
            one, _ = time_engines({"ours_b1": engines.generate["ours_b1"]}, few, cfg.batch, label)
            bone, _ = time_engines({batched: engines.generate[batched]}, reqs[: cfg.batch], cfg.batch, label, passes=1)
            set_intra_op_threads(threads)
            out.update(alt_threads=alt, ours_rps_alt=bone[batched], ours_batch1_rps_alt=one["ours_b1"])
        out["load_avg_1m"] = os.getloadavg()[0]
    if out.get("vllm_rps"):
        out["speedup_vllm"] = out["ours_rps"] / out["vllm_rps"]
    return _rounded(out)


def _rounded(d: dict) -> dict:
    return {k: (round(v, 4) if isinstance(v, float) else v) for k, v in d.items()}


def _ratio(a: float | None, b: float | None) -> float | None:
    return round(a / b, 2) if a and b else None


def run_generate_bench(cfg: GenerateConfig, progress=lambda msg: None) -> GenerateResult:
    from benchmarks.llm import _random_requests
    from glide_model.llm.threads import set_intra_op_threads
    from glide_model.serving.contract import requests_from_examples
    from streams.serving import serve_threads

    t_start = time.perf_counter()
    threads = set_intra_op_threads(serve_threads(cfg.threads))  # what `glide serve` would run with
    with_vllm = cfg.vllm == "on" or (cfg.vllm == "auto" and setup.vllm_available())
    notes = [] if with_vllm or cfg.vllm == "off" else ["vLLM skipped: no infra/vllm/.venv (make vllm-env)"]
    tmp = Path(tempfile.mkdtemp(prefix="glide-bench-generate-"))
    try:
        progress(f"building a merged {cfg.model} export")
        export = setup.build_export(cfg.model, cfg.data_dir, tmp, cfg.variant)
        codes, examples = _random_requests(cfg.catalog, cfg.requests)
        reqs = requests_from_examples(examples)
        progress("loading the engines" + (" (vLLM starts in tens of seconds)" if with_vllm else ""))
        engines = setup.open_engines(export, codes, beams=cfg.beams, batch=cfg.batch, with_hf=cfg.hf,
                                     with_vllm=with_vllm, device=cfg.device, with_bf16=cfg.bf16)
        try:
            glm = engines.glm
            prompt_tokens = float(np.mean([len(e.input_ids) for e in glm.prompts.encode_rec(
                [r.as_row() for r in reqs], with_target=False)]))
            _warm(engines.generate, reqs, cfg.batch, progress)
            rps, outputs = time_engines(engines.generate, reqs, cfg.batch, progress, singles_on=cfg.single_requests)
            vllm_path = None
            if with_vllm:
                vllm_path = "beam_search" if cfg.variant != "glide" else "beam loop (soft prompts)"
            contended = _contended(engines, reqs, cfg, threads, progress) if cfg.contended else None
            progress("measuring the matmul peak")
            peak = setup.matmul_peak_flops()
            flops = setup.flops_per_request(glm.model.config, prompt_tokens, cfg.beams)
        finally:
            engines.close()
    finally:
        shutil.rmtree(tmp, ignore_errors=True)
    batched = f"ours_b{cfg.batch}"
    agreement = {name: _agreement(outputs["ours_b1"], outputs[name]) for name in outputs if name != "ours_b1"}
    ours, hf, vllm = rps[batched], rps.get("hf"), rps.get("vllm")
    return GenerateResult(
        model=cfg.model, device=setup.device_name(cfg.device), ours_rps=round(ours, 4),
        hf_rps=round(hf, 4) if hf else None, vllm_rps=round(vllm, 4) if vllm else None,
        speedup=_ratio(ours, hf), speedup_vllm=_ratio(ours, vllm),
        same_top1_fraction=agreement["hf"]["same_top1"] if "hf" in agreement else None,
        same_set_fraction=agreement["hf"]["same_set"] if "hf" in agreement else None,
        flop_utilization=round(flops * ours / peak, 4),
        ours_batch1_rps=round(rps["ours_b1"], 4), bf16_batch1_rps=round(rps["ours_bf16_b1"], 4) if "ours_bf16_b1" in rps
        else None, speedup_bf16_batch1=_ratio(rps.get("ours_bf16_b1"), rps["ours_b1"]),
        speedup_batch1=_ratio(rps["ours_b1"], hf),
        speedup_vllm_batch1=_ratio(rps["ours_b1"], vllm), agreement=agreement,
        rps={k: round(v, 4) for k, v in rps.items()}, contended=contended, requests=len(reqs),
        single_requests=min(cfg.single_requests or len(reqs), len(reqs)), batch=cfg.batch,
        beams=cfg.beams, catalog_sids=len(codes), prompt_tokens=round(prompt_tokens, 1), threads=threads,
        flops_per_request=flops, matmul_peak_gflops=round(peak / 1e9, 2), vllm_path=vllm_path,
        load_avg_1m=os.getloadavg()[0], seconds=round(time.perf_counter() - t_start, 1), notes=notes,
    )


def _x(ratio: float | None) -> str:
    return f"{ratio:.2f}x" if ratio is not None else "-"


def print_table(r: GenerateResult) -> None:
    """Requests/s and ms/request per engine, quiet and contended side by side (stdout)."""
    from rich.table import Table

    table = Table(title=f"glide bench generate: {r.model} on {r.device}, beam {r.beams}, {r.requests} requests, "
                        f"{r.prompt_tokens:.0f}-token prompts, {r.catalog_sids:,} SIDs, {r.threads} threads")
    for col in ("engine", "req/s", "ms/req", f"ours b{r.batch} vs it", "same top-1", "same top-30", "contended req/s"):
        table.add_column(col, justify="left" if col == "engine" else "right")
    c = r.contended or {}
    contended = {"ours_b1": c.get("ours_batch1_rps"), f"ours_b{r.batch}": c.get("ours_rps"), "vllm": c.get("vllm_rps")}
    for name, rate in r.rps.items():
        agree = r.agreement.get(name, {})
        table.add_row(name, f"{rate:.3f}", f"{1000 / rate:,.0f}", f"{r.ours_rps / rate:.2f}x",
                      f"{agree['same_top1']:.0%}" if agree else "-", f"{agree['same_set']:.0%}" if agree else "-",
                      f"{contended[name]:.3f}" if contended.get(name) else "-")
    if c.get("ours_rps_alt"):
        for name, key in (("ours_b1", "ours_batch1_rps_alt"), (f"ours_b{r.batch}", "ours_rps_alt")):
            table.add_row(f"{name}, {c['alt_threads']} threads", "-", "-", "-", "-", "-", f"{c[key]:.3f}")
    console = setup.table_console()
    console.print(table)
    console.print(f"speedup over hf {_x(r.speedup)}, over vLLM {_x(r.speedup_vllm)}; FLOP utilization "
                  f"{r.flop_utilization:.1%} of {r.matmul_peak_gflops} GFLOP/s; load {r.load_avg_1m:.1f}"
                  + (f"; contended load {c['load_avg_1m']:.1f}" if c else ""))
    for note in r.notes:
        console.print(note)


@click.command("generate")
@click.option("--model", "model_name", default="smollm2", show_default=True, help="tiny | smollm2 | HF folder")
@click.option("--quick", is_flag=True, help="16 requests (one batch; one at a time: the first 6), 3 contended.")
@click.option("--json", "as_json", is_flag=True, help="Print the result as one JSON object on the last stdout line.")
@click.option("--requests", type=click.IntRange(min=1), default=None, help="Requests (default 16 quick, 32 full).")
@click.option("--single-requests", type=click.IntRange(min=1), default=None,
              help="Requests the one-at-a-time engines (ours_b1, hf, vllm) decode (default 6 quick, all).")
@click.option("--batch", type=click.IntRange(min=2), default=16, show_default=True)
@click.option("--beams", type=click.IntRange(min=1), default=30, show_default=True)
@click.option("--catalog", type=click.IntRange(min=1), default=20_000, show_default=True, help="Catalog SIDs.")
@click.option("--threads", type=click.IntRange(min=1), default=None,
              help="Intra-op threads (default: the worker's, GLIDE_SERVE_THREADS or the usable cores - 1).")
@click.option("--vllm", type=click.Choice(["auto", "on", "off"]), default="auto", show_default=True)
@click.option("--hf/--no-hf", default=True, show_default=True, help="Time transformers.generate.")
@click.option("--bf16/--no-bf16", default=True, show_default=True,
              help="Also time ours at batch 1 on the model in bfloat16 (agreement against float32).")
@click.option("--contended/--no-contended", default=True, show_default=True,
              help="Also time ours and vLLM beside a busy process on the same cores.")
@click.option("--variant", type=click.Choice(["sid_text", "sid_only", "glide"]), default="sid_text", show_default=True)
@click.option("--device", default="auto", show_default=True)
@click.option("--data-dir", type=click.Path(path_type=Path), default=Path(".glide"), show_default=True,
              help="Where the SmolLM2 folder is cached.")
def generate(model_name, quick, as_json, requests, single_requests, batch, beams, catalog, threads, vllm, hf,
             bf16, contended, variant, device, data_dir) -> None:
    """Beam-30 trie-constrained generation: ours vs transformers.generate vs vLLM beam_search."""
    cfg = GenerateConfig(model=model_name, requests=requests or (16 if quick else 32), batch=batch, beams=beams,
                         catalog=catalog, threads=threads, vllm=vllm, hf=hf, bf16=bf16, contended=contended,
                         contended_requests=3 if quick else 8, single_requests=single_requests or (6 if quick else None),
                         variant=variant, device=device, data_dir=data_dir)
    with setup.progress_reporter("bench generate") as progress:
        result = run_generate_bench(cfg, progress=progress)
    print_table(result)
    if as_json:
        click.echo(json.dumps(asdict(result)))

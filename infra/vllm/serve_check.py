"""Manual check of the vLLM backend: load a merged GLIDE export + a catalog trie, print candidates.

Run with the vLLM venv (see README.md):

    HF_HUB_OFFLINE=1 VLLM_TARGET_DEVICE=cpu VLLM_CPU_KVCACHE_SPACE=1 VLLM_HOST_IP=127.0.0.1 \\
        infra/vllm/.venv/bin/python infra/vllm/serve_check.py EXPORT_DIR codes.npy [--requests r.json] \\
        [--dtype float32] [--method auto --method loop] [--hf] [--timing 10]

codes.npy: (N, M) int array of the catalog's SID codes. r.json: a list of requests with the
fields of RecRequest (history_codes, mode, locale, affinity_topics, cf_embedding, user_id, and
optionally allowed: the list of SIDs the request may produce);
without it, a few synthetic requests are drawn from the catalog. ``--plan plan.json`` runs
several jobs in one process (the tests do: one vLLM import for all), each a dict with keys
export, trie, requests, out and optionally beams, methods, dtype, timing, hf,
add_sids (SIDs added to the trie after the first runs: the live cold-start path).
"""

from __future__ import annotations

import argparse
import json
import os
import statistics
import sys
import time
from pathlib import Path

for _k, _v in {
    "HF_HUB_OFFLINE": "1",
    "VLLM_TARGET_DEVICE": "cpu",
    "VLLM_CPU_KVCACHE_SPACE": "1",
    "VLLM_HOST_IP": "127.0.0.1",
}.items():
    os.environ.setdefault(_k, _v)


def _requests(path: str | None, codes, d_cf: int | None, n: int = 4, codebook_size: int = 256) -> list:
    import numpy as np

    from glide_model.serving.contract import RecRequest
    from glide_model.sids.trie import SidTrie

    if path:
        rows = json.loads(Path(path).read_text())
    else:
        rng = np.random.default_rng(0)
        rows = [
            {
                "history_codes": [codes[j].tolist() for j in rng.integers(0, len(codes), size=3)],
                "mode": ("familiar", "unfamiliar")[i % 2],
                "locale": "en-US",
                "affinity_topics": ["comedy"],
                "cf_embedding": rng.normal(size=d_cf).tolist() if d_cf else None,
                "user_id": f"synthetic-{i}",
            }
            for i in range(n)
        ]
    out = []
    for r in rows:
        cf = r.get("cf_embedding")
        out.append(
            RecRequest(
                history_codes=[tuple(c) for c in r.get("history_codes") or ()],
                mode=r.get("mode"),
                locale=r.get("locale"),
                affinity_topics=list(r.get("affinity_topics") or ()),
                cf_embedding=None if cf is None else np.asarray(cf, dtype=np.float32),
                user_id=r.get("user_id"),
                # eligibility-aware decoding: the SIDs this request may produce
                allowed=SidTrie(np.asarray(r["allowed"]), codebook_size) if r.get("allowed") else None,
            )
        )
    return out


def _latency(backends: dict, requests, repeats: int) -> dict[str, float]:
    """Per-request and batch latency of each backend, measured interleaved (same machine load)."""
    for be in backends.values():
        be.generate(requests[:1])  # warm-up
    single: dict[str, list[float]] = {name: [] for name in backends}
    batches: dict[str, list[float]] = {name: [] for name in backends}
    for _ in range(repeats):
        for r in requests:
            for name, be in backends.items():
                t0 = time.perf_counter()
                be.generate([r])
                single[name].append(time.perf_counter() - t0)
    for _ in range(max(3, repeats)):
        for name, be in backends.items():
            t0 = time.perf_counter()
            be.generate(requests)
            batches[name].append(time.perf_counter() - t0)
    out = {"batch_size": float(len(requests)), "samples": float(repeats * len(requests))}
    for name in backends:
        pre = "" if name == "vllm" else f"{name}_"
        out[f"{pre}per_request_median_s"] = statistics.median(single[name])
        out[f"{pre}per_request_mean_s"] = statistics.fmean(single[name])
        out[f"{pre}batch_median_s"] = statistics.median(batches[name])
    return out


def _agreement(results, reference) -> dict[str, float]:
    """Worst top-10 overlap and largest score gap on shared SIDs, over requests."""
    overlap, gap = 10, 0.0
    for got, want in zip(results, reference):
        overlap = min(overlap, len({tuple(c) for c, _ in got[:10]} & {c for c, _ in want[:10]}))
        ref = dict(want)
        gap = max([gap] + [abs(s - ref[tuple(c)]) for c, s in got if tuple(c) in ref])
    return {"min_top10_overlap": float(overlap), "max_score_gap": gap}


def _show(title: str, backend, run: dict, requests, show: int) -> None:
    print(f"== {title}: {backend.last_run['path']} path, {run['seconds']:.2f} s for {len(requests)} requests")
    for req, cands in zip(requests, run["results"]):
        top = ", ".join(f"{tuple(c)}:{s:.3f}" for c, s in cands[:show])
        print(f"  {req.user_id}: {len(cands)} SIDs; {top}")
    for key in ("vs_hf", "timing"):
        if key in run:
            print(f"  {key}:", json.dumps({k: round(v, 6) for k, v in run[key].items()}))


def run_job(job: dict) -> dict:
    import numpy as np

    from glide_model.llm.checkpoint import Manifest
    from glide_model.llm.vllm_backend import VLLMBackend
    from glide_model.sids.trie import SidTrie

    manifest = Manifest.read(job["export"])
    codes = np.load(job["trie"])
    trie = SidTrie(codes, manifest.codebook_size)
    beams = int(job.get("beams", 30))
    t0 = time.perf_counter()
    backend = VLLMBackend(job["export"], trie, num_beams=beams, dtype=job.get("dtype", "auto"))
    start_s = time.perf_counter() - t0
    d_cf = (manifest.projector or {}).get("d_cf")
    requests = _requests(job.get("requests"), codes, d_cf, codebook_size=manifest.codebook_size)
    report: dict = {"export": str(job["export"]), "variant": manifest.variant, "beams": beams, "engine_start_s": start_s, "runs": {}}
    hf = hf_results = None
    if job.get("hf"):
        # HFBackend in this venv, on the same export: agreement and latency under the same load
        from glide_model.llm.checkpoint import load_checkpoint
        from glide_model.llm.decoding import HFBackend

        hf = HFBackend(load_checkpoint(job["export"])[0], trie, num_beams=beams)
        hf_results = hf.generate(requests)
    try:
        for method in job.get("methods", ["auto"]):
            backend.method = method
            t0 = time.perf_counter()
            results = backend.generate(requests)
            run = {
                "seconds": time.perf_counter() - t0,
                "path": backend.last_run["path"],
                "results": [[[list(c), s] for c, s in cands] for cands in results],
            }
            if hf_results is not None:
                run["vs_hf"] = _agreement(results, hf_results)
            if job.get("timing"):
                backends = {"vllm": backend, **({"hf": hf} if hf is not None else {})}
                run["timing"] = _latency(backends, requests, int(job["timing"]))
            report["runs"][method] = run
            _show(f"{manifest.variant} via {method}", backend, run, requests, int(job.get("show", 5)))
        if job.get("add_sids"):
            # live cold start: new catalog SIDs after the engine started (the engine's trie is a snapshot)
            for codes_ in job["add_sids"]:
                trie.add(codes_)
            backend.method = "auto"
            t0 = time.perf_counter()
            results = backend.generate(requests)
            run = {
                "seconds": time.perf_counter() - t0,
                "path": backend.last_run["path"],
                "results": [[[list(c), s] for c, s in cands] for cands in results],
            }
            report["runs"]["auto+added"] = run
            _show(f"{manifest.variant} after trie.add", backend, run, requests, int(job.get("show", 5)))
    finally:
        backend.close()
    if job.get("out"):
        Path(job["out"]).write_text(json.dumps(report))
    return report


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("export", nargs="?", help="merged export folder (export_merged)")
    ap.add_argument("trie", nargs="?", help=".npy file of the catalog's (N, M) SID codes")
    ap.add_argument("--requests", help="JSON list of requests (default: synthetic)")
    ap.add_argument("--beams", type=int, default=30)
    ap.add_argument("--method", action="append", choices=["auto", "loop"], help="repeatable; default auto")
    ap.add_argument("--dtype", default="auto", help="vLLM dtype (float32 to compare with HF on CPU)")
    ap.add_argument("--timing", type=int, default=0, help="repeats of the per-request latency measurement")
    ap.add_argument("--hf", action="store_true", help="also run HFBackend here: agreement + interleaved timing")
    ap.add_argument("--out", help="write the results as JSON here")
    ap.add_argument("--plan", help="JSON list of jobs (keys as above) run in one process")
    args = ap.parse_args(argv)
    if args.plan:
        jobs = json.loads(Path(args.plan).read_text())
    elif args.export and args.trie:
        jobs = [
            {
                "export": args.export,
                "trie": args.trie,
                "requests": args.requests,
                "beams": args.beams,
                "methods": args.method or ["auto"],
                "dtype": args.dtype,
                "timing": args.timing,
                "hf": args.hf,
                "out": args.out,
            }
        ]
    else:
        ap.error("give EXPORT TRIE or --plan")
    for job in jobs:
        run_job(job)
    return 0


if __name__ == "__main__":  # the vLLM engine spawns processes that re-import this file
    sys.exit(main())

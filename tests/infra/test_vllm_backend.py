"""VLLMBackend (run in infra/vllm/.venv through serve_check.py) against HFBackend on the same exports.

One subprocess, one vLLM import and two engine starts (a sid_text export for the built-in
beam_search path, a glide export for the soft-prompt beam loop), ~1.5-2.5 min on 2 cores.
"""

from __future__ import annotations

import importlib.util
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch

from glide_model.llm.backbone import tiny_llama
from glide_model.llm.checkpoint import Manifest, export_merged, load_checkpoint, save_checkpoint
from glide_model.llm.decoding import HFBackend
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import PromptBuilder, PromptVariant
from glide_model.llm.soft_prompt import SoftPromptProjector
from glide_model.llm.vocab import extend_vocab
from glide_model.serving.contract import RecRequest
from glide_model.sids.trie import SidTrie

REPO = Path(__file__).resolve().parents[2]
VLLM_PY = REPO / "infra" / "vllm" / ".venv" / "bin" / "python"
SERVE_CHECK = REPO / "infra" / "vllm" / "serve_check.py"
LEVELS, K, D_CF, BEAMS = 3, 8, 8, 30

pytestmark = pytest.mark.vllm
needs_venv = pytest.mark.skipif(
    not VLLM_PY.exists(), reason="no vLLM venv at infra/vllm/.venv (build it with infra/vllm/setup.sh)"
)


def _export(root: Path, variant: str) -> Path:
    """A tiny random Llama GLIDE model (head_dim 32: vLLM's CPU kernels need >= 32), merged-exported."""
    model, tok = tiny_llama(hidden_size=64, num_heads=2, seed=0)
    base = root / "base"
    model.save_pretrained(base)
    tok.save_pretrained(base)
    vocab = extend_vocab(model, tok, LEVELS, K, seed=0)
    with torch.no_grad():
        # Random init gives near-uniform next-token distributions (SID scores ~1e-3 apart);
        # larger embeddings spread them so the comparison tests ranking, not float noise.
        model.get_input_embeddings().weight.mul_(30.0)
    v = PromptVariant.parse(variant)
    projector = None
    if v.soft_prompt:
        torch.manual_seed(1)
        rms = float(model.get_input_embeddings().weight.detach().pow(2).mean().sqrt())
        projector = SoftPromptProjector(D_CF, model.config.hidden_size, embed_rms=rms)
    glm = GlideLM(model, tok, vocab, PromptBuilder(tok, vocab, v), projector)
    manifest = Manifest(
        base_model=str(base), variant=variant, levels=LEVELS, codebook_size=K, quantizer_version="q", catalog_version="c"
    )
    save_checkpoint(root / "ckpt", glm, manifest)
    return export_merged(root / "ckpt", root / "export")


def _requests(codes: np.ndarray) -> list[dict]:
    rng = np.random.default_rng(0)
    hist = [codes[j].tolist() for j in rng.integers(0, len(codes), size=3)]
    same = {"history_codes": hist, "mode": "unfamiliar", "locale": "en-US", "affinity_topics": ["comedy"]}
    rows = [
        # u0/u1 differ only in the CF embedding: the soft prompt must move their scores
        {**same, "cf_embedding": rng.normal(size=D_CF).tolist(), "user_id": "u0"},
        {**same, "cf_embedding": rng.normal(size=D_CF).tolist(), "user_id": "u1"},
        {**same, "cf_embedding": None, "user_id": "u2-cold"},
        {
            "history_codes": [],
            "mode": "familiar",
            "locale": "de-DE",
            "affinity_topics": [],
            "cf_embedding": rng.normal(size=D_CF).tolist(),
            "user_id": "u3",
        },
        # eligibility-aware decoding: only these 40 SIDs may come out (the serving path's sub-trie)
        {**same, "cf_embedding": rng.normal(size=D_CF).tolist(), "user_id": "u4-restricted",
         "allowed": codes[::4][:40].tolist()},
    ]
    return rows


def _rec(row: dict) -> RecRequest:
    cf = row["cf_embedding"]
    return RecRequest(
        history_codes=[tuple(c) for c in row["history_codes"]],
        mode=row["mode"],
        locale=row["locale"],
        affinity_topics=row["affinity_topics"],
        cf_embedding=None if cf is None else np.asarray(cf, dtype=np.float32),
        user_id=row["user_id"],
        allowed=SidTrie(np.asarray(row["allowed"]), K) if row.get("allowed") else None,
    )


def _hf(export: Path, trie: SidTrie, rows: list[dict]) -> list[list[tuple[tuple[int, ...], float]]]:
    glm, _ = load_checkpoint(export)
    return HFBackend(glm, trie, num_beams=BEAMS).generate([_rec(r) for r in rows])


@pytest.fixture(scope="module")
def runs(tmp_path_factory):
    root = tmp_path_factory.mktemp("vllm")
    rng = np.random.default_rng(0)
    codes = np.unique(rng.integers(0, K, size=(200, LEVELS)), axis=0)  # 167 of 512 SIDs: pruning matters
    np.save(root / "trie.npy", codes)
    rows = _requests(codes)
    (root / "requests.json").write_text(json.dumps(rows))
    trie = SidTrie(codes, K)

    exports = {v: _export(root / v, v) for v in ("sid_text", "glide")}
    hf = {v: _hf(e, trie, rows) for v, e in exports.items()}
    # Cold start after the engine started: a new sibling of HF's best SID (so it ranks high).
    top = hf["sid_text"][0][0][0]
    new = next(top[:-1] + (c,) for c in range(K) if top[:-1] + (c,) not in trie)
    added = SidTrie(codes, K)
    added.add(new)
    hf["sid_text+added"] = _hf(exports["sid_text"], added, rows)

    plan = [
        {
            "export": str(exports["sid_text"]),
            "trie": str(root / "trie.npy"),
            "requests": str(root / "requests.json"),
            "out": str(root / "sid_text.json"),
            "beams": BEAMS,
            "dtype": "float32",
            "methods": ["auto", "loop"],
            "add_sids": [list(new)],
        },
        {
            "export": str(exports["glide"]),
            "trie": str(root / "trie.npy"),
            "requests": str(root / "requests.json"),
            "out": str(root / "glide.json"),
            "beams": BEAMS,
            "dtype": "float32",
        },
    ]
    (root / "plan.json").write_text(json.dumps(plan))
    env = {
        **os.environ,
        "HF_HUB_OFFLINE": "1",
        "VLLM_TARGET_DEVICE": "cpu",
        "VLLM_CPU_KVCACHE_SPACE": "1",
        "VLLM_HOST_IP": "127.0.0.1",
    }
    env.pop("PYTHONPATH", None)  # the vLLM venv has the repo installed (editable); nothing from this venv
    proc = subprocess.run(
        [str(VLLM_PY), str(SERVE_CHECK), "--plan", str(root / "plan.json")],
        cwd=REPO,
        env=env,
        capture_output=True,
        text=True,
        timeout=540,
    )
    if proc.returncode != 0:
        sys.stderr.write(proc.stdout[-4000:] + proc.stderr[-8000:])
        pytest.fail(f"serve_check.py exited with {proc.returncode} (output above)")
    vllm = {v: json.loads((root / f"{v}.json").read_text())["runs"] for v in exports}
    return {"hf": hf, "vllm": vllm, "rows": rows, "trie": trie, "added": added, "new": new}


def _as_cands(results: list) -> list[list[tuple[tuple[int, ...], float]]]:
    return [[(tuple(c), float(s)) for c, s in cands] for cands in results]


def _assert_matches_hf(vllm_res, hf_res, trie: SidTrie) -> None:
    assert len(vllm_res) == len(hf_res)
    for got, want in zip(vllm_res, hf_res):
        sids = [c for c, _ in got]
        scores = [s for _, s in got]
        assert len(sids) == BEAMS == len(want)
        assert len(set(sids)) == len(sids), "duplicate SIDs"
        assert all(c in trie for c in sids), "SID outside the catalog trie"
        assert scores == sorted(scores, reverse=True)
        top_v, top_h = {c for c, _ in got[:10]}, {c for c, _ in want[:10]}
        assert len(top_v & top_h) >= 8, f"top-10 overlap {len(top_v & top_h)}: {got[:10]} vs {want[:10]}"
        hf_score = dict(want)
        common = [c for c in sids if c in hf_score]
        assert len(common) >= 0.8 * BEAMS
        for c, s in got:
            if c in hf_score:
                assert s == pytest.approx(hf_score[c], abs=1e-3), c


@needs_venv
def test_builtin_beam_search_matches_hf(runs):
    run = runs["vllm"]["sid_text"]["auto"]
    assert run["path"] == "builtin+loop"  # the restricted request takes the loop, the rest the built-in
    _assert_matches_hf(_as_cands(run["results"]), runs["hf"]["sid_text"], runs["trie"])


@needs_venv
def test_beam_loop_matches_builtin_on_token_prompts(runs):
    builtin = _as_cands(runs["vllm"]["sid_text"]["auto"]["results"])
    loop = runs["vllm"]["sid_text"]["loop"]
    assert loop["path"] == "loop"
    for a, b in zip(builtin, _as_cands(loop["results"])):
        assert [c for c, _ in a] == [c for c, _ in b]
        assert np.allclose([s for _, s in a], [s for _, s in b], atol=1e-4)


@needs_venv
def test_soft_prompt_loop_matches_hf(runs):
    run = runs["vllm"]["glide"]["auto"]
    assert run["path"] == "loop"
    got = _as_cands(run["results"])
    _assert_matches_hf(got, runs["hf"]["glide"], runs["trie"])
    # u0 and u1 share every prompt token; only the injected CF vector differs
    s0, s1 = dict(got[0]), dict(got[1])
    shared = set(s0) & set(s1)
    assert max(abs(s0[c] - s1[c]) for c in shared) > 1e-3, "the soft prompt had no effect in vLLM"


@needs_venv
def test_trie_add_after_engine_start_is_served(runs):
    run = runs["vllm"]["sid_text"]["auto+added"]
    assert run["path"] == "loop"  # the engine's trie snapshot is stale: the live trie drives the loop
    got = _as_cands(run["results"])
    _assert_matches_hf(got, runs["hf"]["sid_text+added"], runs["added"])
    assert any(runs["new"] in {c for c, _ in cands} for cands in got)


def test_module_imports_without_vllm_and_names_the_fix(tmp_path):
    if importlib.util.find_spec("vllm") is not None:
        pytest.skip("vllm is importable in this interpreter")
    from glide_model.llm import vllm_backend

    with pytest.raises(vllm_backend.VLLMUnavailableError, match="infra/vllm/setup.sh"):
        vllm_backend.VLLMBackend(tmp_path, SidTrie(np.zeros((1, LEVELS), dtype=np.int64), K))


@needs_venv
def test_per_request_allowed_sids_are_respected(runs):
    """The restricted request gets only SIDs of its own allow-list, in every vLLM path."""
    allowed = {tuple(c) for c in runs["rows"][-1]["allowed"]}
    hf_sids = [c for c, _ in runs["hf"]["sid_text"][-1]]
    assert len(hf_sids) == BEAMS and set(hf_sids) <= allowed
    for variant, by_method in runs["vllm"].items():
        for method, run in by_method.items():
            sids = [tuple(c) for c, _ in run["results"][-1]]
            assert len(sids) == BEAMS and set(sids) <= allowed, (variant, method)

"""GenerationBackend on vLLM, serving a merged GLIDE export (``checkpoint.export_merged``).

vLLM lives in its own venv (``infra/vllm/.venv``, see infra/vllm/README.md); this module imports
it lazily, so the main environment can import it (and fails with the fix named when used there).

Same contract as :class:`~glide_model.llm.decoding.HFBackend`: per request, up to ``num_return``
distinct catalog-valid SIDs, best first, each scored by the model's own log-probability of its M
tokens (log-softmax over the whole vocabulary, summed; not renormalised over the trie's children,
which is what HF beam search does when the trie mask is added to its log-probs). Two paths:

- prompts without a soft prompt (``sid_only`` / ``sid_text``): vLLM's built-in ``beam_search``.
  Its per-step requests carry no parameters of ours, so ``SidTrieLogitsProcessor``
  (glide_model/llm/vllm_processor.py, running inside the engine) reads each beam's trailing SID
  tokens, asks a snapshot of the trie for the allowed children and keeps only their log-probs. The engine runs with
  ``logprobs_mode="processed_logits"``: beam search then sums exactly those masked log-probs
  (``processed_logprobs`` would renormalise over the allowed children and rank differently).
- soft-prompt prompts (``glide``): ``beam_search`` refuses prompt embeddings
  (NotImplementedError), so :meth:`VLLMBackend._beam_loop` runs the beam search here: each step
  sends every live beam as a one-token ``generate`` whose allowed token ids travel in
  ``SamplingParams.extra_args`` to the same logits processor, then expands and prunes the beams.
  The prompt is a mixed token/embedding prompt: token ids everywhere except the ``<user_emb>``
  position, which holds the projected CF vector (the model embeds its own tokens).

The engine's trie is a snapshot taken at construction; after ``trie.add(...)`` (live cold start)
token prompts switch to the beam loop, which reads the live trie on every step.
"""

from __future__ import annotations

import math
import pickle
import tempfile
import time
from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from glide_model.llm.vllm_processor import ALLOWED_KEY, PROCESSOR_FQCN, TRIE_CONFIG_KEY
from glide_model.serving.contract import Candidate, RecRequest
from glide_model.sids.trie import SidTrie

PROJECTOR_FILE = "projector.safetensors"  # beside the merged weights (checkpoint.export_merged)
METHODS = ("auto", "loop")


class VLLMUnavailableError(ImportError):
    """vLLM is not installed in this interpreter."""


def _import_vllm():
    try:
        import vllm
    except ImportError as exc:
        raise VLLMUnavailableError(
            "vLLM is not installed in this environment: build infra/vllm/.venv with infra/vllm/setup.sh "
            "and run the serving code with infra/vllm/.venv/bin/python"
        ) from exc
    return vllm


def __getattr__(name: str):
    # The engine-side processor lives in vllm_processor (built on first use, it needs vLLM).
    if name == "SidTrieLogitsProcessor":
        from glide_model.llm import vllm_processor

        return vllm_processor.SidTrieLogitsProcessor
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")


# --- backend ---------------------------------------------------------------------------------------


def _on_cpu() -> bool:
    from vllm.platforms import current_platform

    return bool(current_platform.is_cpu())


def _check_cpu_head_dim(model_dir: Path) -> None:
    """vLLM's CPU attention kernels exist for a few head sizes only; say so before the engine dies."""
    from transformers import AutoConfig

    if not _on_cpu():
        return
    from vllm.v1.attention.backends.cpu_attn import CPUAttentionBackend

    cfg = AutoConfig.from_pretrained(model_dir, local_files_only=True)
    head_dim = getattr(cfg, "head_dim", None) or cfg.hidden_size // cfg.num_attention_heads
    supported = CPUAttentionBackend.get_supported_head_sizes()
    if head_dim not in supported:
        raise ValueError(
            f"{model_dir}: head_dim {head_dim} has no vLLM CPU attention kernel (supported: {supported}); "
            "serve it with HFBackend, or build the model with another hidden_size/num_attention_heads"
        )


def servable_manifest(export_dir: Path, trie: SidTrie, quantizer_version: str | None,
                      catalog_version: str | None, allow_catalog_update: bool):
    """The export's manifest, checked: a merged export, of this catalog, speaking the trie's SIDs."""
    from glide_model.llm.checkpoint import CheckpointError, Manifest, check_compatible

    manifest = Manifest.read(export_dir)
    if not manifest.merged:
        raise CheckpointError(
            f"{export_dir} is a training checkpoint; vLLM serves merged exports: "
            "run glide_model.llm.checkpoint.export_merged(checkpoint, out_dir) and serve out_dir"
        )
    check_compatible(manifest, quantizer_version=quantizer_version, catalog_version=catalog_version,
                     allow_catalog_update=allow_catalog_update)
    if (trie.levels, trie.codebook_size) != (manifest.levels, manifest.codebook_size):
        raise ValueError(
            f"catalog trie is {trie.levels}x{trie.codebook_size} but the model speaks "
            f"{manifest.levels}x{manifest.codebook_size} SIDs: serve the catalog built with the model's quantizer"
        )
    return manifest


class VLLMBackend:
    """GenerationBackend on vLLM for a merged export folder; one engine per instance (``close()`` it).

    method: ``"auto"`` (built-in beam search for token prompts while the trie is unchanged, beam loop
    for soft prompts) or ``"loop"`` (the beam loop for everything). The versions, when given, are
    checked like ``HFBackend.from_checkpoint`` does. ``llm_kwargs`` go to ``vllm.LLM``.
    """

    def __init__(
        self,
        export_dir: str | Path,
        trie: SidTrie,
        num_beams: int = 30,
        *,
        num_return: int | None = None,
        method: str = "auto",
        dtype: str = "auto",
        seed: int = 0,
        quantizer_version: str | None = None,
        catalog_version: str | None = None,
        allow_catalog_update: bool = False,
        **llm_kwargs: Any,
    ):
        vllm = _import_vllm()  # fail first, with the fix, in an environment without vLLM
        if method not in METHODS:
            raise ValueError(f"method must be one of {METHODS}, got {method!r}")
        self.num_beams = num_beams
        self.num_return = num_return or num_beams
        if self.num_return > num_beams:
            raise ValueError("num_return cannot exceed num_beams")
        self.method = method
        self.export_dir = Path(export_dir)
        self.manifest = servable_manifest(self.export_dir, trie, quantizer_version, catalog_version,
                                          allow_catalog_update)
        self.trie = trie
        self._load_prompts()
        _check_cpu_head_dim(self.export_dir)
        self._vllm = vllm
        tmp = tempfile.TemporaryDirectory(prefix="glide-vllm-")
        self._tmp: tempfile.TemporaryDirectory[str] | None = tmp
        snap = Path(tmp.name) / "trie.pkl"
        with open(snap, "wb") as f:
            pickle.dump({"trie": trie, "sid_ids": self.vocab.sid_ids}, f)
        self._snapshot_size = len(trie)
        self._children: dict[tuple[int, ...], np.ndarray] = {}
        self._children_size = len(trie)
        kwargs = self._engine_kwargs(dtype, seed, num_beams, snap, llm_kwargs)
        model_dir = self._stage_model_dir(Path(tmp.name) / "model")
        self.llm = vllm.LLM(model=str(model_dir), tokenizer=str(model_dir), **kwargs)
        self.last_run: dict[str, Any] = {}  # path taken ("builtin" | "loop") and seconds of the last generate

    def _load_prompts(self) -> None:
        """The export's tokenizer, SID vocabulary, prompt builder and soft-prompt projector."""
        from transformers import AutoTokenizer

        from glide_model.llm.prompt import PromptBuilder, PromptVariant
        from glide_model.llm.vocab import SidVocab

        manifest = self.manifest
        self.tokenizer = AutoTokenizer.from_pretrained(self.export_dir, local_files_only=True)
        self.vocab = SidVocab.from_tokenizer(self.tokenizer, manifest.levels, manifest.codebook_size)
        self.prompts = PromptBuilder(
            self.tokenizer,
            self.vocab,
            PromptVariant.parse(manifest.variant),
            max_history=manifest.max_history,
            max_text_chars=manifest.max_text_chars,
        )
        self.projector = self._load_projector() if self.prompts.variant.soft_prompt else None
        self._code_of = self.vocab.code_lookup().numpy()

    def _engine_kwargs(self, dtype: str, seed: int, num_beams: int, snap: Path, llm_kwargs: dict) -> dict:
        """vllm.LLM arguments: our trie logits processor, enough logprobs for beam search, prompt embeds."""
        if _on_cpu():
            # vLLM caches prefixes in whole blocks only, and every beam of every step is resubmitted
            # as prompt + its tokens: with the CPU default of 128-token blocks a ~110-token prompt
            # is never cached and is recomputed for each beam (SmolLM2: 23 s vs 3.6 s per request).
            llm_kwargs.setdefault("block_size", 32)  # the smallest size CPU attention supports
        return {
            "dtype": dtype,
            "seed": seed,
            # beam_search asks for 2 * beam_width logprobs per step
            "max_logprobs": max(2 * num_beams, llm_kwargs.pop("max_logprobs", 0)),
            "logprobs_mode": "processed_logits",
            "logits_processors": [PROCESSOR_FQCN],
            "enable_prompt_embeds": self.projector is not None,
            "additional_config": {TRIE_CONFIG_KEY: str(snap)},
            **llm_kwargs,
        }

    def _stage_model_dir(self, target: Path) -> Path:
        """The export as vLLM should see it: links to every file but the projector's weights.

        vLLM loads every ``*.safetensors`` of an unsharded folder as model weights, and the
        projector's tensors are not part of the LM.
        """
        target.mkdir()
        for f in self.export_dir.iterdir():
            if f.name != PROJECTOR_FILE:
                (target / f.name).symlink_to(f.resolve())
        return target

    def _load_projector(self):
        from safetensors.torch import load_file

        from glide_model.llm.checkpoint import CheckpointError
        from glide_model.llm.soft_prompt import SoftPromptProjector

        f = self.export_dir / PROJECTOR_FILE
        if self.manifest.projector is None or not f.is_file():
            raise CheckpointError(f"{self.export_dir}: variant {self.manifest.variant!r} needs projector.safetensors")
        proj = SoftPromptProjector(**self.manifest.projector)
        proj.load_state_dict(load_file(str(f)))
        return proj.eval()

    # --- public API ------------------------------------------------------------------------------

    def generate(self, requests: Sequence[RecRequest]) -> list[list[Candidate]]:
        if not requests:
            return []
        items = self.prompts.encode_rec([r.as_row() for r in requests], with_target=False)
        t0 = time.perf_counter()
        subs = [r.allowed for r in requests]
        if self.projector is not None:
            vectors = self._soft_vectors(items, [r.cf_embedding for r in requests])
            bases = [self._mixed_prompt(e.input_ids, v) for e, v in zip(items, vectors)]
            path, out = "loop", self._beam_loop(bases, subs)
        elif self.method == "loop" or len(self.trie) != self._snapshot_size:
            path, out = "loop", self._beam_loop([{"prompt_token_ids": list(e.input_ids)} for e in items], subs)
        else:
            # Restricted requests (RecRequest.allowed) need the loop, the engine's trie being global;
            # the others keep the built-in beam search.
            free = [i for i, t in enumerate(subs) if t is None]
            held = [i for i, t in enumerate(subs) if t is not None]
            out = [[] for _ in items]
            for i, res in zip(free, self._builtin([list(items[i].input_ids) for i in free]) if free else []):
                out[i] = res
            looped = self._beam_loop([{"prompt_token_ids": list(items[i].input_ids)} for i in held],
                                     [subs[i] for i in held]) if held else []
            for i, res in zip(held, looped):
                out[i] = res
            path = "+".join(name for name, part in (("builtin", free), ("loop", held)) if part)
        self.last_run = {"path": path, "seconds": time.perf_counter() - t0, "requests": len(requests)}
        return out

    def close(self) -> None:
        """Stop the engine process and drop the trie snapshot."""
        llm = self.__dict__.pop("llm", None)
        core = getattr(getattr(llm, "llm_engine", None), "engine_core", None)
        if core is not None and hasattr(core, "shutdown"):
            core.shutdown()
        tmp, self._tmp = getattr(self, "_tmp", None), None
        if tmp is not None:
            tmp.cleanup()

    def __enter__(self) -> VLLMBackend:
        return self

    def __exit__(self, *exc) -> None:
        self.close()

    # --- prompts ---------------------------------------------------------------------------------

    @torch.no_grad()
    def _soft_vectors(self, items, cf: Sequence[np.ndarray | None]) -> torch.Tensor:
        """Projected CF vector per request (the learned default where cf is None), as in GlideLM.embed."""
        from glide_model.llm.model import collate

        assert self.projector is not None
        batch = collate(items, self.tokenizer.pad_token_id or 0, cf=cf, d_cf=self.projector.d_cf)
        return self.projector(batch.cf, batch.has_cf)

    def _mixed_prompt(self, ids: Sequence[int], vector: torch.Tensor) -> dict:
        """Token ids everywhere, the soft vector at the single ``<user_emb>`` position."""
        ids = list(ids)
        is_tok = [t != self.vocab.placeholder_id for t in ids]
        if is_tok.count(False) != 1:
            raise ValueError(f"a soft-prompt prompt needs exactly one {self.vocab.placeholder_id=} token, got {is_tok.count(False)}")
        embeds = torch.zeros(len(ids), vector.shape[-1], dtype=torch.float32)
        embeds[is_tok.index(False)] = vector.float()
        return {"prompt_token_ids": ids, "prompt_embeds": embeds, "prompt_is_token_ids": is_tok}

    @staticmethod
    def _extend(base: dict, tokens: Sequence[int]) -> dict:
        """The base prompt followed by a beam's generated tokens."""
        if not tokens:
            return dict(base)
        out = {"prompt_token_ids": base["prompt_token_ids"] + list(tokens)}
        if "prompt_embeds" in base:
            emb = base["prompt_embeds"]
            out["prompt_embeds"] = torch.cat([emb, emb.new_zeros(len(tokens), emb.shape[1])])
            out["prompt_is_token_ids"] = base["prompt_is_token_ids"] + [True] * len(tokens)
        return out

    # --- decoding --------------------------------------------------------------------------------

    def _builtin(self, prompts: list[list[int]]) -> list[list[Candidate]]:
        from vllm.sampling_params import BeamSearchParams

        params = BeamSearchParams(beam_width=self.num_beams, max_tokens=self.vocab.levels, length_penalty=0.0)
        outs = self.llm.beam_search([{"prompt_token_ids": p} for p in prompts], params, use_tqdm=False)
        results = []
        for ids, out in zip(prompts, outs):
            cands = [(tuple(seq.tokens[len(ids) :]), float(seq.cum_logprob)) for seq in out.sequences]
            results.append(self._finish(cands))
        return results

    def _allowed_codes(self, prefix: tuple[int, ...], sub: SidTrie | None = None) -> np.ndarray:
        if sub is not None:
            return sub.children(prefix)
        if self._children_size != len(self.trie):  # trie.add() since the cache was filled
            self._children, self._children_size = {}, len(self.trie)
        hit = self._children.get(prefix)
        if hit is None:
            hit = self._children[prefix] = self.trie.children(prefix)
        return hit

    def _beam_loop(self, bases: list[dict], subs: Sequence[SidTrie | None] | None = None) -> list[list[Candidate]]:
        """Trie-constrained beam search with one ``generate(max_tokens=1)`` per live beam and step.

        ``subs``: per request, the sub-trie it may produce (RecRequest.allowed), None = whole trie."""
        subs = list(subs) if subs is not None else [None] * len(bases)
        SamplingParams = self._vllm.SamplingParams
        beams: list[list[tuple[tuple[int, ...], float]]] = [[((), 0.0)] for _ in bases]  # (tokens, score)
        levels = self.vocab.levels
        for depth in range(levels):
            inputs, params, owners = [], [], []
            for r, live in enumerate(beams):
                for tokens, score in live:
                    codes = self._allowed_codes(tuple(int(self._code_of[t]) for t in tokens), subs[r])
                    if len(codes) == 0:
                        continue
                    allowed = self.vocab.sid_ids[depth, codes]
                    inputs.append(self._extend(bases[r], tokens))
                    params.append(
                        SamplingParams(
                            max_tokens=1,
                            temperature=0.0,
                            logprobs=min(len(allowed), self.num_beams),
                            detokenize=False,
                            extra_args={ALLOWED_KEY: allowed.tolist()},
                        )
                    )
                    owners.append((r, tokens, score, set(allowed.tolist())))
            outs = self.llm.generate(inputs, params, use_tqdm=False) if inputs else []
            grown: list[list[tuple[tuple[int, ...], float]]] = [[] for _ in bases]
            for (r, tokens, score, allowed), out in zip(owners, outs):
                for tid, lp in (out.outputs[0].logprobs or [{}])[0].items():
                    if tid in allowed and math.isfinite(lp.logprob):
                        grown[r].append((tokens + (tid,), score + lp.logprob))
            beams = [sorted(g, key=lambda b: b[1], reverse=True)[: self.num_beams] for g in grown]
        return [self._finish(live, sub) for live, sub in zip(beams, subs)]

    def _finish(self, cands: Sequence[tuple[Sequence[int], float]], sub: SidTrie | None = None) -> list[Candidate]:
        """Token sequences -> distinct trie-valid SIDs with finite scores, best first, at most num_return."""
        out: list[Candidate] = []
        seen: set[tuple[int, ...]] = set()
        for tokens, score in sorted(cands, key=lambda c: c[1], reverse=True):
            if len(tokens) != self.vocab.levels or not math.isfinite(score):
                continue
            try:
                codes = self.vocab.ids_to_codes(tokens)
            except ValueError:
                continue
            if codes in seen or codes not in self.trie or (sub is not None and codes not in sub):
                continue
            seen.add(codes)
            out.append((codes, score))
            if len(out) == self.num_return:
                break
        return out

"""The vLLM engine side of :class:`~glide_model.llm.vllm_backend.VLLMBackend`: the logits processor
that keeps every request inside the SID trie (see vllm_backend's docstring for the two paths).

The processor subclasses a vLLM class, so it is built on first attribute access
(``SidTrieLogitsProcessor``); vLLM's engine process loads it by :data:`PROCESSOR_FQCN`, and this
module imports without vLLM.
"""

from __future__ import annotations

import pickle
from collections.abc import Sequence

import numpy as np
import torch

from glide_model.sids.trie import SidTrie

TRIE_CONFIG_KEY = "glide_sid_trie"  # additional_config entry: pickled {"trie", "sid_ids"} for the engine
ALLOWED_KEY = "glide_allowed"  # SamplingParams.extra_args entry: allowed token ids of this step
PROCESSOR_FQCN = f"{__name__}:SidTrieLogitsProcessor"


def _masked_logprobs(logits: torch.Tensor, allowed: torch.Tensor | None) -> torch.Tensor:
    """Full-vocabulary log-probs on ``allowed`` token ids, -inf everywhere else (a dead beam: all -inf)."""
    out = torch.full_like(logits, float("-inf"))
    if allowed is not None and allowed.numel():
        idx = allowed.to(logits.device)
        out[idx] = torch.log_softmax(logits.float(), -1)[idx].to(out.dtype)
    return out


def _build_processor_class():
    from vllm.v1.sample.logits_processor import AdapterLogitsProcessor

    class SidTrieLogitsProcessor(AdapterLogitsProcessor):
        """Keeps every request inside the SID trie and turns its logits into unrenormalised log-probs.

        Per request: ``extra_args["glide_allowed"]`` (the beam loop) names the allowed ids directly;
        otherwise (built-in beam search) the prefix is the run of SID tokens ending the prompt and the
        children come from the trie snapshot in ``additional_config["glide_sid_trie"]``.
        """

        def __init__(self, vllm_config, device, is_pin_memory):
            super().__init__(vllm_config, device, is_pin_memory)
            extra = getattr(vllm_config, "additional_config", None) or {}
            path = extra.get(TRIE_CONFIG_KEY) if isinstance(extra, dict) else None
            self.trie: SidTrie | None = None  # None: only requests naming their allowed ids are constrained
            if path:
                with open(path, "rb") as f:
                    snap = pickle.load(f)  # written by VLLMBackend into its own temp dir
                self.trie = snap["trie"]
                sid_ids = np.asarray(snap["sid_ids"], dtype=np.int64)  # (M, K)
                self.levels = sid_ids.shape[0]
                self.sid_ids = torch.from_numpy(sid_ids)
                # token id -> (level, code) of SID tokens; everything else absent
                self.sid_pos = {int(t): (m, c) for (m, c), t in np.ndenumerate(sid_ids)}
                self._allowed: dict[tuple[int, ...], torch.Tensor] = {}

        def is_argmax_invariant(self) -> bool:
            return False

        def _prefix(self, tokens: Sequence[int]) -> tuple[int, ...] | None:
            """Codes of the trailing SID run (``<SID_1=a>...<SID_d=z>``), None when it is malformed."""
            run = []
            for t in reversed(tokens[-self.levels :]):
                pos = self.sid_pos.get(int(t))
                if pos is None:
                    break
                run.append(pos)
            run.reverse()
            # A dead beam (one that had to take a masked token) ends in a non-SID or a misplaced SID.
            if any(level != i for i, (level, _) in enumerate(run)):
                return None
            return tuple(c for _, c in run)

        def _children_ids(self, prefix: tuple[int, ...]) -> torch.Tensor:
            hit = self._allowed.get(prefix)
            if hit is None:
                depth = len(prefix)
                assert self.trie is not None
                codes = self.trie.children(prefix) if depth < self.levels else np.empty(0, np.int64)
                hit = self.sid_ids[depth, torch.from_numpy(codes)] if len(codes) else torch.empty(0, dtype=torch.long)
                self._allowed[prefix] = hit
            return hit

        def new_req_logits_processor(self, params):
            extra = params.extra_args or {}
            if ALLOWED_KEY in extra:
                allowed = torch.tensor(extra[ALLOWED_KEY], dtype=torch.long)
                return lambda output_ids, logits: _masked_logprobs(logits, allowed)
            if self.trie is None:
                return None

            # Needs prompt token ids: never reached by an embeds prompt (those always carry ALLOWED_KEY).
            def constrain(prompt_ids, output_ids, logits):
                prefix = self._prefix(list(prompt_ids) + list(output_ids))
                return _masked_logprobs(logits, None if prefix is None else self._children_ids(prefix))

            return constrain

    SidTrieLogitsProcessor.__module__ = __name__
    SidTrieLogitsProcessor.__qualname__ = "SidTrieLogitsProcessor"
    return SidTrieLogitsProcessor


def __getattr__(name: str):
    # The processor subclasses a vLLM class, so it is only built on first use (vLLM's engine
    # process loads it by PROCESSOR_FQCN); the module itself imports without vLLM.
    if name == "SidTrieLogitsProcessor":
        cls = _build_processor_class()
        globals()[name] = cls
        return cls
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")

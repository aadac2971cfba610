"""A trained GLIDE variant as a harness ranker: histories -> prompts -> SIDs (beam, greedy or sampling) -> items.

Decoded SIDs map to items as TIGER's do (glide_model/sequential/tiger_decode.py): a SID shared by
several items stands for all of them, most popular first in the training split. Each history is
decoded once and its SID list cached, so the harness's second protocol (history kept vs excluded)
costs no decoding; consumed items are dropped after decoding in the history-excluded protocol.

Multi-task variants need a familiarity mode and the ranker may not see the target: with
``mode_policy="both"`` a familiar and an unfamiliar prompt are decoded and their SID lists
interleaved (best of each first); with ``"history"`` one mode per user comes from its own history
(llm_data.history_mode), at half the cost.

:meth:`LLMRanker.diagnostics` gives the paper's Table 3 "prefix ceiling": the share of examples
whose target's first N SID codes match the first N codes of one of the 30 best decoded SIDs, the
best any ranking of those SIDs' regions could reach; N = M is SID-level Recall@30.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glide_model.llm.decoding import TrieMasks, constrained_beam_search
from glide_model.llm.sampling import SamplingConfig, constrained_sample
from glide_model.llm.trainer import use_bf16
from glide_model.sequential.llm_config import DecodeSettings
from glide_model.sequential.llm_data import history_mode
from glide_model.sequential.llm_train import TrainedLM
from glide_model.sequential.ranking import PAD
from glide_model.sequential.split import EvalSet
from glide_model.sequential.tiger_decode import items_by_sid
from glide_model.sequential.training import torch_threads
from glide_model.serving.contract import Candidate

DECODERS = ("beam", "greedy", "sampling")
CEILING_K = 30


@dataclass(frozen=True)
class Decoder:
    kind: str  # beam | greedy | sampling
    settings: DecodeSettings
    seed: int = 0

    def __post_init__(self) -> None:
        if self.kind not in DECODERS:
            raise ValueError(f"decoder must be one of {DECODERS}, got {self.kind!r}")
        if self.settings.mode_policy not in ("both", "history"):
            raise ValueError(f"mode_policy must be 'both' or 'history', got {self.settings.mode_policy!r}")

    def describe(self) -> str:
        s = self.settings
        if self.kind == "beam":
            return f"beam search, {s.beams} beams"
        if self.kind == "greedy":
            return "greedy (one SID: the top code at each level)"
        return f"sampling, {s.samples} draws, temperature {s.temperature}, top-p {s.top_p}"


def interleave(lists: Sequence[Sequence[Candidate]]) -> list[Candidate]:
    """Round-robin merge of ranked SID lists, first occurrence kept."""
    out, seen = [], set()
    for rank in range(max((len(x) for x in lists), default=0)):
        for cands in lists:
            if rank < len(cands) and cands[rank][0] not in seen:
                seen.add(cands[rank][0])
                out.append(cands[rank])
    return out


class LLMRanker:
    def __init__(self, lm: TrainedLM, decoder: Decoder, popularity: np.ndarray, brands: np.ndarray | None,
                 threads: int | None = None):
        self.lm, self.decoder, self.brands, self.threads = lm, decoder, brands, threads
        self.items = items_by_sid(lm.rows.codes, popularity)
        self.masks = TrieMasks(lm.trie)
        self.multitask = lm.glm.prompts.variant.multitask
        self._sids: dict[tuple[int, ...], list[tuple[int, ...]]] = {}

    def _modes(self, history: np.ndarray) -> list[str | None]:
        if not self.multitask:
            return [None]
        if self.decoder.settings.mode_policy == "both":
            return ["familiar", "unfamiliar"]
        return [history_mode(history, self.brands, self.lm.default_mode)]

    def _decode(self, histories: Sequence[np.ndarray]) -> None:
        pending = {tuple(np.asarray(h).tolist()): h for h in histories}
        todo = [(key, h) for key, h in pending.items() if key not in self._sids]
        if not todo:
            return
        rows, owner = [], []
        for n, (_, history) in enumerate(todo):
            for mode in self._modes(np.asarray(history, dtype=np.int64)):
                rows.append(self.lm.rows.row(history, mode))
                owner.append(n)
        glm, s = self.lm.glm, self.decoder.settings
        items = glm.prompts.encode_rec(rows, with_target=False)
        cf = [r.get("cf_embedding") for r in rows] if glm.uses_soft_prompt else None
        low = use_bf16(s.bf16, glm.device)
        with torch_threads(self.threads), torch.autocast(glm.device.type, dtype=torch.bfloat16, enabled=low):
            if self.decoder.kind == "beam":
                found = constrained_beam_search(glm, items, self.lm.trie, cf=cf, num_beams=s.beams,
                                                batch_size=s.batch_size, masks=self.masks)
            else:
                temperature = 0.0 if self.decoder.kind == "greedy" else s.temperature
                cfg = SamplingConfig(num_samples=s.samples, temperature=temperature, top_p=s.top_p,
                                     seed=self.decoder.seed)
                found = constrained_sample(glm, items, self.lm.trie, cfg, cf=cf, batch_size=s.batch_size,
                                           masks=self.masks)
        per_history: list[list[list[Candidate]]] = [[] for _ in todo]
        for n, cands in zip(owner, found):
            per_history[n].append(cands)
        for (key, _), lists in zip(todo, per_history):
            self._sids[key] = [c for c, _ in interleave(lists)]

    def sids(self, history: np.ndarray) -> list[tuple[int, ...]]:
        """The decoded SIDs of one history, best first (decoding it if needed)."""
        self._decode([history])
        return self._sids[tuple(np.asarray(history).tolist())]

    def top_k(self, histories: Sequence[np.ndarray], k: int, exclude_history: bool) -> np.ndarray:
        self._decode(histories)
        out = np.full((len(histories), k), PAD, dtype=np.int64)
        for row, history in enumerate(histories):
            consumed = set(np.asarray(history).tolist()) if exclude_history else set()
            picked: list[int] = []
            for sid in self._sids[tuple(np.asarray(history).tolist())]:
                picked.extend(i for i in self.items.get(sid, ()) if i not in consumed)
                if len(picked) >= k:
                    break
            out[row, : min(k, len(picked))] = picked[:k]
        return out

    def diagnostics(self, test: EvalSet) -> dict:
        """Prefix ceilings at 1..M codes over the 30 best decoded SIDs, and how many SIDs came out."""
        levels = self.lm.rows.codes.shape[1]
        hits = np.zeros((len(test), levels))
        counts = []
        for n, (history, target) in enumerate(zip(test.histories, test.targets)):
            sids = self.sids(history)[:CEILING_K]
            counts.append(len(sids))
            want = tuple(int(c) for c in self.lm.rows.codes[target])
            for depth in range(1, levels + 1):
                hits[n, depth - 1] = any(s[:depth] == want[:depth] for s in sids)
        return {"decoder": self.decoder.kind, "decoding": self.decoder.describe(), "n": len(test),
                "prefix_ceiling@30": {str(d): round(float(hits[:, d - 1].mean()), 5) if len(test) else None
                                      for d in range(1, levels + 1)},
                "sids_per_user": round(float(np.mean(counts)), 2) if counts else 0.0}

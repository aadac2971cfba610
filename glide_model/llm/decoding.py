"""Trie-constrained beam search over Semantic IDs (paper §4.4.4) behind a small backend interface.

``GenerationBackend.generate(requests) -> [[(codes, score), ...] per request]`` (the torch-free
contract in glide_model/serving/contract.py) is all a caller (evaluation, the serving worker)
needs; :class:`HFBackend` implements it with ``transformers`` beam search (30 beams, 30 distinct
catalog-valid SIDs per request), and a vLLM backend implements the same protocol in its own venv.

The constraint is an additive mask on the beam log-probs at each step: -inf on every token that
would leave the catalog's SID trie. Mask rows are cached per prefix (:class:`TrieMasks`) and a
step's mask is one gather over the beams' unique prefixes, written in one indexed assignment
(a vectorised LogitsProcessor is about twice as fast as ``prefix_allowed_tokens_fn``, stack.md).

Two engines compute the same beams (tests check they agree):
- ``"sid"`` (default): our own fixed-length beam loop. Every SID is exactly M tokens, so beam
  search needs no eos/length bookkeeping; the prompt is prefilled ONCE per request and the beams
  then decode as a tree in the prompt's own cache row (no per-beam cache copies), where
  ``generate`` prefills 30 copies of it and reorders them every step.
- ``"hf"``: ``model.generate(num_beams=...)`` with :class:`TrieLogitsProcessor`.
Scores are the model's own log-probability of the whole SID (full-vocabulary softmax; the
length is always M, so no length penalty applies).
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch
from transformers import GenerationConfig, LogitsProcessor, LogitsProcessorList

from glide_model.llm.checkpoint import check_compatible
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import Encoded
from glide_model.llm.serving_model import load_for_serving
from glide_model.serving.contract import Candidate, RecRequest
from glide_model.sids.trie import SidTrie


class TrieMasks:
    """Allowed next codes per SID prefix, as boolean rows over the K codes of the next level.

    Rows are cached per prefix (one ``trie.children`` call each); a step's mask is then one
    ``np.unique`` over the beams' folded prefixes and one gather, with no per-beam Python work.
    The cache follows ``trie.add`` (live cold start) by watching ``trie.size``.
    """

    def __init__(self, trie: SidTrie):
        self.trie = trie
        self.k = trie.codebook_size
        self._rows: list[dict[int, np.ndarray]] = [{} for _ in range(trie.levels)]
        self._size = trie.size

    def allowed(self, prefixes: np.ndarray) -> np.ndarray:
        """prefixes (R, d) int codes (-1 = dead beam) -> (R, K) bool: code may follow the prefix."""
        if self.trie.size != self._size:
            self._rows, self._size = [{} for _ in range(self.trie.levels)], self.trie.size
        rows_n, depth = prefixes.shape
        if depth == 0:
            return np.repeat(self._row(0, 0, ())[None, :], rows_n, axis=0)
        dead = (prefixes < 0).any(1)
        clamped = np.maximum(prefixes, 0)  # dead rows get a valid key here and are blanked below
        keys = np.zeros(rows_n, dtype=np.int64)
        for col in range(depth):
            keys = keys * self.k + clamped[:, col]
        uniq, first, inverse = np.unique(keys, return_index=True, return_inverse=True)
        table = np.stack([self._row(depth, int(key), clamped[f]) for key, f in zip(uniq, first)])
        out = table[inverse.reshape(-1)]
        out[dead] = False
        return out

    def _row(self, depth: int, key: int, prefix) -> np.ndarray:
        row = self._rows[depth].get(key)
        if row is None:
            row = np.zeros(self.k, dtype=bool)
            row[self.trie.children(tuple(int(c) for c in prefix))] = True
            self._rows[depth][key] = row
        return row


class BatchMasks:
    """Per-request masks for one batch: beam rows are request-major, so rows split evenly by request."""

    def __init__(self, masks: Sequence[TrieMasks]):
        self.masks = list(masks)

    def allowed(self, prefixes: np.ndarray) -> np.ndarray:
        per = prefixes.shape[0] // len(self.masks)
        if per * len(self.masks) != prefixes.shape[0]:
            raise ValueError(f"{prefixes.shape[0]} beam rows do not split over {len(self.masks)} requests")
        return np.concatenate([m.allowed(prefixes[i * per : (i + 1) * per]) for i, m in enumerate(self.masks)])


def additive(allowed: np.ndarray, device: torch.device) -> torch.Tensor:
    """Bool rows -> float rows of 0 (allowed) / -inf (not), on the scores' device."""
    ok = torch.from_numpy(np.ascontiguousarray(allowed)).to(device)
    return torch.zeros(ok.shape, device=device).masked_fill_(~ok, float("-inf"))


class TrieLogitsProcessor(LogitsProcessor):
    """Additive -inf mask keeping every beam of ``generate`` inside the SID trie; depth = tokens generated so far."""

    def __init__(self, masks: TrieMasks | BatchMasks, glm_vocab, eos_id: int):
        self.masks = masks
        self.sid_ids = torch.from_numpy(glm_vocab.sid_ids)  # (M, K)
        self.code_of = glm_vocab.code_lookup()
        self.levels = glm_vocab.levels
        self.eos_id = eos_id
        self.start: int | None = None

    def __call__(self, input_ids: torch.LongTensor, scores: torch.FloatTensor) -> torch.FloatTensor:
        if self.start is None:
            self.start = input_ids.shape[1]
        depth = input_ids.shape[1] - self.start
        mask = torch.full_like(scores, float("-inf"))
        if depth >= self.levels:
            mask[:, self.eos_id] = 0.0
            return scores + mask
        prefixes = self.code_of[input_ids[:, self.start :].cpu()].numpy()  # -1 marks a dead beam's masked pick
        mask[:, self.sid_ids[depth].to(mask.device)] = additive(self.masks.allowed(prefixes), mask.device).to(mask.dtype)
        return scores + mask


def _check_shapes(glm: GlideLM, trie: SidTrie, num_beams: int, num_return: int) -> None:
    if trie.levels != glm.vocab.levels or trie.codebook_size != glm.vocab.codebook_size:
        raise ValueError(
            f"catalog trie is {trie.levels}x{trie.codebook_size} but the model speaks "
            f"{glm.vocab.levels}x{glm.vocab.codebook_size} SIDs: serve the catalog built with the model's quantizer"
        )
    if num_return > num_beams:
        raise ValueError("num_return cannot exceed num_beams")


@torch.no_grad()
def prompt_batches(glm: GlideLM, items: Sequence, cf: Sequence | None, batch_size: int
                   ) -> Iterator[tuple[int, list, Any]]:
    """(start index, prompts, collated left-padded batch on the model's device) per ``batch_size``
    prompts: the batching every decoder shares."""
    for start in range(0, len(items), batch_size):
        chunk = list(items[start : start + batch_size])
        chunk_cf = list(cf[start : start + batch_size]) if cf is not None else None
        yield start, chunk, glm.collate(chunk, chunk_cf, left_pad=True).to(glm.device)


def prefill(glm: GlideLM, batch, first_level_ids: torch.Tensor) -> tuple[Any, torch.Tensor, torch.Tensor]:
    """Run the left-padded prompts once: (KV cache, position ids, (B, K) log-probs of the first SID
    level's tokens at the last position), the first step every SID decoder shares."""
    attn = batch.attention_mask
    pos = (attn.cumsum(-1) - 1).clamp(min=0)  # left padding: real tokens start at position 0
    # The last position as an index tensor, not the int 1: HF slices hidden[:, -1:] for an int, a
    # strided view that torch's CPU bf16 linear copies the whole LM head for (2 x 576 x 49k per
    # call, ~60x the matmul); an index gathers a contiguous row.
    last = torch.tensor([attn.shape[1] - 1], device=attn.device)
    out = glm.model(inputs_embeds=glm.embed(batch), attention_mask=attn, position_ids=pos, use_cache=True,
                    logits_to_keep=last)
    logp = torch.log_softmax(out.logits[:, -1].float(), -1)[:, first_level_ids]
    return out.past_key_values, pos, logp


def constrained_beam_search(
    glm: GlideLM,
    items: Sequence[Encoded],
    trie: SidTrie,
    *,
    cf: Sequence[np.ndarray | None] | None = None,
    num_beams: int = 30,
    num_return: int | None = None,
    batch_size: int = 16,
    engine: str = "sid",
    masks: TrieMasks | None = None,
    allowed: Sequence[SidTrie | None] | None = None,
) -> list[list[Candidate]]:
    """Top SIDs per prompt, best first: distinct, all in the trie, at most ``num_return`` (default num_beams).

    Pass a long-lived ``masks`` (``TrieMasks(trie)``) to reuse its per-prefix rows across calls.
    ``allowed`` (one per prompt, None = whole trie) restricts each prompt to its own sub-trie, so
    beams are never spent on SIDs the request could not be served (eligibility-aware decoding).
    """
    num_return = num_return or num_beams
    _check_shapes(glm, trie, num_beams, num_return)
    masks = masks if masks is not None and masks.trie is trie else TrieMasks(trie)
    if engine not in ("sid", "hf"):
        raise ValueError(f"engine must be 'sid' or 'hf', got {engine!r}")
    search = _sid_beam_search if engine == "sid" else _hf_beam_search
    was_training = glm.model.training
    glm.eval()
    if allowed is not None:
        if len(allowed) != len(items):
            raise ValueError(f"{len(allowed)} allowed tries for {len(items)} prompts")
        for sub in allowed:
            if sub is not None and (sub.levels, sub.codebook_size) != (trie.levels, trie.codebook_size):
                raise ValueError("an allowed sub-trie has another SID shape than the catalog trie")
    results: list[list[Candidate]] = []
    try:
        for start, chunk, batch in prompt_batches(glm, items, cf, batch_size):
            subs = list(allowed[start : start + batch_size]) if allowed is not None else [None] * len(chunk)
            batch_masks = masks if all(t is None for t in subs) else BatchMasks(
                [masks if t is None else TrieMasks(t) for t in subs]
            )
            codes, scores = search(glm, batch, batch_masks, num_beams, num_return)  # (B, R, M), (B, R) on cpu
            for row_codes, row_scores, sub in zip(codes.tolist(), scores.tolist(), subs):
                valid = trie if sub is None else sub
                cands: list[Candidate] = []
                seen: set[tuple[int, ...]] = set()
                for c, s in zip(row_codes, row_scores):
                    c = tuple(c)
                    # Beams that had to take a masked token (catalog smaller than the beam) carry -inf.
                    if not np.isfinite(s) or min(c) < 0 or c in seen or c not in valid or c not in trie:
                        continue
                    seen.add(c)
                    cands.append((c, float(s)))
                results.append(cands)
    finally:
        glm.train(was_training)
    return results


def _sid_beam_search(
    glm: GlideLM, batch, masks: TrieMasks | BatchMasks, num_beams: int, num_return: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """Fixed-length constrained beam search, one KV cache row per prompt (tree attention).

    The prompt is prefilled once. Each later step feeds the k beams' newest tokens as k positions of
    the prompt's own row, appended to its cache; a 4D mask lets each beam token see the prompt and
    its own ancestors only. Nothing is copied per beam: fanning the prompt's cache out to k rows and
    reordering it every step (the usual way) copied the whole cache ~3 times a step and took ~70% of
    the time on a CPU.
    """
    model, vocab = glm.model, glm.vocab
    dev = batch.input_ids.device
    sid_ids = torch.from_numpy(vocab.sid_ids).to(dev)  # (M, K)
    big, width, levels, n_codes = batch.input_ids.shape[0], num_beams, vocab.levels, vocab.codebook_size
    attn = batch.attention_mask
    cache, pos, logp = prefill(glm, batch, sid_ids[0])  # (B, K) first-level log-probs
    logp = logp + additive(masks.allowed(np.empty((big, 0), dtype=np.int64)), dev)
    # Level 1: the beams of a prompt all share its prefill, so pick the top codes straight away.
    k = min(width, n_codes)
    scores, codes = logp.topk(k, dim=-1)  # (B, k)
    codes = codes[..., None]  # (B, k, depth)
    mask_dtype = next(model.parameters()).dtype
    prompt_keys = attn.bool()  # (B, T): every beam sees its prompt's real tokens
    filled = attn.shape[1]  # cache slots used so far
    ancestors = torch.empty((big, k, 0), dtype=torch.long, device=dev)  # cache slots of each beam's tokens
    first_pos = pos[:, -1:] + 1  # (B, 1): position of the first generated token
    for depth in range(1, levels):
        tokens = sid_ids[depth - 1, codes[..., -1]]  # (B, k): each beam's newest code, as token ids
        own = torch.arange(filled, filled + k, device=dev)
        lineage = torch.cat([ancestors, own[None, :, None].expand(big, -1, 1)], -1)  # (B, k, depth)
        sees = torch.zeros((big, k, filled + k), dtype=torch.bool, device=dev)
        sees[:, :, : prompt_keys.shape[1]] = prompt_keys[:, None, :]
        sees.scatter_(2, lineage, True)
        tree_mask = torch.zeros(sees.shape, dtype=mask_dtype, device=dev).masked_fill_(
            ~sees, torch.finfo(mask_dtype).min
        )[:, None]  # (B, 1, k, keys): additive, as eager and sdpa attention both take it
        out = model(input_ids=tokens, attention_mask=tree_mask, position_ids=(first_pos + depth - 1).expand(-1, k),
                    past_key_values=cache, use_cache=True)
        cache, filled = out.past_key_values, filled + k
        logp = torch.log_softmax(out.logits.float(), -1)[..., sid_ids[depth]]  # (B, k, K)
        allowed = additive(masks.allowed(codes.reshape(big * k, depth).cpu().numpy()), dev).reshape(big, k, n_codes)
        cand = (scores[..., None] + logp + allowed).reshape(big, k * n_codes)
        new_k = min(width, cand.shape[1])
        scores, flat = cand.topk(new_k, dim=-1)  # (B, new_k)
        parent, code = flat // n_codes, flat % n_codes
        codes = torch.cat([codes.gather(1, parent[..., None].expand(-1, -1, depth)), code[..., None]], -1)
        ancestors = lineage.gather(1, parent[..., None].expand(-1, -1, depth))
        k = new_k
    return codes[:, :num_return].cpu(), scores[:, :num_return].float().cpu()


def _hf_beam_search(
    glm: GlideLM, batch, masks: TrieMasks | BatchMasks, num_beams: int, num_return: int
) -> tuple[torch.Tensor, torch.Tensor]:
    """``model.generate`` beam search with the trie LogitsProcessor (reference engine)."""
    levels = glm.vocab.levels
    beam_flags = {"length_penalty": 0.0, "early_stopping": True} if num_beams > 1 else {}
    gen_cfg = GenerationConfig(
        max_new_tokens=levels,
        min_new_tokens=levels,
        num_beams=num_beams,
        num_return_sequences=num_return,
        do_sample=False,
        pad_token_id=glm.tokenizer.pad_token_id,
        eos_token_id=glm.vocab.eos_id,
        return_dict_in_generate=True,
        output_scores=True,
        output_logits=num_beams == 1,
        **beam_flags,
    )
    proc = TrieLogitsProcessor(masks, glm.vocab, glm.vocab.eos_id)
    out = glm.model.generate(
        inputs_embeds=glm.embed(batch),
        attention_mask=batch.attention_mask,
        generation_config=gen_cfg,
        logits_processor=LogitsProcessorList([proc]),
    )
    seqs = out.sequences[:, -levels:].cpu()
    scores = out.sequences_scores.float().cpu() if num_beams > 1 else _greedy_scores(out, levels)
    big = batch.input_ids.shape[0]
    return proc.code_of[seqs].reshape(big, num_return, levels), scores.reshape(big, num_return)


def _greedy_scores(out, levels: int) -> torch.Tensor:
    # Greedy search reports raw logits per step (output_logits): full-vocabulary log-prob of each pick.
    steps = torch.stack([torch.log_softmax(s.float(), -1) for s in out.logits[-levels:]], 1)  # (B, M, V)
    picked = out.sequences[:, -levels:].to(steps.device)
    return steps.gather(2, picked[..., None]).squeeze(2).sum(1).cpu()


class HFBackend:
    """GenerationBackend on a ``transformers`` model (built by glide_model/llm/serving_model.py for serving)."""

    def __init__(
        self,
        glm: GlideLM,
        trie: SidTrie,
        *,
        num_beams: int = 30,
        num_return: int | None = None,
        batch_size: int = 16,
        engine: str = "sid",
    ):
        self.glm = glm
        self.trie = trie
        self.masks = TrieMasks(trie)
        self.num_beams = num_beams
        self.num_return = num_return or num_beams
        self.batch_size = batch_size
        self.engine = engine

    @classmethod
    def from_checkpoint(
        cls,
        path: str | Path,
        trie: SidTrie,
        *,
        quantizer_version: str | None,
        catalog_version: str | None,
        allow_catalog_update: bool = False,
        device: str | torch.device | None = "auto",
        dtype: str | None = None,
        **kwargs,
    ) -> HFBackend:
        """Serving backend from a checkpoint or merged export: version-checked, LoRA merged, eval mode,
        in the export's serving dtype (``dtype`` overrides it)."""
        glm, manifest = load_for_serving(path, device=device, dtype=dtype)
        check_compatible(
            manifest,
            quantizer_version=quantizer_version,
            catalog_version=catalog_version,
            allow_catalog_update=allow_catalog_update,
        )
        return cls(glm, trie, **kwargs)

    def generate(self, requests: Sequence[RecRequest]) -> list[list[Candidate]]:
        if not requests:
            return []
        items = self.glm.prompts.encode_rec([r.as_row() for r in requests], with_target=False)
        return constrained_beam_search(
            self.glm,
            items,
            self.trie,
            cf=[r.cf_embedding for r in requests],
            num_beams=self.num_beams,
            num_return=self.num_return,
            batch_size=self.batch_size,
            engine=self.engine,
            masks=self.masks,
            allowed=[r.allowed for r in requests] if any(r.allowed is not None for r in requests) else None,
        )

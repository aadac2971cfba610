"""Trie-constrained sampling over Semantic IDs: the decoding ablation beside beam search (paper §5.2.5, Table 3).

Each of ``num_samples`` draws writes one SID, level by level, from the model's next-code
distribution restricted to the codes the catalog trie allows after the draw's prefix, tempered by
``temperature`` and cut to the smallest top-p nucleus. The draws are then deduplicated into a
ranked list: most often drawn first, ties by the model's own (untempered, full-vocabulary)
log-probability of the whole SID, which is also the score returned. ``temperature=0`` is greedy
decoding: the single most likely allowed code at every level (the same SID as a 1-beam search).

Like the beam engine in glide_model/llm/decoding.py, the prompt is prefilled once per request and
the draws decode as a tree in the prompt's own KV-cache row (a 4D mask lets each draw see the
prompt and its own earlier codes only), so N draws cost about what N beams do.
"""

from __future__ import annotations

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch

from glide_model.llm.decoding import TrieMasks, additive, prefill, prompt_batches
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import Encoded
from glide_model.serving.contract import Candidate
from glide_model.sids.trie import SidTrie


@dataclass(frozen=True)
class SamplingConfig:
    num_samples: int = 30
    temperature: float = 1.0  # 0: greedy (argmax at every level; one draw is enough)
    top_p: float = 1.0  # nucleus: keep the most likely codes whose mass first reaches top_p
    seed: int = 0

    def __post_init__(self) -> None:
        if self.num_samples < 1 or self.temperature < 0 or not 0 < self.top_p <= 1:
            raise ValueError(f"bad sampling config {self}: num_samples >= 1, temperature >= 0, 0 < top_p <= 1")

    @property
    def greedy(self) -> bool:
        return self.temperature == 0


def nucleus_probs(logp: torch.Tensor, temperature: float, top_p: float) -> torch.Tensor:
    """(..., K) log-probs (-inf = not allowed) -> the tempered, top-p-truncated sampling distribution."""
    probs = torch.softmax(logp / temperature, dim=-1)
    if top_p >= 1:
        return probs
    sorted_p, order = probs.sort(dim=-1, descending=True)
    before = sorted_p.cumsum(-1) - sorted_p  # mass of the codes ranked above each one
    keep_sorted = before < top_p  # the most likely code always stays (its "before" is 0)
    keep = torch.zeros_like(keep_sorted).scatter(-1, order, keep_sorted)
    probs = probs * keep
    return probs / probs.sum(-1, keepdim=True)


def _pick(logp: torch.Tensor, cfg: SamplingConfig, gen: torch.Generator) -> torch.Tensor:
    """(R, K) masked log-probs -> (R,) one code per row."""
    if cfg.greedy:
        return logp.argmax(-1)
    probs = nucleus_probs(logp.float().cpu(), cfg.temperature, cfg.top_p)
    return torch.multinomial(probs, 1, generator=gen).squeeze(-1).to(logp.device)


def _sid_sample(glm: GlideLM, batch, masks: TrieMasks, draws: int, cfg: SamplingConfig,
                gen: torch.Generator) -> tuple[torch.Tensor, torch.Tensor]:
    """(B, draws, M) sampled SIDs and (B, draws) their untempered log-probabilities."""
    model, vocab = glm.model, glm.vocab
    dev = batch.input_ids.device
    sid_ids = torch.from_numpy(vocab.sid_ids).to(dev)
    big, levels, n_codes = batch.input_ids.shape[0], vocab.levels, vocab.codebook_size
    attn = batch.attention_mask
    cache, pos, logp = prefill(glm, batch, sid_ids[0])
    logp = logp + additive(masks.allowed(np.empty((big, 0), dtype=np.int64)), dev)  # (B, K)
    logp = logp[:, None, :].expand(big, draws, n_codes).reshape(big * draws, n_codes)
    code = _pick(logp, cfg, gen)
    scores = logp.gather(1, code[:, None]).reshape(big, draws)
    codes = code.reshape(big, draws, 1)
    mask_dtype = next(model.parameters()).dtype
    prompt_keys = attn.bool()
    filled = attn.shape[1]
    ancestors = torch.empty((big, draws, 0), dtype=torch.long, device=dev)
    first_pos = pos[:, -1:] + 1
    for depth in range(1, levels):
        tokens = sid_ids[depth - 1, codes[..., -1]]  # (B, draws)
        own = torch.arange(filled, filled + draws, device=dev)
        lineage = torch.cat([ancestors, own[None, :, None].expand(big, -1, 1)], -1)
        sees = torch.zeros((big, draws, filled + draws), dtype=torch.bool, device=dev)
        sees[:, :, : prompt_keys.shape[1]] = prompt_keys[:, None, :]
        sees.scatter_(2, lineage, True)
        tree_mask = torch.zeros(sees.shape, dtype=mask_dtype, device=dev).masked_fill_(
            ~sees, torch.finfo(mask_dtype).min)[:, None]
        out = model(input_ids=tokens, attention_mask=tree_mask, position_ids=(first_pos + depth - 1).expand(-1, draws),
                    past_key_values=cache, use_cache=True)
        cache, filled, ancestors = out.past_key_values, filled + draws, lineage
        logp = torch.log_softmax(out.logits.float(), -1)[..., sid_ids[depth]]  # (B, draws, K)
        allowed = additive(masks.allowed(codes.reshape(big * draws, depth).cpu().numpy()), dev)
        logp = (logp.reshape(big * draws, n_codes) + allowed)
        code = _pick(logp, cfg, gen)
        scores = scores + logp.gather(1, code[:, None]).reshape(big, draws)
        codes = torch.cat([codes, code.reshape(big, draws, 1)], -1)
    return codes.cpu(), scores.cpu()


def rank_draws(codes: Sequence[Sequence[int]], scores: Sequence[float], trie: SidTrie) -> list[Candidate]:
    """Distinct catalog SIDs of one request's draws: most drawn first, then higher log-probability."""
    count: Counter[tuple[int, ...]] = Counter()
    best: dict[tuple[int, ...], float] = {}
    for c, s in zip(codes, scores):
        c = tuple(int(x) for x in c)
        if not np.isfinite(s) or c not in trie:
            continue
        count[c] += 1
        best[c] = max(best.get(c, -np.inf), float(s))
    return sorted(((c, best[c]) for c in count), key=lambda cs: (-count[cs[0]], -cs[1]))


@torch.no_grad()
def constrained_sample(glm: GlideLM, items: Sequence[Encoded], trie: SidTrie, cfg: SamplingConfig = SamplingConfig(),
                       *, cf: Sequence[np.ndarray | None] | None = None, batch_size: int = 16,
                       masks: TrieMasks | None = None) -> list[list[Candidate]]:
    """Per prompt, the distinct trie-valid SIDs of ``cfg.num_samples`` draws (one for greedy), ranked."""
    if trie.levels != glm.vocab.levels or trie.codebook_size != glm.vocab.codebook_size:
        raise ValueError(f"catalog trie is {trie.levels}x{trie.codebook_size} but the model speaks "
                         f"{glm.vocab.levels}x{glm.vocab.codebook_size} SIDs")
    masks = masks if masks is not None and masks.trie is trie else TrieMasks(trie)
    draws = 1 if cfg.greedy else cfg.num_samples
    gen = torch.Generator().manual_seed(cfg.seed)
    was_training = glm.model.training
    glm.eval()
    results: list[list[Candidate]] = []
    try:
        for _start, _chunk, batch in prompt_batches(glm, items, cf, batch_size):
            codes, scores = _sid_sample(glm, batch, masks, draws, cfg, gen)
            results += [rank_draws(c, s, trie) for c, s in zip(codes.tolist(), scores.tolist())]
    finally:
        glm.train(was_training)
    return results

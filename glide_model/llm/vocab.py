"""Vocabulary extension: M x K Semantic-ID tokens plus the soft-prompt placeholder.

Added tokens (all "special", so the tokenizer never splits them and free text cannot fake them
once :func:`sanitize_text` ran):
- ``<SID_m=j>`` for every level m in 1..M and code j in 0..K-1 (``glide_model.sids.tokens``);
- ``<user_emb>``: the placeholder whose input embedding is replaced by the projected CF user
  embedding (soft prompt, paper §4.1.2/§4.4.3).

The familiarity control is *not* a new token: the task instruction uses the plain words
"familiar" / "unfamiliar" (the paper's own template, Fig. 2). Their pretrained embeddings are
already distinct and meaningful, whereas new control tokens would start as near-identical
mean vectors that no later stage trains (stage 1 sees only grounding data, and stage 2 and
instruction tuning freeze all embeddings), leaving LoRA to tell two almost equal inputs apart.

Initialisation (Hewitt 2021, "Initializing New Word Embeddings for Pretrained Language Models"):
each new row is the mean of the pretrained rows plus small Gaussian noise. Near the mean, a new
token's logit is close to the average logit, so adding 1k tokens barely moves the pretrained
next-token distribution (a random row could outrank every real word). We add two noise terms,
both scaled by the per-dimension std of the pretrained rows: one shared by all tokens of a level
(so the M namespaces start apart) and one per token (to break symmetry within a level).

Then, when the catalog is at hand (training does this; :func:`init_sid_rows_from_text`), each
``<SID_m=j>`` row gets a semantic direction: the mean of the text vectors (mean pretrained token
embedding of title + topic + description) of the episodes whose level-m code is j, centred over
the catalog and scaled like the pretrained rows' spread (buckets of unrelated episodes average
out). The frozen LM can then read history SIDs and score target SIDs by what their episodes are
about before any training step, which is where a CPU-sized budget (a few hundred steps) gains the
most; unused codes keep the mean-plus-noise row.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from dataclasses import dataclass

import numpy as np
import torch
from tokenizers import AddedToken
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from glide_model.sids.tokens import all_sid_tokens

USER_EMB_TOKEN = "<user_emb>"

_RESERVED_RE = re.compile(r"<(SID_\d+=\d+|user_emb)>")


class UnknownSidError(ValueError):
    """A SID does not fit the model's vocabulary (wrong number of levels or code >= K)."""


def sanitize_text(text: str) -> str:
    """Break reserved token spellings in free text (``<SID_1=3>`` -> ``< SID_1=3>``) so text cannot inject them."""
    return _RESERVED_RE.sub(lambda m: "< " + m.group(1) + ">", text)


@dataclass(frozen=True)
class SidVocab:
    """Token ids of the added vocabulary; rebuilt from any extended tokenizer with :meth:`from_tokenizer`."""

    levels: int
    codebook_size: int
    sid_ids: np.ndarray  # (M, K) int64: sid_ids[m-1, j] = id of <SID_m=j>
    placeholder_id: int
    eos_id: int
    vocab_size: int

    @classmethod
    def from_tokenizer(cls, tokenizer: PreTrainedTokenizerBase, levels: int, codebook_size: int) -> SidVocab:
        tokens = all_sid_tokens(levels, codebook_size) + [USER_EMB_TOKEN]
        vocab = tokenizer.get_vocab()
        missing = [t for t in tokens if t not in vocab]
        if missing:
            raise UnknownSidError(
                f"tokenizer lacks {len(missing)} GLIDE tokens (first: {missing[0]}): call extend_vocab "
                f"with levels={levels}, codebook_size={codebook_size}, or load the matching checkpoint"
            )
        ids = np.array([vocab[t] for t in tokens[:-1]], dtype=np.int64).reshape(levels, codebook_size)
        if tokenizer.eos_token_id is None:
            raise ValueError("tokenizer has no eos token; GLIDE targets end with eos")
        return cls(levels, codebook_size, ids, vocab[USER_EMB_TOKEN], int(tokenizer.eos_token_id), len(tokenizer))

    @property
    def new_token_ids(self) -> list[int]:
        """Every id this extension added (SIDs level-major, then the placeholder)."""
        return self.sid_ids.reshape(-1).tolist() + [self.placeholder_id]

    @property
    def num_added(self) -> int:
        return self.levels * self.codebook_size + 1

    def check_codes(self, codes: Sequence[int], what: str = "SID") -> tuple[int, ...]:
        """Validate one SID against this vocabulary; returns it as a tuple of ints."""
        codes = tuple(int(c) for c in codes)
        if len(codes) != self.levels or any(c < 0 or c >= self.codebook_size for c in codes):
            raise UnknownSidError(
                f"{what} {codes} is not a {self.levels}-level SID with codes in [0, {self.codebook_size}): "
                "the data was built with a different quantizer than the model; rebuild the examples "
                "with the model's SID assignments (or retrain the model on the new quantizer)"
            )
        return codes

    def codes_to_ids(self, codes: Sequence[int], what: str = "SID") -> list[int]:
        codes = self.check_codes(codes, what)
        return [int(self.sid_ids[m, c]) for m, c in enumerate(codes)]

    def code_lookup(self) -> torch.Tensor:
        """(vocab_size,) int64 tensor: code of a SID token id at its own level, -1 for every other id."""
        lut = torch.full((self.vocab_size,), -1, dtype=torch.long)
        lut[torch.from_numpy(self.sid_ids.reshape(-1))] = torch.arange(self.codebook_size).repeat(self.levels)
        return lut

    def ids_to_codes(self, ids: Iterable[int]) -> tuple[int, ...]:
        """Inverse of :meth:`codes_to_ids`; raises when a token is not the SID token of its level."""
        ids = [int(i) for i in ids]
        codes = []
        for m, tid in enumerate(ids):
            hits = np.nonzero(self.sid_ids[m] == tid)[0] if m < self.levels else []
            if len(hits) != 1:
                raise UnknownSidError(f"token id {tid} is not a level-{m + 1} SID token")
            codes.append(int(hits[0]))
        return tuple(codes)


def _added(token: str) -> AddedToken:
    return AddedToken(token, special=True, normalized=False, single_word=False, lstrip=False, rstrip=False)


@torch.no_grad()
def extend_vocab(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    levels: int,
    codebook_size: int,
    *,
    noise_scale: float = 0.1,
    seed: int = 0,
) -> SidVocab:
    """Add the M*K SID tokens + ``<user_emb>`` to tokenizer and model; old rows stay bit-identical."""
    tokens = all_sid_tokens(levels, codebook_size) + [USER_EMB_TOKEN]
    vocab = tokenizer.get_vocab()
    present = [t for t in tokens if t in vocab]
    if present:
        if len(present) == len(tokens) and model.get_input_embeddings().num_embeddings >= len(tokenizer):
            return SidVocab.from_tokenizer(tokenizer, levels, codebook_size)  # already extended
        raise UnknownSidError(
            f"tokenizer already holds {len(present)} of the {len(tokens)} GLIDE tokens: it was extended "
            "for a different SID shape; start from the base tokenizer"
        )
    old_len = len(tokenizer)
    tokenizer.add_tokens([_added(t) for t in tokens], special_tokens=True)
    vocab_obj = SidVocab.from_tokenizer(tokenizer, levels, codebook_size)
    new_ids = torch.tensor(vocab_obj.new_token_ids)

    emb = model.get_input_embeddings()
    if len(tokenizer) > emb.num_embeddings:
        # mean_resizing=False: we initialise the new rows ourselves (per-level noise), below.
        model.resize_token_embeddings(len(tokenizer), mean_resizing=False)
    gen = torch.Generator().manual_seed(seed)
    out = model.get_output_embeddings()
    tied = out is None or out.weight is model.get_input_embeddings().weight
    _init_rows(model.get_input_embeddings().weight, new_ids, old_len, levels, codebook_size, noise_scale, gen)
    if not tied:
        _init_rows(out.weight, new_ids, old_len, levels, codebook_size, noise_scale, gen)
    model.config.vocab_size = model.get_input_embeddings().num_embeddings
    return vocab_obj


def _init_rows(
    weight: torch.Tensor,
    new_ids: torch.Tensor,
    old_len: int,
    levels: int,
    codebook_size: int,
    noise_scale: float,
    gen: torch.Generator,
) -> None:
    old = weight[:old_len].float()
    mean, std = old.mean(0), old.std(0)
    n_new, dim = len(new_ids), weight.shape[1]
    level_of = torch.cat([torch.arange(levels).repeat_interleave(codebook_size), torch.tensor([levels])])
    level_noise = torch.randn(levels + 1, dim, generator=gen)[level_of]  # the placeholder is its own "level"
    token_noise = torch.randn(n_new, dim, generator=gen)
    rows = mean + noise_scale * std * (level_noise + token_noise) / 2**0.5
    weight[new_ids] = rows.to(weight.dtype)


@torch.no_grad()
def init_sid_rows_from_text(
    model: PreTrainedModel,
    tokenizer: PreTrainedTokenizerBase,
    vocab: SidVocab,
    texts: Sequence[str],
    codes: np.ndarray,
    weight: float = 1.0,
) -> dict[str, float]:
    """Add each SID token's catalog-text direction to its (mean + noise) row; returns init stats."""
    codes = np.asarray(codes, dtype=np.int64)
    if codes.ndim != 2 or codes.shape != (len(texts), vocab.levels):
        raise ValueError(f"codes must be (len(texts), {vocab.levels}); got {codes.shape} for {len(texts)} texts")
    if len(texts) == 0:
        raise ValueError("no catalog texts to initialise SID embeddings from")
    first_new = int(vocab.sid_ids.min())
    pieces = tokenizer(list(texts), add_special_tokens=False)["input_ids"]
    matrices = [model.get_input_embeddings().weight]
    out = model.get_output_embeddings()
    if out is not None and out.weight is not matrices[0]:
        matrices.append(out.weight)
    for w in matrices:
        old = w[:first_new].float()
        spread = (old - old.mean(0)).pow(2).mean().sqrt()
        text = torch.stack([old[torch.tensor(p or [0])].mean(0) for p in pieces])  # (N, D)
        text = text - text.mean(0)
        # One scale for every level: a bucket of alike episodes keeps most of a text vector's norm,
        # a bucket that mixes unrelated ones (deep residual levels) averages toward 0, so each level's
        # rows carry as much direction as its codes actually share.
        scale = weight * spread / text.pow(2).mean().sqrt().clamp(min=1e-8)
        used = 0
        for m in range(vocab.levels):
            idx = torch.from_numpy(codes[:, m]).to(w.device)
            sums = torch.zeros(vocab.codebook_size, w.shape[1], device=w.device).index_add_(0, idx, text)
            counts = torch.bincount(idx, minlength=vocab.codebook_size).float()
            have = counts > 0
            direction = sums[have] / counts[have, None] * scale
            rows = torch.from_numpy(vocab.sid_ids[m]).to(w.device)[have]
            w[rows] = (w[rows].float() + direction).to(w.dtype)
            used += int(have.sum())
    return {"sid_rows_from_text": float(used), "texts": float(len(texts))}

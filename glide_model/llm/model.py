"""GlideLM: the backbone (plain or PEFT-wrapped) + tokenizer + SID vocabulary + soft-prompt projector.

Everything that turns token ids (+ CF embeddings) into the LM's ``inputs_embeds`` lives here, so
training, validation, grounding evaluation and serving feed the model the same way.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass

import numpy as np
import torch
from transformers import PreTrainedModel, PreTrainedTokenizerBase

from glide_model.llm.prompt import IGNORE_INDEX, Encoded, PromptBuilder
from glide_model.llm.soft_prompt import SoftPromptProjector, inject_soft_prompt
from glide_model.llm.vocab import SidVocab


@dataclass
class Batch:
    input_ids: torch.Tensor  # (B, T)
    attention_mask: torch.Tensor  # (B, T)
    labels: torch.Tensor | None  # (B, T) or None at inference
    cf: torch.Tensor | None  # (B, d_cf) or None when the variant has no soft prompt
    has_cf: torch.Tensor | None  # (B,) bool
    left_padded: bool = False
    # Tokens every row starts with (system prompt, chat header), run once for the whole batch;
    # input_ids then hold only what follows them. None: rows are whole.
    prefix_ids: torch.Tensor | None = None  # (P,)

    def to(self, device: torch.device) -> Batch:
        def mv(t):
            return None if t is None else t.to(device, non_blocking=True)

        return Batch(mv(self.input_ids), mv(self.attention_mask), mv(self.labels), mv(self.cf), mv(self.has_cf),
                     self.left_padded, mv(self.prefix_ids))

    @property
    def position_ids(self) -> torch.Tensor:
        """Positions that start at 0 on each row's first real token (left padding shifts them)."""
        return (self.attention_mask.cumsum(-1) - 1).clamp(min=0)

    @property
    def num_tokens(self) -> int:
        """Prompt + target tokens of every row (a shared prefix counts once per row, as it would unshared)."""
        shared = 0 if self.prefix_ids is None else len(self.prefix_ids) * self.input_ids.shape[0]
        return int(self.attention_mask.sum()) + shared


MIN_SHARED_PREFIX = 8  # below this, a separate prefix forward costs more than it saves


def shared_prefix_length(items: Sequence[Encoded], stop_token: int | None = None) -> int:
    """Length of the token prefix all items share, ending before any labelled token and before
    ``stop_token`` (the soft-prompt placeholder, which differs per row once injected); 0 if short."""
    first = items[0].input_ids
    n = min(len(e.input_ids) for e in items) - 1  # every row keeps at least one token of its own
    for e in items:
        if e.labels is not None:
            n = min(n, next((i for i, v in enumerate(e.labels) if v != IGNORE_INDEX), n))
    if stop_token is not None and stop_token in first[:n]:
        n = first.index(stop_token)
    for e in items[1:]:
        ids = e.input_ids
        i = 0
        while i < n and ids[i] == first[i]:
            i += 1
        n = i
    return n if n >= MIN_SHARED_PREFIX and len(items) > 1 else 0


def collate(
    items: Sequence[Encoded],
    pad_id: int,
    *,
    cf: Sequence[np.ndarray | None] | None = None,
    d_cf: int | None = None,
    left_pad: bool = False,
    shared_prefix: int = 0,
) -> Batch:
    """Pad to the longest item (right for training, left for generation) and stack CF vectors.

    ``shared_prefix`` = P > 0 (left padding only; see :func:`shared_prefix_length`): the first P
    tokens, common to every item, go to ``prefix_ids`` and the rows hold the rest."""
    prefix = None
    if shared_prefix:
        if not left_pad:
            raise ValueError("a shared prefix needs left padding (rows continue right after it)")
        prefix = torch.tensor(items[0].input_ids[:shared_prefix])
        items = [Encoded(e.input_ids[shared_prefix:], None if e.labels is None else e.labels[shared_prefix:])
                 for e in items]
    width = max(len(e.input_ids) for e in items)
    ids = torch.full((len(items), width), pad_id, dtype=torch.long)
    attn = torch.zeros((len(items), width), dtype=torch.long)
    has_labels = items[0].labels is not None
    labels = torch.full((len(items), width), IGNORE_INDEX, dtype=torch.long) if has_labels else None
    for i, e in enumerate(items):
        n = len(e.input_ids)
        sl = slice(width - n, width) if left_pad else slice(0, n)
        ids[i, sl] = torch.tensor(e.input_ids)
        attn[i, sl] = 1
        if labels is not None:
            labels[i, sl] = torch.tensor(e.labels)
    cf_t = has = None
    if cf is not None:
        if d_cf is None:
            raise ValueError("collate needs d_cf to stack CF embeddings")
        cf_t = torch.zeros((len(items), d_cf), dtype=torch.float32)
        has = torch.zeros(len(items), dtype=torch.bool)
        for i, v in enumerate(cf):
            if v is None:
                continue
            v = np.asarray(v, dtype=np.float32).reshape(-1)
            if v.shape[0] != d_cf:
                raise ValueError(f"CF embedding of dim {v.shape[0]} where the model expects {d_cf}")
            if not np.isfinite(v).all():
                raise ValueError("CF embedding holds NaN/inf; fix the CF model output or pass None")
            cf_t[i] = torch.from_numpy(v)
            has[i] = True
    return Batch(ids, attn, labels, cf_t, has, left_pad, prefix)


@dataclass
class GlideLM:
    model: PreTrainedModel  # or a peft.PeftModel wrapping one
    tokenizer: PreTrainedTokenizerBase
    vocab: SidVocab
    prompts: PromptBuilder
    projector: SoftPromptProjector | None

    @property
    def device(self) -> torch.device:
        return next(self.model.parameters()).device

    @property
    def uses_soft_prompt(self) -> bool:
        return self.prompts.variant.soft_prompt

    @property
    def d_cf(self) -> int | None:
        return self.projector.d_cf if self.projector is not None else None

    def embed(self, batch: Batch) -> torch.Tensor:
        """inputs_embeds for the batch; the soft prompt is injected when the batch carries CF vectors."""
        embeds = self.model.get_input_embeddings()(batch.input_ids)
        if batch.cf is None:
            if self.uses_soft_prompt and bool((batch.input_ids == self.vocab.placeholder_id).any()):
                raise ValueError(
                    "prompts hold the soft-prompt placeholder but the batch has no CF vectors: "
                    "pass cf=[...] (None entries get the learned default vector)"
                )
            return embeds
        if self.projector is None:
            raise ValueError("batch carries CF vectors but this model has no soft-prompt projector")
        vectors = self.projector(batch.cf, batch.has_cf)
        return inject_soft_prompt(embeds, batch.input_ids, vectors, self.vocab.placeholder_id)

    def collate(
        self, items: Sequence[Encoded], cf: Sequence[np.ndarray | None] | None = None, *, left_pad: bool = False,
        share_prefix: bool = False,
    ) -> Batch:
        """cf: one CF vector (or None) per recommendation prompt; leave it None for prompts without placeholder.
        share_prefix: run the tokens every item starts with once (left padding only)."""
        if not self.uses_soft_prompt:
            cf = None
        shared = shared_prefix_length(items, self.vocab.placeholder_id) if share_prefix and left_pad else 0
        return collate(items, self.tokenizer.pad_token_id, cf=cf, d_cf=self.d_cf, left_pad=left_pad,
                       shared_prefix=shared)

    def loss(self, batch: Batch) -> torch.Tensor:
        """Mean next-token loss over the labelled (target) tokens.

        Left-padded batches (what training uses) put every target at the end of its row, so the LM
        head runs only on the last positions: with a 50k-token vocabulary the head over a whole
        100-token prompt costs about a fifth of the forward pass and most of its memory.
        """
        if not batch.left_padded:
            out = self.model(inputs_embeds=self.embed(batch), attention_mask=batch.attention_mask, labels=batch.labels)
            return out.loss
        labelled = (batch.labels != IGNORE_INDEX).any(0).nonzero()
        if len(labelled) == 0:
            raise ValueError("batch has no labelled token")
        keep = batch.labels.shape[1] - int(labelled[0]) + 1  # the labelled tail + the position before it
        attention_mask, position_ids, past = batch.attention_mask, batch.position_ids, None
        if batch.prefix_ids is not None:
            # The shared prefix runs once; its keys/values are fanned out to every row (index_select:
            # gradients from all rows flow back into the one prefix pass). Rows sit after it, their
            # left padding between prefix and row, masked out.
            rows, n_prefix = batch.input_ids.shape[0], len(batch.prefix_ids)
            past = self.model(input_ids=batch.prefix_ids[None], use_cache=True, logits_to_keep=1).past_key_values
            past.reorder_cache(torch.zeros(rows, dtype=torch.long, device=batch.input_ids.device))
            attention_mask = torch.cat([attention_mask.new_ones(rows, n_prefix), attention_mask], 1)
            position_ids = position_ids + n_prefix
        out = self.model(
            inputs_embeds=self.embed(batch), attention_mask=attention_mask,
            position_ids=position_ids, logits_to_keep=keep, past_key_values=past,
        )
        logits = out.logits[:, :-1].float()
        labels = batch.labels[:, -(keep - 1):]
        return torch.nn.functional.cross_entropy(logits.reshape(-1, logits.shape[-1]), labels.reshape(-1),
                                                 ignore_index=IGNORE_INDEX)

    def step_fn(self, items: Sequence[Encoded], cf: Sequence[np.ndarray | None] | None = None,
                share_prefix: bool = True):
        """A trainer step function: batch indices -> (loss on those items, tokens in the batch).

        share_prefix: the system prompt and chat header (~36 of ~100 tokens of a GLIDE prompt) are
        computed once per batch instead of once per row (same loss and gradients, up to float error)."""

        def step(indices: list[int]) -> tuple[torch.Tensor, int]:
            batch = self.collate(
                [items[i] for i in indices], [cf[i] for i in indices] if cf is not None else None, left_pad=True,
                share_prefix=share_prefix,
            )
            batch = batch.to(self.device)
            return self.loss(batch), batch.num_tokens

        return step

    @torch.no_grad()
    def mean_loss(
        self, items: Sequence[Encoded], cf: Sequence[np.ndarray | None] | None = None, batch_size: int = 32
    ) -> float:
        """Target-token-weighted mean loss over items (no gradient, eval mode)."""
        was_training = self.model.training
        self.eval()
        total, count = 0.0, 0
        try:
            for s in range(0, len(items), batch_size):
                chunk = list(items[s : s + batch_size])
                batch = self.collate(
                    chunk, list(cf[s : s + batch_size]) if cf is not None else None, left_pad=True
                ).to(self.device)
                n = int((batch.labels[:, 1:] != IGNORE_INDEX).sum())
                total += float(self.loss(batch)) * n
                count += n
        finally:
            self.train(was_training)
        return total / max(count, 1)

    def train(self, mode: bool = True) -> None:
        self.model.train(mode)
        if self.projector is not None:
            self.projector.train(mode)

    def eval(self) -> None:
        self.train(False)

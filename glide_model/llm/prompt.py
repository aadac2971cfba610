"""GLIDE prompts (paper Fig. 2) and the grounding prompts (§4.2), rendered and tokenized.

Recommendation prompt, in order:
  [system]      role (podcast recommender) and output format (one Semantic ID of M tokens)
  [user ctx]    ``<user_emb>`` soft-prompt placeholder + light text metadata (locale, affinity topics)
  [history]     recent episodes as SIDs, oldest first
  [task]        "Recommend a familiar|an unfamiliar episode aligned with user interests."
  -> target     ``<SID_1=a><SID_2=b>...<SID_M=z>`` + eos (the only tokens that carry loss)

Models with a chat template get system + user messages and the assistant turn as the target;
others get the same text joined by newlines. Prompt and target are tokenized separately and
concatenated, so the target is always exactly M SID tokens + eos.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace

from transformers import PreTrainedTokenizerBase

from glide_model.llm.vocab import USER_EMB_TOKEN, SidVocab, sanitize_text
from glide_model.sids.tokens import format_sid

MODES = ("familiar", "unfamiliar")
IGNORE_INDEX = -100


@dataclass(frozen=True)
class PromptVariant:
    """Which conditioning signals the prompt carries (paper Table 1 / §5.2.3 ablations)."""

    name: str
    text_context: bool  # locale + affinity topics as text
    soft_prompt: bool  # <user_emb> replaced by the projected CF embedding
    multitask: bool  # familiarity control word in the task instruction

    @classmethod
    def parse(cls, name: str) -> PromptVariant:
        """``sid_only`` | ``sid_text`` | ``glide``, each optionally suffixed ``_single_task``."""
        base, single = (name[: -len("_single_task")], True) if name.endswith("_single_task") else (name, False)
        if base not in VARIANTS:
            raise ValueError(f"unknown prompt variant {name!r}; use one of {sorted(VARIANTS)} (+ '_single_task')")
        v = VARIANTS[base]
        return replace(v, name=name, multitask=False) if single else v


SID_ONLY = PromptVariant("sid_only", text_context=False, soft_prompt=False, multitask=True)
SID_TEXT = PromptVariant("sid_text", text_context=True, soft_prompt=False, multitask=True)
GLIDE = PromptVariant("glide", text_context=True, soft_prompt=True, multitask=True)
VARIANTS = {v.name: v for v in (SID_ONLY, SID_TEXT, GLIDE)}


@dataclass(frozen=True)
class Encoded:
    """One tokenized example: labels are IGNORE_INDEX except on the target (None at inference)."""

    input_ids: list[int]
    labels: list[int] | None


class PromptBuilder:
    """Renders and tokenizes every GLIDE prompt for one tokenizer + vocabulary + variant."""

    def __init__(
        self,
        tokenizer: PreTrainedTokenizerBase,
        vocab: SidVocab,
        variant: PromptVariant = GLIDE,
        *,
        max_history: int = 20,
        max_text_chars: int = 300,
    ):
        self.tokenizer = tokenizer
        self.vocab = vocab
        self.variant = variant
        self.max_history = max_history
        self.max_text_chars = max_text_chars
        self.use_chat = bool(getattr(tokenizer, "chat_template", None))
        self.system = (
            f"You are a podcast recommender. Answer with the Semantic ID ({vocab.levels} tokens) of one episode."
        )

    # --- text --------------------------------------------------------------------------------

    def _render(self, user: str) -> str:
        if self.use_chat:
            messages = [{"role": "system", "content": self.system}, {"role": "user", "content": user}]
            return self.tokenizer.apply_chat_template(messages, tokenize=False, add_generation_prompt=True)
        return f"{self.system}\n{user}\nAnswer:"

    def rec_user_text(
        self,
        history_codes: Sequence[Sequence[int]],
        mode: str | None,
        locale: str | None = None,
        affinity_topics: Sequence[str] = (),
        history_titles: Sequence[str] | None = None,
    ) -> str:
        """The user message of the recommendation prompt (Fig. 2 order).

        ``history_titles`` (one per history item, aligned with ``history_codes``): with a text variant,
        each history SID is followed by its item's title, the paper's SID+Text (episodes' own text)."""
        v = self.variant
        lines = []
        ctx = []
        if v.soft_prompt:
            ctx.append(USER_EMB_TOKEN)
        if v.text_context:
            if isinstance(locale, str) and locale.strip():  # None/NaN: locale unknown
                ctx.append(f"Locale: {sanitize_text(locale)}.")
            topics = [sanitize_text(str(t)) for t in affinity_topics if str(t).strip()]
            if topics:
                ctx.append(f"Interests: {', '.join(topics)}.")
        if ctx:
            lines.append("User context: " + " ".join(ctx))
        recent = list(history_codes)[-self.max_history :] if self.max_history > 0 else []
        titles = None
        if v.text_context and history_titles is not None:
            if len(history_titles) != len(history_codes):
                raise ValueError(f"{len(history_titles)} history titles for {len(history_codes)} history SIDs")
            titles = list(history_titles)[len(history_codes) - len(recent):]
        if recent and titles is not None:
            played = "; ".join(f"{format_sid(self.vocab.check_codes(c, 'history SID'))} {sanitize_text(str(t)).strip()}"
                               for c, t in zip(recent, titles))
            lines.append(f"Recently played, oldest first: {played}")
        elif recent:
            sids = "".join(format_sid(self.vocab.check_codes(c, "history SID")) for c in recent)
            lines.append(f"Recently played, oldest first: {sids}")
        else:
            lines.append("Recently played: nothing yet.")
        lines.append(self.task_instruction(mode))
        return "\n".join(lines)

    def task_instruction(self, mode: str | None) -> str:
        if not self.variant.multitask:
            return "Recommend an episode aligned with user interests."
        if mode not in MODES:
            raise ValueError(f"familiarity mode must be one of {MODES} for a multi-task variant, got {mode!r}")
        article = "an" if mode == "unfamiliar" else "a"
        return f"Recommend {article} {mode} episode aligned with user interests."

    def target_text(self, codes: Sequence[int]) -> str:
        return format_sid(self.vocab.check_codes(codes, "target SID")) + self.tokenizer.eos_token

    def episode_text(self, title: str, description: str = "", topic: str | None = None) -> str:
        """Free-text descriptor of an episode, truncated to max_text_chars."""
        parts = [str(title).strip()]
        if topic:
            parts.append(f"Topic: {str(topic).strip()}.")
        if description and str(description).strip():
            parts.append(str(description).strip())
        text = " ".join(p for p in parts if p)
        if len(text) > self.max_text_chars:
            text = text[: self.max_text_chars].rsplit(" ", 1)[0] + "..."
        return sanitize_text(text)

    # --- tokens ------------------------------------------------------------------------------

    def _encode(self, prompts: list[str], targets: list[str] | None) -> list[Encoded]:
        tok = self.tokenizer
        # Chat templates carry their own bos; plain prompts get the tokenizer's default specials.
        p_ids = tok(prompts, add_special_tokens=not self.use_chat)["input_ids"]
        if targets is None:
            return [Encoded(list(p), None) for p in p_ids]
        t_ids = tok(targets, add_special_tokens=False)["input_ids"]
        return [Encoded(list(p) + list(t), [IGNORE_INDEX] * len(p) + list(t)) for p, t in zip(p_ids, t_ids)]

    def encode_rec(
        self,
        rows: Sequence[dict],
        *,
        with_target: bool = True,
    ) -> list[Encoded]:
        """Rows with history_codes, mode, locale, affinity_topics[, history_titles] (+ target_codes when with_target)."""
        prompts = [
            self._render(
                self.rec_user_text(
                    r.get("history_codes") or (),
                    r.get("mode"),
                    r.get("locale"),
                    r.get("affinity_topics") if r.get("affinity_topics") is not None else (),
                    r.get("history_titles"),
                )
            )
            for r in rows
        ]
        targets = [self.target_text(r["target_codes"]) for r in rows] if with_target else None
        return self._encode(prompts, targets)

    def sid_to_text_user(self, codes: Sequence[int]) -> str:
        return f"Describe the podcast episode {format_sid(self.vocab.check_codes(codes))}."

    def text_to_sid_user(self, text: str) -> str:
        return f"Which Semantic ID belongs to this podcast episode? {text}"

    def encode_sid_to_text(self, codes: Sequence[Sequence[int]], texts: Sequence[str]) -> list[Encoded]:
        prompts = [self._render(self.sid_to_text_user(c)) for c in codes]
        return self._encode(prompts, [t + self.tokenizer.eos_token for t in texts])

    def encode_text_to_sid(
        self, texts: Sequence[str], codes: Sequence[Sequence[int]] | None = None
    ) -> list[Encoded]:
        prompts = [self._render(self.text_to_sid_user(t)) for t in texts]
        targets = [self.target_text(c) for c in codes] if codes is not None else None
        return self._encode(prompts, targets)

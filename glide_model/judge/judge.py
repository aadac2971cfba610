"""The judge: prompt -> backend -> schema check, one retry, counted failures, cached answers.

It never raises on a bad answer or a failing backend: the judgement carries ``scores=None`` and the
reason, and :class:`JudgeStats` counts it, so a run over hundreds of pairs reports how many went
wrong instead of dying on the first. Out-of-range numbers count as malformed (they break the scale).
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field

from glide_model.judge.backend import BackendError, ChatBackend, Messages
from glide_model.judge.cache import JudgeCache, cache_key
from glide_model.judge.prompt import (
    EPISODE_FIELDS, LIST_FIELDS, PROMPT_VERSION, AnswerError, EpisodeCard, episode_messages, list_messages,
    parse_scores, retry_messages, score_schema,
)


@dataclass
class Judgement:
    scores: dict[str, float] | None  # None: malformed after the retry, or the backend failed
    error: str | None = None
    attempts: int = 0  # backend calls made (0: answered from the cache)
    cached: bool = False

    @property
    def ok(self) -> bool:
        return self.scores is not None


@dataclass
class JudgeStats:
    judged: int = 0  # items answered (valid or not), cache hits included
    cached: int = 0
    retried: int = 0  # first answers that failed the schema check
    malformed: int = 0  # still invalid after the retry
    backend_errors: int = 0  # the backend itself failed (counted inside malformed too)
    calls: int = 0
    seconds: float = 0.0  # time spent in backend calls
    errors: dict[str, int] = field(default_factory=dict)  # reason -> count, for the report

    def to_record(self) -> dict:
        return asdict(self)


def _reason(error: str) -> str:
    """A short category for the report ("out of range", "missing field", ...)."""
    for key in ("out of range", "missing field", "not a number", "no JSON object", "empty answer", "backend"):
        if key in error:
            return key
    return "other"


class Judge:
    def __init__(self, backend: ChatBackend, cache: JudgeCache | None = None, max_tokens: int = 96,
                 prompt_version: str = PROMPT_VERSION):
        self.backend = backend
        self.cache = cache
        self.max_tokens = max_tokens
        self.prompt_version = prompt_version
        self.stats = JudgeStats()

    def judge_episode(self, profile_text: str, card: EpisodeCard) -> Judgement:
        """Topic, host & guest, style & format, tone & genre and interest-aligned scores (1-5)."""
        return self._judge("episode", profile_text, card.text(), episode_messages(profile_text, card), EPISODE_FIELDS)

    def judge_list(self, profile_text: str, cards: Sequence[EpisodeCard]) -> Judgement:
        """Interest-diverse and interest-representative scores (1-5) of a whole list."""
        item = "\n".join(c.text() for c in cards)
        return self._judge("list", profile_text, item, list_messages(profile_text, cards), LIST_FIELDS)

    def _judge(self, kind: str, profile_text: str, item_text: str, messages: Messages,
               fields: Sequence[str]) -> Judgement:
        self.stats.judged += 1
        key = cache_key(self.prompt_version, self.backend.name, kind, profile_text, item_text)
        if self.cache is not None:
            hit = self.cache.get(key)
            if hit is not None:
                self.stats.cached += 1
                return Judgement(hit, cached=True)
        schema = score_schema(fields)
        attempts, error, answer = 0, "", ""
        for attempt in range(2):  # the answer, then one retry that shows the model its mistake
            if attempt == 1:
                self.stats.retried += 1
                messages = retry_messages(messages, answer, error, fields)
            attempts += 1
            try:
                answer = self._call(messages, schema)
            except (BackendError, RuntimeError, ValueError) as exc:  # a model error too: never a crash
                self.stats.backend_errors += 1
                return self._failed(f"backend: {exc}", attempts)
            try:
                scores = parse_scores(answer, fields)
            except AnswerError as exc:
                error = str(exc)
                continue
            if self.cache is not None:
                self.cache.put(key, scores)
            return Judgement(scores, attempts=attempts)
        return self._failed(error, attempts)

    def _call(self, messages: Messages, schema: dict) -> str:
        self.stats.calls += 1
        t0 = time.perf_counter()
        try:
            return self.backend.complete(messages, schema, self.max_tokens)
        finally:
            self.stats.seconds += time.perf_counter() - t0

    def _failed(self, error: str, attempts: int) -> Judgement:
        self.stats.malformed += 1
        reason = _reason(error)
        self.stats.errors[reason] = self.stats.errors.get(reason, 0) + 1
        return Judgement(None, error=error, attempts=attempts)

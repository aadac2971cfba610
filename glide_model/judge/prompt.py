"""The judging prompt, its JSON schema, and the parser that checks an answer against the schema.

Per episode the judge rates topic, host & guest, style & format, tone & genre and an overall
interest-aligned score; per list, interest-diverse and interest-representative (paper §5.2.6). All
scores are 1-5: a short Likert scale keeps small models on the scale and maps onto reviewers' labels.

PROMPT_VERSION is part of every cache key: change it whenever the wording or the schema changes,
so old answers are never reused for a new prompt.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from typing import Any

PROMPT_VERSION = "judge-v1"
SCORE_MIN, SCORE_MAX = 1, 5
EPISODE_FIELDS = ("topic", "host_guest", "style_format", "tone_genre", "interest_aligned")
LIST_FIELDS = ("interest_diverse", "interest_representative")
OVERALL = "interest_aligned"

SYSTEM = (
    "You are a podcast recommendation judge. Given a listener's profile, rate how well a recommendation "
    "matches what this listener enjoys. Answer with one JSON object only, no other text."
)
_EPISODE_TASK = (
    "Rate the episode for this listener from 1 (poor match) to 5 (excellent match) on: topic (subject), "
    "host_guest (hosts and guests), style_format (format, length), tone_genre (tone and genre), and "
    "interest_aligned (overall: would this listener want to hear it?). Reply as JSON: "
    '{"topic": n, "host_guest": n, "style_format": n, "tone_genre": n, "interest_aligned": n}'
)
_LIST_TASK = (
    "Rate this list of recommendations for this listener from 1 (poor) to 5 (excellent) on: "
    "interest_diverse (does it cover several of the listener's interests?) and interest_representative "
    "(does it reflect the listener's main interests?). Reply as JSON: "
    '{"interest_diverse": n, "interest_representative": n}'
)


def score_schema(fields: Sequence[str]) -> dict[str, Any]:
    """JSON schema of an answer: every field a number in [SCORE_MIN, SCORE_MAX], nothing else."""
    prop = {"type": "number", "minimum": SCORE_MIN, "maximum": SCORE_MAX}
    return {"type": "object", "properties": {f: dict(prop) for f in fields}, "required": list(fields),
            "additionalProperties": False}


@dataclass(frozen=True)
class EpisodeCard:
    """What the judge sees of an episode: catalog metadata, never listening statistics."""

    episode_id: str
    title: str
    show: str
    topic: str
    description: str = ""
    host: str = ""
    duration_min: int | None = None

    def text(self) -> str:
        bits = [f'"{self.title}" from the show {self.show}', f"topic {self.topic}"]
        if self.host:
            bits.append(f"host {self.host}")
        if self.duration_min is not None:
            bits.append(f"{self.duration_min} min")
        out = "; ".join(bits) + "."
        return f"{out} {self.description}".strip()


def episode_messages(profile_text: str, card: EpisodeCard) -> list[dict[str, str]]:
    user = f"{profile_text}\n\nRecommended episode: {card.text()}\n\n{_EPISODE_TASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def list_messages(profile_text: str, cards: Sequence[EpisodeCard]) -> list[dict[str, str]]:
    items = "\n".join(f"{i + 1}. {c.text()}" for i, c in enumerate(cards))
    user = f"{profile_text}\n\nRecommended list:\n{items}\n\n{_LIST_TASK}"
    return [{"role": "system", "content": SYSTEM}, {"role": "user", "content": user}]


def retry_messages(messages: list[dict[str, str]], answer: str, error: str, fields: Sequence[str]) -> list[dict[str, str]]:
    """The conversation so far plus the bad answer and a correction: the one retry."""
    fix = (f"That answer is invalid ({error}). Reply with only a JSON object with the numbers "
           f"{SCORE_MIN}-{SCORE_MAX} for {', '.join(fields)}.")
    return [*messages, {"role": "assistant", "content": answer}, {"role": "user", "content": fix}]


class AnswerError(ValueError):
    """An answer that is not valid JSON for the schema; the message says what is wrong."""


_OBJECT = re.compile(r"\{.*?\}", re.DOTALL)


def parse_scores(answer: str, fields: Sequence[str]) -> dict[str, float]:
    """The scores of ``answer``: the first JSON object in it (small models wrap JSON in prose or code
    fences), every field present, numeric and in range. Raises AnswerError otherwise."""
    if not isinstance(answer, str) or not answer.strip():
        raise AnswerError("empty answer")
    obj: Any = None
    for candidate in [answer.strip(), *_OBJECT.findall(answer)]:
        try:
            obj = json.loads(candidate)
        except json.JSONDecodeError:
            continue
        if isinstance(obj, Mapping):
            break
    if not isinstance(obj, Mapping):
        raise AnswerError("no JSON object found")
    missing = [f for f in fields if f not in obj]
    if missing:
        raise AnswerError(f"missing field(s) {', '.join(missing)}")
    out: dict[str, float] = {}
    for f in fields:
        value = obj[f]
        if isinstance(value, str):
            try:
                value = float(value.strip())
            except ValueError:
                raise AnswerError(f"{f} is not a number: {obj[f]!r}") from None
        if isinstance(value, bool) or not isinstance(value, (int, float)) or value != value:
            raise AnswerError(f"{f} is not a number: {obj[f]!r}")
        if not SCORE_MIN <= value <= SCORE_MAX:
            raise AnswerError(f"{f}={value} is out of range {SCORE_MIN}-{SCORE_MAX}")
        out[f] = float(value)
    return out

"""Answer parsing and the judge's retry: malformed and out-of-range answers are counted, never raised."""

from __future__ import annotations

import json

import pytest

from glide_model.judge.cache import JudgeCache
from glide_model.judge.judge import Judge
from glide_model.judge.backend import BackendError
from glide_model.judge.prompt import EPISODE_FIELDS, LIST_FIELDS, AnswerError, EpisodeCard, parse_scores

CARD = EpisodeCard("e1", "The heist", "Crime Daily", "true crime", "A bank job.", "Ann", 30)
GOOD = json.dumps({f: 4 for f in EPISODE_FIELDS})


class Scripted:
    """A backend that answers from a list, recording the conversations it was sent."""

    name = "scripted"

    def __init__(self, *answers):
        self.answers = list(answers)
        self.seen = []

    def complete(self, messages, schema, max_tokens):
        self.seen.append(messages)
        answer = self.answers.pop(0)
        if isinstance(answer, Exception):
            raise answer
        return answer


def test_parse_accepts_wrapped_json_and_numeric_strings() -> None:
    wrapped = f"Sure! Here is my rating:\n```json\n{GOOD}\n```"
    assert parse_scores(wrapped, EPISODE_FIELDS) == {f: 4.0 for f in EPISODE_FIELDS}
    assert parse_scores('{"interest_diverse": "2", "interest_representative": 4.5}', LIST_FIELDS) == {
        "interest_diverse": 2.0, "interest_representative": 4.5}


@pytest.mark.parametrize("answer, message", [
    ("", "empty"),
    ("I think it is a 4.", "no JSON object"),
    ('{"topic": 4}', "missing field"),
    (json.dumps({**{f: 3 for f in EPISODE_FIELDS}, "interest_aligned": 7}), "out of range"),
    (json.dumps({**{f: 3 for f in EPISODE_FIELDS}, "topic": 0}), "out of range"),
    (json.dumps({**{f: 3 for f in EPISODE_FIELDS}, "topic": "high"}), "not a number"),
    (json.dumps({**{f: 3 for f in EPISODE_FIELDS}, "topic": True}), "not a number"),
    ('{"topic": 4, "host_guest": ', "no JSON object"),  # truncated generation
])
def test_parse_rejects(answer: str, message: str) -> None:
    with pytest.raises(AnswerError, match=message):
        parse_scores(answer, EPISODE_FIELDS)


def test_retry_fixes_a_bad_first_answer() -> None:
    backend = Scripted("rating: great", GOOD)
    judge = Judge(backend)
    j = judge.judge_episode("profile", CARD)
    assert j.ok and j.attempts == 2 and j.scores["interest_aligned"] == 4.0
    retry = backend.seen[1]
    assert retry[-2] == {"role": "assistant", "content": "rating: great"}
    assert "invalid" in retry[-1]["content"] and "no JSON object" in retry[-1]["content"]
    assert judge.stats.retried == 1 and judge.stats.malformed == 0


def test_malformed_twice_and_backend_errors_are_counted() -> None:
    out_of_range = json.dumps({f: 9 for f in EPISODE_FIELDS})
    backend = Scripted(out_of_range, out_of_range, BackendError("down"), "nope", GOOD)
    judge = Judge(backend)
    first = judge.judge_episode("profile", CARD)
    assert not first.ok and "out of range" in first.error and first.attempts == 2
    second = judge.judge_episode("profile", CARD)
    assert not second.ok and second.error.startswith("backend") and second.attempts == 1
    third = judge.judge_list("profile", [CARD, CARD])  # "nope" -> retry -> GOOD has no list fields
    assert not third.ok and "missing field" in third.error
    s = judge.stats
    assert (s.judged, s.malformed, s.backend_errors, s.retried, s.calls) == (3, 3, 1, 2, 5)
    assert s.errors == {"out of range": 1, "backend": 1, "missing field": 1}


def test_cache_answers_valid_pairs_only(tmp_path) -> None:
    cache = JudgeCache.under(tmp_path)
    backend = Scripted("garbage", "garbage", GOOD)
    judge = Judge(backend, cache)
    assert not judge.judge_episode("profile", CARD).ok  # malformed: not cached
    assert judge.judge_episode("profile", CARD).ok
    hit = judge.judge_episode("profile", CARD)
    assert hit.cached and hit.attempts == 0 and judge.stats.cached == 1 and len(backend.answers) == 0
    assert len(cache) == 1
    # Another profile, prompt version or backend is another key.
    other = Judge(Scripted(GOOD), cache, prompt_version="judge-v0")
    assert not other.judge_episode("profile", CARD).cached
    assert len(cache) == 2
    cache.close()
    assert (tmp_path / "judge" / "cache.sqlite").is_file()

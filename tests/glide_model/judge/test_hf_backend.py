"""The HF backend on a tiny random Llama: constrained answers always parse, prefix reuse is exact,
free generation from a random model is malformed and counted."""

from __future__ import annotations

import json

import pytest

from glide_model.judge.hf import HFChatBackend
from glide_model.judge.judge import Judge
from glide_model.judge.prompt import EPISODE_FIELDS, EpisodeCard, episode_messages, parse_scores, score_schema
from glide_model.llm.backbone import tiny_llama

CARDS = [EpisodeCard("e1", "The heist", "Crime Daily", "true crime", "A bank job.", "Ann", 30),
         EpisodeCard("e2", "Mars", "Space Talk", "science", "Red planet.", "Bob", 45)]
PROFILE = "Listener profile (last 90 days): 4 listens.\nTop shows: Crime Daily."


@pytest.fixture(scope="module")
def tiny():
    return tiny_llama()


def test_constrained_scores_parse_and_reuse_is_exact(tiny) -> None:
    model, tokenizer = tiny
    backend = HFChatBackend(model, tokenizer, "tiny", "constrained")
    schema = score_schema(EPISODE_FIELDS)
    first = [backend.complete(episode_messages(PROFILE, c), schema, 32) for c in CARDS]
    fresh = HFChatBackend(model, tokenizer, "tiny", "constrained")
    alone = fresh.complete(episode_messages(PROFILE, CARDS[1]), schema, 32)  # no prefix from CARDS[0]
    for a, b in zip(json.loads(first[1]).values(), json.loads(alone).values()):
        assert a == pytest.approx(b, abs=2e-3)  # expected scores are rounded to 3 decimals
    for answer in first:
        scores = parse_scores(answer, EPISODE_FIELDS)
        assert all(1.0 <= v <= 5.0 for v in scores.values())
    assert backend.name == "hf:tiny:constrained"


def test_free_generation_from_a_random_model_is_counted_not_raised(tiny) -> None:
    model, tokenizer = tiny
    judge = Judge(HFChatBackend(model, tokenizer, "tiny", "free"), max_tokens=8)
    j = judge.judge_episode(PROFILE, CARDS[0])
    assert not j.ok and j.attempts == 2
    assert judge.stats.malformed == 1 and judge.stats.retried == 1

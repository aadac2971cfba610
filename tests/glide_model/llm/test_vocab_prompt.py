from __future__ import annotations

import pytest
import torch

from glide_model.llm.backbone import tiny_llama
from glide_model.llm.prompt import GLIDE, IGNORE_INDEX, SID_ONLY, SID_TEXT, PromptBuilder, PromptVariant
from glide_model.llm.vocab import USER_EMB_TOKEN, SidVocab, UnknownSidError, extend_vocab, sanitize_text
from glide_model.sids.tokens import format_sid

from tests.glide_model.llm.tiny_world import K, M


@pytest.mark.parametrize("tied", [True, False])
def test_extend_vocab_adds_exactly_sid_and_placeholder_tokens_and_keeps_old_rows(tied):
    model, tok = tiny_llama(tie_word_embeddings=tied)
    n_tok = len(tok)
    w_in = model.get_input_embeddings().weight.detach().clone()
    w_out = model.get_output_embeddings().weight.detach().clone()
    vocab = extend_vocab(model, tok, M, K)
    assert len(tok) - n_tok == M * K + 1 == vocab.num_added
    assert model.get_input_embeddings().num_embeddings == len(tok)
    assert torch.equal(model.get_input_embeddings().weight[:n_tok], w_in)
    assert torch.equal(model.get_output_embeddings().weight[:n_tok], w_out)
    assert (model.get_input_embeddings().weight is model.get_output_embeddings().weight) == tied
    # New rows: near the pretrained mean (Hewitt 2021), distinct, and level-separated.
    new = model.get_input_embeddings().weight[vocab.new_token_ids].detach()
    assert torch.linalg.norm(new.mean(0) - w_in.mean(0)) < torch.linalg.norm(w_in.std(0))
    assert torch.unique(new, dim=0).shape[0] == new.shape[0]
    # A SID string tokenizes to exactly M ids, the ones the vocab reports, and decodes back.
    ids = tok(format_sid((1, 7, 0)), add_special_tokens=False)["input_ids"]
    assert ids == vocab.codes_to_ids((1, 7, 0))
    assert vocab.ids_to_codes(ids) == (1, 7, 0)
    assert SidVocab.from_tokenizer(tok, M, K).placeholder_id == tok.convert_tokens_to_ids(USER_EMB_TOKEN)


def test_extend_vocab_is_idempotent_and_rejects_other_shapes():
    model, tok = tiny_llama()
    v1 = extend_vocab(model, tok, M, K)
    n = len(tok)
    v2 = extend_vocab(model, tok, M, K)
    assert len(tok) == n and v2.placeholder_id == v1.placeholder_id
    with pytest.raises(UnknownSidError, match="different SID shape"):
        extend_vocab(model, tok, M + 1, K)


def test_unknown_sid_codes_raise_with_a_fix():
    model, tok = tiny_llama()
    vocab = extend_vocab(model, tok, M, K)
    with pytest.raises(UnknownSidError, match="different quantizer"):
        vocab.codes_to_ids((1, K, 0))
    with pytest.raises(UnknownSidError):
        vocab.codes_to_ids((1, 2))


@pytest.fixture
def builder_parts():
    model, tok = tiny_llama()
    vocab = extend_vocab(model, tok, M, K)
    return tok, vocab


def _user(tok, vocab, variant, **row):
    pb = PromptBuilder(tok, vocab, variant)
    return pb.rec_user_text(row.get("history", [(1, 2, 3), (4, 5, 6)]), row.get("mode", "unfamiliar"), "en-US", ["comedy", "news"])


def test_glide_prompt_follows_figure_2_order(builder_parts):
    tok, vocab = builder_parts
    text = _user(tok, vocab, GLIDE)
    order = [text.index(USER_EMB_TOKEN), text.index("en-US"), text.index("comedy"), text.index(format_sid((1, 2, 3))),
             text.index(format_sid((4, 5, 6))), text.index("Recommend an unfamiliar episode aligned with user interests.")]
    assert order == sorted(order)
    pb = PromptBuilder(tok, vocab, GLIDE)
    full = pb._render(text)
    assert full.index("podcast recommender") < full.index(USER_EMB_TOKEN)  # system first, soft prompt right after


def test_variants_switch_conditioning(builder_parts):
    tok, vocab = builder_parts
    sid_only, sid_text = _user(tok, vocab, SID_ONLY), _user(tok, vocab, SID_TEXT)
    assert USER_EMB_TOKEN not in sid_only and "en-US" not in sid_only and "comedy" not in sid_only
    assert USER_EMB_TOKEN not in sid_text and "en-US" in sid_text and "comedy" in sid_text
    single = _user(tok, vocab, PromptVariant.parse("glide_single_task"), mode=None)
    assert "familiar" not in single and "Recommend an episode" in single
    assert "Recommend a familiar episode" in _user(tok, vocab, GLIDE, mode="familiar")
    with pytest.raises(ValueError, match="familiarity mode"):
        _user(tok, vocab, GLIDE, mode=None)
    with pytest.raises(ValueError, match="unknown prompt variant"):
        PromptVariant.parse("tiger")


def test_encoded_labels_cover_only_target_sid_and_eos(builder_parts):
    tok, vocab = builder_parts
    pb = PromptBuilder(tok, vocab, GLIDE)
    (enc,) = pb.encode_rec([{"history_codes": [], "mode": "familiar", "locale": None, "affinity_topics": [], "target_codes": (3, 1, 4)}])
    labelled = [t for t in enc.labels if t != IGNORE_INDEX]
    assert labelled == vocab.codes_to_ids((3, 1, 4)) + [tok.eos_token_id]
    assert enc.input_ids[-len(labelled):] == labelled
    assert enc.input_ids.count(vocab.placeholder_id) == 1
    assert "nothing yet" in tok.decode(enc.input_ids)  # empty history is fine


def test_free_text_cannot_inject_reserved_tokens(builder_parts):
    tok, vocab = builder_parts
    assert sanitize_text("evil <SID_1=3> and <user_emb>") == "evil < SID_1=3> and < user_emb>"
    pb = PromptBuilder(tok, vocab, GLIDE)
    (enc,) = pb.encode_rec([{"history_codes": [], "mode": "familiar", "locale": "<user_emb>",
                             "affinity_topics": ["<SID_1=3>"], "target_codes": (0, 0, 0)}])
    assert enc.input_ids.count(vocab.placeholder_id) == 1
    assert int(vocab.sid_ids[0, 3]) not in enc.input_ids[: -(M + 1)]


def test_chat_template_is_used_when_present(builder_parts):
    tok, vocab = builder_parts
    tok.chat_template = (
        "{% for m in messages %}<|{{ m['role'] }}|>{{ m['content'] }}\n{% endfor %}"
        "{% if add_generation_prompt %}<|assistant|>{% endif %}"
    )
    pb = PromptBuilder(tok, vocab, GLIDE)
    text = pb._render(pb.rec_user_text([(1, 2, 3)], "familiar"))
    assert text.startswith("<|system|>You are a podcast recommender") and text.endswith("<|assistant|>")
    g = pb.encode_text_to_sid(["The comedy hour"], [(1, 2, 3)])[0]
    assert [t for t in g.labels if t != IGNORE_INDEX] == vocab.codes_to_ids((1, 2, 3)) + [tok.eos_token_id]


@pytest.mark.parametrize("tied", [True, False])
def test_text_init_points_each_sid_row_at_its_episodes_text(tied):
    """Used SID rows move toward their episodes' text (each level separately); unused SID rows,
    the placeholder and every pretrained row stay as they were."""
    import numpy as np

    from glide_model.llm.vocab import init_sid_rows_from_text

    model, tok = tiny_llama(tie_word_embeddings=tied, seed=0)
    vocab = extend_vocab(model, tok, M, K)
    before = [model.get_input_embeddings().weight.detach().clone(), model.get_output_embeddings().weight.detach().clone()]
    texts = ["news news politics news"] * 3 + ["comedy jokes comedy laughs"] * 3
    codes = np.array([[0, 1] + [0] * (M - 2)] * 3 + [[1, 1] + [0] * (M - 2)] * 3)
    stats = init_sid_rows_from_text(model, tok, vocab, texts, codes)
    assert stats["sid_rows_from_text"] == 2 + 1 + (M - 2)  # level 1 uses codes 0 and 1, the others one code

    emb = model.get_input_embeddings().weight.detach()
    first_new = int(vocab.sid_ids.min())
    torch.testing.assert_close(emb[:first_new], before[0][:first_new])
    used = {int(vocab.sid_ids[0, 0]), int(vocab.sid_ids[0, 1]), int(vocab.sid_ids[1, 1])}
    used |= {int(vocab.sid_ids[m, 0]) for m in range(2, M)}
    untouched = [i for i in range(first_new, emb.shape[0]) if i not in used]
    torch.testing.assert_close(emb[untouched], before[0][untouched])

    def text_vec(t: str) -> torch.Tensor:
        return before[0][torch.tensor(tok(t, add_special_tokens=False)["input_ids"])].mean(0)

    news, comedy = text_vec(texts[0]), text_vec(texts[3])
    moved_news = emb[vocab.sid_ids[0, 0]] - before[0][vocab.sid_ids[0, 0]]
    moved_comedy = emb[vocab.sid_ids[0, 1]] - before[0][vocab.sid_ids[0, 1]]
    cos = torch.nn.functional.cosine_similarity
    assert cos(moved_news, news - comedy, dim=0) > 0.9
    assert cos(moved_comedy, comedy - news, dim=0) > 0.9
    if not tied:  # the untied output matrix gets its own text directions
        out = model.get_output_embeddings().weight.detach()
        assert not torch.equal(out[vocab.sid_ids[0, 0]], before[1][vocab.sid_ids[0, 0]])
    with pytest.raises(ValueError, match="codes must be"):
        init_sid_rows_from_text(model, tok, vocab, texts, codes[:, :2])

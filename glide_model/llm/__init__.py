"""The GLIDE language model: backbone, SID vocabulary, prompts, soft prompt, grounding, instruction
tuning, trie-constrained beam search, checkpoints. Entry point: ``glide_model.llm.pipeline.train_glide``.

Modules (import what you need; nothing heavy happens at package import):
backbone (load/convert LMs), vocab (SID tokens), prompt (Fig. 2), soft_prompt (CF -> one vector),
model (GlideLM bundle), grounding (§4.2), instruct (§4.3), decoding (§4.4.4, GenerationBackend),
checkpoint (save/load/export), trainer (the loop), pipeline (train_glide).
"""

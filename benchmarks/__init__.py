"""Benchmarks behind `glide bench ...` (see benchmarks/RESULTS.md)."""

#!/usr/bin/env bash
# Creates infra/vllm/.venv with the CPU build of vLLM (2-3 min, ~2.5 GB). See ../../README.md.
# TORCH_INDEX_URL: where torch comes from (the container image sets PyTorch's CPU index: the default
# PyPI wheel pulls CUDA); unset, pip's own configuration decides (here: the CPU wheel on disk).
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3.11 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q ${TORCH_INDEX_URL:+--index-url "$TORCH_INDEX_URL"} torch==2.13.0
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
# The torchvision/torchaudio/torchcodec it pulls are CUDA builds that break `from vllm import LLM`.
"$here/.venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton || true
# glide_model for the server (glide_model/llm/vllm_server.py), from this checkout, without its deps.
"$here/.venv/bin/pip" install -q --no-deps -e "$here/../.."
echo "vLLM environment ready: $here/.venv"

#!/usr/bin/env bash
# Creates infra/vllm/.venv with the CPU build of vLLM (2-3 min, ~2.5 GB). See ../../README.md.
set -euo pipefail
here="$(cd "$(dirname "$0")" && pwd)"
python3.11 -m venv "$here/.venv"
"$here/.venv/bin/pip" install -q torch==2.13.0
"$here/.venv/bin/pip" install -q -r "$here/requirements.txt"
# The torchvision/torchaudio/torchcodec it pulls are CUDA builds that break `from vllm import LLM`.
"$here/.venv/bin/pip" uninstall -q -y torchvision torchaudio torchcodec triton || true
"$here/.venv/bin/pip" install -q --no-deps -e "$here/../.."  # glide_model for the backend adapter
echo "vLLM environment ready: $here/.venv"

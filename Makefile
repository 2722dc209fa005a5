# One task runner, the same gates locally and in CI.
SHELL := /bin/bash
export GRADIO_ANALYTICS_ENABLED := False
export HF_HUB_OFFLINE := 1
export UV_PYTHON_DOWNLOADS := never
export UV_PYTHON := python3.11
export UV_COMPILE_BYTECODE := 1

UV := $(shell command -v uv 2>/dev/null || echo .tools/bin/uv)
VENV := .venv
BIN := $(VENV)/bin
HOST ?= 127.0.0.1
PORT ?= 7860

.PHONY: install demo test lint eval bench docs clean

install: $(VENV)/.installed

$(VENV)/.installed: pyproject.toml uv.lock
	@if [ ! -x "$(UV)" ]; then \
		echo "installing uv into .tools/ with pip"; \
		python3.11 -m venv .tools && .tools/bin/pip install -q uv==0.13.8; fi
	$(UV) sync --frozen
	@touch $@

demo: install
	$(BIN)/northstar init --demo
	@if $(BIN)/northstar --help | grep -q ' knowledge '; then $(BIN)/northstar knowledge rebuild; fi
	@echo "Serving the web UI at http://$(HOST):$(PORT)/, the API at /api/v1 (docs: /docs); Ctrl-C stops."
	$(BIN)/northstar serve --host $(HOST) --port $(PORT)

lint: install
	$(BIN)/ruff check .
	$(BIN)/northstar docs --check

test: install lint
	$(BIN)/python -m pytest
	@if $(BIN)/northstar --help | grep -q ' eval '; then $(BIN)/northstar eval --suite all; fi

eval: install
	$(BIN)/northstar eval --suite all --report evals/reports/report.html

CUSTOMERS ?= 1000000
bench: install  # CUSTOMERS=10000000: the 10M run, budget 90 min (about an hour; no Spark above 1M); 1M: ~15 min + ~30 min Spark
	$(BIN)/northstar bench --customers $(CUSTOMERS)

docs: install
	$(BIN)/northstar docs

clean:
	rm -rf $(VENV) .tools .northstar .pytest_cache .ruff_cache

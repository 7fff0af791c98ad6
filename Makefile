# `make run` runs the bot, `make test` runs the tests; both set up .venv on first use.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?= --http
PYTEST_ARGS ?=

.PHONY: run test lint bench services

$(VENV)/.installed: pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# escbot-agent (sdk/python) is the bot's dependency too: installed from here, not PyPI.
	$(BIN)/python -m pip install --quiet -e sdk/python -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/escbot serve $(ARGS)

services:
	@.ci/services

lint: $(VENV)/.installed
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

test: $(VENV)/.installed services lint
	$(BIN)/pytest $(PYTEST_ARGS)

bench: $(VENV)/.installed services
	$(BIN)/python bench/service.py
	$(BIN)/python bench/slack_kill.py
	$(BIN)/python bench/sweep.py
	$(BIN)/python bench/agent.py
	$(BIN)/python bench/audit_verify.py
	$(BIN)/python bench/sdk.py

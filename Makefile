# `make run` starts the sandbox (the bot against a local Slack-like page, with demo agents),
# `make serve` runs the bot for Slack, `make test` runs the tests; all set up .venv first.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
ARGS ?= --http
SANDBOX_ARGS ?=
PYTEST_ARGS ?=

.PHONY: run serve test lint bench services

$(VENV)/.installed: pyproject.toml sdk/python/pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	# escbot-agent (sdk/python) is the bot's dependency too: installed from here, not PyPI.
	$(BIN)/python -m pip install --quiet -e sdk/python -e '.[dev]'
	touch $@

run: $(VENV)/.installed
	$(BIN)/escbot sandbox --demo $(SANDBOX_ARGS)

serve: $(VENV)/.installed
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
	$(BIN)/python bench/delivery.py
	$(BIN)/python bench/metrics.py
	$(BIN)/python bench/sdk.py

# Two commands matter: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test check-format lint types contracts pytest format clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

$(VENV)/.installed-run: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e .
	touch $@

$(VENV)/.installed-dev: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $@ $(VENV)/.installed-run

run: $(VENV)/.installed-run
	$(BIN)/csr-webhook serve --policies policies --bind 127.0.0.1:8443 --metrics-bind 127.0.0.1:9090

test: $(VENV)/.installed-dev
	$(BIN)/ruff format --check webhook tests
	$(BIN)/ruff check webhook tests
	$(BIN)/mypy
	$(BIN)/lint-imports
	$(BIN)/csr-webhook check policies
	$(BIN)/pytest

format: $(VENV)/.installed-dev
	$(BIN)/ruff format webhook tests
	$(BIN)/ruff check --fix webhook tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# Two commands matter: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test e2e check-format lint types contracts pytest format clean manifests-policies

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
	$(BIN)/csr-webhook test policies
	$(BIN)/pytest

# The Go tier, kept out of `make test` (which needs no Go): tests marked `go`, such as the
# differential test against Go's crypto/x509 (tests/test_go_differential.py). It needs `go` on
# PATH and fails, rather than skips, without it. The Go program is built into pytest's tmp dir.
e2e: $(VENV)/.installed-dev
	$(BIN)/pytest -m go

format: $(VENV)/.installed-dev
	$(BIN)/ruff format webhook tests
	$(BIN)/ruff check --fix webhook tests

clean:
	rm -rf $(VENV) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

# manifests/base/policies/ is generated from policies/: a kustomization can only read files in or
# below its own directory (symlinks out of it are refused too), so the policy files, and every
# file a policy names (issuance.caBundleFile; `csr-webhook check` lists them), are copied there
# together with the kustomization that turns them into the csr-webhook-policies ConfigMap
# (webhook/authoring/configmap.py). Run after every change to policies/;
# tests/test_manifests.py fails while the copy is stale. Policy test suites (*.test.yaml,
# *.test.yml) and dot-files are not policies.
MANIFEST_POLICIES := manifests/base/policies

manifests-policies: $(VENV)/.installed-run
	$(BIN)/python -m webhook.authoring.configmap policies $(MANIFEST_POLICIES)

# Performance and robustness evidence (docs/performance.md), kept out of `make test`.
# bench: the real server against a no-op Flask webhook on the same gunicorn/TLS setup; needs
#   wrk (Debian: apt-get update && apt-get install -y wrk). Options: BENCH_ARGS="--help".
# fuzz:  the hypothesis suite of `make test`, with many more examples.
# soak:  fault and soak tests under load, and 30 s slow-client attacks; SOAK_MINUTES shortens
#        the memory soak.
BENCH_ARGS ?=
FUZZ_EXAMPLES ?= 20000
SOAK_MINUTES ?= 10

.PHONY: bench fuzz soak

bench: $(VENV)/.installed-run
	$(BIN)/python -m bench $(BENCH_ARGS)

fuzz: $(VENV)/.installed-dev
	CSR_WEBHOOK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/test_fuzz.py -q

soak: $(VENV)/.installed-dev
	CSR_WEBHOOK_SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/pytest -m soak -s -q tests/test_soak.py tests/test_slow_clients.py

# Two commands matter: `make run` and `make test`. Both create .venv on a fresh machine.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

.PHONY: run test test-min e2e check-format lint types contracts pytest format clean manifests-policies

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

# The dependency floors: every direct dependency at the lowest version pyproject.toml allows
# (constraints-min.txt pins each to it; transitive ones are whatever pip resolves), in a venv of
# its own, running the tests of `make test` (not the format, lint and type tools, which need not
# run at the floors). tests/test_dependency_floors.py keeps the pins equal to the floors.
VENV_MIN := .venv-min
BIN_MIN := $(VENV_MIN)/bin

$(VENV_MIN)/.installed: pyproject.toml constraints-min.txt
	rm -rf $(VENV_MIN)
	$(PYTHON) -m venv $(VENV_MIN)
	$(BIN_MIN)/python -m pip install --quiet --upgrade pip
	$(BIN_MIN)/pip install --quiet -c constraints-min.txt -e '.[test]'
	touch $@

test-min: $(VENV_MIN)/.installed
	$(BIN_MIN)/pip check
	$(BIN_MIN)/csr-webhook check policies
	$(BIN_MIN)/csr-webhook test policies
	CSR_WEBHOOK_TEST_MIN=1 $(BIN_MIN)/pytest

format: $(VENV)/.installed-dev
	$(BIN)/ruff format webhook tests
	$(BIN)/ruff check --fix webhook tests

clean:
	rm -rf $(VENV) $(VENV_MIN) build *.egg-info .pytest_cache .mypy_cache .ruff_cache

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
# bench-instructions: instructions per review under callgrind (needs valgrind), a figure the
#        machine's load does not move; INSTR_ARGS="--scope engine --rev a9b03f2 --rev HEAD".
BENCH_ARGS ?=
INSTR_ARGS ?=
FUZZ_EXAMPLES ?= 20000
SOAK_MINUTES ?= 10

.PHONY: bench bench-instructions fuzz soak

bench: $(VENV)/.installed-run
	$(BIN)/python -m bench $(BENCH_ARGS)

bench-instructions: $(VENV)/.installed-run
	$(BIN)/python -m bench.instructions $(INSTR_ARGS)

fuzz: $(VENV)/.installed-dev
	CSR_WEBHOOK_FUZZ_EXAMPLES=$(FUZZ_EXAMPLES) $(BIN)/pytest tests/test_fuzz.py -q

soak: $(VENV)/.installed-dev
	CSR_WEBHOOK_SOAK_MINUTES=$(SOAK_MINUTES) $(BIN)/pytest -m soak -s -q tests/test_soak.py tests/test_slow_clients.py

# End-to-end tier (README "End to end"): etcd, kube-apiserver, kube-controller-manager and the
# kubelet-certificate test client, built from the pins in e2e/go.mod + e2e/go.sum into a
# git-ignored cache directory named after a hash of the pins (a new pin builds afresh; an
# unchanged one reuses the binaries, and Go's build cache keeps rebuilds of e2e/cmd fast).
# Needs Go and kubectl on the PATH; `make test` needs no Go (kubectl only for `kubectl kustomize`).
GO ?= go
E2E_ARGS ?=
E2E_KEY := $(shell cat e2e/go.mod e2e/go.sum 2>/dev/null | sha256sum | cut -c1-16)
E2E_CACHE := .e2e-cache/$(E2E_KEY)
K8S_VERSION := $(shell grep -oE 'k8s\.io/kubernetes v1\.[0-9]+\.[0-9]+' e2e/go.mod | head -1 | cut -d' ' -f2)
K8S_MINOR := $(word 2,$(subst ., ,$(K8S_VERSION)))
# What hack/lib/version.sh stamps into a release build, so /version reports the pinned release.
E2E_LDFLAGS := -X k8s.io/component-base/version.gitVersion=$(K8S_VERSION) \
	-X k8s.io/component-base/version.gitMajor=1 -X k8s.io/component-base/version.gitMinor=$(K8S_MINOR) \
	-X k8s.io/client-go/pkg/version.gitVersion=$(K8S_VERSION)
E2E_GO_SOURCES := $(shell find e2e -name '*.go' 2>/dev/null)

.PHONY: e2e e2e-bin e2e-replaces

e2e-bin: $(E2E_CACHE)/.control-plane $(E2E_CACHE)/kubelet-certs

# The control plane depends on the pins only; the test client on its sources too.
$(E2E_CACHE)/.control-plane: e2e/go.mod e2e/go.sum
	mkdir -p $(E2E_CACHE)
	cd e2e && $(GO) build -buildvcs=false -ldflags '$(E2E_LDFLAGS)' -o ../$(E2E_CACHE)/etcd go.etcd.io/etcd/server/v3
	cd e2e && $(GO) build -buildvcs=false -ldflags '$(E2E_LDFLAGS)' -o ../$(E2E_CACHE)/kube-apiserver k8s.io/kubernetes/cmd/kube-apiserver
	cd e2e && $(GO) build -buildvcs=false -ldflags '$(E2E_LDFLAGS)' -o ../$(E2E_CACHE)/kube-controller-manager k8s.io/kubernetes/cmd/kube-controller-manager
	echo $(K8S_VERSION) > $(E2E_CACHE)/version
	touch $@

$(E2E_CACHE)/kubelet-certs: e2e/go.mod e2e/go.sum $(E2E_GO_SOURCES)
	mkdir -p $(E2E_CACHE)
	cd e2e && $(GO) build -buildvcs=false -ldflags '$(E2E_LDFLAGS)' -o ../$@ ./cmd/kubelet-certs

# Regenerate the staging-module replaces of e2e/go.mod after changing the k8s.io/kubernetes pin.
e2e-replaces:
	$(PYTHON) e2e/replaces.py
	cd e2e && $(GO) mod tidy

# `make e2e` also runs the tests marked `go` (the differential tests against Go's crypto/x509
# and encoding/pem, whose small Go program is built into pytest's tmp dir); without Go they
# fail, they do not skip.
e2e: e2e-bin $(VENV)/.installed-dev
	CSR_WEBHOOK_E2E_BIN=$(CURDIR)/$(E2E_CACHE) $(BIN)/pytest -m "e2e or go" $(E2E_ARGS)

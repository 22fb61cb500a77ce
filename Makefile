# The two commands a newcomer needs: `make serve` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
SERVE_STAMP := $(VENV)/.serve-installed
PYPROJECTS := pyproject.toml client/python/pyproject.toml server/pyproject.toml server/setup.py
# The compiled fast paths (server/setup.py): a change rebuilds them through the editable install.
COMPILED := $(shell find server/src -name '*.pyx')

.PHONY: serve test test-python test-sdks test-packages check-manifests e2e-container e2e-kubernetes conformance lint typecheck generate check-generated buf-lint buf-breaking clean

# Serving only: the two distributions (editable) and the runtime pins; no dev tools.
$(SERVE_STAMP): $(PYPROJECTS) $(COMPILED)
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e client/python -e server -e .
	touch $(SERVE_STAMP)

# Development: the same plus the dev extra (codegen, linters, test tools).
$(STAMP): $(SERVE_STAMP)
	$(BIN)/pip install --quiet -e client/python -e server -e '.[dev]'
	touch $(STAMP)

## serve: start the server on localhost:50051 with the embedded catalogues
serve: $(SERVE_STAMP)
	$(BIN)/accelplan serve

## test: the whole suite
test: test-python conformance

## test-python: codegen freshness, proto lint and breaking check, ruff, mypy, pytest
test-python: check-generated buf-lint buf-breaking lint typecheck
	$(BIN)/pytest

## conformance: every SDK against one real server (scripts/conformance)
conformance: $(STAMP)
	scripts/conformance

## e2e-kubernetes: the scheduler extender against the real kube-scheduler, kube-apiserver and etcd
## (scripts/kube/build builds them from the Go module proxy into .tools/kube/bin first)
e2e-kubernetes: $(STAMP)
	nice -n 10 scripts/kube/build
	ACCELPLAN_REQUIRE_KUBE=1 $(BIN)/pytest -p no:cacheprovider tests/e2e_kubernetes

## test-sdks: each SDK's own unit tests (go test, npm test, mvn test, cargo test)
test-sdks:
	scripts/sdk-tests

## test-packages: every SDK built as a package and used from a scratch project outside the repo
test-packages: $(STAMP)
	scripts/consumers/run
	scripts/consumers/python

## check-manifests: deploy/kubernetes renders with kustomize and validates against the API schema
check-manifests: $(STAMP)
	scripts/check-manifests

## e2e-container: build the Containerfile with podman, run it, call it, stop it (scripts/e2e-container)
e2e-container: $(STAMP)
	scripts/e2e-container

generate: $(STAMP)
	scripts/generate

check-generated: $(STAMP)
	scripts/generate --check

buf-lint: $(STAMP)
	$(BIN)/buf lint

buf-breaking: $(STAMP)
	scripts/check-breaking

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

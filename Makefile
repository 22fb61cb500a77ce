# The two commands a newcomer needs: `make serve` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: e2e-kubernetes serve test test-python conformance lint typecheck generate check-generated buf-lint buf-breaking clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## serve: start the server on localhost:50051 with the embedded catalogues
serve: $(STAMP)
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

# The two commands a newcomer needs: `make serve` and `make test`.
# Each creates .venv and installs what it needs on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: serve test lint typecheck generate check-generated buf-lint buf-breaking clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip
	$(BIN)/pip install --quiet -e '.[dev]'
	touch $(STAMP)

## serve: start the server on localhost:50051 with the embedded catalogues
serve: $(STAMP)
	$(BIN)/accelplan serve

## test: the whole suite: generated-code freshness, buf lint, ruff, mypy, pytest
test: $(STAMP) check-generated buf-lint lint typecheck
	$(BIN)/pytest

generate: $(STAMP)
	scripts/generate

check-generated: $(STAMP)
	scripts/generate --check

buf-lint: $(STAMP)
	$(BIN)/buf lint

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

typecheck: $(STAMP)
	$(BIN)/mypy

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache

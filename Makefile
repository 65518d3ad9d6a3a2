# Mantle: `make up` runs everything on embedded defaults; `make test` runs the whole suite.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: install up test lint typecheck unit bench clean

$(STAMP): pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[dev]'
	@touch $(STAMP)

install: $(STAMP)

up: install
	$(BIN)/mantle up

lint: install
	$(BIN)/ruff check .

typecheck: install
	$(BIN)/mypy core models migrations blocks builder api worker bench

test: lint typecheck
	$(BIN)/pytest -q

unit: install
	$(BIN)/pytest -q tests/unit

bench: install
	$(BIN)/python bench/validate.py

clean:
	rm -rf $(VENV) .mantle .pytest_cache .mypy_cache .ruff_cache .hypothesis

# One command per chore. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast bench lint format clean

help:  ## List the chores
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

$(STAMP): pyproject.toml constraints.txt
	test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -c constraints.txt -e '.[dev]'
	touch $(STAMP)

setup: $(STAMP)  ## Create .venv and install stylebench with its dev extras

demo: setup  ## Run the whole pipeline offline on bundled images (under 10 min on 2 CPU cores)
	$(BIN)/stylebench demo

test: setup  ## Run the test suite (slow tests included)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## Run the test suite without the slow tests
	$(BIN)/python -m pytest -m "not slow" $(PYTEST_ARGS)

bench: setup  ## Run the benchmarks and write bench/RESULTS.md
	$(BIN)/python -m bench

lint: setup  ## ruff over the code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## Remove the virtualenv, caches and the default data directory
	rm -rf $(VENV) .pytest_cache stylebench-data build *.egg-info

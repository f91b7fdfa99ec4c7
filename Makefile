# One command per chore. `make help` lists them.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
PYTEST_ARGS ?=

.DEFAULT_GOAL := help
.PHONY: help setup demo test test-fast test-heavy bench gpu-check lint format clean

help:  ## List the chores
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-10s %s\n", $$1, $$2}'

# uv (https://pypi.org/project/uv/) installs, several times faster than pip on an empty
# cache (48 s against 139 s on 2 cores). One on the PATH is used; otherwise pip puts uv into the
# fresh virtualenv first (a few seconds), and where that fails (no index) pip installs
# everything. `make setup UV=` forces pip. uv is handed the same find-links and extra indexes
# as pip's own configuration, so local wheel mirrors are used by both, and compiles bytecode
# at install as pip does (else torch and Prefect are compiled on the first run, and on every
# import where PYTHONDONTWRITEBYTECODE is set).
UV ?= $(or $(shell command -v uv 2>/dev/null),$(BIN)/uv)
PIP_SOURCES = $(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n \
	-e "s/^[^.]*\.index-url='\(.*\)'$$/--index-url \1/p" | head -n 1) \
	$(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n \
	-e "s/^[^.]*\.find-links='\(.*\)'$$/\1/p" | tr ' ' '\n' | sort -u | sed 's/^/--find-links /') \
	$(shell $(PYTHON) -m pip config list 2>/dev/null | sed -n \
	-e "s/^[^.]*\.extra-index-url='\(.*\)'$$/\1/p" | tr ' ' '\n' | sort -u | sed 's/^/--extra-index-url /')
EXTRAS = '.[dev,bench]'

$(STAMP): pyproject.toml constraints.txt
ifeq ($(strip $(UV)),$(BIN)/uv)
	@echo "setup 1/3: virtualenv $(VENV)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@echo "setup 2/3: uv into $(VENV), to install with"
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	@test -x $(BIN)/uv || $(BIN)/python -m pip install --quiet --quiet --disable-pip-version-check uv \
		|| echo "  uv could not be installed; pip installs instead (slower)"
else ifneq ($(strip $(UV)),)
	@echo "setup 1/3: virtualenv $(VENV) (uv: $(UV))"
	@test -x $(BIN)/python || $(UV) venv --quiet --python $(PYTHON) $(VENV)
	@echo "setup 2/3: uv found on the PATH"
else
	@echo "setup 1/3: virtualenv $(VENV) (pip, as UV= asks)"
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	@$(BIN)/python -m pip --version >/dev/null 2>&1 || $(BIN)/python -m ensurepip --upgrade >/dev/null
	@echo "setup 2/3: no uv (pip installs)"
endif
	@echo "setup 3/3: stylebench with its dev and bench extras, versions from constraints.txt"
	@if [ -n "$(strip $(UV))" ] && [ -x "$(UV)" ]; then \
		$(UV) pip install --quiet --compile-bytecode --python $(BIN)/python \
			--index-strategy unsafe-best-match \
			$(PIP_SOURCES) -c constraints.txt -e $(EXTRAS); \
	else \
		$(BIN)/python -m pip install --quiet --quiet --disable-pip-version-check \
			-c constraints.txt -e $(EXTRAS); \
	fi
	@touch $(STAMP)
	@echo "setup done: $(BIN)/stylebench"

setup: $(STAMP)  ## Create .venv and install stylebench with its dev and bench extras

demo: setup  ## Run the whole pipeline offline on bundled images (about 60 s on 2 CPU cores, fp32)
	$(BIN)/stylebench demo

# The test tiers, by marker (pyproject.toml lists them): test-fast leaves out the tests marked
# slow (more than ~3 s), concurrency (several processes at once), browser (headless Chromium)
# and dataset (reads ../shared); test runs everything, as CI does.
FAST_TESTS := not slow and not concurrency and not browser and not dataset

test: setup  ## Run every test, as CI does (all tiers: fast, slow, concurrency, browser, dataset)
	$(BIN)/python -m pytest $(PYTEST_ARGS)

test-fast: setup  ## Run the fast tier, every package (a quarter of `make test`): on each change
	$(BIN)/python -m pytest -m "$(FAST_TESTS)" $(PYTEST_ARGS)

test-heavy: setup  ## Run only what test-fast leaves out (slow, concurrency, browser, dataset)
	$(BIN)/python -m pytest -m "not ($(FAST_TESTS))" $(PYTEST_ARGS)

bench: setup  ## Run the benchmarks and write bench/RESULTS.md
	$(BIN)/python -m bench

gpu-check: setup  ## On a CUDA machine: device tests and a short GPU benchmark (< 5 min) -> bench/out/gpu-check.{json,md}
	$(BIN)/python -m bench.gpu_check --timeout 280

lint: setup  ## ruff over the code
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

format: setup  ## Apply ruff's fixes and formatting
	$(BIN)/ruff check --fix .
	$(BIN)/ruff format .

clean:  ## Remove the virtualenv, caches and the default data directory
	rm -rf $(VENV) .pytest_cache stylebench-data build *.egg-info

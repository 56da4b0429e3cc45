# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint proof bench install clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

run: $(STAMP)
	$(BIN)/controlplane init-env
	$(BIN)/controlplane demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench

test: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/pytest -q -m "not slow" -p no:cacheprovider

# The long suites (chaos, faults, load, deep fuzzing), printing their figures (-s).
proof: $(STAMP)
	$(BIN)/pytest -q -s -m slow -p no:cacheprovider

# Benchmarks print figures (BENCHMARKS.md); they never pass or fail on time.
bench: $(STAMP)
	$(BIN)/python bench/provision.py --tenants 200 --nodes 4
	$(BIN)/python bench/list_tenants.py --tenants 100000 --clients 50
	$(BIN)/python bench/cold_start.py

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache

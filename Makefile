# The two commands: `make run` (the whole system on embedded defaults) and `make test`.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
# `make test` runs in this many pytest-xdist processes, each with its own embedded
# PostgreSQL. Most tests wait on subprocesses, sockets and timers, so three share two
# cores well (13 min in one process, 7 in three). The browser suites (tests/e2e) then run
# alone, in one process: beside three workers, a portal test once waited 30 s for a tenant
# that sat in its clone step, and that is not understood yet.
TEST_WORKERS ?= 3

.PHONY: run test lint proof bench install clean portal portal-test

# The customer portal (portal/, SvelteKit) is built when Node.js and npm are installed;
# without them the control plane runs without it (Debian: apt-get install nodejs npm).
NPM := $(shell command -v npm 2>/dev/null)
PORTAL_STAMP := portal/node_modules/.installed

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -e '.[dev]'
	touch $(STAMP)

install: $(STAMP)

$(PORTAL_STAMP): portal/package.json portal/package-lock.json
	cd portal && npm ci --no-audit --no-fund
	touch $(PORTAL_STAMP)

portal:
ifdef NPM
	$(MAKE) --no-print-directory $(PORTAL_STAMP)
	cd portal && npm run build
else
	@echo "npm is not installed: the customer portal is not built (apt-get install nodejs npm)"
endif

# Its type check and unit tests (Vitest); the browser tests are in tests/e2e.
portal-test: portal
ifdef NPM
	cd portal && npm run check && npm test
endif

run: $(STAMP) portal
	$(BIN)/controlplane init-env
	$(BIN)/controlplane demo

lint: $(STAMP)
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy

test: $(STAMP) portal-test
	$(BIN)/ruff format --check src tests bench
	$(BIN)/ruff check src tests bench
	$(BIN)/mypy
	$(BIN)/pytest -q -m "not slow" -p no:cacheprovider -n $(TEST_WORKERS) --dist loadgroup --ignore=tests/e2e
	$(BIN)/pytest -q -m "not slow" -p no:cacheprovider tests/e2e

# The long suites (chaos, faults, load, deep fuzzing), printing their figures (-s).
proof: $(STAMP)
	$(BIN)/pytest -q -s -m slow -p no:cacheprovider

# Benchmarks print figures (BENCHMARKS.md); they never pass or fail on time. The portal's
# (P6) needs Chromium and the built portal (make portal), and says so when either is missing.
bench: $(STAMP) portal
	$(BIN)/python bench/provision.py --tenants 200 --nodes 4
	$(BIN)/python bench/list_tenants.py --tenants 100000 --clients 50
	$(BIN)/python bench/cold_start.py
	$(BIN)/python bench/portal_click_to_active.py --runs 20
	$(BIN)/python bench/console_latency.py --keys 500 --consoles 50
	$(BIN)/python bench/warm_pool.py --warm-nodes 3 --pool 2 --cold-nodes 3

clean:
	rm -rf $(VENV) var .pytest_cache .ruff_cache portal/node_modules portal/build portal/.svelte-kit

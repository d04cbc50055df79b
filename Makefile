# Ripple: `make demo` and `make test` each do all of their own set-up on a fresh machine
# (Debian packages, .venv, Kafka's jars). Every step is idempotent and skips what is done.

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
RIPPLE := $(VENV)/bin/ripple
CONFIG ?=
RIPPLE_CONFIG_ARG := $(if $(CONFIG),--config $(CONFIG))
PYTEST_ARGS ?= -q
SUDO := $(shell [ "$$(id -u)" = 0 ] || echo sudo)

# Debian packages the stack and the tests use; the commands tell whether each is present.
APT_PACKAGES := prometheus:prometheus prometheus-alertmanager:prometheus-alertmanager \
	chromium:chromium chromium-driver:chromedriver wrk:wrk zstd:zstd maven:mvn \
	openjdk-17-jre-headless:java docker-compose:docker-compose

.PHONY: help install system-packages jars go-tools check test rules-test demo down clean

help:
	@echo "make demo    install, start the local stack and play the demo history into it (ripple demo)"
	@echo "make test    install, lint/type-check, run the whole test suite against real services"
	@echo "make check   ruff + mypy only;  make down   stop the stack;  make install   set-up only"

install: system-packages $(VENV)/.installed jars go-tools

system-packages:
	@missing=""; \
	for entry in $(APT_PACKAGES); do \
	  pkg=$${entry%%:*}; cmd=$${entry##*:}; \
	  command -v $$cmd >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	$(PYTHON) -c 'import ensurepip, venv' 2>/dev/null || missing="$$missing python3-venv"; \
	if [ -n "$$missing" ]; then \
	  echo "installing Debian packages:$$missing"; \
	  $(SUDO) apt-get update -q; \
	  $(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends $$missing; \
	fi

$(VENV)/.installed: pyproject.toml
	@[ -x $(PY) ] || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --upgrade pip
	$(PY) -m pip install -q -e '.[dev]'
	@touch $@

# Kafka's runtime jars, fetched once by Maven into ~/.cache/ripple (or $$RIPPLE_JAR_CACHE).
jars: $(VENV)/.installed
	@$(PY) -m deploy.stack.kafka >/dev/null

# helm, kubeconform and controller-gen, built once from the Go module proxy into the same
# cache (or $$RIPPLE_TOOL_CACHE), and the offline Kubernetes schemas the chart is checked with.
go-tools: $(VENV)/.installed
	@$(PY) -m deploy.stack.gotools >/dev/null
	@$(PY) -m deploy.stack.kubeschemas >/dev/null

check: $(VENV)/.installed
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .
	$(VENV)/bin/mypy

# pytest exits non-zero when a test fails and also when no test was collected.
test: install check
	$(VENV)/bin/pytest $(PYTEST_ARGS) tests
	@$(MAKE) --no-print-directory rules-test

# Prometheus rule unit tests (promtool 2.x format), once the dashboards package has them.
rules-test:
	@if compgen -G 'dashboards/tests/*.yaml' >/dev/null; then \
	  echo "promtool test rules dashboards/tests/*.yaml"; \
	  promtool test rules dashboards/tests/*.yaml; \
	else echo "no dashboards/tests/*.yaml yet: no rule tests"; fi

# The demo's tracking configuration (brands, campaign, website) unless CONFIG names another.
DEMO_CONFIG_ARG := --config $(or $(CONFIG),deploy/demo.toml)

demo: install
	$(RIPPLE) up $(DEMO_CONFIG_ARG)
	$(RIPPLE) demo $(DEMO_CONFIG_ARG)

down:
	@if [ -x $(RIPPLE) ]; then $(RIPPLE) down $(RIPPLE_CONFIG_ARG); fi

clean: down
	rm -rf .ripple .pytest_cache .mypy_cache .ruff_cache

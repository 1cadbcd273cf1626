# The README's commands. Each sets up what it needs (venv, pinned packages, pinned CDK CLI and Node) first.
SHELL := /bin/bash
VENV := .venv
PY := $(VENV)/bin/python
# Node 22 from package.json (jsii and the CDK CLI), ahead of the machine's Node.
export PATH := $(CURDIR)/node_modules/.bin:$(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: setup haproxy synth test test-fast lint typecheck unit bench clean
# The gateway's data path: the HAProxy series the image installs (gateway/Dockerfile reads the same file).
HAPROXY_SERIES := $(shell cat gateway/haproxy-version)

setup: $(VENV)/.installed node_modules/.installed .venv-checkov/.installed haproxy

# HAProxy from Debian 12's packages, as in the gateway image. As root this installs it; otherwise it says what to do.
haproxy:
	@if command -v haproxy >/dev/null && haproxy -v | grep -q "version $(HAPROXY_SERIES)\."; then :; \
	elif [ "$$(id -u)" = 0 ]; then \
		apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "haproxy=$(HAPROXY_SERIES).*"; \
	else \
		echo "The gateway tests need HAProxy $(HAPROXY_SERIES): run 'sudo apt-get install haproxy=$(HAPROXY_SERIES).*'" \
		     "(Debian 12), or point GATEWAY_HAPROXY at an HAProxy $(HAPROXY_SERIES) binary." >&2; exit 1; \
	fi

$(VENV)/.installed: requirements.txt requirements-dev.txt gateway/requirements.txt pyproject.toml client/pyproject.toml
	test -x $(PY) || python3 -m venv $(VENV)
	$(PY) -m pip install --quiet --upgrade pip
	$(PY) -m pip install --quiet -r requirements-dev.txt
	$(PY) -m pip install --quiet --no-deps -e .   # the chroma-ops command
	$(PY) -m pip install --quiet --no-deps -e ./client   # the client package (its dependencies are pinned above)
	touch $@

# checkov in a virtualenv of its own: its pinned dependencies clash with the test stack's.
.venv-checkov/.installed: requirements-checkov.txt
	test -x .venv-checkov/bin/python || python3 -m venv .venv-checkov
	.venv-checkov/bin/python -m pip install --quiet -r requirements-checkov.txt
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
	mypy app.py conftest.py cdk_app stacks gateway lambdas ops tests client examples

unit: setup
	pytest -q

## Everything CI runs: lint, types, all tests.
test: lint typecheck unit

## The inner loop: lint, types and the tests that need no synth and no server (seconds, not minutes).
test-fast: lint typecheck
	pytest -q -m "not synth and not servers"

## Gateway vs direct Chroma latency and throughput (prints a table).
bench: setup
	$(PY) -m gateway.bench

clean:
	rm -rf cdk.out .pytest_cache .mypy_cache .ruff_cache

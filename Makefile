# The RAG platform. `make up` runs it locally (no Docker), `make test` runs every test.
PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
PACKAGE_FILES := tools/bootstrap.py requirements-dev.txt $(wildcard libs/*/pyproject.toml services/*/pyproject.toml tools/*/pyproject.toml)

.DEFAULT_GOAL := help

.PHONY: help ## Show the targets
help:
	@grep -E '^\.PHONY: [a-z-]+ ## ' $(MAKEFILE_LIST) | sed -E 's/\.PHONY: ([a-z-]+) ## (.*)/  make \1\t\2/' | expand -t 20

$(STAMP): $(PACKAGE_FILES)
	$(PYTHON) tools/bootstrap.py

.PHONY: install ## Create .venv and install every package (editable) and the dev tools
install: $(STAMP)

.PHONY: up ## Start Redis (installing it if needed) and the six services on loopback
up: install
	$(PY) -m rag_devstack up

.PHONY: down ## Stop everything `make up` started
down:
	@if [ -x $(PY) ]; then $(PY) -m rag_devstack down; else echo "Nothing to stop."; fi

.PHONY: status ## Show which services of the local stack are running
status: install
	$(PY) -m rag_devstack status

.PHONY: test ## Run every test: unit tests per package, contract and end-to-end tests
test: install
	$(PY) -m pytest

.PHONY: openapi ## Write openapi/<service>.json from each service's app and list breaking changes
openapi: install
	$(PY) -m rag_devstack.openapi

.PHONY: lint ## ruff lint and format check
lint: install
	$(VENV)/bin/ruff check .
	$(VENV)/bin/ruff format --check .

.PHONY: format ## Apply ruff fixes and formatting
format: install
	$(VENV)/bin/ruff check --fix .
	$(VENV)/bin/ruff format .

.PHONY: bench ## Run every benchmark in bench/ (bounded) and write the results table to docs/benchmarks.md
bench: install
	$(VENV)/bin/pip install -q -r bench/requirements.txt
	$(PY) bench/run_all.py

.PHONY: compose-check ## Validate docker-compose.yml against the compose schema
compose-check: install
	$(VENV)/bin/check-jsonschema --builtin-schema vendor.compose-spec docker-compose.yml

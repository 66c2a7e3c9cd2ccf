# The two entry points of the README, plus the pieces they are made of.
SHELL := /bin/bash
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin

.PHONY: demo test unit bench stack-up stack-down install clean

$(BIN)/.installed: pyproject.toml requirements.lock setup.py services/invoices/formats/_walk.pyx
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -q --upgrade pip
	$(BIN)/pip install -q -c requirements.lock -e '.[test]'
	touch $@

install: $(BIN)/.installed

## Runs the system on a demo workload: stack, services, a short scenario, a summary.
demo: install
	$(BIN)/invoicing demo

## Runs every test, the integration ones against the real Kafka and PostgreSQL.
test: install
	$(BIN)/invoicing stack up
	$(BIN)/python -m pytest

unit: install
	$(BIN)/python -m pytest tests/unit

## Invoices per second and latency from receipt to payment order, against a raw aiokafka + asyncpg floor.
bench: install
	$(BIN)/invoicing bench e2e

stack-up: install
	$(BIN)/invoicing stack up

stack-down: install
	$(BIN)/invoicing stack down

clean:
	rm -rf $(VENV) *.egg-info

# Mosaic CRM — the two commands of the README:
#   make demo   install into .venv and serve a demo instance (SQLite, enterprise edition, 简体中文)
#   make test   install the test dependencies and run the whole test suite (SQLite and PostgreSQL)
PYTHON ?= python3
VENV ?= .venv
BIN = $(VENV)/bin
PIP = $(BIN)/python -m pip --disable-pip-version-check -q
EDITION ?= enterprise
PYTEST_ARGS ?= -n auto
LANGUAGE ?= zh_CN

# Some machines set PYTHONDONTWRITEBYTECODE: then every process (each test worker, each `mosaic` subprocess of the
# CLI and scheduler tests) compiles the project's modules from source again, about a second per start.
unexport PYTHONDONTWRITEBYTECODE

.PHONY: demo install test test-deps lint clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)

install: $(BIN)/python
	$(PIP) install -e .
	$(BIN)/mosaic i18n compile

demo: install
	$(BIN)/mosaic demo --edition $(EDITION) --language $(LANGUAGE)

test-deps: $(BIN)/python
	$(PIP) install -e ".[test]" -e tests/dists/example_notes -e tests/dists/broken_addons
	$(BIN)/mosaic i18n compile

lint: test-deps
	$(BIN)/ruff check .

test: test-deps
	$(BIN)/ruff check .
	$(BIN)/python -m pytest $(PYTEST_ARGS)

clean:
	rm -rf $(VENV) instance .pytest_cache

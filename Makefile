# Lethe — the two set-up commands are `make run` and `make test` (both create .venv/ when needed).
# `make run` serves the web UI and the API on http://127.0.0.1:8000 (the first start prints the admin
# password once); `make tour` is the command-line tour with example photos.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
LETHE_TEST_DATA ?= $(abspath ../shared/data)
export LETHE_TEST_DATA

.PHONY: run serve tour test lint typecheck pytest bench-ingest clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/lethe serve --host 127.0.0.1 --port 8000

serve: run

tour: $(STAMP)
	$(BIN)/python scripts/tour.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts

typecheck: $(STAMP)
	$(BIN)/mypy src

pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 -q

test: lint typecheck pytest

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest_lfw.py --data $(LETHE_TEST_DATA)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

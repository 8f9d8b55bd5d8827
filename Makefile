# ojpanel — `make reproduce` and `make test` bootstrap .venv themselves.
PYTHON ?= $(shell command -v python3.11 || command -v python3)
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= reports

.PHONY: install reproduce test test-full lint paper benchmarks clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded data: panel, descriptive report, replication, pipeline, paper.
reproduce: $(STAMP)
	$(BIN)/ojpanel reproduce all --out $(OUT)

## The test suite (CI runs exactly this; CI=true selects smoke sizes for slow checks).
test: $(STAMP)
	$(BIN)/python -m pytest

## Slow statistical checks at full size (local machines).
test-full: $(STAMP)
	CI= OJPANEL_FULL=1 $(BIN)/python -m pytest -m "slow or not slow"

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

paper: $(STAMP)
	$(BIN)/ojpanel paper --out $(OUT)

benchmarks: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(OUT) .pytest_cache build dist

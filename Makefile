# ojpanel — `make reproduce` and `make test` bootstrap .venv themselves.
#
# The supported stack is Python 3.12/3.13 (PyMC >= 6, ArviZ >= 1). The interpreter is found here,
# in this order: $(PYTHON) if given, python3 / python3.12 / python3.13 on PATH, then pyenv's
# installed versions (3.12 before 3.13). A .venv built from another Python is rebuilt.
SUPPORTED := 3.12 3.13
VENV   := .venv
BIN    := $(VENV)/bin
STAMP  := $(VENV)/.installed
OUT    ?= reports

# Prints the first interpreter whose version is supported, or nothing.
define find_python
for c in $(PYTHON) python3 python3.12 python3.13 \
         $$(ls -d $$(pyenv root 2>/dev/null || echo $$HOME/.pyenv)/versions/3.1[23]*/bin/python3 2>/dev/null | sort -V); do \
  p=$$(command -v $$c 2>/dev/null) || continue; \
  v=$$($$p -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null) || continue; \
  case " $(SUPPORTED) " in *" $$v "*) echo $$p; exit 0;; esac; \
done
endef

FOUND_PYTHON := $(shell $(find_python))
VENV_VERSION := $(shell $(BIN)/python -c 'import sys; print("%d.%d" % sys.version_info[:2])' 2>/dev/null)

.PHONY: install reproduce test test-full lint lab paper benchmarks clean check-python FORCE

check-python:
	@if [ -z "$(FOUND_PYTHON)" ]; then \
	  echo "ojpanel needs Python 3.12 or 3.13, and none was found (looked for python3, python3.12,"; \
	  echo "python3.13 on PATH and pyenv's versions). Install one, e.g. 'pyenv install 3.12' or your"; \
	  echo "system's python3.12 package, or name it: make test PYTHON=/path/to/python3.12"; \
	  exit 2; fi

# Rebuild the venv when it runs an unsupported Python (e.g. one made earlier with 3.11).
ifneq ($(VENV_VERSION),)
ifeq ($(filter $(VENV_VERSION),$(SUPPORTED)),)
$(STAMP): FORCE
endif
endif

$(STAMP): pyproject.toml | check-python
	@if [ -d $(VENV) ] && ! $(BIN)/python -c 'import sys; sys.exit(sys.version_info[:2] not in {(3, 12), (3, 13)})' 2>/dev/null; then \
	  echo "Rebuilding $(VENV): it was made with an unsupported Python."; rm -rf $(VENV); fi
	@echo "Using $(FOUND_PYTHON) ($$($(FOUND_PYTHON) --version))"
	$(FOUND_PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e ".[dev]"
	touch $(STAMP)

install: $(STAMP)

## The main job on the embedded data: panel, descriptive report, replication, pipeline, paper.
reproduce: $(STAMP)
	$(BIN)/ojpanel reproduce all --out $(OUT)

# Test processes: one per core (tests that share the smoke pipeline run in one of them).
TEST_JOBS ?= auto

## The fast test suite: the same on every machine, in CI or not (slow checks at smoke size).
test: $(STAMP)
	env -u OJPANEL_FULL $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup

## Slow statistical checks at full size (hours; local machines).
test-full: $(STAMP)
	OJPANEL_FULL=1 $(BIN)/python -m pytest -n $(TEST_JOBS) --dist loadgroup

## JupyterLab on notebooks/ from the project's environment.
lab: $(STAMP)
	$(BIN)/jupyter lab notebooks

lint: $(STAMP)
	$(BIN)/ruff check src tests benchmarks

paper: $(STAMP)
	$(BIN)/ojpanel paper --out $(OUT)

benchmarks: $(STAMP)
	for f in benchmarks/bench_*.py; do $(BIN)/python $$f || exit 1; done

clean:
	rm -rf $(OUT) .pytest_cache build dist

# The two commands: `make run` and `make test`. Everything installs into .venv from the project's own files,
# at the versions in constraints.txt: the set the tests last passed with (`make lock` moves them on).
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed
DEV_STAMP := $(VENV)/.installed-dev

.PHONY: run test lint bench clean lock

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet --constraint constraints.txt -e .
	touch $@

# Tests install the semantic and sentry extras too, so CI tests both matchers (torch pinned to the
# local CPU build) and error reporting, and mypy sees every optional import.
$(DEV_STAMP): pyproject.toml constraints.txt | $(BIN)/python
	$(BIN)/pip install --quiet --constraint constraints.txt -e '.[dev,semantic,sentry]'
	touch $(STAMP) $@

run: $(STAMP)
	$(BIN)/supportbot db upgrade
	$(BIN)/supportbot run

test: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy
	$(BIN)/python -m pytest -q; rc=$$?; if [ $$rc -eq 5 ]; then echo "pytest collected no tests"; exit 1; fi; exit $$rc

lint: $(DEV_STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .
	$(BIN)/mypy

bench: $(STAMP)
	$(BIN)/python -m bench.pipeline

# The newest versions pyproject.toml's ranges allow, written to constraints.txt; run `make test` next.
# Without it a fresh clone took a new major release on the day it came out (sentry-sdk 3.0) and CI
# failed on code nobody had changed.
lock: | $(BIN)/python
	$(BIN)/pip install --quiet --upgrade -e '.[dev,semantic,sentry]'
	{ echo '# The versions `make run` and `make test` install: the set the tests last passed with.'; \
	  echo '# Regenerate with `make lock` (the newest versions pyproject.toml allows), then run `make test`.'; \
	  $(BIN)/pip freeze --exclude-editable; } > constraints.txt
	touch $(STAMP) $(DEV_STAMP)

clean:
	rm -rf $(VENV) data .pytest_cache

# Two commands on a fresh machine: `make run` and `make test`. Both build .venv themselves.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.PHONY: run test lint types pytest sandbox bench bench-sandbox bench-startup bench-levels bench-observability bench-backup bench-deploy clean

$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip
	$(BIN)/python -m pip install --quiet -e '.[test]'
	touch $(STAMP)

run: $(STAMP)
	$(BIN)/botops run

test: lint types pytest

lint: $(STAMP)
	$(BIN)/ruff check .
	$(BIN)/ruff format --check .

types: $(STAMP)
	$(BIN)/mypy

pytest: $(STAMP)
	$(BIN)/pytest $(PYTEST_ARGS)

sandbox: $(STAMP)
	$(BIN)/botops sandbox

bench: bench-sandbox bench-startup bench-levels bench-observability bench-deploy

bench-sandbox: $(STAMP)
	$(BIN)/python bench/sandbox.py

bench-startup: $(STAMP)
	$(BIN)/python bench/startup.py

bench-levels: $(STAMP)
	$(BIN)/python -m pip install --quiet -e '.[bench]'
	$(BIN)/python bench/levels.py

bench-observability: $(STAMP)
	$(BIN)/python bench/observability.py

# Not part of `make bench`: it writes a 1 GiB database (once, about 100 s) and runs about 4 minutes.
bench-backup: $(STAMP)
	$(BIN)/python bench/backup.py

bench-deploy: $(STAMP)
	$(BIN)/python bench/deploy.py

clean:
	rm -rf $(VENV) .mypy_cache .ruff_cache .pytest_cache

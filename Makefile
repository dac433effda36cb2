# mammo: `make help` lists the targets.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
STAMP := $(VENV)/.installed

.DEFAULT_GOAL := help
.PHONY: help install train test test-slow lint format bench clean

help: ## list the targets
	@grep -E '^[a-z-]+:.*## ' $(MAKEFILE_LIST) | awk 'BEGIN {FS = ":.*## "}; {printf "  make %-10s %s\n", $$1, $$2}'

# -qq: pip reports errors only, not its notices (index locations, the editable-install
# note that setuptools gives every package mapped from another folder, as conf/ is)
$(STAMP): pyproject.toml
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install -qq --upgrade pip
	$(BIN)/pip install -qq -e ".[dev]"
	touch $(STAMP)

install: $(STAMP) ## create .venv and install mammo with its dev extras

train: $(STAMP) ## install, then train the study's 2.1 model on the built-in demo data
	$(BIN)/mammo train task=2.1 model=scratch

test: $(STAMP) ## run the fast test suite (real TensorFlow on tiny data)
	$(BIN)/pytest -n 2 -q

test-slow: $(STAMP) ## run only the slow tests (full-length trainings)
	$(BIN)/pytest -q -m slow

bench: $(STAMP) ## run the benchmarks (speed, memory, start-up): one table + benchmarks/results.json
	$(BIN)/python benchmarks/run_all.py

lint: $(STAMP) ## ruff lint and format check
	$(BIN)/ruff check mammo_cli tests benchmarks
	$(BIN)/ruff format --check mammo_cli tests benchmarks

format: $(STAMP) ## ruff autofix and format
	$(BIN)/ruff check --fix mammo_cli tests benchmarks
	$(BIN)/ruff format mammo_cli tests benchmarks

clean: ## remove the virtual environment, caches and run outputs
	rm -rf $(VENV) .pytest_cache .ruff_cache build *.egg-info
	find outputs -mindepth 1 ! -name .gitkeep -exec rm -rf {} +

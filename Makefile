# The two commands of the README: `make workbook` and `make test`.
PYTHON ?= python3
VENV   := .venv
BIN    := $(VENV)/bin

.PHONY: workbook test test-fast bench lint tex clean images docs

workbook: $(VENV)/.runtime tex
	$(BIN)/workbook build

# Both cores (pytest-xdist). Work both workers would repeat is made once in a run and shared
# through a folder (tests/conftest.py, shared_folder): pytest 9 ignores xdist's test groups.
XDIST  := -n 2

test: $(VENV)/.test tex
	$(BIN)/python -m pytest $(XDIST) --durations=15

test-fast: $(VENV)/.test
	$(BIN)/python -m pytest $(XDIST) -m "not tex and not slow"

bench: $(VENV)/.test tex
	$(BIN)/python benchmarks/bench.py
	$(BIN)/python benchmarks/bench_build.py
	$(BIN)/python benchmarks/bench_handouts.py
	$(BIN)/python benchmarks/bench_grade.py
	$(BIN)/python benchmarks/bench_relay.py

# The README's pictures (docs/img/) and the command-line reference (docs/cli.md), remade
# from the current code; tests/test_docs.py fails when either is stale.
images: $(VENV)/.test tex
	$(BIN)/python scripts/make_images.py

docs: $(VENV)/.runtime
	$(BIN)/python scripts/cli_doc.py

lint: $(VENV)/.test
	$(BIN)/ruff check workbook tests benchmarks scripts
	$(BIN)/ruff format --check workbook tests benchmarks scripts

tex:
	bash scripts/install-tex.sh

$(VENV)/bin/python:
	$(PYTHON) -m venv $(VENV) || { apt-get update -qq && apt-get install -y -qq python3-venv && $(PYTHON) -m venv $(VENV); }

$(VENV)/.runtime: pyproject.toml $(VENV)/bin/python
	$(BIN)/pip install -q -e .
	touch $@

$(VENV)/.test: pyproject.toml $(VENV)/.runtime
	$(BIN)/pip install -q -e '.[test]'
	touch $@

clean:
	rm -rf $(VENV) build/*.aux build/*.log build/*.toc build/*.out build/*.fls build/*.fdb_latexmk

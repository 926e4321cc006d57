# Two commands set everything up on a fresh machine with Python 3.11+:
#   make demo   create .venv, install scalelab and run `scalelab demo`
#   make test   create .venv, install the test dependencies and run the tests
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned: on the project's build machines this exact version is a local CPU wheel, while any
# other spec makes pip fetch a multi-GB CUDA build. On a user's machine it comes from PyPI.
TORCH ?= torch==2.13.0

.PHONY: demo test test-all lint bench clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet --upgrade pip

$(VENV)/.installed-demo: pyproject.toml | $(BIN)/python
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet -e ".[tunnel,report,data]"
	touch $@

$(VENV)/.installed-test: pyproject.toml $(VENV)/.installed-demo
	$(BIN)/pip install --quiet -e ".[tunnel,report,data,distributed,hf,test]"
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/scalelab demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not slow"

test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

# ruff, mypy and pandas-stubs come from the `lint` extra; both tools read their settings from pyproject.toml.
lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks recipes
	$(BIN)/python -m mypy src

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

clean:
	rm -rf $(VENV) build *.egg-info

# Two commands set everything up on a fresh machine with Python 3.11+:
#   make demo   create .venv, install scalelab and run `scalelab demo`
#   make test   create .venv, install the test dependencies and run the tests
# Both install exactly the committed lock (requirements/*.lock, hashed); `make lock` regenerates it and
# `make test-latest` runs the suite on the newest versions pyproject.toml allows, to find drift on purpose.
PYTHON ?= python3
VENV ?= .venv
BIN := $(VENV)/bin
# torch is pinned apart from the lock (see requirements/torch.in): on the project's build machines this
# exact version is a local CPU wheel, while any other spec makes pip fetch a multi-GB CUDA build. On a
# user's machine it comes from PyPI.
TORCH ?= torch==2.13.0
PIP ?= pip==26.3
PIP_TOOLS ?= pip-tools==7.6.2
LOCK_DEMO := requirements/demo.lock
LOCK_DEV := requirements/dev.lock
DEMO_EXTRAS := tunnel report data
DEV_EXTRAS := tunnel report data distributed hf mixtures tracking test lint
comma := ,
empty :=
space := $(empty) $(empty)
COMPILE := --quiet --generate-hashes --strip-extras --unsafe-package torch --no-emit-index-url \
	--no-emit-find-links

.PHONY: demo test test-slow test-all test-latest lint bench lock check-lock clean

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/pip install --quiet "$(PIP)"

# torch first (pinned), then exactly the lock's versions (hash-checked), then scalelab itself, editable
# and without dependencies (the lock has them all); then check .venv against the lock. The demo lock's
# versions are the dev lock's, so `make demo` after `make test` accepts the dev lock's extra packages.
define install_lock
	$(BIN)/pip install --quiet "$(TORCH)"
	$(BIN)/pip install --quiet --require-hashes -r $(1)
	$(BIN)/pip install --quiet --no-deps -e .
	$(BIN)/python requirements/check_lock.py $(1) $(2)
endef

$(VENV)/.installed-demo: $(LOCK_DEMO) pyproject.toml | $(BIN)/python
	$(call install_lock,$(LOCK_DEMO),$(LOCK_DEV))
	touch $@

$(VENV)/.installed-test: $(LOCK_DEV) pyproject.toml | $(BIN)/python
	$(call install_lock,$(LOCK_DEV))
	touch $@

demo: $(VENV)/.installed-demo
	$(BIN)/scalelab demo

test: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m "not slow"

# the `slow` tests alone (end to end, several processes); .ci/run runs them after `make test`
test-slow: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q -m slow

# the whole suite in one run, `slow` tests included
test-all: $(VENV)/.installed-test
	$(BIN)/python -m pytest -q

lint: $(VENV)/.installed-test
	$(BIN)/ruff check src tests benchmarks recipes requirements
	$(BIN)/python -m mypy src

# are the packages in .venv exactly the lock's versions?
check-lock: $(VENV)/.installed-test
	$(BIN)/python requirements/check_lock.py $(LOCK_DEV)

bench: $(VENV)/.installed-test
	$(BIN)/python benchmarks/run_all.py

# regenerate both locks from pyproject.toml (the demo lock is constrained to the dev lock's versions)
lock:
	$(PYTHON) -m venv $(VENV)-lock
	$(VENV)-lock/bin/pip install --quiet "$(PIP)" "$(PIP_TOOLS)"
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)-lock/bin/pip-compile $(COMPILE) $(addprefix --extra ,$(DEV_EXTRAS)) -o $(LOCK_DEV) \
		pyproject.toml requirements/torch.in
	CUSTOM_COMPILE_COMMAND="make lock" $(VENV)-lock/bin/pip-compile $(COMPILE) $(addprefix --extra ,$(DEMO_EXTRAS)) -c $(LOCK_DEV) \
		-o $(LOCK_DEMO) pyproject.toml requirements/torch.in

# the newest versions pyproject.toml allows, in a venv of their own: drift found on purpose (torch stays at
# its pin: an eager upgrade would otherwise fetch the newest multi-GB build)
test-latest:
	$(PYTHON) -m venv $(VENV)-latest
	$(VENV)-latest/bin/pip install --quiet --upgrade pip
	$(VENV)-latest/bin/pip install --quiet "$(TORCH)"
	$(VENV)-latest/bin/pip install --quiet --upgrade --upgrade-strategy eager -c requirements/torch.in \
		-e ".[$(subst $(space),$(comma),$(DEV_EXTRAS))]"
	$(VENV)-latest/bin/python requirements/check_lock.py --report-drift $(LOCK_DEV)
	$(VENV)-latest/bin/python -m pytest -q -m "not slow"

clean:
	rm -rf $(VENV) $(VENV)-lock $(VENV)-latest build *.egg-info

# The README's two commands: `make serve` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# CI also runs the tests but the browser ones on these (pyenv's newest X.Y, else pythonX.Y on PATH), in
# its own .venv-X.Y; `make test-pythons` does that, `.ci/run` runs it after `make test`.
OTHER_PYTHONS ?= 3.12 3.13

.PHONY: serve test lint bench install install-test clean test-pythons check-python

# Before .venv is made or used: PYTHON must be 3.11 or newer, and an existing .venv must still run
# and be of PYTHON's version (one made with an interpreter since removed or replaced is stale).
# Each says what to do, instead of a syntax error from pip or a "bad interpreter" from .venv.
PY_VERSION := import platform; print(platform.python_version())
AGAIN = then run: make $(or $(MAKECMDGOALS),serve)

check-python:
	@v=$$($(PYTHON) -c '$(PY_VERSION)' 2>/dev/null) || v=""; \
	case "$$v" in \
	  3.1[1-9]*|3.[2-9][0-9]*) ;; \
	  "") echo "make: cannot run PYTHON=$(PYTHON): speakerfeed needs Python 3.11 or newer;" \
	        "install one and name it, e.g. make serve PYTHON=python3.12" >&2; exit 1;; \
	  *) echo "make: speakerfeed needs Python 3.11 or newer, but PYTHON=$(PYTHON) is $$v;" \
	       "install a newer one (apt install python3.12, or pyenv install 3.12) and name it," \
	       "e.g. make serve PYTHON=python3.12" >&2; exit 1;; \
	esac; \
	[ -e $(VENV) ] || exit 0; \
	made=$$($(BIN)/python -c '$(PY_VERSION)' 2>/dev/null) || made=""; \
	if [ -z "$$made" ]; then \
	  echo "make: $(VENV) is stale: its python does not run (the interpreter it was made" \
	       "with is gone); remove it with rm -rf $(VENV), $(AGAIN)" >&2; exit 1; \
	fi; \
	if [ "$${made%.*}" != "$${v%.*}" ]; then \
	  echo "make: $(VENV) is stale: it was made with Python $$made, not PYTHON=$(PYTHON)" \
	       "($$v); remove it with rm -rf $(VENV), $(AGAIN)" >&2; exit 1; \
	fi

$(BIN)/python: | check-python
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: check-python $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: check-python $(BIN)/python
	$(BIN)/pip install --quiet -e '.[test]'

serve: install
	$(BIN)/speakerfeed serve

lint: install-test
	$(BIN)/ruff check src tests bench
	$(BIN)/ruff format --check src tests bench
	$(BIN)/mypy
	$(BIN)/lint-imports

test: lint
	$(BIN)/pytest

test-pythons: $(addprefix test-py,$(OTHER_PYTHONS))

# test-py3.12: the non-browser tests on Python 3.12 (PYTEST_ARGS=tests/config: some of them).
# Without that interpreter it says so and passes on a developer's machine; fails under CI=true.
test-py%:
	@py=$$(ls -d $${PYENV_ROOT:-$$HOME/.pyenv}/versions/$*.*/bin/python 2>/dev/null | sort -V | tail -1); \
	py=$${py:-$$(command -v python$* || true)}; \
	if [ -z "$$py" ]; then \
	  echo "test-py$*: no Python $* (python$* on PATH or pyenv install $*)"; \
	  [ "$${CI:-}" != "true" ]; exit $$?; \
	fi; \
	set -e; \
	[ -x .venv-$*/bin/python ] || "$$py" -m venv .venv-$*; \
	.venv-$*/bin/pip install --quiet -e '.[test]'; \
	.venv-$*/bin/pytest -m "not browser" $(PYTEST_ARGS)

bench: install
	$(BIN)/python bench/build.py

clean:
	rm -rf $(VENV) .venv-3.* public var bench/work .mypy_cache .ruff_cache .pytest_cache .hypothesis .import_linter_cache

# The README's two commands: `make serve` and `make test`. Both set up .venv on first use.
PYTHON ?= python3
VENV := .venv
BIN := $(VENV)/bin

# CI also runs the tests but the browser ones on these (pyenv's newest X.Y, else pythonX.Y on PATH), in
# its own .venv-X.Y; `make test-pythons` does that, `.ci/run` runs it after `make test`.
OTHER_PYTHONS ?= 3.12 3.13

.PHONY: serve test lint bench install install-test clean test-pythons

$(BIN)/python:
	$(PYTHON) -m venv $(VENV)
	$(BIN)/python -m pip install --quiet --upgrade pip

install: $(BIN)/python
	$(BIN)/pip install --quiet -e .

install-test: $(BIN)/python
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

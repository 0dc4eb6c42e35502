# `make test` and `make demo` do all the set-up on a fresh machine that has Python 3 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# A second environment with every dependency at its declared floor (constraints-oldest.txt).
VENV_OLDEST ?= .venv-oldest
PY_OLDEST := $(VENV_OLDEST)/bin/python
STAMP_OLDEST := $(VENV_OLDEST)/.installed-stamp

.PHONY: test test-oldest demo lint typecheck pytest bench clean

# (Re)install only when the project's metadata or the pins change: a second `make test` goes straight to the checks.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

$(STAMP_OLDEST): pyproject.toml constraints-oldest.txt
	test -x $(PY_OLDEST) || $(PYTHON) -m venv $(VENV_OLDEST)
	$(PY_OLDEST) -m pip install --quiet -c constraints-oldest.txt -e '.[test]'
	touch $(STAMP_OLDEST)

test: lint typecheck pytest

# The whole pytest suite (doctests and notebooks included) on the oldest supported versions; ruff and mypy run
# in `make test` only. As there, pytest's exit 5 (no test collected) fails the target like any other failure.
test-oldest: $(STAMP_OLDEST)
	$(PY_OLDEST) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check hingemetrics tests notebooks
	$(VENV)/bin/ruff format --check hingemetrics tests notebooks

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test; make treats that, like any failure, as an error.
pytest: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m hingemetrics demo

bench: $(STAMP)
	$(PY) -m hingemetrics.benchmark

clean:
	rm -rf $(VENV) $(VENV_OLDEST) hingemetrics-demo build *.egg-info

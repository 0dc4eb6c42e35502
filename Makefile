# `make test` and `make demo` do all the set-up on a fresh machine that has Python 3 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp

.PHONY: test demo lint typecheck pytest bench clean

# (Re)install only when the project's metadata or the pins change: a second `make test` goes straight to the checks.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

test: lint typecheck pytest

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
	rm -rf $(VENV) hingemetrics-demo build *.egg-info

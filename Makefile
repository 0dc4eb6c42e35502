# `make test` and `make demo` do all the set-up on a fresh machine that has Python 3 and pip.
PYTHON ?= python3
VENV ?= .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed-stamp
# A second environment with every dependency at its declared floor (constraints-oldest.txt).
VENV_OLDEST ?= .venv-oldest
PY_OLDEST := $(VENV_OLDEST)/bin/python
STAMP_OLDEST := $(VENV_OLDEST)/.installed-stamp
# The docs' tools go into .venv too, each set behind a stamp of its own.
STAMP_DOCS := $(VENV)/.docs-stamp
STAMP_DOCS_CHECK := $(VENV)/.docs-check-stamp
CHROMIUM ?= /usr/bin/chromium

.PHONY: test test-oldest demo lint typecheck pytest bench docs docs-check clean

# (Re)install only when the project's metadata or the pins change: a second `make test` goes straight to the checks.
$(STAMP): pyproject.toml constraints.txt
	test -x $(PY) || $(PYTHON) -m venv $(VENV)
	$(PY) -m pip install --quiet -c constraints.txt -e '.[test]'
	touch $(STAMP)

$(STAMP_OLDEST): pyproject.toml constraints-oldest.txt
	test -x $(PY_OLDEST) || $(PYTHON) -m venv $(VENV_OLDEST)
	$(PY_OLDEST) -m pip install --quiet -c constraints-oldest.txt -e '.[test]'
	touch $(STAMP_OLDEST)

$(STAMP_DOCS): $(STAMP) pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[docs]'
	touch $(STAMP_DOCS)

$(STAMP_DOCS_CHECK): $(STAMP) pyproject.toml constraints.txt
	$(PY) -m pip install --quiet -c constraints.txt -e '.[docs-check]'
	touch $(STAMP_DOCS_CHECK)

test: lint typecheck pytest

# The whole pytest suite (doctests and notebooks included) on the oldest supported versions; ruff and mypy run
# in `make test` only. As there, pytest's exit 5 (no test collected) fails the target like any other failure.
test-oldest: $(STAMP_OLDEST)
	$(PY_OLDEST) -m pytest

lint: $(STAMP)
	$(VENV)/bin/ruff check hingemetrics tests notebooks docs
	$(VENV)/bin/ruff format --check hingemetrics tests notebooks docs/conf.py docs/test_site.py docs/_ext

typecheck: $(STAMP)
	$(VENV)/bin/mypy

# pytest exits 5 when it collects no test; make treats that, like any failure, as an error.
pytest: $(STAMP)
	$(PY) -m pytest

demo: $(STAMP)
	$(PY) -m hingemetrics demo

bench: $(STAMP)
	$(PY) -m hingemetrics.benchmark

# The site, into docs/_build/html. -W: every warning fails the build; -n: so does every reference that does not
# resolve; --keep-going: report them all first. Incremental: a second run rebuilds only what changed.
# A failed build drops the saved environment, so that the next run reads every page again and fails the same way.
docs: $(STAMP_DOCS)
	MPLBACKEND=Agg $(PY) -m sphinx -W --keep-going -n -q -b html -d docs/_build/doctrees docs docs/_build/html \
		|| { rm -rf docs/_build/doctrees; exit 1; }

# The built site in a headless browser (docs/test_site.py). Debian's Chromium is installed when missing
# (apt-get, as root); playwright drives it and never downloads a browser of its own.
docs-check: docs $(STAMP_DOCS_CHECK)
	test -x $(CHROMIUM) || (apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium)
	HINGEMETRICS_CHROMIUM=$(CHROMIUM) $(PY) -m pytest docs/test_site.py

clean:
	rm -rf $(VENV) $(VENV_OLDEST) hingemetrics-demo build *.egg-info docs/_build docs/api/generated docs/nb

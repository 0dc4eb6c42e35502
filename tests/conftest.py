"""Hypothesis profiles for the property tests.

``ci`` (the default) is reproducible and quick: a fixed sequence of examples, no example database, no deadline
(the machines are shared). ``deep`` draws ten times as many random examples on every run, for local runs:

    HYPOTHESIS_PROFILE=deep .venv/bin/python -m pytest tests/test_properties.py
"""

from __future__ import annotations

import os

from hypothesis import settings

settings.register_profile("ci", max_examples=200, deadline=None, derandomize=True, database=None, print_blob=True)
settings.register_profile("deep", max_examples=2000, deadline=None, database=None, print_blob=True)
settings.load_profile(os.environ.get("HYPOTHESIS_PROFILE", "ci"))

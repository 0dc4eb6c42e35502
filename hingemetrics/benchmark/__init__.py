"""Benchmarks of hingemetrics against torchmetrics, run with ``python -m hingemetrics.benchmark``.

Speed goals are checked here, by measurement, and never by timed assertions in the tests.
"""

__all__: list[str] = []

"""The extra cost of one ``update`` through each wrapper, against the bare metric on the same batch.

For each metric (binary, Crammer-Singer and one-vs-all with 10 classes) and each wrapper (the normal
``ConfidenceInterval``, ``PerGroup`` with 10 groups, the Poisson bootstrap, ``PairedComparison``), one batch is fed
to the bare metric and to the wrapper, interleaved in one loop in alternating order; each figure is the median over
the repeats. The goal for the normal interval and for ``PerGroup(G=10)`` is at most 2x the bare update; the
bootstrap costs ``O(num_resamples)`` per sample, so its row is reported per resample too, without a goal; a paired
comparison scores two models, so its goal would be 4x and it is reported only.

One more row per metric, ``PerGroup floor``, times only what any ``PerGroup`` built on torch's CPU scatter must
add to the bare update: the range check of the group ids (one ``aminmax``) and the ``index_add_`` of the counts
and of the metric's per-sample rows into the groups, those rows made beforehand. It shows how much of the 2x goal
is left for everything else (making the rows, the checks, the wrapper itself).

Run it with ``python -m hingemetrics.benchmark --wrappers`` (``--quick`` divides the sizes by 100).
"""

from __future__ import annotations

import argparse
import json
import statistics
import sys
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor

import hingemetrics as hm
from hingemetrics.benchmark.update import _elapsed, machine, plain_table
from hingemetrics.functional._common import STAT_DTYPE, is_constant

__all__ = ["WrapperRow", "format_wrapper_table", "main", "run_wrapper_benchmark"]

#: The most a normal interval or a 10-group PerGroup may cost per update, as a multiple of the bare update.
GOAL = 2.0
NUM_GROUPS = 10
NUM_RESAMPLES = 100


@dataclass(frozen=True)
class WrapperRow:
    """One metric through one wrapper: the median times of one update, in milliseconds."""

    metric: str
    wrapper: str
    samples: int
    bare_ms: float
    wrapped_ms: float
    goal: float | None

    @property
    def ratio(self) -> float:
        """The wrapped update's time over the bare one's."""
        return self.wrapped_ms / self.bare_ms

    @property
    def goal_met(self) -> bool | None:
        """Whether the ratio is within the goal; None where there is none."""
        return None if self.goal is None else self.ratio <= self.goal

    def as_dict(self) -> dict[str, Any]:
        """The row as JSON-ready values."""
        return {**asdict(self), "ratio": self.ratio, "goal_met": self.goal_met}


def _metrics() -> dict[str, tuple[Callable[[], hm.BinaryHingeLoss | hm.MulticlassHingeLoss], Callable]]:
    def binary(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        return torch.randn(n, generator=gen), torch.randint(2, (n,), generator=gen)

    def multiclass(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        return torch.randn(n, 10, generator=gen), torch.randint(10, (n,), generator=gen)

    return {
        "binary": (hm.BinaryHingeLoss, binary),
        "crammer-singer C=10": (lambda: hm.MulticlassHingeLoss(10), multiclass),
        "one-vs-all C=10": (lambda: hm.MulticlassHingeLoss(10, multiclass_mode="one-vs-all"), multiclass),
    }


def _scatter_floor(metric: Any, preds: Tensor, target: Tensor, groups: Tensor) -> Callable[[], object]:
    """The range check of ``groups`` and the scatter of the counts and of ``metric``'s varying rows into them.

    A state whose rows are one value expanded over the samples needs no scatter (PerGroup multiplies the counts),
    so only the varying rows are scattered, each state in one ``index_add_`` over the whole batch.
    """
    columns = [
        row.reshape(row.shape[0], -1).T for row in metric._sample_statistics(preds, target) if not is_constant(row)
    ]
    ones = torch.ones((1, groups.shape[0]), dtype=STAT_DTYPE)

    def floor() -> list[Tensor]:
        torch.aminmax(groups)
        counts = torch.zeros((1, NUM_GROUPS), dtype=STAT_DTYPE).index_add_(1, groups, ones)
        sums = [torch.zeros((c.shape[0], NUM_GROUPS), dtype=STAT_DTYPE).index_add_(1, groups, c) for c in columns]
        return [counts, *sums]

    return floor


def _time_metric(name: str, make: Callable[[], Any], draw: Callable, n: int, repeats: int) -> list[WrapperRow]:
    """Time one update of one metric, bare and through every wrapper, interleaved."""
    gen = torch.Generator().manual_seed(0)
    preds, target = draw(gen, n)
    other = preds + 0.1 * torch.randn(preds.shape, generator=gen)
    groups = torch.randint(NUM_GROUPS, (n,), generator=gen)
    bare = make()
    interval = hm.ConfidenceInterval(make())
    per_group = hm.PerGroup(make(), NUM_GROUPS)
    bootstrap = hm.ConfidenceInterval(make(), method="bootstrap", num_resamples=NUM_RESAMPLES, seed=0)
    paired = hm.PairedComparison(make())
    jobs: dict[str, tuple[Callable[[], object], float | None]] = {
        "bare": (lambda: bare.update(preds, target), None),
        "ConfidenceInterval normal": (lambda: interval.update(preds, target), GOAL),
        f"PerGroup G={NUM_GROUPS}": (lambda: per_group.update(preds, target, groups=groups), GOAL),
        f"ConfidenceInterval bootstrap R={NUM_RESAMPLES}": (lambda: bootstrap.update(preds, target), None),
        "PairedComparison (two models)": (lambda: paired.update(preds, other, target), None),
        "PerGroup floor: id check + index_add_": (_scatter_floor(bare, preds, target, groups), None),
    }
    for job, _ in jobs.values():
        job()  # warm-up
    times: dict[str, list[float]] = {label: [] for label in jobs}
    order = list(jobs)
    for repeat in range(repeats):
        for label in order if repeat % 2 == 0 else order[::-1]:
            times[label].append(_elapsed(jobs[label][0], torch.device("cpu")) * 1e3)
    median = {label: statistics.median(values) for label, values in times.items()}
    return [
        WrapperRow(name, label, n, median["bare"], median[label], goal)
        for label, (_, goal) in jobs.items()
        if label != "bare"
    ]


def run_wrapper_benchmark(quick: bool = False, repeats: int = 9, samples: int = 100_000) -> list[WrapperRow]:
    """Time one update of every metric bare and through every wrapper; see the module docstring."""
    n = max(samples // 100, 20) if quick else samples
    return [row for name, (make, draw) in _metrics().items() for row in _time_metric(name, make, draw, n, repeats)]


def format_wrapper_table(rows: Sequence[WrapperRow]) -> str:
    """A plain-text table: one line per metric and wrapper, with the ratio to the bare update and the goal."""
    lines = [["metric", "wrapper", "samples", "bare ms", "wrapped ms", "ratio", "goal"]]
    for row in rows:
        goal = "-" if row.goal is None else f"<= {row.goal:g}x " + ("met" if row.goal_met else "MISSED")
        ratio = f"{row.ratio:.2f}x"
        if "bootstrap" in row.wrapper:
            ratio += f" ({row.ratio / NUM_RESAMPLES:.3f}x per resample)"
        lines.append(
            [row.metric, row.wrapper, str(row.samples), f"{row.bare_ms:.3f}", f"{row.wrapped_ms:.3f}", ratio, goal]
        )
    return plain_table(lines)


def main(argv: Sequence[str] | None = None) -> int:
    """``python -m hingemetrics.benchmark --wrappers``: print the table (or JSON); returns the exit status 0."""
    parser = argparse.ArgumentParser(prog="python -m hingemetrics.benchmark --wrappers", description=__doc__)
    parser.add_argument("--quick", action="store_true", help="sizes divided by 100, for a first look and the tests")
    parser.add_argument("--repeats", type=int, default=9, help="timed repeats per figure (default 9)")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    args = parser.parse_args(list(sys.argv[1:] if argv is None else argv))
    rows = run_wrapper_benchmark(args.quick, args.repeats)
    if args.json:
        print(json.dumps({"machine": machine(), "rows": [row.as_dict() for row in rows]}, indent=2))
        return 0
    info = machine()
    print(
        f"hingemetrics {info['hingemetrics']}: one update through each wrapper vs the bare metric, "
        f"torch {info['torch']}"
    )
    print(format_wrapper_table(rows))
    return 0

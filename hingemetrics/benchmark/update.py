"""Update speed of hingemetrics against torchmetrics, or the nearest honest baseline, on the same inputs.

Every case feeds one batch to a hingemetrics metric and to its baseline with the same semantics, and times
``update``, ``forward`` and ``compute`` of both, and a floor: one plain pass over the inputs (a sum of each input
tensor). The timings are interleaved in one loop, in alternating order, so that a slow moment of a shared machine
hits both libraries alike; each figure is the median over the repeats, and the ratios are what to read. Validation
is timed on (the default of both libraries) and off.

Where torchmetrics has no equivalent, the baseline is the nearest one and the table names it:

* Weston-Watkins: ``torch.nn.functional.multi_margin_loss`` summed batch by batch (the same formula, no metric);
* multilabel: one torchmetrics ``BinaryHingeLoss`` per label, each fed its column, macro-averaged;
* the default raw-score mode: torchmetrics fed probabilities, which it leaves as they are, so both compute the
  hinge of the same numbers;
* the ranking and embedding family (margin ranking, triplet, cosine embedding, multilabel margin): the torch.nn loss
  with ``reduction="sum"`` looped over the same batches, its total and count kept as a running mean.

Before timing, each case checks that the two agree on the batch's value. The peak temporary memory of one
``update`` (bytes allocated beyond what existed before it) is measured too, and shown as a multiple of the input's
size: on the CPU with the profiler's allocation events, on CUDA with the allocator's peak statistics.

Run it with ``python -m hingemetrics.benchmark`` (``--help`` for the options). ``--memory`` measures the temporary
memory of every metric, option and input layout instead, against a bound (:mod:`hingemetrics.benchmark.memory`).
"""

from __future__ import annotations

import argparse
import contextlib
import json
import math
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterator, Sequence
from dataclasses import asdict, dataclass
from typing import Any, Literal

import torch
import torch.nn.functional as F
import torchmetrics
from torch import Tensor
from torchmetrics.classification import BinaryHingeLoss as TorchmetricsBinary
from torchmetrics.classification import MulticlassHingeLoss as TorchmetricsMulticlass

import hingemetrics as hm
from hingemetrics._compat import event_start_ns

__all__ = [
    "Case",
    "Row",
    "TorchLossBaseline",
    "busy_core",
    "cases",
    "format_markdown",
    "format_table",
    "main",
    "peak_temporary_bytes",
    "plain_table",
    "run_update_benchmark",
]

#: The speed-up goals over the baseline, with validation on and off.
GOALS = {True: 5.0, False: 3.0}
TASKS = ("update", "forward", "compute")


# ------------------------------------------------------------------------------------------------- baselines
class MultiMarginBaseline:
    """``torch.nn.functional.multi_margin_loss`` summed batch by batch: Weston-Watkins with no metric around it."""

    def __init__(self, margin: float = 1.0) -> None:
        self.margin = margin
        self.total = torch.zeros((), dtype=torch.float64)
        self.count = 0

    def _batch_sum(self, preds: Tensor, target: Tensor) -> Tensor:
        batch = F.multi_margin_loss(preds, target, margin=self.margin, reduction="sum")
        self.total = self.total.to(preds.device) + batch.double()
        self.count += target.numel()
        return batch

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch."""
        self._batch_sum(preds, target)

    def __call__(self, preds: Tensor, target: Tensor) -> Tensor:
        """Add a batch and return its mean loss."""
        return self._batch_sum(preds, target) / target.numel()

    def compute(self) -> Tensor:
        """The mean loss so far."""
        return self.total / self.count

    def to(self, device: torch.device) -> MultiMarginBaseline:
        """Keep the running total on ``device``."""
        self.total = self.total.to(device)
        return self


class PerLabelBaseline:
    """One torchmetrics ``BinaryHingeLoss`` per label, each fed its label's column; the result is their mean."""

    def __init__(self, num_labels: int, validate_args: bool) -> None:
        self.metrics = [TorchmetricsBinary(validate_args=validate_args) for _ in range(num_labels)]

    def update(self, preds: Tensor, target: Tensor) -> None:
        """Add a batch, label by label."""
        for label, metric in enumerate(self.metrics):
            metric.update(preds[:, label], target[:, label])

    def __call__(self, preds: Tensor, target: Tensor) -> Tensor:
        """Add a batch and return its macro average."""
        return torch.stack([m(preds[:, label], target[:, label]) for label, m in enumerate(self.metrics)]).mean()

    def compute(self) -> Tensor:
        """The macro average so far."""
        return torch.stack([m.compute() for m in self.metrics]).mean()

    def to(self, device: torch.device) -> PerLabelBaseline:
        """Move every per-label metric to ``device``."""
        self.metrics = [m.to(device) for m in self.metrics]
        return self


class TorchLossBaseline:
    """A torch.nn loss with ``reduction="sum"`` looped over the batches: a running total and sample count."""

    def __init__(self, loss: torch.nn.Module) -> None:
        self.loss = loss
        self.total = torch.zeros((), dtype=torch.float64)
        self.count = 0

    def _batch_sum(self, *inputs: Tensor) -> Tensor:
        batch = self.loss(*inputs)
        self.total = self.total.to(batch.device) + batch.double()
        self.count += inputs[0].shape[0]
        return batch

    def update(self, *inputs: Tensor) -> None:
        """Add a batch."""
        self._batch_sum(*inputs)

    def __call__(self, *inputs: Tensor) -> Tensor:
        """Add a batch and return its mean loss."""
        return self._batch_sum(*inputs) / inputs[0].shape[0]

    def compute(self) -> Tensor:
        """The mean loss so far."""
        return self.total / self.count

    def to(self, device: torch.device) -> TorchLossBaseline:
        """Keep the running total on ``device``."""
        self.total = self.total.to(device)
        return self


# ----------------------------------------------------------------------------------------------------- cases
#: ``draw(gen, n)``: the inputs of one batch of n samples, in the order ``update`` takes them.
Draw = Callable[[torch.Generator, int], tuple[Tensor, ...]]


@dataclass(frozen=True)
class Case:
    """One benchmark case: its inputs, the hingemetrics metric and the baseline that computes the same numbers."""

    name: str
    baseline: str
    size: int
    draw: Draw
    ours: Callable[[bool], Any]
    theirs: Callable[[bool], Any]
    #: Whether the baseline is torchmetrics, which the speed goals are set against.
    torchmetrics: bool = True


def _binary(kind: str) -> Draw:
    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        preds = torch.randn(n, generator=gen) * 2 if kind == "logits" else torch.rand(n, generator=gen)
        return preds, torch.randint(0, 2, (n,), generator=gen)

    return draw


def _multiclass(num_classes: int) -> Draw:
    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        return torch.randn(n, num_classes, generator=gen) * 2, torch.randint(0, num_classes, (n,), generator=gen)

    return draw


def _multilabel(num_labels: int) -> Draw:
    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, Tensor]:
        return torch.randn(n, num_labels, generator=gen) * 2, torch.randint(0, 2, (n, num_labels), generator=gen)

    return draw


def _ranking(gen: torch.Generator, n: int) -> tuple[Tensor, ...]:
    return (
        torch.randn(n, generator=gen),
        torch.randn(n, generator=gen),
        torch.randint(0, 2, (n,), generator=gen) * 2 - 1,
    )


def _triplets(dim: int) -> Draw:
    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, ...]:
        return tuple(torch.randn(n, dim, generator=gen) for _ in range(3))

    return draw


def _embedding_pairs(dim: int) -> Draw:
    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, ...]:
        x1, x2 = torch.randn(n, dim, generator=gen), torch.randn(n, dim, generator=gen)
        return x1, x2, torch.randint(0, 2, (n,), generator=gen) * 2 - 1

    return draw


def _label_indices(num_labels: int) -> Draw:
    """Scores and targets in torch's index format (true labels first, then -1), which both sides read."""

    def draw(gen: torch.Generator, n: int) -> tuple[Tensor, ...]:
        multi_hot = torch.randint(0, 2, (n, num_labels), generator=gen)
        order = torch.sort(-multi_hot, dim=1, stable=True).indices
        target = torch.where(multi_hot.gather(1, order) == 1, order, -1)
        return torch.randn(n, num_labels, generator=gen) * 2, target

    return draw


def _family_case(name: str, size: int, draw: Draw, ours: Callable[[bool], Any], loss: torch.nn.Module) -> Case:
    baseline = f"torch.nn.{type(loss).__name__} per batch (no metric)"
    return Case(name, baseline, size, draw, ours, lambda v: TorchLossBaseline(loss), torchmetrics=False)


def _binary_case(name: str, kind: str, normalization: str | None, baseline: str) -> Case:
    return Case(
        name,
        baseline,
        10**6,
        _binary(kind),
        lambda v: hm.BinaryHingeLoss(validate_args=v, normalization=normalization),
        lambda v: TorchmetricsBinary(validate_args=v),
    )


def _multiclass_case(mode: Literal["crammer-singer", "one-vs-all"], num_classes: int, size: int) -> Case:
    short = {"crammer-singer": "Crammer-Singer", "one-vs-all": "one-vs-all"}[mode]
    return Case(
        f"multiclass {short}, logits C={num_classes}",
        "torchmetrics MulticlassHingeLoss",
        size,
        _multiclass(num_classes),
        lambda v: hm.MulticlassHingeLoss(num_classes, multiclass_mode=mode, validate_args=v, normalization="auto"),
        lambda v: TorchmetricsMulticlass(num_classes, multiclass_mode=mode, validate_args=v),
    )


def cases() -> list[Case]:
    """Every benchmark case, at full size (``--quick`` divides the sizes by 100)."""
    torchmetrics_binary = "torchmetrics BinaryHingeLoss"
    return [
        _binary_case("binary, logits", "logits", "auto", torchmetrics_binary),
        _binary_case("binary, probabilities", "probabilities", "auto", torchmetrics_binary),
        _multiclass_case("crammer-singer", 10, 10**6),
        _multiclass_case("one-vs-all", 10, 10**6),
        _multiclass_case("crammer-singer", 1000, 10**4),
        _multiclass_case("one-vs-all", 1000, 10**4),
        Case(
            "multiclass Weston-Watkins, raw C=10",
            "F.multi_margin_loss (no torchmetrics metric)",
            10**6,
            _multiclass(10),
            lambda v: hm.MulticlassHingeLoss(10, multiclass_mode="weston-watkins", validate_args=v),
            lambda v: MultiMarginBaseline(),
            torchmetrics=False,
        ),
        Case(
            "multilabel, logits L=10",
            "torchmetrics BinaryHingeLoss per label",
            10**5,
            _multilabel(10),
            lambda v: hm.MultilabelHingeLoss(10, validate_args=v, normalization="auto"),
            lambda v: PerLabelBaseline(10, v),
        ),
        # scores in [0, 1] are left alone by torchmetrics: the hinge of the same numbers as the raw mode
        _binary_case("binary raw scores (default mode)", "probabilities", None, "torchmetrics on scores in [0, 1]"),
        _family_case(
            "margin ranking",
            10**6,
            _ranking,
            lambda v: hm.MarginRankingLoss(0.5, validate_args=v),
            torch.nn.MarginRankingLoss(0.5, reduction="sum"),
        ),
        _family_case(
            "triplet margin, p=2 D=32",
            10**5,
            _triplets(32),
            lambda v: hm.TripletMarginLoss(validate_args=v),
            torch.nn.TripletMarginLoss(reduction="sum"),
        ),
        _family_case(
            "cosine embedding, D=32",
            10**5,
            _embedding_pairs(32),
            lambda v: hm.CosineEmbeddingLoss(0.2, validate_args=v),
            torch.nn.CosineEmbeddingLoss(0.2, reduction="sum"),
        ),
        _family_case(
            "multilabel margin, index targets L=16",
            10**5,
            _label_indices(16),
            lambda v: hm.MultilabelMarginLoss(16, validate_args=v),
            torch.nn.MultiLabelMarginLoss(reduction="sum"),
        ),
    ]


# ---------------------------------------------------------------------------------------------- measurement
@dataclass(frozen=True)
class Row:
    """The medians of one case with validation on or off, in milliseconds, and the memory figures."""

    case: str
    baseline: str
    size: int
    validate_args: bool
    ours_ms: dict[str, float]
    theirs_ms: dict[str, float]
    floor_ms: float
    agree: bool
    input_bytes: int
    ours_peak_bytes: int | None
    theirs_peak_bytes: int | None
    torchmetrics: bool = True

    def speedup(self, task: str = "update") -> float:
        """How many times longer the baseline takes than hingemetrics (above 1: hingemetrics is faster)."""
        return self.theirs_ms[task] / self.ours_ms[task]

    @property
    def over_floor(self) -> float:
        """The update time of hingemetrics as a multiple of one plain pass over the inputs."""
        return self.ours_ms["update"] / self.floor_ms

    @property
    def goal(self) -> float | None:
        """The speed-up goal for this validation setting; None where the baseline is not torchmetrics."""
        return GOALS[self.validate_args] if self.torchmetrics else None

    @property
    def goal_met(self) -> bool | None:
        """Whether the update speed-up reaches the goal; None where there is no goal."""
        return None if self.goal is None else self.speedup() >= self.goal

    def as_dict(self) -> dict[str, Any]:
        """The row with its derived figures, for ``--json``."""
        return {
            **asdict(self),
            "speedup": {task: self.speedup(task) for task in TASKS},
            "update_over_floor": self.over_floor,
            "goal": self.goal,
            "goal_met": self.goal_met,
        }


def _synchronize(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _elapsed(fn: Callable[[], object], device: torch.device) -> float:
    _synchronize(device)
    start = time.perf_counter()
    fn()
    _synchronize(device)
    return time.perf_counter() - start


@contextlib.contextmanager
def _quiet_stderr() -> Iterator[None]:
    """Silence file descriptor 2: some profiler builds log every start and stop there."""
    sys.stderr.flush()
    saved = os.dup(2)
    with open(os.devnull, "w") as devnull:
        os.dup2(devnull.fileno(), 2)
        try:
            yield
        finally:
            os.dup2(saved, 2)
            os.close(saved)


def peak_temporary_bytes(fn: Callable[[], object], device: torch.device) -> int | None:
    """The most memory ``fn`` holds at once beyond what was allocated before it, in bytes.

    On CUDA this is the caching allocator's peak; on the CPU, the running total of the profiler's allocation and
    free events. None when this build of torch exposes neither.
    """
    if device.type == "cuda":
        torch.cuda.synchronize(device)
        before = torch.cuda.memory_allocated(device)
        torch.cuda.reset_peak_memory_stats(device)
        fn()
        torch.cuda.synchronize(device)
        return int(torch.cuda.max_memory_allocated(device) - before)
    activities = [torch.profiler.ProfilerActivity.CPU]
    with _quiet_stderr(), torch.profiler.profile(activities=activities, profile_memory=True) as prof:
        fn()
    results = getattr(prof.profiler, "kineto_results", None)
    if results is None:
        return None
    events = sorted(  # by time only: events of one instant (torch 2.1 counts in microseconds) keep their order
        (
            (event_start_ns(event), event.nbytes())
            for event in results.events()
            if event.name() == "[memory]" and event.device_type() == torch.autograd.DeviceType.CPU
        ),
        key=lambda event: event[0],
    )
    held = peak = 0
    for _, nbytes in events:
        held += nbytes
        peak = max(peak, held)
    return peak


def _value(result: Tensor) -> Tensor:
    return result.detach().double().cpu().reshape(-1)


def _agree(case: Case, inputs: tuple[Tensor, ...], device: torch.device) -> bool:
    """Whether hingemetrics and the baseline give the same value for the batch (float32 tolerance)."""
    ours, theirs = (
        _value(case.ours(True).to(device)(*inputs)),
        _value(case.theirs(True).to(device)(*inputs)),
    )
    return ours.shape == theirs.shape and bool(torch.allclose(ours, theirs, rtol=1e-4, atol=1e-5))


def _measure(
    case: Case, inputs: tuple[Tensor, ...], validate: bool, repeats: int, warmup: int, device: torch.device
) -> Row:
    ours, theirs = case.ours(validate).to(device), case.theirs(validate).to(device)
    jobs: dict[str, Callable[[], object]] = {
        "ours update": lambda: ours.update(*inputs),
        "theirs update": lambda: theirs.update(*inputs),
        "floor": lambda: [t.sum() for t in inputs],
        "ours forward": lambda: ours(*inputs),
        "theirs forward": lambda: theirs(*inputs),
        "ours compute": ours.compute,
        "theirs compute": theirs.compute,
    }
    for _ in range(warmup):
        for job in jobs.values():
            job()
    times: dict[str, list[float]] = {name: [] for name in jobs}
    order = list(jobs)
    for repeat in range(repeats):
        for name in order if repeat % 2 == 0 else order[::-1]:
            times[name].append(_elapsed(jobs[name], device))
    median = {name: statistics.median(values) * 1e3 for name, values in times.items()}
    input_bytes = sum(t.numel() * t.element_size() for t in inputs)
    return Row(
        case=case.name,
        baseline=case.baseline,
        size=inputs[0].numel(),
        validate_args=validate,
        ours_ms={task: median[f"ours {task}"] for task in TASKS},
        theirs_ms={task: median[f"theirs {task}"] for task in TASKS},
        floor_ms=median["floor"],
        agree=_agree(case, inputs, device),
        input_bytes=input_bytes,
        ours_peak_bytes=peak_temporary_bytes(lambda: ours.update(*inputs), device),
        theirs_peak_bytes=peak_temporary_bytes(lambda: theirs.update(*inputs), device),
        torchmetrics=case.torchmetrics,
    )


def run_update_benchmark(
    device: str = "cpu",
    quick: bool = False,
    repeats: int = 15,
    warmup: int = 2,
    only: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[Row]:
    """Time every case (or those whose name contains one of ``only``), validation on and off.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        quick: divide every size by 100 (for tests and a first look).
        repeats: timed repeats per figure; each figure is their median.
        warmup: untimed runs of every job before the timed ones.
        only: substrings of the case names to run; all cases when empty.
        progress: called with each case's name before it runs.

    Returns:
        One row per case and validation setting.
    """
    target_device = torch.device(device)
    if target_device.type == "cuda" and not torch.cuda.is_available():
        raise RuntimeError(f"CUDA is not available here (torch {torch.__version__}); run with --device cpu.")
    rows = []
    for case in cases():
        if only and not any(part.lower() in case.name.lower() for part in only):
            continue
        if progress is not None:
            progress(case.name)
        size = max(case.size // 100, 10) if quick else case.size
        inputs = tuple(t.to(target_device) for t in case.draw(torch.Generator().manual_seed(0), size))
        for validate in (True, False):
            rows.append(_measure(case, inputs, validate, repeats, warmup, target_device))
    return rows


# ----------------------------------------------------------------------------------------------------- output
def _size(n: int) -> str:
    exponent = round(math.log10(n)) if n > 0 else 0
    return f"1e{exponent}" if 10**exponent == n else str(n)


def _memory(peak: int | None, input_bytes: int) -> str:
    return "n/a" if peak is None else f"{peak / input_bytes:.2f}x"


def format_table(rows: Sequence[Row]) -> str:
    """A readable table: one line per case and validation setting, medians in milliseconds and the ratios."""
    header = (
        "case",
        "baseline",
        "elements",
        "validate",
        "hm update ms",
        "base update ms",
        "speed-up",
        "hm / floor",
        "fwd speed-up",
        "hm compute us",
        "base compute us",
        "hm temp mem",
        "base temp mem",
        "agree",
    )
    lines = [header]
    for row in rows:
        lines.append(
            (
                row.case,
                row.baseline,
                _size(row.size),
                "on" if row.validate_args else "off",
                f"{row.ours_ms['update']:.2f}",
                f"{row.theirs_ms['update']:.2f}",
                f"{row.speedup():.1f}x",
                f"{row.over_floor:.1f}x" if row.over_floor < 10 else f"{row.over_floor:.0f}x",
                f"{row.speedup('forward'):.1f}x",
                f"{row.ours_ms['compute'] * 1e3:.0f}",
                f"{row.theirs_ms['compute'] * 1e3:.0f}",
                _memory(row.ours_peak_bytes, row.input_bytes),
                _memory(row.theirs_peak_bytes, row.input_bytes),
                "yes" if row.agree else "NO",
            )
        )
    return plain_table(lines)


def plain_table(lines: Sequence[Sequence[str]]) -> str:
    """Rows of cells (the header first) as left-aligned columns, with a rule of dashes under the header."""
    widths = [max(len(line[i]) for line in lines) for i in range(len(lines[0]))]
    text = ["  ".join(cell.ljust(width) for cell, width in zip(line, widths, strict=True)) for line in lines]
    text.insert(1, "  ".join("-" * width for width in widths))
    return "\n".join(text)


def format_markdown(rows: Sequence[Row]) -> str:
    """A Markdown table for the performance guide: one line per case, validation on and off side by side."""
    lines = [
        "| case | elements | baseline | validate on: hm / baseline (ms) | speed-up | validate off: hm / baseline (ms) "
        "| speed-up | forward speed-up, on / off | hm / floor (off) | temp memory, hm / baseline |",
        "|---|---:|---|---:|---:|---:|---:|---:|---:|---:|",
    ]
    pairs: dict[tuple[str, str], dict[bool, Row]] = {}
    for row in rows:
        pairs.setdefault((row.case, row.baseline), {})[row.validate_args] = row
    for (case, baseline), by_setting in pairs.items():
        on, off = by_setting[True], by_setting[False]
        lines.append(
            f"| {case} | {_size(on.size)} | {baseline} "
            f"| {on.ours_ms['update']:.2f} / {on.theirs_ms['update']:.2f} | **{on.speedup():.1f}x** "
            f"| {off.ours_ms['update']:.2f} / {off.theirs_ms['update']:.2f} | **{off.speedup():.1f}x** "
            f"| {on.speedup('forward'):.1f}x / {off.speedup('forward'):.1f}x | {off.over_floor:.1f}x "
            f"| {_memory(off.ours_peak_bytes, off.input_bytes)} / {_memory(off.theirs_peak_bytes, off.input_bytes)} |"
        )
    return "\n".join(lines)


def _goals(rows: Sequence[Row]) -> str:
    def label(row: Row) -> str:
        return f"{row.case} (validate {'on' if row.validate_args else 'off'}: {row.speedup():.1f}x)"

    missed = [label(row) for row in rows if row.goal_met is False]
    summary = f"goals against torchmetrics: update >= {GOALS[True]:g}x with validation on, >= {GOALS[False]:g}x off"
    text = f"{summary}: {'all met' if not missed else 'missed by ' + '; '.join(missed)}"
    others = [f"{label(row)} vs {row.baseline}" for row in rows if row.goal is None]
    return text + ("" if not others else "\nno goal (no torchmetrics equivalent): " + "; ".join(others))


def machine() -> dict[str, Any]:
    """What the figures were measured on."""
    return {
        "torch": torch.__version__,
        "torchmetrics": torchmetrics.__version__,
        "hingemetrics": hm.__version__,
        "python": platform.python_version(),
        "processor": platform.processor() or platform.machine(),
        "cpu_count": os.cpu_count(),
        "threads": torch.get_num_threads(),
        "cuda": torch.cuda.get_device_name() if torch.cuda.is_available() else None,
    }


@contextlib.contextmanager
def busy_core(enabled: bool = True) -> Iterator[subprocess.Popen[bytes] | None]:
    """Keep one CPU core busy with another process (a Python busy loop) for the length of the block.

    This is what a shared machine looks like to a metric: data-loader workers, another job, a second rank. The
    process is started before the block runs and killed when it leaves, however it leaves. The block gets the
    process, or None when not ``enabled``.
    """
    if not enabled:
        yield None
        return
    spinner = subprocess.Popen([sys.executable, "-c", "while True: pass"])
    try:
        time.sleep(0.2)  # let it reach its loop
        yield spinner
    finally:
        spinner.kill()
        spinner.wait()


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hingemetrics.benchmark",
        description="Time update/forward/compute of hingemetrics against torchmetrics on the same inputs.",
    )
    parser.add_argument("--device", default="cpu", help="cpu (default) or cuda")
    parser.add_argument("--json", action="store_true", help="print the results as JSON")
    parser.add_argument("--markdown", action="store_true", help="print a Markdown table (as in the performance guide)")
    parser.add_argument("--quick", action="store_true", help="sizes divided by 100, for a first look and the tests")
    parser.add_argument("--repeats", type=int, default=None, help="timed repeats per figure (default 15, quick 3)")
    parser.add_argument("--warmup", type=int, default=2, help="untimed runs of every job first (default 2)")
    parser.add_argument("--threads", type=int, default=2, help="torch CPU threads (default 2)")
    parser.add_argument("--case", action="append", default=[], help="run only cases whose name contains this")
    parser.add_argument(
        "--busy-core",
        action="store_true",
        help="keep one CPU core busy with another process while timing (a machine shared with other work)",
    )
    parser.add_argument(
        "--memory",
        action="store_true",
        help="measure the temporary memory of one update instead, for every metric, option and input layout, "
        "against the bound of 0.25x the bytes of preds (exit status 1 when a row exceeds it)",
    )
    parser.add_argument(
        "--wrappers",
        action="store_true",
        help="time one update through each wrapper (ConfidenceInterval, PerGroup, PairedComparison) against the "
        "bare metric instead (python -m hingemetrics.benchmark.wrappers)",
    )
    parser.add_argument(
        "--sync",
        action="store_true",
        help="run the sync-latency benchmark instead; the other arguments go to it "
        "(python -m hingemetrics.benchmark.sync --help)",
    )
    return parser


def _memory_main(args: argparse.Namespace) -> int:
    """The ``--memory`` run: one table (or JSON) of the peak temporary memory of every memory case."""
    from hingemetrics.benchmark import memory  # it imports this module

    progress = None if args.json else (lambda name: print(f"  measuring: {name}", file=sys.stderr, flush=True))
    rows = memory.run_memory_benchmark(args.device, args.quick, args.case, progress)
    if args.json:
        settings = {"device": args.device, "quick": args.quick, "bound": memory.BOUND}
        print(json.dumps({"machine": machine(), "settings": settings, "rows": [r.as_dict() for r in rows]}, indent=2))
    else:
        info = machine()
        print(
            f"hingemetrics {info['hingemetrics']}: peak temporary memory of one update beyond its inputs, on "
            f"{args.device}, torch {info['torch']}"
        )
        print(memory.format_memory_table(rows, markdown=args.markdown))
        print(memory.summary(rows))
    return 0 if all(row.passed is not False for row in rows) else 1


def main(argv: Sequence[str] | None = None) -> int:
    """Run the update benchmark from the command line; returns the exit status.

    Args:
        argv: command-line arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success, 2 for bad arguments or a device that is not there; with ``--memory``, 1 when a case exceeds
        the memory bound.
    """
    args_list = list(sys.argv[1:] if argv is None else argv)
    if "--wrappers" in args_list:
        from hingemetrics.benchmark import wrappers

        return int(wrappers.main([a for a in args_list if a != "--wrappers"]))
    if "--sync" in args_list:
        from hingemetrics.benchmark import sync  # imported only when asked for: it sets up process groups

        return int(sync.main([a for a in args_list if a != "--sync"]))
    parser = _parser()
    args = parser.parse_args(args_list)
    if args.device not in ("cpu", "cuda") and not args.device.startswith("cuda:"):
        parser.error(f"--device must be cpu or cuda, but got {args.device!r}")
    if args.device.startswith("cuda") and not torch.cuda.is_available():
        print(
            f"CUDA is not available on this machine (torch {torch.__version__}, "
            f"built with CUDA {torch.version.cuda or 'none'}): no GPU figures. Run with --device cpu.",
            file=sys.stderr,
        )
        return 2
    torch.set_num_threads(args.threads)
    if args.memory:
        return _memory_main(args)
    repeats = args.repeats if args.repeats is not None else (3 if args.quick else 15)
    progress = None if args.json else (lambda name: print(f"  running: {name}", file=sys.stderr, flush=True))
    with busy_core(args.busy_core):
        rows = run_update_benchmark(args.device, args.quick, repeats, args.warmup, args.case, progress)
    if args.json:
        settings = {
            "device": args.device,
            "quick": args.quick,
            "repeats": repeats,
            "warmup": args.warmup,
            "busy_core": args.busy_core,
        }
        print(json.dumps({"machine": machine(), "settings": settings, "rows": [r.as_dict() for r in rows]}, indent=2))
        return 0
    info = machine()
    where = f"CUDA {info['cuda']}" if args.device.startswith("cuda") else f"CPU, {info['threads']} threads"
    if args.busy_core:
        where += ", one core kept busy by another process"
    print(
        f"hingemetrics {info['hingemetrics']} vs baselines: {where} ({info['cpu_count']} CPUs), torch {info['torch']}, "
        f"torchmetrics {info['torchmetrics']}; medians of {repeats} interleaved repeats"
    )
    print(format_markdown(rows) if args.markdown else format_table(rows))
    print(_goals(rows))
    print(
        "speed-up = baseline time / hingemetrics time; hm / floor = hingemetrics update / one sum over each input; "
        "temp mem = peak memory an update holds beyond its inputs, as a multiple of the input size"
    )
    return 0

"""Temporary memory of one ``update``, for every metric, option and input layout, against a bound.

Each case builds one batch and measures the most memory a metric's ``update`` holds at once beyond what existed
before it (:func:`~hingemetrics.benchmark.update.peak_temporary_bytes`), with validation on and off. The figure is
shown as a multiple of the bytes of ``preds``, and each row passes when it is at most :data:`BOUND` of them. The
batches are large next to one chunk of the kernels (about 2^15 elements on the CPU), so that what a chunk needs is
small next to the bound; ``quick`` uses about 2 million elements, the default about 10 million.

Memory is deterministic: the same update on the same shapes allocates the same bytes however busy the machine is,
so these figures, unlike timings, can be checked by a test.

Run it with ``python -m hingemetrics.benchmark --memory`` (``--quick`` for the small sizes).
"""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

import hingemetrics as hm
from hingemetrics.benchmark.update import peak_temporary_bytes, plain_table

__all__ = ["BOUND", "MemoryCase", "MemoryRow", "format_memory_table", "memory_cases", "run_memory_benchmark"]

#: The most temporary memory an update may hold, as a multiple of the bytes of its ``preds``.
BOUND = 0.25
#: Elements of ``preds`` in each case: the default run and ``quick``.
SIZES = {False: 10_000_000, True: 2_000_000}
#: Classes, labels and the image side of the (N, C, H, W) layouts.
CLASSES, SIDE = 10, 32

Batch = dict[str, Tensor]
Draw = Callable[[torch.Generator, int], Batch]


@dataclass(frozen=True)
class MemoryCase:
    """One metric configuration and one input layout: ``make(validate_args)`` and ``draw(gen, elements)``."""

    name: str
    make: Callable[[bool], Metric]
    draw: Draw


@dataclass(frozen=True)
class MemoryRow:
    """The peak temporary bytes of one case's update, with validation on or off."""

    case: str
    validate_args: bool
    preds_elements: int
    preds_bytes: int
    input_bytes: int
    peak_bytes: int | None

    @property
    def ratio(self) -> float | None:
        """The peak as a multiple of the bytes of ``preds``."""
        return None if self.peak_bytes is None else self.peak_bytes / self.preds_bytes

    @property
    def passed(self) -> bool | None:
        """Whether the peak is within :data:`BOUND` times the bytes of ``preds``; None where it cannot be measured."""
        return None if self.ratio is None else self.ratio <= BOUND

    def as_dict(self) -> dict[str, Any]:
        """The row with its derived figures, for ``--json``."""
        return {**asdict(self), "ratio": self.ratio, "bound": BOUND, "passed": self.passed}


# ------------------------------------------------------------------------------------------------------ inputs
def _binary(dtype: torch.dtype = torch.float32, ignore: bool = False, weighted: bool = False) -> Draw:
    def draw(gen: torch.Generator, n: int) -> Batch:
        target = torch.randint(0, 2, (n,), generator=gen)
        if ignore:
            target[::7] = -100
        batch = {"preds": (torch.randn(n, generator=gen) * 2).to(dtype), "target": target}
        if weighted:
            batch["sample_weight"] = torch.rand(n, generator=gen)
        return batch

    return draw


def _classes(layout: str) -> Draw:
    """Multiclass scores in one layout, with index targets (or the options the layout names)."""

    def draw(gen: torch.Generator, n: int) -> Batch:
        if layout in ("image", "channels_last"):
            samples = max(n // (CLASSES * SIDE * SIDE), 1)
            preds = torch.randn(samples, CLASSES, SIDE, SIDE, generator=gen)
            if layout == "channels_last":
                preds = preds.contiguous(memory_format=torch.channels_last)
            return {"preds": preds, "target": torch.randint(0, CLASSES, (samples, SIDE, SIDE), generator=gen)}
        samples = n // CLASSES
        if layout == "transposed":
            preds = torch.randn(CLASSES, samples, generator=gen).T  # an (N, C) view of a (C, N) tensor
        else:
            preds = torch.randn(samples, CLASSES, generator=gen)
        target = torch.randint(0, CLASSES, (samples,), generator=gen)
        batch = {"preds": preds, "target": target}
        if layout == "one-hot":
            batch["target"] = torch.nn.functional.one_hot(target, CLASSES)
        elif layout == "ignore_index":
            target[::7] = -100
        elif layout == "weights":
            batch["sample_weight"] = torch.rand(samples, generator=gen)
        return batch

    return draw


def _labels(image: bool) -> Draw:
    def draw(gen: torch.Generator, n: int) -> Batch:
        shape = (max(n // (CLASSES * SIDE * SIDE), 1), CLASSES, SIDE, SIDE) if image else (n // CLASSES, CLASSES)
        return {"preds": torch.randn(shape, generator=gen), "target": torch.randint(0, 2, shape, generator=gen)}

    return draw


def _embedding(gen: torch.Generator, n: int) -> Batch:
    return {"preds": torch.rand(n, generator=gen) * 3, "target": torch.randint(0, 2, (n,), generator=gen) * 2 - 1}


MODES = ("crammer-singer", "one-vs-all", "weston-watkins")
LAYOUTS = {
    "(N, C)": "plain",
    "(N, C, H, W)": "image",
    "channels_last": "channels_last",
    "transposed (N, C) view": "transposed",
    "one-hot targets": "one-hot",
    "ignore_index": "ignore_index",
    "weights": "weights",
}


def _multiclass(mode: str, layout: str) -> Callable[[bool], Metric]:
    ignore_index = -100 if layout == "ignore_index" else None
    return lambda v: hm.MulticlassHingeLoss(CLASSES, multiclass_mode=mode, ignore_index=ignore_index, validate_args=v)


def memory_cases() -> list[MemoryCase]:
    """Every case: each metric, each option that changes the kernel's path, each input layout."""
    binary = [
        MemoryCase("binary", lambda v: hm.BinaryHingeLoss(validate_args=v), _binary()),
        MemoryCase(
            "binary, ignore_index",
            lambda v: hm.BinaryHingeLoss(ignore_index=-100, validate_args=v),
            _binary(ignore=True),
        ),
        MemoryCase("binary, weights", lambda v: hm.BinaryHingeLoss(validate_args=v), _binary(weighted=True)),
        MemoryCase(
            "binary, squared, auto",
            lambda v: hm.BinaryHingeLoss(squared=True, normalization="auto", validate_args=v),
            _binary(),
        ),
        MemoryCase("binary, float16", lambda v: hm.BinaryHingeLoss(validate_args=v), _binary(torch.float16)),
        MemoryCase("binary, bfloat16", lambda v: hm.BinaryHingeLoss(validate_args=v), _binary(torch.bfloat16)),
    ]
    multiclass = [
        MemoryCase(f"multiclass {mode}, {label}", _multiclass(mode, layout), _classes(layout))
        for mode in MODES
        for label, layout in LAYOUTS.items()
    ]
    others = [
        MemoryCase(
            "multiclass crammer-singer, softmax, squared",
            lambda v: hm.MulticlassHingeLoss(CLASSES, squared=True, normalization="softmax", validate_args=v),
            _classes("plain"),
        ),
        MemoryCase(
            "multiclass categorical, (N, C)",
            lambda v: hm.MulticlassHingeLoss(CLASSES, multiclass_mode="categorical", validate_args=v),
            _classes("plain"),
        ),
        MemoryCase(
            "multiclass weston-watkins, class weights",
            lambda v: hm.MulticlassHingeLoss(
                CLASSES, multiclass_mode="weston-watkins", class_weight=range(1, CLASSES + 1), validate_args=v
            ),
            _classes("weights"),
        ),
        MemoryCase("multilabel (N, L)", lambda v: hm.MultilabelHingeLoss(CLASSES, validate_args=v), _labels(False)),
        MemoryCase(
            "multilabel (N, L, H, W)", lambda v: hm.MultilabelHingeLoss(CLASSES, validate_args=v), _labels(True)
        ),
        MemoryCase("HingeEmbeddingLoss", lambda v: hm.HingeEmbeddingLoss(validate_args=v), _embedding),
        MemoryCase("MarginDistribution binary", lambda v: hm.MarginDistribution(validate_args=v), _binary()),
        MemoryCase(
            "MarginDistribution multiclass",
            lambda v: hm.MarginDistribution("multiclass", CLASSES, validate_args=v),
            _classes("plain"),
        ),
    ]
    return binary + multiclass + others


# ------------------------------------------------------------------------------------------------ measurement
def measure(case: MemoryCase, batch: Batch, validate: bool, device: torch.device) -> MemoryRow:
    """The peak temporary bytes of one update of ``case`` on ``batch`` (after one update that sets things up)."""
    metric = case.make(validate).to(device)
    metric.update(**batch)
    preds = batch["preds"]
    return MemoryRow(
        case=case.name,
        validate_args=validate,
        preds_elements=preds.numel(),
        preds_bytes=preds.numel() * preds.element_size(),
        input_bytes=sum(t.numel() * t.element_size() for t in batch.values()),
        peak_bytes=peak_temporary_bytes(lambda: metric.update(**batch), device),
    )


def run_memory_benchmark(
    device: str = "cpu",
    quick: bool = False,
    only: Sequence[str] = (),
    progress: Callable[[str], None] | None = None,
) -> list[MemoryRow]:
    """Measure every case (or those whose name contains one of ``only``), validation on and off.

    Args:
        device: ``"cpu"`` or ``"cuda"``.
        quick: about 2 million elements per batch instead of 10 million (for tests and a first look).
        only: substrings of the case names to run; all cases when empty.
        progress: called with each case's name before it runs.

    Returns:
        One row per case and validation setting.
    """
    target_device = torch.device(device)
    rows = []
    for case in memory_cases():
        if only and not any(part.lower() in case.name.lower() for part in only):
            continue
        if progress is not None:
            progress(case.name)
        batch = {k: v.to(target_device) for k, v in case.draw(torch.Generator().manual_seed(0), SIZES[quick]).items()}
        for validate in (True, False):
            rows.append(measure(case, batch, validate, target_device))
    return rows


# ------------------------------------------------------------------------------------------------------ output
def _ratio(row: MemoryRow) -> str:
    return "n/a" if row.ratio is None else f"{row.ratio:.3f}x"


def _verdict(row: MemoryRow) -> str:
    return {None: "n/a", True: "pass", False: "FAIL"}[row.passed]


def _megabytes(n: int | None) -> str:
    return "n/a" if n is None else f"{n / 2**20:.2f}"


def format_memory_table(rows: Sequence[MemoryRow], markdown: bool = False) -> str:
    """One line per case: the peak with validation on and off, as MiB and as a multiple of ``preds``' bytes."""
    pairs: dict[str, dict[bool, MemoryRow]] = {}
    for row in rows:
        pairs.setdefault(row.case, {})[row.validate_args] = row
    header = ("case", "elements", "preds MiB", "validate on: MiB", "x preds", "", "validate off: MiB", "x preds", "")
    lines: list[tuple[str, ...]] = [header]
    for case, by_setting in pairs.items():
        first = next(iter(by_setting.values()))
        cells = [case, f"{first.preds_elements:.1e}".replace("e+0", "e"), _megabytes(first.preds_bytes)]
        for validate in (True, False):
            setting = by_setting.get(validate)
            cells += (
                ["", "", ""]
                if setting is None
                else [_megabytes(setting.peak_bytes), _ratio(setting), _verdict(setting)]
            )
        lines.append(tuple(cells))
    if markdown:
        text = ["| " + " | ".join(cell or f"<= {BOUND:g}x" for cell in header) + " |"]
        text.append("|---|" + "---:|" * (len(header) - 1))
        text += ["| " + " | ".join(line) + " |" for line in lines[1:]]
        return "\n".join(text)
    return plain_table(lines)


def summary(rows: Sequence[MemoryRow]) -> str:
    """One line: the bound, and the rows that exceed it."""
    failed = [
        f"{row.case} (validate {'on' if row.validate_args else 'off'}: {_ratio(row)})"
        for row in rows
        if row.passed is False
    ]
    worst = max((row.ratio for row in rows if row.ratio is not None), default=math.nan)
    verdict = "every row within it" if not failed else "exceeded by " + "; ".join(failed)
    return f"bound: {BOUND:g}x the bytes of preds; largest {worst:.3f}x; {verdict}"

"""The registry of metric cases that the contract suite (and later suites) run every metric class through.

A case knows how to build its metric, how to draw a random batch for it, and how to compute the expected value of
any batches with the plain references in ``tests/reference.py``. A new metric class joins every suite by adding a
case here.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

import numpy as np
import torch
from torchmetrics import Metric

import hingemetrics as hm
from tests import reference as ref

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Case:
    """One metric configuration, with its batch generator and its independent oracle."""

    name: str
    make: Callable[[], Metric]
    draw: Callable[[torch.Generator, int], Batch]
    oracle: Callable[[Batch], Any]
    kwargs: dict[str, Any] = field(default_factory=dict)
    #: The functional form of the same configuration: ``functional(**batch)`` is the batch's value.
    functional: Callable[..., torch.Tensor] | None = None

    def __repr__(self) -> str:
        return self.name


def draw_batches(case: Case, sizes: tuple[int, ...], seed: int = 0) -> list[Batch]:
    """One batch of each size, drawn for ``case`` from a generator seeded with ``seed``."""
    gen = torch.Generator().manual_seed(seed)
    return [case.draw(gen, n) for n in sizes]


def feed(metric: Metric, batches: list[Batch]) -> Metric:
    """Update ``metric`` with every batch, in order; returns it."""
    for batch in batches:
        metric.update(**batch)
    return metric


def cat_batches(batches: list[Batch]) -> Batch:
    """Concatenate batches along the sample dimension."""
    return {k: torch.cat([b[k] for b in batches]) for k in batches[0]}


def _binary_draw(weighted: bool, extra: tuple[int, ...] = (), labels: tuple[int, ...] = (0, 1)) -> Callable:
    def draw(gen: torch.Generator, n: int) -> Batch:
        shape = (n, *extra)
        choice = torch.tensor(labels)[torch.randint(len(labels), shape, generator=gen)]
        batch = {"preds": torch.randn(shape, generator=gen) * 2, "target": choice}
        if weighted:
            batch["sample_weight"] = torch.rand(shape, generator=gen)
        return batch

    return draw


def _multiclass_draw(c: int, weighted: bool, extra: tuple[int, ...] = ()) -> Callable:
    def draw(gen: torch.Generator, n: int) -> Batch:
        batch = {
            "preds": torch.randn((n, c, *extra), generator=gen) * 2,
            "target": torch.randint(c, (n, *extra), generator=gen),
        }
        if weighted:
            batch["sample_weight"] = torch.rand((n,), generator=gen)
        return batch

    return draw


def _np(batch: Batch, key: str) -> np.ndarray | None:
    return batch[key].double().numpy() if key in batch else None


def _per_sample_weight(batch: Batch) -> np.ndarray | None:
    """Spread (N,) weights over the target's extra dimensions, as the metric documents."""
    w = _np(batch, "sample_weight")
    if w is None:
        return None
    shape = tuple(batch["target"].shape)
    return np.broadcast_to(w.reshape((-1,) + (1,) * (len(shape) - 1)), shape)


def _binary_case(name: str, weighted: bool = False, extra: tuple[int, ...] = (), labels=(0, 1), **kw: Any) -> Case:
    metric_kw = dict(kw)
    oracle_kw = {k: metric_kw[k] for k in ("margin", "squared", "ignore_index", "normalization") if k in metric_kw}

    def oracle(b: Batch) -> float:
        return ref.binary_hinge(_np(b, "preds"), b["target"].numpy(), weight=_np(b, "sample_weight"), **oracle_kw)

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.binary_hinge_loss(**batch, **metric_kw)

    return Case(
        name, lambda: hm.BinaryHingeLoss(**metric_kw), _binary_draw(weighted, extra, labels), oracle, kw, functional
    )


def _multiclass_case(name: str, c: int, weighted: bool = False, extra: tuple[int, ...] = (), **kw: Any) -> Case:
    metric_kw = dict(kw)
    names = ("margin", "squared", "ignore_index", "normalization", "class_weight")
    oracle_kw = {k: metric_kw[k] for k in names if k in metric_kw}
    mode = metric_kw.get("multiclass_mode", "crammer-singer")

    def oracle(b: Batch) -> Any:
        return ref.multiclass_hinge(
            _np(b, "preds"), b["target"].numpy(), mode=mode, weight=_per_sample_weight(b), **oracle_kw
        )

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.multiclass_hinge_loss(**batch, num_classes=c, **metric_kw)

    return Case(
        name,
        lambda: hm.MulticlassHingeLoss(c, **metric_kw),
        _multiclass_draw(c, weighted, extra),
        oracle,
        kw,
        functional,
    )


def _multilabel_draw(labels: int, weighted: bool, extra: tuple[int, ...] = (), values=(0, 1)) -> Callable:
    def draw(gen: torch.Generator, n: int) -> Batch:
        shape = (n, labels, *extra)
        batch = {
            "preds": torch.randn(shape, generator=gen) * 2,
            "target": torch.tensor(values)[torch.randint(len(values), shape, generator=gen)],
        }
        if weighted:
            batch["sample_weight"] = torch.rand(shape, generator=gen)
        return batch

    return draw


def _multilabel_case(name: str, labels: int, weighted: bool = False, extra=(), values=(0, 1), **kw: Any) -> Case:
    metric_kw = dict(kw)
    oracle_kw = {k: metric_kw[k] for k in ("margin", "squared", "ignore_index", "average") if k in metric_kw}

    def oracle(b: Batch) -> Any:
        return ref.multilabel_hinge(_np(b, "preds"), b["target"].numpy(), weight=_np(b, "sample_weight"), **oracle_kw)

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.multilabel_hinge_loss(**batch, num_labels=labels, **metric_kw)

    return Case(
        name,
        lambda: hm.MultilabelHingeLoss(labels, **metric_kw),
        _multilabel_draw(labels, weighted, extra, values),
        oracle,
        kw,
        functional,
    )


def _embedding_draw(gen: torch.Generator, n: int) -> Batch:
    return {
        "preds": torch.rand((n, 3), generator=gen) * 3 - 0.5,
        "target": torch.randint(0, 2, (n, 3), generator=gen) * 2 - 1,
    }


def _embedding_case(name: str, **kw: Any) -> Case:
    def oracle(b: Batch) -> float:
        return ref.hinge_embedding(_np(b, "preds"), b["target"].numpy(), **kw)

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.hinge_embedding_loss(**batch, **kw)

    return Case(name, lambda: hm.HingeEmbeddingLoss(**kw), _embedding_draw, oracle, kw, functional)


CASES: list[Case] = [
    _binary_case("binary"),
    _binary_case("binary-pm1-squared-margin", labels=(-1, 1), squared=True, margin=0.5),
    _binary_case("binary-weighted-extra-dims", weighted=True, extra=(3,)),
    _binary_case("binary-ignore", labels=(0, 1, -100), ignore_index=-100),
    _binary_case("binary-sigmoid-weighted", weighted=True, normalization="sigmoid"),
    _multiclass_case("multiclass-cs", 4),
    _multiclass_case("multiclass-cs-softmax", 4, normalization="softmax"),
    _multiclass_case("multiclass-cs-weighted-squared", 5, weighted=True, squared=True),
    _multiclass_case("multiclass-ova", 3, multiclass_mode="one-vs-all"),
    _multiclass_case("multiclass-ova-extra-dims", 3, weighted=True, extra=(2,), multiclass_mode="one-vs-all"),
    _multiclass_case("multiclass-ww", 4, multiclass_mode="weston-watkins", margin=2.0),
    _multiclass_case(
        "multiclass-ww-squared-weighted", 3, weighted=True, multiclass_mode="weston-watkins", squared=True
    ),
    _multilabel_case("multilabel-macro", 3),
    _multilabel_case("multilabel-micro-weighted", 4, weighted=True, average="micro"),
    _multilabel_case("multilabel-none-ignore", 3, extra=(2,), values=(0, 1, -1), average="none", ignore_index=-1),
    _multilabel_case("multilabel-macro-pm1-squared", 2, values=(-1, 1), squared=True, margin=0.5),
    _embedding_case("embedding-mean"),
    _embedding_case("embedding-sum-margin", margin=2.0, reduction="sum"),
    _binary_case("binary-perceptron", margin=0.0),
    _multiclass_case("multiclass-cs-perceptron", 4, margin=0.0),
    _multiclass_case("multiclass-ww-negative-margin", 4, multiclass_mode="weston-watkins", margin=-0.5),
    _multiclass_case("multiclass-categorical", 3, multiclass_mode="categorical"),
    _multiclass_case(
        "multiclass-categorical-weighted", 3, weighted=True, squared=True, multiclass_mode="categorical", margin=0.5
    ),
    _multiclass_case(
        "multiclass-ww-class-weight",
        4,
        weighted=True,
        multiclass_mode="weston-watkins",
        class_weight=(0.5, 2.0, 1.0, 0.0),
    ),
]

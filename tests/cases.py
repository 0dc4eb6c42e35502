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
    #: The batch keys of the float inputs (scores or embeddings), in the order ``update`` takes them.
    inputs: tuple[str, ...] = ("preds",)

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


def map_inputs(case: Case, batch: Batch, fn: Callable[[torch.Tensor], torch.Tensor]) -> Batch:
    """The batch with ``fn`` applied to each of the case's float inputs (scores or embeddings)."""
    return {k: fn(v) if k in case.inputs else v for k, v in batch.items()}


def batch_size(batch: Batch) -> int:
    """The number of samples of a batch: the length of its first input."""
    return len(next(iter(batch.values())))


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


def _pm_one(gen: torch.Generator, shape: tuple[int, ...]) -> torch.Tensor:
    return torch.randint(0, 2, shape, generator=gen) * 2 - 1


def _weights(gen: torch.Generator, n: int, weighted: bool) -> Batch:
    return {"sample_weight": torch.rand((n,), generator=gen)} if weighted else {}


def _ranking_case(name: str, weighted: bool = False, **kw: Any) -> Case:
    def draw(gen: torch.Generator, n: int) -> Batch:
        x1, x2 = torch.randn((2, n), generator=gen)
        return {"preds1": x1, "preds2": x2, "target": _pm_one(gen, (n,)), **_weights(gen, n, weighted)}

    def oracle(b: Batch) -> float:
        return ref.margin_ranking(
            _np(b, "preds1"), _np(b, "preds2"), b["target"].numpy(), weight=_np(b, "sample_weight"), **kw
        )

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.margin_ranking_loss(**batch, **kw)

    return Case(name, lambda: hm.MarginRankingLoss(**kw), draw, oracle, kw, functional, ("preds1", "preds2"))


def cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    """1 - cos of each pair of rows, in float64: the triplet case's distance (defined here, so it pickles)."""
    return 1 - torch.nn.functional.cosine_similarity(x.double(), y.double())


def _triplet_case(name: str, weighted: bool = False, **kw: Any) -> Case:
    oracle_kw = dict(kw)
    if kw.get("distance_function") is cosine_distance:
        oracle_kw["distance"] = ref.cosine_distance
    oracle_kw.pop("distance_function", None)

    def draw(gen: torch.Generator, n: int) -> Batch:
        a, p, neg = torch.randn((3, n, 4), generator=gen)
        return {"anchor": a, "positive": a + 0.8 * p, "negative": neg, **_weights(gen, n, weighted)}

    def oracle(b: Batch) -> float:
        inputs = [_np(b, k) for k in ("anchor", "positive", "negative")]
        return ref.triplet_margin(*inputs, weight=_np(b, "sample_weight"), **oracle_kw)

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.triplet_margin_loss(**batch, **kw)

    inputs = ("anchor", "positive", "negative")
    return Case(name, lambda: hm.TripletMarginLoss(**kw), draw, oracle, kw, functional, inputs)


def _cosine_case(name: str, weighted: bool = False, **kw: Any) -> Case:
    def draw(gen: torch.Generator, n: int) -> Batch:
        x1, x2 = torch.randn((2, n, 3), generator=gen)
        return {"preds1": x1, "preds2": x1 + x2, "target": _pm_one(gen, (n,)), **_weights(gen, n, weighted)}

    def oracle(b: Batch) -> float:
        return ref.cosine_embedding(
            _np(b, "preds1"), _np(b, "preds2"), b["target"].numpy(), weight=_np(b, "sample_weight"), **kw
        )

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.cosine_embedding_loss(**batch, **kw)

    return Case(name, lambda: hm.CosineEmbeddingLoss(**kw), draw, oracle, kw, functional, ("preds1", "preds2"))


def as_index_format(multi_hot: torch.Tensor, gen: torch.Generator) -> torch.Tensor:
    """torch's format of a multi-hot (N, L) target: each row's true labels in a random order, then -1s."""
    rows = []
    for row in multi_hot.tolist():
        labels = [k for k, v in enumerate(row) if v]
        order = torch.randperm(len(labels), generator=gen).tolist()
        rows.append([labels[i] for i in order] + [-1] * (len(row) - len(labels)))
    return torch.tensor(rows, dtype=torch.int64).reshape(multi_hot.shape)


def _multilabel_margin_case(name: str, labels: int, fmt: str, weighted: bool = False, **kw: Any) -> Case:
    oracle_kw = {k: kw[k] for k in ("margin", "reduction") if k in kw}

    def draw(gen: torch.Generator, n: int) -> Batch:
        preds = torch.randn((n, labels), generator=gen) * 1.5
        target = torch.randint(0, 2, (n, labels), generator=gen)
        if fmt == "index":
            target = as_index_format(target, gen)
        return {"preds": preds, "target": target, **_weights(gen, n, weighted)}

    def oracle(b: Batch) -> float:
        return ref.multilabel_margin(
            _np(b, "preds"), b["target"].numpy(), fmt=fmt, weight=_np(b, "sample_weight"), **oracle_kw
        )

    def functional(**batch: torch.Tensor) -> torch.Tensor:
        return hm.functional.multilabel_margin_loss(**batch, num_labels=labels, **kw)

    return Case(name, lambda: hm.MultilabelMarginLoss(labels, **kw), draw, oracle, kw, functional)


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
    _ranking_case("ranking-mean"),
    _ranking_case("ranking-sum-weighted-margin", weighted=True, margin=0.5, reduction="sum"),
    _triplet_case("triplet-p2"),
    _triplet_case("triplet-p1-swap-weighted", weighted=True, p=1.0, swap=True, margin=0.5),
    _triplet_case("triplet-distance-function", distance_function=cosine_distance, margin=0.3),
    _cosine_case("cosine-margin", margin=0.3),
    _cosine_case("cosine-sum-weighted", weighted=True, reduction="sum"),
    _multilabel_margin_case("multilabel-margin-multi-hot", 4, "multi-hot"),
    _multilabel_margin_case("multilabel-margin-index-weighted", 5, "index", weighted=True, margin=0.5),
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

"""Bad inputs, table-driven: every one gets a ValueError or TypeError naming the argument, with the expected and
the actual value, from the class and the functional form alike.

After a failed ``update`` or ``forward`` the metric's state is bit-for-bit what it was, and the metric keeps
working: the next good batch gives the plain reference's value for everything good it has seen.
"""

# ruff: noqa: E501  (the tables keep one bad input to a line)
from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from functools import partial
from typing import Any

import numpy as np
import pytest
import torch
from torchmetrics import Metric

import hingemetrics as hm
import hingemetrics.functional as F
from tests.cases import CASES, Case, cat_batches

CASE = {case.name: case for case in CASES}
META = "meta"  # a device with shapes and dtypes but no data: enough to put one input elsewhere on a CPU machine


@dataclass(frozen=True)
class Setup:
    """A metric configuration in both forms, and the registry case that draws good data for it."""

    make: Callable[..., Metric]
    functional: Callable[..., torch.Tensor]
    case: Case


def squeezing_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return torch.pairwise_distance(x, y).squeeze()


SETUPS = {
    "binary": Setup(hm.BinaryHingeLoss, F.binary_hinge_loss, CASE["binary"]),
    "binary-ignore": Setup(
        partial(hm.BinaryHingeLoss, ignore_index=-100),
        partial(F.binary_hinge_loss, ignore_index=-100),
        CASE["binary-ignore"],
    ),
    "multiclass": Setup(
        partial(hm.MulticlassHingeLoss, 4), partial(F.multiclass_hinge_loss, num_classes=4), CASE["multiclass-cs"]
    ),
    # the good data of the "multiclass-cs" case never hold -1, so its oracle holds for this metric too
    "multiclass-ignore": Setup(
        partial(hm.MulticlassHingeLoss, 4, ignore_index=-1),
        partial(F.multiclass_hinge_loss, num_classes=4, ignore_index=-1),
        CASE["multiclass-cs"],
    ),
    "multilabel": Setup(
        partial(hm.MultilabelHingeLoss, 3), partial(F.multilabel_hinge_loss, num_labels=3), CASE["multilabel-macro"]
    ),
    "embedding": Setup(hm.HingeEmbeddingLoss, F.hinge_embedding_loss, CASE["embedding-mean"]),
    "ranking": Setup(hm.MarginRankingLoss, F.margin_ranking_loss, CASE["ranking-mean"]),
    "triplet": Setup(hm.TripletMarginLoss, F.triplet_margin_loss, CASE["triplet-p2"]),
    # a distance written for batches of rows that squeezes away the row dimension of a single row: right on the
    # good data (the p = 2 distance with torch's eps, as the "triplet-p2" case), wrong for one row
    "triplet-squeezing-distance": Setup(
        partial(hm.TripletMarginLoss, distance_function=squeezing_distance),
        partial(F.triplet_margin_loss, distance_function=squeezing_distance),
        CASE["triplet-p2"],
    ),
    "cosine": Setup(
        partial(hm.CosineEmbeddingLoss, margin=0.3), partial(F.cosine_embedding_loss, margin=0.3), CASE["cosine-margin"]
    ),
    "multilabel-margin": Setup(
        partial(hm.MultilabelMarginLoss, 4),
        partial(F.multilabel_margin_loss, num_labels=4),
        CASE["multilabel-margin-multi-hot"],
    ),
    "multilabel-margin-multi-hot": Setup(
        partial(hm.MultilabelMarginLoss, 4, target_format="multi-hot"),
        partial(F.multilabel_margin_loss, num_labels=4, target_format="multi-hot"),
        CASE["multilabel-margin-multi-hot"],
    ),
    "multiclass-class-weight": Setup(
        partial(hm.MulticlassHingeLoss, 4, multiclass_mode="weston-watkins", class_weight=(0.5, 2.0, 1.0, 0.0)),
        partial(
            F.multiclass_hinge_loss, num_classes=4, multiclass_mode="weston-watkins", class_weight=(0.5, 2.0, 1.0, 0.0)
        ),
        CASE["multiclass-ww-class-weight"],
    ),
    "multiclass-categorical": Setup(
        partial(hm.MulticlassHingeLoss, 3, multiclass_mode="categorical"),
        partial(F.multiclass_hinge_loss, num_classes=3, multiclass_mode="categorical"),
        CASE["multiclass-categorical"],
    ),
    "task-multiclass": Setup(
        partial(hm.HingeLoss, "multiclass", 4),
        partial(F.hinge_loss, task="multiclass", num_classes=4),
        CASE["multiclass-cs"],
    ),
}


@dataclass(frozen=True)
class Bad:
    """One bad batch for one setup, and the exact error it must raise.

    ``tier`` is ``"always"`` for checks that read only types, shapes and devices (they run even with
    ``validate_args=False``) and ``"values"`` for those that read the data (only under ``validate_args=True``).
    ``functional=False`` marks an input that is only wrong for a metric (its state lives on another device).
    """

    id: str
    setup: str
    inputs: Callable[[], dict[str, Any]]
    error: type[Exception]
    message: str
    tier: str = "always"
    functional: bool = True


def t(*values: Any, **kw: Any) -> torch.Tensor:
    return torch.tensor(values, **kw)


P3 = t(0.5, -1.5, 2.0)  # three good binary scores
Y3 = t(1, 0, 1)  # three good binary labels
P24 = torch.tensor([[0.5, -1.0, 2.0, 0.0], [1.0, 0.25, -0.5, 3.0]])  # two samples, four classes
Y2 = t(2, 0)
P23 = torch.tensor([[0.5, -1.0, 2.0], [1.0, 0.25, -0.5]])  # two samples, three labels
Y23 = t([1, 0, 1], [0, 0, 1])
R3, S3, RY = t(0.5, -1.0, 2.0), t(1.0, 0.0, 2.5), t(1, -1, 1)  # three good score pairs and their targets
E23 = torch.tensor([[0.0, 1.0, 2.0], [1.0, 0.0, -1.0]])  # two embeddings of three dimensions
CY = t(1, -1)
MH24 = t([1, 0, 0, 1], [0, 1, 0, 0])  # a multi-hot target of two samples, four labels
FLOAT_PREDS = "Expected `preds` to be a floating-point tensor of scores, but got dtype {}. Convert it with `preds.float()` if the integers are meant as scores."
BINARY_LABELS = "Expected `target` to hold binary labels in {{0, 1}} or {{-1, 1}}{}, but found {}."
MIXED = (
    "Expected `target` to use one label convention, {0, 1} or {-1, 1}, but found both 0 and -1. "
    "Map the negatives to one value, or pass the value to skip as `ignore_index`."
)
WEIGHT_SHAPE = "Expected `sample_weight` to have shape {} (the target's shape, or one weight per sample), but got {}."
ONE_HOT = (
    "Expected a one-hot `target` of shape (N, C, ...): 0/1 entries with exactly one 1 along dimension 1, "
    "but found a row that is not one-hot: {}."
)
PM_ONE = "Expected `target` to hold only 1 (similar pair) and -1 (dissimilar pair), but found {}."
FINITE = "Expected `{}` to hold only finite values, but found {}."
IGNORE_FITS = (
    "Expected `ignore_index` to be a value of the target's dtype {}, in {}, but got {}. Pass the target in a wider "
    "dtype (e.g. `target.long()`) or another `ignore_index`."
)
META_REFUSED = (
    "Expected inputs that hold values for `validate_args=True`, which reads them back to check them, but got meta "
    "tensors (shapes without data). Pass `validate_args=False` to run on meta tensors: types, shapes and devices "
    "are still checked."
)


def nan_at(values: torch.Tensor, index: int, value: float = float("nan")) -> torch.Tensor:
    values = values.clone()
    values.view(-1)[index] = value
    return values


# fmt: off
BAD = [
    # ------------------------------------------------------------------------------- binary: types and dtypes
    Bad("int-preds", "binary", lambda: {"preds": t(1, 0, 2), "target": Y3}, TypeError, FLOAT_PREDS.format("torch.int64")),
    Bad("bool-preds", "binary", lambda: {"preds": t(True, False, True), "target": Y3}, TypeError, FLOAT_PREDS.format("torch.bool")),
    Bad("list-preds", "binary", lambda: {"preds": [0.5, -1.5, 2.0], "target": Y3}, TypeError, "Expected `preds` to be a torch.Tensor, but got list."),
    Bad("numpy-target", "binary", lambda: {"preds": P3, "target": np.array([1, 0, 1])}, TypeError, "Expected `target` to be a torch.Tensor, but got ndarray."),
    Bad("complex-target", "binary", lambda: {"preds": P3, "target": t(1, 0, 1, dtype=torch.complex64)}, TypeError, "Expected `target` to be an integer, bool or float tensor, but got dtype torch.complex64."),
    Bad("fractional-float-target", "binary", lambda: {"preds": P3, "target": t(1.0, 0.5, 0.0)}, ValueError, "Expected `target` to hold whole-number labels, but found 0.5.", "values"),
    # ------------------------------------------------------------------------------------- binary: shapes
    Bad("shorter-target", "binary", lambda: {"preds": P3, "target": t(1, 0)}, ValueError, "Expected `preds` and `target` to have the same shape, but got (3,) and (2,)."),
    Bad("no-broadcasting", "binary", lambda: {"preds": P3.reshape(3, 1), "target": Y3}, ValueError, "Expected `preds` and `target` to have the same shape, but got (3, 1) and (3,)."),
    # ------------------------------------------------------------------------------------- binary: labels
    Bad("label-2", "binary", lambda: {"preds": P3, "target": t(1, 2, 0)}, ValueError, BINARY_LABELS.format("", 2), "values"),
    Bad("label-minus-2", "binary", lambda: {"preds": P3, "target": t(1, -2, -1)}, ValueError, BINARY_LABELS.format("", -2), "values"),
    Bad("zero-and-minus-one", "binary", lambda: {"preds": P3, "target": t(1, 0, -1)}, ValueError, MIXED, "values"),
    Bad("negative-other-than-ignore", "binary-ignore", lambda: {"preds": P3, "target": t(1, -5, -100)}, ValueError, BINARY_LABELS.format(" (or `ignore_index`=-100)", -5), "values"),
    Bad("zero-and-minus-one-beside-ignore", "binary-ignore", lambda: {"preds": P3, "target": t(-100, 0, -1)}, ValueError, MIXED, "values"),
    Bad("ignore-index-out-of-uint8", "binary-ignore", lambda: {"preds": P3, "target": t(1, 0, 1, dtype=torch.uint8)}, ValueError, IGNORE_FITS.format("torch.uint8", "[0, 255]", -100)),
    # ------------------------------------------------------------------------------- binary: scores, weights
    Bad("nan-preds", "binary", lambda: {"preds": nan_at(P3, 1), "target": Y3}, ValueError, FINITE.format("preds", "nan"), "values"),
    Bad("inf-preds", "binary", lambda: {"preds": nan_at(P3, 2, float("inf")), "target": Y3}, ValueError, FINITE.format("preds", "inf"), "values"),
    Bad("minus-inf-half-preds", "binary", lambda: {"preds": nan_at(P3, 0, float("-inf")).half(), "target": Y3}, ValueError, FINITE.format("preds", "-inf"), "values"),
    Bad("negative-weight", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": t(1.0, -0.5, 2.0)}, ValueError, "Expected `sample_weight` to be non-negative, but found -0.5.", "values"),
    Bad("nan-weight", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": t(1.0, float("nan"), 2.0)}, ValueError, FINITE.format("sample_weight", "nan"), "values"),
    Bad("inf-weight", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": t(float("inf"), 1.0, 2.0)}, ValueError, FINITE.format("sample_weight", "inf"), "values"),
    Bad("weight-too-short", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": t(1.0, 2.0)}, ValueError, WEIGHT_SHAPE.format("(3,)", "(2,)")),
    Bad("weight-neither-full-nor-per-sample", "binary", lambda: {"preds": P23, "target": Y23, "sample_weight": t(1.0, 2.0, 3.0)}, ValueError, WEIGHT_SHAPE.format("(2, 3) or (2,)", "(3,)")),
    Bad("bool-weight", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": t(True, False, True)}, TypeError, "Expected `sample_weight` to be a real-valued tensor, but got dtype torch.bool."),
    Bad("list-weight", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": [1.0, 1.0, 1.0]}, TypeError, "Expected `sample_weight` to be a torch.Tensor, but got list."),
    # ------------------------------------------------------------------------------------- binary: devices
    Bad("target-on-another-device", "binary", lambda: {"preds": P3, "target": Y3.to(META)}, ValueError, "Expected all inputs on the same device, but got `preds` on cpu, `target` on meta."),
    Bad("weight-on-another-device", "binary", lambda: {"preds": P3, "target": Y3, "sample_weight": torch.ones(3, device=META)}, ValueError, "Expected all inputs on the same device, but got `preds` on cpu, `target` on cpu, `sample_weight` on meta."),
    Bad("inputs-off-the-metric-device", "binary", lambda: {"preds": P3.to(META), "target": Y3.to(META)}, ValueError, "Expected the inputs on the metric's device cpu, but got them on meta. Move the metric with `metric.to(device)`, or the inputs to its device.", functional=False),
    # -------------------------------------------------------------------------------------------- multiclass
    Bad("too-few-classes", "multiclass", lambda: {"preds": P24[:, :3], "target": Y2}, ValueError, "Expected `preds` to have shape (N, 4, ...) with the classes on dimension 1 (`num_classes`=4), but got (2, 3)."),
    Bad("scalar-preds", "multiclass", lambda: {"preds": torch.tensor(0.5), "target": torch.tensor(1)}, ValueError, "Expected `preds` to have shape (N, 4, ...) with the classes on dimension 1 (`num_classes`=4), but got ()."),
    Bad("target-neither-index-nor-one-hot", "multiclass", lambda: {"preds": P24, "target": t([0, 1, 0], [1, 0, 0])}, ValueError, "Expected `target` to have shape (2,) (class indices) or (2, 4) (one-hot) to match `preds` of shape (2, 4), but got (2, 3)."),
    Bad("class-out-of-range", "multiclass", lambda: {"preds": P24, "target": t(4, 0)}, ValueError, "Expected `target` to hold class indices in [0, 3], but found 4.", "values"),
    Bad("negative-class", "multiclass", lambda: {"preds": P24, "target": t(-1, 0)}, ValueError, "Expected `target` to hold class indices in [0, 3], but found -1.", "values"),
    Bad("negative-class-other-than-ignore", "multiclass-ignore", lambda: {"preds": P24, "target": t(-1, -2)}, ValueError, "Expected `target` to hold class indices in [0, 3] (or `ignore_index`=-1), but found -2.", "values"),
    Bad("fractional-class", "multiclass", lambda: {"preds": P24, "target": t(1.5, 0.0)}, ValueError, "Expected `target` to hold whole-number labels, but found 1.5.", "values"),
    Bad("one-hot-with-two-ones", "multiclass", lambda: {"preds": P24, "target": t([0, 0, 1, 0], [1, 1, 0, 0])}, ValueError, ONE_HOT.format("[1, 1, 0, 0]"), "values"),
    Bad("one-hot-with-a-two", "multiclass", lambda: {"preds": P24, "target": t([0, 0, 2, 0], [1, 0, 0, 0])}, ValueError, ONE_HOT.format("[0, 0, 2, 0]"), "values"),
    Bad("one-hot-with-no-one", "multiclass", lambda: {"preds": P24, "target": t([0, 0, 1, 0], [0, 0, 0, 0])}, ValueError, ONE_HOT.format("[0, 0, 0, 0]"), "values"),
    Bad("class-weight-shaped-like-preds", "multiclass", lambda: {"preds": P24, "target": Y2, "sample_weight": torch.ones(2, 4)}, ValueError, WEIGHT_SHAPE.format("(2,)", "(2, 4)")),
    Bad("negative-class-weight", "multiclass", lambda: {"preds": P24, "target": Y2, "sample_weight": t(-1.0, 1.0)}, ValueError, "Expected `sample_weight` to be non-negative, but found -1.0.", "values"),
    Bad("int-class-scores", "multiclass", lambda: {"preds": P24.long(), "target": Y2}, TypeError, FLOAT_PREDS.format("torch.int64")),
    Bad("nan-class-scores", "multiclass", lambda: {"preds": nan_at(P24, 5), "target": Y2}, ValueError, FINITE.format("preds", "nan"), "values"),
    Bad("ignore-index-out-of-uint8-classes", "multiclass-ignore", lambda: {"preds": P24, "target": t(2, 0, dtype=torch.uint8)}, ValueError, IGNORE_FITS.format("torch.uint8", "[0, 255]", -1)),
    Bad("class-target-on-another-device", "multiclass", lambda: {"preds": P24, "target": Y2.to(META)}, ValueError, "Expected all inputs on the same device, but got `preds` on cpu, `target` on meta."),
    Bad("class-weighted-class-out-of-range", "multiclass-class-weight", lambda: {"preds": P24, "target": t(4, 0)}, ValueError, "Expected `target` to hold class indices in [0, 3], but found 4.", "values"),
    Bad("class-weighted-nan-scores", "multiclass-class-weight", lambda: {"preds": nan_at(P24, 2), "target": Y2}, ValueError, FINITE.format("preds", "nan"), "values"),
    Bad("class-weighted-sample-weight-shape", "multiclass-class-weight", lambda: {"preds": P24, "target": Y2, "sample_weight": torch.ones(3)}, ValueError, WEIGHT_SHAPE.format("(2,)", "(3,)")),
    Bad("categorical-too-many-classes", "multiclass-categorical", lambda: {"preds": P24, "target": Y2}, ValueError, "Expected `preds` to have shape (N, 3, ...) with the classes on dimension 1 (`num_classes`=3), but got (2, 4)."),
    Bad("categorical-one-hot-with-two-ones", "multiclass-categorical", lambda: {"preds": P23, "target": t([0, 1, 1], [1, 0, 0])}, ValueError, ONE_HOT.format("[0, 1, 1]"), "values"),
    Bad("task-dispatch-too-many-classes", "task-multiclass", lambda: {"preds": torch.zeros(2, 5), "target": Y2}, ValueError, "Expected `preds` to have shape (N, 4, ...) with the classes on dimension 1 (`num_classes`=4), but got (2, 5)."),
    # -------------------------------------------------------------------------------------------- multilabel
    Bad("too-few-labels", "multilabel", lambda: {"preds": P23[:, :2], "target": Y23[:, :2]}, ValueError, "Expected `preds` to have shape (N, 3, ...) with the labels on dimension 1 (`num_labels`=3), but got (2, 2)."),
    Bad("one-dimensional-multilabel-preds", "multilabel", lambda: {"preds": P3, "target": Y3}, ValueError, "Expected `preds` to have shape (N, 3, ...) with the labels on dimension 1 (`num_labels`=3), but got (3,)."),
    Bad("multilabel-target-too-narrow", "multilabel", lambda: {"preds": P23, "target": Y23[:, :2]}, ValueError, "Expected `preds` and `target` to have the same shape, but got (2, 3) and (2, 2)."),
    Bad("multilabel-label-2", "multilabel", lambda: {"preds": P23, "target": t([1, 0, 2], [0, 0, 1])}, ValueError, BINARY_LABELS.format("", 2), "values"),
    Bad("multilabel-zero-and-minus-one", "multilabel", lambda: {"preds": P23, "target": t([1, 0, -1], [0, 0, 1])}, ValueError, MIXED, "values"),
    Bad("multilabel-weight-shape", "multilabel", lambda: {"preds": P23, "target": Y23, "sample_weight": torch.ones(2, 2)}, ValueError, WEIGHT_SHAPE.format("(2, 3) or (2,)", "(2, 2)")),
    Bad("list-multilabel-preds", "multilabel", lambda: {"preds": [[0.5, 1.0, 2.0]], "target": Y23[:1]}, TypeError, "Expected `preds` to be a torch.Tensor, but got list."),
    Bad("int-multilabel-preds", "multilabel", lambda: {"preds": Y23.clone(), "target": Y23}, TypeError, FLOAT_PREDS.format("torch.int64")),
    # --------------------------------------------------------------------------------------------- embedding
    Bad("embedding-label-0", "embedding", lambda: {"preds": P3, "target": t(1, 0, -1)}, ValueError, PM_ONE.format(0) + " Map 0 labels to -1 first, e.g. `target * 2 - 1`.", "values"),
    Bad("embedding-label-2", "embedding", lambda: {"preds": P3, "target": t(1, 2, -1)}, ValueError, PM_ONE.format(2), "values"),
    Bad("embedding-fractional-label", "embedding", lambda: {"preds": P3, "target": t(1.0, 0.5, -1.0)}, ValueError, PM_ONE.format(0.5), "values"),
    Bad("embedding-int-preds", "embedding", lambda: {"preds": t(1, 2, 3), "target": t(1, -1, 1)}, TypeError, FLOAT_PREDS.format("torch.int64")),
    Bad("embedding-shapes", "embedding", lambda: {"preds": P3, "target": t(1, -1)}, ValueError, "Expected `preds` and `target` to have the same shape, but got (3,) and (2,)."),
    Bad("embedding-inf", "embedding", lambda: {"preds": nan_at(P3, 1, float("inf")), "target": t(1, -1, 1)}, ValueError, FINITE.format("preds", "inf"), "values"),
    Bad("embedding-devices", "embedding", lambda: {"preds": P3.to(META), "target": t(1, -1, 1)}, ValueError, "Expected all inputs on the same device, but got `preds` on meta, `target` on cpu."),
    # ---------------------------------------------------------------------------------------- margin ranking
    Bad("ranking-shapes", "ranking", lambda: {"preds1": R3, "preds2": R3[:2], "target": RY}, ValueError, "Expected `preds1`, `preds2` and `target` to have the same shape, but got (3,), (2,) and (3,)."),
    Bad("ranking-target-0", "ranking", lambda: {"preds1": R3, "preds2": S3, "target": t(1, 0, -1)}, ValueError, PM_ONE.format(0) + " Map 0 labels to -1 first, e.g. `target * 2 - 1`.", "values"),
    Bad("ranking-target-2", "ranking", lambda: {"preds1": R3, "preds2": S3, "target": t(1, 2, 1)}, ValueError, PM_ONE.format(2), "values"),
    Bad("ranking-int-preds2", "ranking", lambda: {"preds1": R3, "preds2": t(1, 0, 2), "target": RY}, TypeError, FLOAT_PREDS.replace("preds", "preds2").format("torch.int64")),
    Bad("ranking-nan-preds2", "ranking", lambda: {"preds1": R3, "preds2": nan_at(S3, 1), "target": RY}, ValueError, FINITE.format("preds2", "nan"), "values"),
    Bad("ranking-negative-weight", "ranking", lambda: {"preds1": R3, "preds2": S3, "target": RY, "sample_weight": t(1.0, -2.0, 1.0)}, ValueError, "Expected `sample_weight` to be non-negative, but found -2.0.", "values"),
    Bad("ranking-weight-shape", "ranking", lambda: {"preds1": R3, "preds2": S3, "target": RY, "sample_weight": t(1.0, 2.0)}, ValueError, WEIGHT_SHAPE.format("(3,)", "(2,)")),
    Bad("ranking-devices", "ranking", lambda: {"preds1": R3, "preds2": S3.to(META), "target": RY}, ValueError, "Expected all inputs on the same device, but got `preds1` on cpu, `preds2` on meta, `target` on cpu."),
    # ---------------------------------------------------------------------------------------- triplet margin
    Bad("triplet-shapes", "triplet", lambda: {"anchor": E23, "positive": E23 + 1, "negative": torch.zeros(2, 4)}, ValueError, "Expected `anchor`, `positive` and `negative` to have the same shape, but got (2, 3), (2, 3) and (2, 4)."),
    Bad("triplet-3d", "triplet", lambda: {"anchor": E23[None], "positive": E23[None], "negative": E23[None]}, ValueError, "Expected `anchor` to be an (N, D) or (D,) tensor of embeddings, but got shape (1, 2, 3)."),
    Bad("triplet-int-positive", "triplet", lambda: {"anchor": E23, "positive": E23.long(), "negative": E23}, TypeError, FLOAT_PREDS.replace("preds", "positive").format("torch.int64")),
    Bad("triplet-inf-negative", "triplet", lambda: {"anchor": E23, "positive": E23 + 1, "negative": nan_at(E23, 4, float("inf"))}, ValueError, FINITE.format("negative", "inf"), "values"),
    Bad("triplet-weight-shape", "triplet", lambda: {"anchor": E23, "positive": E23 + 1, "negative": E23 - 1, "sample_weight": torch.ones(3)}, ValueError, "Expected `sample_weight` to have shape (2,) (one weight per row of `anchor`), but got (3,)."),
    Bad("triplet-nan-weight", "triplet", lambda: {"anchor": E23, "positive": E23 + 1, "negative": E23 - 1, "sample_weight": t(1.0, float("nan"))}, ValueError, FINITE.format("sample_weight", "nan"), "values"),
    Bad("triplet-devices", "triplet", lambda: {"anchor": E23, "positive": E23.to(META), "negative": E23}, ValueError, "Expected all inputs on the same device, but got `anchor` on cpu, `positive` on meta, `negative` on cpu."),
    Bad("triplet-distance-not-per-row", "triplet-squeezing-distance", lambda: {"anchor": E23[:1], "positive": E23[:1] + 1, "negative": E23[1:]}, ValueError, "Expected `distance_function` to return one distance per row, a tensor of shape (1,) for embeddings of shape (1, 3), but got shape ()."),
    # -------------------------------------------------------------------------------------- cosine embedding
    Bad("cosine-shapes", "cosine", lambda: {"preds1": E23, "preds2": torch.ones(2, 4), "target": CY}, ValueError, "Expected `preds1` and `preds2` to have the same shape, but got (2, 3) and (2, 4)."),
    Bad("cosine-target-shape", "cosine", lambda: {"preds1": E23, "preds2": E23 + 1, "target": t(1, -1, 1)}, ValueError, "Expected `target` to have shape (2,) (one per row of `preds1`), but got (3,)."),
    Bad("cosine-target-0", "cosine", lambda: {"preds1": E23, "preds2": E23 + 1, "target": t(0, 1)}, ValueError, PM_ONE.format(0) + " Map 0 labels to -1 first, e.g. `target * 2 - 1`.", "values"),
    Bad("cosine-target-minus-2", "cosine", lambda: {"preds1": E23, "preds2": E23 + 1, "target": t(-2, 1)}, ValueError, PM_ONE.format(-2), "values"),
    Bad("cosine-nan-preds1", "cosine", lambda: {"preds1": nan_at(E23, 0), "preds2": E23 + 1, "target": CY}, ValueError, FINITE.format("preds1", "nan"), "values"),
    Bad("cosine-1d-preds", "cosine", lambda: {"preds1": E23[None], "preds2": E23[None], "target": CY}, ValueError, "Expected `preds1` to be an (N, D) or (D,) tensor of embeddings, but got shape (1, 2, 3)."),
    # ------------------------------------------------------------------------------------- multilabel margin
    Bad("multilabel-margin-labels", "multilabel-margin", lambda: {"preds": P23, "target": Y23}, ValueError, "Expected `preds` to have shape (N, 4) or (4,) with the labels last (`num_labels`=4), but got (2, 3)."),
    Bad("multilabel-margin-target-shape", "multilabel-margin", lambda: {"preds": P24, "target": Y23}, ValueError, "Expected `preds` and `target` to have the same shape, but got (2, 4) and (2, 3)."),
    Bad("multilabel-margin-index-beyond-labels", "multilabel-margin", lambda: {"preds": P24, "target": t([4, 0, -1, -1], [1, -1, -1, -1])}, ValueError, "Expected `target` in torch's index format to hold label indices in [0, 3] padded with -1, but found 4.", "values"),
    Bad("multilabel-margin-index-below-minus-one", "multilabel-margin", lambda: {"preds": P24, "target": t([3, -2, -1, -1], [1, -1, -1, -1])}, ValueError, "Expected `target` in torch's index format to hold label indices in [0, 3] padded with -1, but found -2.", "values"),
    Bad("multilabel-margin-padding-not-trailing", "multilabel-margin", lambda: {"preds": P24, "target": t([1, -1, -1, -1], [3, -1, 0, -1])}, ValueError, "Expected the -1 padding of `target` to follow the last label index of its row, but row 1 is [3, -1, 0, -1].", "values"),
    Bad("multilabel-margin-repeated-index", "multilabel-margin", lambda: {"preds": P24, "target": t([3, 3, -1, -1], [1, -1, -1, -1])}, ValueError, "Expected each label index at most once in a row of `target`, but row 0 is [3, 3, -1, -1].", "values"),
    Bad("multilabel-margin-fractional", "multilabel-margin", lambda: {"preds": P24, "target": t([1.0, 0.5, 0.0, 0.0], [0.0, 1.0, 0.0, 0.0])}, ValueError, "Expected `target` to hold whole-number labels, but found 0.5.", "values"),
    Bad("multilabel-margin-not-multi-hot", "multilabel-margin-multi-hot", lambda: {"preds": P24, "target": t([1, 0, 2, 0], [0, 1, 0, 0])}, ValueError, "Expected a multi-hot `target` of 0 and 1 (`target_format`='multi-hot'), but found 2.", "values"),
    Bad("multilabel-margin-weight-shape", "multilabel-margin", lambda: {"preds": P24, "target": MH24, "sample_weight": torch.ones(2, 4)}, ValueError, "Expected `sample_weight` to have shape (2,) (one weight per row of `preds`), but got (2, 4)."),
    Bad("multilabel-margin-nan-preds", "multilabel-margin", lambda: {"preds": nan_at(P24, 3), "target": MH24}, ValueError, FINITE.format("preds", "nan"), "values"),
]
# fmt: on


def _ids(table: list[Bad]) -> list[str]:
    return [row.id for row in table]


def setup_update(bad: Bad, **kwargs: Any) -> Callable[..., None]:
    return SETUPS[bad.setup].make(**kwargs).update


def test_the_table_is_broad():
    assert len({bad.id for bad in BAD}) == len(BAD) >= 30
    assert {bad.setup for bad in BAD} == set(SETUPS)


def _raises(bad: Bad, call: Callable[..., Any], **kwargs: Any) -> None:
    with pytest.raises(bad.error) as info:
        call(**bad.inputs(), **kwargs)
    assert type(info.value) is bad.error
    assert str(info.value) == bad.message


def _snapshot(metric: Metric) -> dict[str, torch.Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


def _assert_untouched(metric: Metric, before: dict[str, torch.Tensor]) -> None:
    """Every state has its dtype, device and bits of before (compared as integers, so -0.0 != 0.0)."""
    for name, old in before.items():
        now = getattr(metric, name)
        assert (now.dtype, now.device, now.shape) == (old.dtype, old.device, old.shape), name
        assert torch.equal(now.view(torch.int64), old.view(torch.int64)), name


@pytest.mark.parametrize("bad", [b for b in BAD if b.functional], ids=_ids([b for b in BAD if b.functional]))
def test_functional_form_raises_a_named_error(bad):
    _raises(bad, SETUPS[bad.setup].functional)


@pytest.mark.parametrize("call", ["update", "forward"])
@pytest.mark.parametrize("bad", BAD, ids=_ids(BAD))
def test_a_failed_call_leaves_the_state_as_it_was_and_the_metric_working(bad, call):
    setup = SETUPS[bad.setup]
    gen = torch.Generator().manual_seed(0)
    first, second = setup.case.draw(gen, 5), setup.case.draw(gen, 4)
    metric = setup.make()
    metric.update(**first)
    before, count = _snapshot(metric), metric.update_count

    _raises(bad, metric.update if call == "update" else metric)
    _assert_untouched(metric, before)
    assert metric.update_count == count

    if call == "forward":  # the batch value is the good batch's own, the state holds both good batches
        np.testing.assert_allclose(metric(**second).detach().numpy(), setup.case.oracle(second), rtol=1e-6)
    else:
        metric.update(**second)
    np.testing.assert_allclose(metric.compute().numpy(), setup.case.oracle(cat_batches([first, second])), rtol=1e-6)
    assert metric.update_count == count + 1


@pytest.mark.parametrize(
    "bad", [b for b in BAD if b.tier == "always"], ids=_ids([b for b in BAD if b.tier == "always"])
)
def test_type_shape_and_device_checks_run_without_validate_args(bad):
    _raises(bad, setup_update(bad, validate_args=False))
    if bad.functional:
        _raises(bad, SETUPS[bad.setup].functional, validate_args=False)


@pytest.mark.parametrize(
    "bad", [b for b in BAD if b.tier == "values"], ids=_ids([b for b in BAD if b.tier == "values"])
)
def test_value_checks_are_what_validate_args_false_skips(bad):
    """Without validation nothing reads the values: the call returns (a number that means nothing), or fails
    somewhere in the arithmetic (an index out of range), but never with the check's message."""
    try:
        value = SETUPS[bad.setup].functional(**bad.inputs(), validate_args=False)
    except RuntimeError as error:
        assert "index" in str(error) and "out of bounds" in str(error)
    else:
        assert value.dtype == torch.float64


# ------------------------------------------------------------------------------------ constructor arguments
P, Y = P3, Y3


def binary_both(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.BinaryHingeLoss(**kw)), (lambda: F.binary_hinge_loss(P, Y, **kw))


def multiclass_both(*args: Any, **kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.MulticlassHingeLoss(*args, **kw)), (lambda: F.multiclass_hinge_loss(P24, Y2, *args, **kw))


def multilabel_both(*args: Any, **kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.MultilabelHingeLoss(*args, **kw)), (lambda: F.multilabel_hinge_loss(P23, Y23, *args, **kw))


def embedding_both(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.HingeEmbeddingLoss(**kw)), (lambda: F.hinge_embedding_loss(P, t(1, -1, 1), **kw))


def ranking_both(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.MarginRankingLoss(**kw)), (lambda: F.margin_ranking_loss(R3, S3, RY, **kw))


def triplet_both(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.TripletMarginLoss(**kw)), (lambda: F.triplet_margin_loss(E23, E23 + 1, E23 - 1, **kw))


def cosine_both(**kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.CosineEmbeddingLoss(**kw)), (lambda: F.cosine_embedding_loss(E23, E23 + 1, CY, **kw))


def multilabel_margin_both(*args: Any, **kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.MultilabelMarginLoss(*args, **kw)), (lambda: F.multilabel_margin_loss(P24, MH24, *args, **kw))


def task_both(*args: Any, **kw: Any) -> tuple[Callable[[], Any], Callable[[], Any]]:
    return (lambda: hm.HingeLoss(*args, **kw)), (lambda: F.hinge_loss(P24, Y2, *args, **kw))


MARGIN_VALUE = "Expected `margin` to be a finite real number, but got {}."
MARGIN_TYPE = "Expected `margin` to be a real number, but got {} of type {}."
CLASS_WEIGHT_TYPE = (
    "Expected `class_weight` to be None, a (4,) tensor or a sequence of 4 non-negative numbers, but got {}."
)
CLASS_WEIGHT_SHAPE = "Expected `class_weight` to have shape (4,) (one weight per class, `num_classes`=4), but got {}."
COUNT = "Expected `{}` to be an int >= 2, but got {}."
MODES = "('crammer-singer', 'one-vs-all', 'weston-watkins', 'categorical')"
P_VALUE = "Expected `p` to be a float > 0 (the order of the norm, inf for the largest), but got {}."

# fmt: off
BAD_ARGUMENTS = [
    ("margin-nan", binary_both(margin=float("nan")), ValueError, MARGIN_VALUE.format("nan")),
    ("margin-inf", binary_both(margin=float("inf")), ValueError, MARGIN_VALUE.format("inf")),
    ("margin-minus-inf", binary_both(margin=-float("inf")), ValueError, MARGIN_VALUE.format("-inf")),
    ("margin-str", binary_both(margin="1"), TypeError, MARGIN_TYPE.format("'1'", "str")),
    ("margin-bool", binary_both(margin=True), TypeError, MARGIN_TYPE.format("True", "bool")),
    ("margin-none", binary_both(margin=None), TypeError, MARGIN_TYPE.format("None", "NoneType")),
    ("margin-complex", binary_both(margin=1j), TypeError, MARGIN_TYPE.format("1j", "complex")),
    ("margin-checked-without-validate-args", binary_both(margin=float("nan"), validate_args=False), ValueError, MARGIN_VALUE.format("nan")),
    ("squared-int", binary_both(squared=1), TypeError, "Expected `squared` to be a bool, but got 1 of type int."),
    ("validate-args-str", binary_both(validate_args="yes"), TypeError, "Expected `validate_args` to be a bool, but got 'yes' of type str."),
    ("ignore-index-float", binary_both(ignore_index=1.5), TypeError, "Expected `ignore_index` to be None or an int, but got 1.5 of type float."),
    ("ignore-index-bool", binary_both(ignore_index=True), TypeError, "Expected `ignore_index` to be None or an int, but got True of type bool."),
    ("ignore-index-beyond-int64", binary_both(ignore_index=2**70), ValueError, f"Expected `ignore_index` to be None or an int in the int64 range [-2**63, 2**63 - 1], but got {2**70}."),
    ("ignore-index-below-int64", multiclass_both(4, ignore_index=-(2**63) - 1), ValueError, f"Expected `ignore_index` to be None or an int in the int64 range [-2**63, 2**63 - 1], but got {-(2**63) - 1}."),
    ("multilabel-ignore-index-beyond-int64", multilabel_both(3, ignore_index=2**63), ValueError, f"Expected `ignore_index` to be None or an int in the int64 range [-2**63, 2**63 - 1], but got {2**63}."),
    ("binary-normalization-softmax", binary_both(normalization="softmax"), ValueError, "Expected `normalization` to be one of (None, 'auto', 'sigmoid'), but got 'softmax'."),
    ("num-classes-one", multiclass_both(1), ValueError, COUNT.format("num_classes", 1)),
    ("num-classes-zero", multiclass_both(0), ValueError, COUNT.format("num_classes", 0)),
    ("num-classes-float", multiclass_both(4.0), TypeError, "Expected `num_classes` to be an int >= 2, but got 4.0 of type float."),
    ("num-classes-str", multiclass_both("4"), TypeError, "Expected `num_classes` to be an int >= 2, but got '4' of type str."),
    ("num-classes-bool", multiclass_both(True), TypeError, "Expected `num_classes` to be an int >= 2, but got True of type bool."),
    ("num-classes-none", multiclass_both(None), TypeError, "Expected `num_classes` to be an int >= 2, but got None of type NoneType."),
    ("mode-unknown", multiclass_both(4, multiclass_mode="ovr"), ValueError, f"Expected `multiclass_mode` to be one of {MODES}, but got 'ovr'."),
    ("mode-wrong-case", multiclass_both(4, multiclass_mode="Crammer-Singer"), ValueError, f"Expected `multiclass_mode` to be one of {MODES}, but got 'Crammer-Singer'."),
    ("multiclass-normalization-sigmoid", multiclass_both(4, normalization="sigmoid"), ValueError, "Expected `normalization` to be one of (None, 'auto', 'softmax'), but got 'sigmoid'."),
    ("multiclass-margin-inf", multiclass_both(4, margin=float("inf")), ValueError, MARGIN_VALUE.format("inf")),
    ("categorical-margin-nan", multiclass_both(4, multiclass_mode="categorical", margin=float("nan")), ValueError, MARGIN_VALUE.format("nan")),
    ("class-weight-too-short", multiclass_both(4, class_weight=[1.0, 2.0, 3.0]), ValueError, CLASS_WEIGHT_SHAPE.format("(3,)")),
    ("class-weight-2d-tensor", multiclass_both(4, class_weight=torch.ones(1, 4)), ValueError, CLASS_WEIGHT_SHAPE.format("(1, 4)")),
    ("class-weight-scalar-tensor", multiclass_both(4, class_weight=torch.tensor(1.0)), ValueError, CLASS_WEIGHT_SHAPE.format("()")),
    ("class-weight-negative", multiclass_both(4, class_weight=[1.0, -0.5, 1.0, 1.0]), ValueError, "Expected `class_weight` to be non-negative, but found -0.5."),
    ("class-weight-negative-tensor", multiclass_both(4, multiclass_mode="weston-watkins", class_weight=t(1, 1, -2, 1)), ValueError, "Expected `class_weight` to be non-negative, but found -2.0."),
    ("class-weight-nan", multiclass_both(4, class_weight=t(1.0, float("nan"), 1.0, 1.0)), ValueError, "Expected `class_weight` to hold only finite values, but found nan."),
    ("class-weight-inf-sequence", multiclass_both(4, class_weight=(1, 1, float("inf"), 1)), ValueError, "Expected `class_weight` to hold only finite values, but found inf."),
    ("class-weight-sequence-checked-without-validate-args", multiclass_both(4, class_weight=[1, 1, 1, -1], validate_args=False), ValueError, "Expected `class_weight` to be non-negative, but found -1.0."),
    ("class-weight-str", multiclass_both(4, class_weight="1111"), TypeError, CLASS_WEIGHT_TYPE.format("str")),
    ("class-weight-number", multiclass_both(4, class_weight=2.0), TypeError, CLASS_WEIGHT_TYPE.format("float")),
    ("class-weight-bool-tensor", multiclass_both(4, class_weight=torch.ones(4, dtype=torch.bool)), TypeError, CLASS_WEIGHT_TYPE.format("a tensor of dtype torch.bool")),
    ("class-weight-list-of-str", multiclass_both(4, class_weight=["1", "1", "1", "1"]), TypeError, CLASS_WEIGHT_TYPE.format("a list holding '1' of type str")),
    ("class-weight-list-of-bool", multiclass_both(4, class_weight=[True, 1, 1, 1]), TypeError, CLASS_WEIGHT_TYPE.format("a list holding True of type bool")),
    ("num-labels-one", multilabel_both(1), ValueError, COUNT.format("num_labels", 1)),
    ("num-labels-float", multilabel_both(3.5), TypeError, "Expected `num_labels` to be an int >= 2, but got 3.5 of type float."),
    ("average-unknown", multilabel_both(3, average="weighted"), ValueError, "Expected `average` to be one of ('micro', 'macro', 'none'), but got 'weighted'."),
    ("average-none-object", multilabel_both(3, average=None), ValueError, "Expected `average` to be one of ('micro', 'macro', 'none'), but got None."),
    ("multilabel-normalization-softmax", multilabel_both(3, normalization="softmax"), ValueError, "Expected `normalization` to be one of (None, 'auto', 'sigmoid'), but got 'softmax'."),
    ("embedding-margin-nan", embedding_both(margin=float("nan")), ValueError, MARGIN_VALUE.format("nan")),
    ("reduction-unknown", embedding_both(reduction="none"), ValueError, "Expected `reduction` to be one of ('mean', 'sum'), but got 'none'."),
    ("embedding-validate-args-int", embedding_both(validate_args=0), TypeError, "Expected `validate_args` to be a bool, but got 0 of type int."),
    ("ranking-margin-nan", ranking_both(margin=float("nan")), ValueError, MARGIN_VALUE.format("nan")),
    ("ranking-margin-str", ranking_both(margin="0"), TypeError, MARGIN_TYPE.format("'0'", "str")),
    ("ranking-reduction-none", ranking_both(reduction="none"), ValueError, "Expected `reduction` to be one of ('mean', 'sum'), but got 'none'."),
    ("triplet-margin-inf", triplet_both(margin=float("inf")), ValueError, MARGIN_VALUE.format("inf")),
    ("triplet-p-zero", triplet_both(p=0), ValueError, P_VALUE.format("0")),
    ("triplet-p-negative", triplet_both(p=-1.0), ValueError, P_VALUE.format("-1.0")),
    ("triplet-p-nan", triplet_both(p=float("nan")), ValueError, P_VALUE.format("nan")),
    ("triplet-p-str", triplet_both(p="2"), TypeError, "Expected `p` to be a float, but got '2' of type str."),
    ("triplet-eps-negative", triplet_both(eps=-1e-6), ValueError, "Expected `eps` to be a finite float >= 0, but got -1e-06."),
    ("triplet-eps-inf", triplet_both(eps=float("inf")), ValueError, "Expected `eps` to be a finite float >= 0, but got inf."),
    ("triplet-eps-bool", triplet_both(eps=False), TypeError, "Expected `eps` to be a float, but got False of type bool."),
    ("triplet-swap-int", triplet_both(swap=1), TypeError, "Expected `swap` to be a bool, but got 1 of type int."),
    ("triplet-distance-str", triplet_both(distance_function="euclidean"), TypeError, "Expected `distance_function` to be None or a callable of two (B, D) tensors returning (B,) distances, but got 'euclidean' of type str."),
    ("cosine-margin-nan", cosine_both(margin=float("nan")), ValueError, MARGIN_VALUE.format("nan")),
    ("cosine-validate-args-none", cosine_both(validate_args=None), TypeError, "Expected `validate_args` to be a bool, but got None of type NoneType."),
    ("multilabel-margin-num-labels-one", multilabel_margin_both(1), ValueError, COUNT.format("num_labels", 1)),
    ("multilabel-margin-margin-inf", multilabel_margin_both(4, margin=float("-inf")), ValueError, MARGIN_VALUE.format("-inf")),
    ("multilabel-margin-target-format", multilabel_margin_both(4, target_format="one-hot"), ValueError, "Expected `target_format` to be one of ('auto', 'multi-hot', 'index'), but got 'one-hot'."),
    ("task-unknown", task_both("regression"), ValueError, "Expected `task` to be one of ('binary', 'multiclass', 'multilabel'), but got 'regression'."),
    ("task-multiclass-without-num-classes", task_both("multiclass"), ValueError, "Expected `num_classes` (an int >= 2) for task='multiclass', but got None."),
    ("task-multilabel-without-num-labels", task_both("multilabel"), ValueError, "Expected `num_labels` (an int >= 2) for task='multilabel', but got None."),
    ("task-multiclass-one-class", task_both("multiclass", 1), ValueError, COUNT.format("num_classes", 1)),
    ("task-binary-class-weight", task_both("binary", class_weight=[1.0, 1.0]), ValueError, "Expected `class_weight` only with task='multiclass' (one weight per class), but got it with task='binary'."),
    ("task-multilabel-class-weight", task_both("multilabel", num_labels=4, class_weight=[1.0, 1.0]), ValueError, "Expected `class_weight` only with task='multiclass' (one weight per class), but got it with task='multilabel'."),
    ("task-multiclass-class-weight-shape", task_both("multiclass", 4, class_weight=[1.0]), ValueError, CLASS_WEIGHT_SHAPE.format("(1,)")),
]
# fmt: on


@pytest.mark.parametrize("form", ["class", "functional"])
@pytest.mark.parametrize(
    ("both", "error", "message"), [row[1:] for row in BAD_ARGUMENTS], ids=[row[0] for row in BAD_ARGUMENTS]
)
def test_bad_constructor_arguments_name_the_argument(both, error, message, form):
    with pytest.raises(error) as info:
        both[0 if form == "class" else 1]()
    assert type(info.value) is error
    assert str(info.value) == message


def test_the_argument_table_covers_every_argument():
    assert len(BAD_ARGUMENTS) >= 30
    named = {row[3].split("`")[1] for row in BAD_ARGUMENTS}
    assert named == {
        "margin",
        "squared",
        "validate_args",
        "ignore_index",
        "normalization",
        "num_classes",
        "multiclass_mode",
        "num_labels",
        "average",
        "reduction",
        "task",
        "p",
        "eps",
        "swap",
        "distance_function",
        "target_format",
        "class_weight",
    }


# ------------------------------------------------------------------------------- ignore_index and the target dtype
def ref_binary(preds: torch.Tensor, target: torch.Tensor) -> float:
    """The plain binary hinge mean, {0, 1} labels, no weights."""
    signs = target.double() * 2 - 1
    return float((1 - signs * preds.double()).clamp_min(0).mean())


def test_an_ignore_index_that_wraps_in_the_target_dtype_is_refused_not_matched():
    """In int32, 2**32 compares equal to 0: without the check the zeros would be dropped as ignored."""
    target = t(1, 0, 0, dtype=torch.int32)
    with pytest.raises(ValueError) as info:
        F.binary_hinge_loss(P3, target, ignore_index=2**32)
    assert str(info.value) == IGNORE_FITS.format("torch.int32", "[-2147483648, 2147483647]", 2**32)
    metric = hm.BinaryHingeLoss(ignore_index=2**32)
    with pytest.raises(ValueError) as info:
        metric.update(P3, target)
    assert str(info.value) == IGNORE_FITS.format("torch.int32", "[-2147483648, 2147483647]", 2**32)
    assert metric.update_count == 0
    metric.update(P3, target.long())  # in int64 nothing equals 2**32: every element counts
    assert metric.compute().item() == pytest.approx(ref_binary(P3, target), rel=1e-12)


@pytest.mark.parametrize(("dtype", "fits", "refused"), [(torch.float16, 2048, 2049), (torch.bfloat16, -256, -257)])
def test_a_float_target_takes_only_an_ignore_index_it_holds_exactly(dtype, fits, refused):
    target = Y3.to(dtype)
    assert F.binary_hinge_loss(P3, target, ignore_index=fits).item() == pytest.approx(ref_binary(P3, Y3), rel=1e-12)
    digits = {torch.float16: 11, torch.bfloat16: 8}[dtype]
    with pytest.raises(ValueError) as info:
        F.binary_hinge_loss(P3, target, ignore_index=refused)
    assert str(info.value) == IGNORE_FITS.format(
        dtype, f"integers that {dtype} holds exactly (up to 2**{digits} in magnitude)", refused
    )


def test_the_int64_limits_themselves_are_accepted():
    for ignore_index in (2**63 - 1, -(2**63)):
        metric = hm.BinaryHingeLoss(ignore_index=ignore_index)
        metric.update(P3, Y3)
        assert metric.compute().item() == pytest.approx(ref_binary(P3, Y3), rel=1e-12)


# ------------------------------------------------------------------------------------------------- meta tensors
@pytest.mark.parametrize("name", list(SETUPS))
def test_validation_on_meta_tensors_is_refused_with_a_clear_error(name):
    setup = SETUPS[name]
    batch = {k: v.to(META) for k, v in setup.case.draw(torch.Generator().manual_seed(0), 4).items()}
    metric = setup.make().to(META)
    with pytest.raises(ValueError) as info:
        metric.update(**batch)
    assert str(info.value) == META_REFUSED
    assert metric.update_count == 0
    with pytest.raises(ValueError) as info:
        setup.functional(**batch)
    assert str(info.value) == META_REFUSED
    # without validation both run: shapes, dtypes and devices only
    unchecked = setup.make(validate_args=False).to(META)
    unchecked.update(**batch)
    assert unchecked.compute().device.type == META
    assert setup.functional(**batch, validate_args=False).device.type == META

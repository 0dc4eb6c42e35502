"""Hypothesis strategies for hingemetrics' inputs, kept in one module and shared by the property tests.

Every strategy draws a :class:`Problem`: one metric configuration (the keyword arguments of its class and
functional form) and one small stream of data for it, with the points where the stream is cut into batches.
Examples stay tiny (at most a few dozen elements) so that hundreds of them run in seconds.

Scores are float32 values in [-4, 4] (no subnormals) and weights are 0 or in [1/64, 4], so that the package's
float32 element arithmetic and the float64 references agree to a relative 1e-5. The ``*_beyond_margin`` strategies
draw quarter-integer scores and margins instead: every difference is then exact in float32, and a loss that is zero
on paper is exactly zero. With ``values=EXTREME`` the problem strategies draw any finite float32 score (subnormals
and the largest ones included), margins from 1e-40 to 1e39 and float32 weights from the smallest subnormal to the
largest finite value; :func:`integer_weights` and :func:`weight_exponents` make weights that a power of two scales
exactly.
"""

from __future__ import annotations

import itertools
from dataclasses import dataclass, replace
from typing import Any

import numpy as np
import torch
from hypothesis import strategies as st
from hypothesis.extra import numpy as hnp

MODES = ("crammer-singer", "one-vs-all", "weston-watkins")
AVERAGES = ("micro", "macro", "none")
REDUCTIONS = ("mean", "sum")

#: Binary label conventions: the values a target may hold, and the ``ignore_index`` values that make sense with them.
CONVENTIONS: dict[str, tuple[tuple[Any, ...], tuple[int | None, ...]]] = {
    "01": ((0, 1), (None, -1, -100, 0, 1)),
    "pm1": ((-1, 1), (None, 0, -100, -1)),
    "bool": ((False, True), (None, 0, 1)),
}
#: Label dtypes besides bool: whole-number floats are accepted as labels too.
LABEL_DTYPES = (np.int64, np.int32, np.float32)

Batch = dict[str, torch.Tensor]


@dataclass(frozen=True)
class Problem:
    """One metric configuration and one stream of data for it.

    ``family`` is ``"binary"``, ``"multiclass"``, ``"multilabel"`` or ``"embedding"``; ``kwargs`` are the keyword
    arguments that both the class and the functional form take (``num_classes``, ``num_labels``, ``margin``, ...).
    ``cuts`` are sorted positions along dimension 0 where the stream is split into batches (empty batches
    included).
    """

    family: str
    kwargs: dict[str, Any]
    preds: torch.Tensor
    target: torch.Tensor
    sample_weight: torch.Tensor | None = None
    cuts: tuple[int, ...] = ()

    def inputs(self) -> Batch:
        """The whole stream as one batch of keyword arguments for ``update`` or the functional form."""
        batch = {"preds": self.preds, "target": self.target}
        if self.sample_weight is not None:
            batch["sample_weight"] = self.sample_weight
        return batch

    def batches(self) -> list[Batch]:
        """The stream cut at ``cuts`` into consecutive batches."""
        edges = (0, *self.cuts, self.preds.shape[0])
        return [{k: v[a:b] for k, v in self.inputs().items()} for a, b in itertools.pairwise(edges)]

    def with_(self, **changes: Any) -> Problem:
        """A copy with some fields replaced."""
        return replace(self, **changes)


# ------------------------------------------------------------------------------------------------- building blocks
batch_sizes = st.integers(0, 6)
extra_dims = st.lists(st.integers(1, 2), max_size=2).map(tuple)
squared_flags = st.booleans()
margins = st.one_of(st.sampled_from([0.25, 0.5, 1.0, 2.0]), st.floats(0.05, 3.0))
dyadic_margins = st.sampled_from([0.25, 0.5, 1.0, 1.5, 2.0])
score_values = st.floats(-4.0, 4.0, width=32, allow_subnormal=False)
weight_values = st.one_of(st.just(0.0), st.floats(0.015625, 4.0, width=32))
quarters = st.integers(0, 8).map(lambda k: k / 4)  # 0, 0.25, ..., 2: exact in float32


@dataclass(frozen=True)
class Values:
    """The element strategies of a problem: its scores, weights and margin."""

    scores: st.SearchStrategy[float]
    weights: st.SearchStrategy[float]
    margins: st.SearchStrategy[float]


MODERATE = Values(score_values, weight_values, margins)
#: Any finite float32 score, margins over 79 decades, float32 weights from the smallest subnormal to the largest.
EXTREME = Values(
    st.one_of(score_values, st.floats(width=32, allow_nan=False, allow_infinity=False)),
    st.one_of(weight_values, st.floats(0.0, float(np.finfo(np.float32).max), width=32)),
    st.one_of(margins, st.floats(-40.0, 39.0).map(lambda u: 10.0**u)),
)


def score_arrays(shape: tuple[int, ...], elements: st.SearchStrategy[float] = score_values) -> st.SearchStrategy:
    """float32 scores of the given shape."""
    return hnp.arrays(np.float32, shape, elements=elements).map(torch.from_numpy)


def label_arrays(shape: tuple[int, ...], values: tuple[Any, ...], dtype: Any) -> st.SearchStrategy[torch.Tensor]:
    """Labels of the given shape drawn from ``values``, stored as ``dtype``."""
    return hnp.arrays(dtype, shape, elements=st.sampled_from(values)).map(torch.from_numpy)


@st.composite
def cut_points(draw: st.DrawFn, n: int) -> tuple[int, ...]:
    """Up to three sorted cut positions in [0, n]; repeats make empty batches."""
    return tuple(sorted(draw(st.lists(st.integers(0, n), max_size=3))))


@st.composite
def weights_for(
    draw: st.DrawFn,
    full_shape: tuple[int, ...],
    allowed: bool = True,
    elements: st.SearchStrategy[float] = weight_values,
) -> torch.Tensor | None:
    """No weights, one weight per element (``full_shape``), or one per sample (``(N,)``)."""
    kind = draw(st.sampled_from(["none", "full", "per-sample"])) if allowed else "none"
    if kind == "none":
        return None
    shape = full_shape if kind == "full" else full_shape[:1]
    return torch.from_numpy(draw(hnp.arrays(np.float32, shape, elements=elements)))


@st.composite
def integer_weights(draw: st.DrawFn, shape: tuple[int, ...], dtype: torch.dtype) -> torch.Tensor:
    """Whole-number weights in [0, 15] of ``dtype``: scaled by a power of two from :func:`weight_exponents`, each
    is still exact."""
    return torch.from_numpy(draw(hnp.arrays(np.int64, shape, elements=st.integers(0, 15)))).to(dtype)


def weight_exponents(dtype: torch.dtype) -> st.SearchStrategy[int]:
    """Exponents ``e`` for which ``k * 2**e`` is exact in ``dtype`` for every k in [0, 15].

    float32: from the smallest subnormal, 2**-149 (1.4e-45), up to 15 * 2**124 (3.2e38, next to the largest
    float32). float64: 2**-996 to 15 * 2**996, about 1e-300 to 1e301.
    """
    return st.integers(-149, 124) if dtype == torch.float32 else st.integers(-996, 996)


@st.composite
def binary_labels(
    draw: st.DrawFn, shape: tuple[int, ...], allow_ignore: bool = True, convention: str | None = None
) -> tuple[torch.Tensor, int | None]:
    """Labels in one convention ({0, 1}, {-1, 1} or bool), some of them ``ignore_index`` when one is drawn."""
    convention = convention or draw(st.sampled_from(sorted(CONVENTIONS)))
    values, ignores = CONVENTIONS[convention]
    ignore_index = draw(st.sampled_from(ignores)) if allow_ignore else None
    if convention == "bool":
        return draw(label_arrays(shape, values, np.bool_)), ignore_index
    pool = values if ignore_index is None or ignore_index in values else (*values, ignore_index)
    return draw(label_arrays(shape, pool, draw(st.sampled_from(LABEL_DTYPES)))), ignore_index


# ---------------------------------------------------------------------------------------------------- problems
@st.composite
def binary_problems(
    draw: st.DrawFn, allow_ignore: bool = True, weighted: bool = True, values: Values = MODERATE
) -> Problem:
    """Binary scores ``(N, ...)`` with labels in any convention, weights, ``ignore_index``, margin and squaring."""
    n = draw(batch_sizes)
    shape = (n, *draw(extra_dims))
    target, ignore_index = draw(binary_labels(shape, allow_ignore))
    kwargs = {
        "margin": draw(values.margins),
        "squared": draw(squared_flags),
        "ignore_index": ignore_index,
        "normalization": draw(st.sampled_from([None, "sigmoid"])),
    }
    preds, weight = draw(score_arrays(shape, values.scores)), draw(weights_for(shape, weighted, values.weights))
    return Problem("binary", kwargs, preds, target, weight, draw(cut_points(n)))


def _one_hot(index: np.ndarray, num_classes: int, dtype: Any) -> torch.Tensor:
    """``(N, ...)`` class indices as ``(N, C, ...)`` one-hot targets."""
    return torch.from_numpy(np.moveaxis(np.eye(num_classes, dtype=dtype)[index], -1, 1).copy())


@st.composite
def multiclass_problems(
    draw: st.DrawFn,
    mode: str,
    allow_ignore: bool = True,
    weighted: bool = True,
    one_hot: bool | None = None,
    values: Values = MODERATE,
) -> Problem:
    """Scores ``(N, C, ...)`` with index targets (some ``ignore_index``) or one-hot targets (int, float or bool)."""
    n, c = draw(batch_sizes), draw(st.integers(2, 4))
    extra = draw(extra_dims)
    one_hot = draw(st.booleans()) if one_hot is None else one_hot
    ignore_index = draw(st.sampled_from([None, -1, -100, 0])) if allow_ignore else None
    classes = tuple(range(c))
    if one_hot:
        index = draw(hnp.arrays(np.int64, (n, *extra), elements=st.sampled_from(classes)))
        target = _one_hot(index, c, draw(st.sampled_from((*LABEL_DTYPES, np.bool_))))
    else:
        pool = classes if ignore_index is None or ignore_index in classes else (*classes, ignore_index)
        target = draw(label_arrays((n, *extra), pool, draw(st.sampled_from(LABEL_DTYPES))))
    kwargs = {
        "num_classes": c,
        "multiclass_mode": mode,
        "margin": draw(values.margins),
        "squared": draw(squared_flags),
        "ignore_index": ignore_index,
        "normalization": draw(st.sampled_from([None, "softmax"])),
    }
    preds = draw(score_arrays((n, c, *extra), values.scores))
    weight = draw(weights_for((n, *extra), weighted, values.weights))
    return Problem("multiclass", kwargs, preds, target, weight, draw(cut_points(n)))


#: Any finite margin, as the binary and multiclass hinges take: 0 (the perceptron), negative, positive.
signed_margins = st.one_of(st.sampled_from([0.0, -0.5, -1.0, 0.5, 1.0]), st.floats(-3.0, 3.0))


@st.composite
def class_weights(draw: st.DrawFn, num_classes: int) -> tuple[float, ...] | None:
    """None, or one non-negative weight per class (zeros included)."""
    if draw(st.booleans()):
        return None
    return tuple(draw(st.lists(weight_values, min_size=num_classes, max_size=num_classes)))


@st.composite
def option_problems(draw: st.DrawFn, modes: tuple[str, ...] = (*MODES, "categorical")) -> Problem:
    """A multiclass problem with the newer options: any mode (``"categorical"`` too), a margin of any sign, and
    perhaps ``class_weight``."""
    p = draw(multiclass_problems(draw(st.sampled_from(modes))))
    kwargs = {
        **p.kwargs,
        "margin": draw(signed_margins),
        "class_weight": draw(class_weights(p.kwargs["num_classes"])),
    }
    return p.with_(kwargs=kwargs)


@st.composite
def multilabel_problems(
    draw: st.DrawFn, allow_ignore: bool = True, weighted: bool = True, values: Values = MODERATE
) -> Problem:
    """Scores and multi-hot targets ``(N, L, ...)`` in any binary convention, with every ``average``."""
    n, labels = draw(batch_sizes), draw(st.integers(2, 3))
    shape = (n, labels, *draw(extra_dims))
    target, ignore_index = draw(binary_labels(shape, allow_ignore))
    kwargs = {
        "num_labels": labels,
        "average": draw(st.sampled_from(AVERAGES)),
        "margin": draw(values.margins),
        "squared": draw(squared_flags),
        "ignore_index": ignore_index,
        "normalization": draw(st.sampled_from([None, "sigmoid"])),
    }
    preds, weight = draw(score_arrays(shape, values.scores)), draw(weights_for(shape, weighted, values.weights))
    return Problem("multilabel", kwargs, preds, target, weight, draw(cut_points(n)))


@st.composite
def embedding_problems(draw: st.DrawFn) -> Problem:
    """Inputs ``(N, ...)`` with +1/-1 targets (int or float), any margin, both reductions."""
    n = draw(batch_sizes)
    shape = (n, *draw(extra_dims))
    target = draw(label_arrays(shape, (-1, 1), draw(st.sampled_from((np.int64, np.float32)))))
    kwargs = {"margin": draw(margins), "reduction": draw(st.sampled_from(REDUCTIONS))}
    return Problem("embedding", kwargs, draw(score_arrays(shape)), target, None, draw(cut_points(n)))


# ------------------------------------------------------------------------------------------ beyond the margin
@st.composite
def _signed_beyond(draw: st.DrawFn, target: torch.Tensor, margin: float) -> torch.Tensor:
    """Scores ``y * (m + a)`` with ``a >= 0`` a quarter: every element is at or beyond the margin."""
    a = draw(hnp.arrays(np.float32, tuple(target.shape), elements=quarters))
    sign = np.where(target.numpy() == 1, 1.0, -1.0).astype(np.float32)
    return torch.from_numpy(sign * (np.float32(margin) + a))


@st.composite
def _positive_weights(draw: st.DrawFn, shape: tuple[int, ...]) -> torch.Tensor | None:
    """No weights, or positive ones shaped like the target."""
    if not draw(st.booleans()):
        return None
    return torch.from_numpy(draw(hnp.arrays(np.float32, shape, elements=st.floats(0.25, 4.0, width=32))))


@st.composite
def binary_beyond_margin(draw: st.DrawFn) -> Problem:
    """A non-empty binary stream whose every score is on its label's side, at least the margin away from 0."""
    n = draw(st.integers(1, 6))
    shape = (n, *draw(extra_dims))
    target, _ = draw(binary_labels(shape, allow_ignore=False))
    margin = draw(dyadic_margins)
    kwargs = {"margin": margin, "squared": draw(squared_flags)}
    preds = draw(_signed_beyond(target, margin))
    return Problem("binary", kwargs, preds, target, draw(_positive_weights(shape)), draw(cut_points(n)))


@st.composite
def multilabel_beyond_margin(draw: st.DrawFn) -> Problem:
    """As :func:`binary_beyond_margin`, for ``(N, L, ...)`` multi-hot targets."""
    n, labels = draw(st.integers(1, 6)), draw(st.integers(2, 3))
    shape = (n, labels, *draw(extra_dims))
    target, _ = draw(binary_labels(shape, allow_ignore=False))
    margin = draw(dyadic_margins)
    kwargs = {"num_labels": labels, "average": draw(st.sampled_from(AVERAGES)), "margin": margin}
    kwargs["squared"] = draw(squared_flags)
    preds = draw(_signed_beyond(target, margin))
    return Problem("multilabel", kwargs, preds, target, draw(_positive_weights(shape)), draw(cut_points(n)))


@st.composite
def multiclass_beyond_margin(draw: st.DrawFn, mode: str) -> Problem:
    """Scores where the true class wins by at least the margin (one-vs-all: true >= m, every other <= -m)."""
    n, c = draw(st.integers(1, 6)), draw(st.integers(2, 4))
    extra = draw(extra_dims)
    margin = draw(dyadic_margins)
    index = draw(hnp.arrays(np.int64, (n, *extra), elements=st.integers(0, c - 1)))
    lead = draw(hnp.arrays(np.float32, (n, *extra), elements=quarters))  # how far the true class is beyond
    rest = draw(hnp.arrays(np.float32, (n, c, *extra), elements=quarters))  # how far below the others are
    is_true = np.moveaxis(np.eye(c, dtype=bool)[index], -1, 1)
    if mode == "one-vs-all":
        scores = np.where(is_true, margin + np.expand_dims(lead, 1), -margin - rest)
    else:  # a common base, the others below it, the true class at least the margin above it
        base = draw(st.integers(-8, 8)) / 4
        scores = np.where(is_true, base + margin + np.expand_dims(lead, 1), base - rest)
    kwargs = {"num_classes": c, "multiclass_mode": mode, "margin": margin, "squared": draw(squared_flags)}
    target = torch.from_numpy(index) if draw(st.booleans()) else _one_hot(index, c, np.int64)
    preds = torch.from_numpy(scores.astype(np.float32))
    return Problem("multiclass", kwargs, preds, target, draw(_positive_weights((n, *extra))), draw(cut_points(n)))


@st.composite
def embedding_beyond_margin(draw: st.DrawFn) -> Problem:
    """Dissimilar pairs only (target -1), each input at least the margin: the hinge is zero for every one."""
    n = draw(st.integers(1, 6))
    shape = (n, *draw(extra_dims))
    margin = draw(dyadic_margins)
    preds = torch.from_numpy(margin + draw(hnp.arrays(np.float32, shape, elements=quarters)))
    kwargs = {"margin": margin, "reduction": draw(st.sampled_from(REDUCTIONS))}
    return Problem("embedding", kwargs, preds, -torch.ones(shape, dtype=torch.int64), None, draw(cut_points(n)))


# ------------------------------------------------------------------------------ the ranking and embedding family
@dataclass(frozen=True)
class FamilyProblem:
    """One configuration of a ranking or embedding loss and one stream of its data.

    ``family`` is ``"ranking"``, ``"triplet"``, ``"cosine"`` or ``"multilabel-margin"``; ``data`` holds every
    input of ``update`` by name for the whole stream (the float inputs, the target where there is one, the
    weights if drawn); ``cuts`` split it along dimension 0 into batches.
    """

    family: str
    kwargs: dict[str, Any]
    data: Batch
    cuts: tuple[int, ...] = ()
    #: For ``"multilabel-margin"``: the format the target was drawn in, ``"multi-hot"`` or ``"index"``.
    fmt: str | None = None

    def inputs(self) -> Batch:
        return dict(self.data)

    def size(self) -> int:
        return next(iter(self.data.values())).shape[0]

    def batches(self) -> list[Batch]:
        edges = (0, *self.cuts, self.size())
        return [{k: v[a:b] for k, v in self.data.items()} for a, b in itertools.pairwise(edges)]

    def with_data(self, **changes: torch.Tensor | None) -> FamilyProblem:
        data = {k: v for k, v in {**self.data, **changes}.items() if v is not None}
        return replace(self, data=data)


family_margins = st.one_of(st.sampled_from([0.0, 0.25, 1.0]), st.floats(-1.0, 2.0))


def _pm_one_labels(shape: tuple[int, ...]) -> st.SearchStrategy[torch.Tensor]:
    return st.sampled_from(LABEL_DTYPES).flatmap(lambda dtype: label_arrays(shape, (-1, 1), dtype))


@st.composite
def _row_weights(draw: st.DrawFn, n: int) -> dict[str, torch.Tensor]:
    if not draw(st.booleans()):
        return {}
    return {"sample_weight": torch.from_numpy(draw(hnp.arrays(np.float32, (n,), elements=weight_values)))}


@st.composite
def ranking_problems(draw: st.DrawFn) -> FamilyProblem:
    """Score pairs ``(N, ...)`` with +1/-1 targets, any finite margin, mean or sum, weights of either shape."""
    n = draw(batch_sizes)
    shape = (n, *draw(extra_dims))
    data = {
        "preds1": draw(score_arrays(shape)),
        "preds2": draw(score_arrays(shape)),
        "target": draw(_pm_one_labels(shape)),
    }
    weight = draw(weights_for(shape))
    if weight is not None:
        data["sample_weight"] = weight
    kwargs = {"margin": draw(family_margins), "reduction": draw(st.sampled_from(REDUCTIONS))}
    return FamilyProblem("ranking", kwargs, data, draw(cut_points(n)))


@st.composite
def triplet_problems(draw: st.DrawFn) -> FamilyProblem:
    """Triplets of ``(N, D)`` embeddings; p-norms of several orders, eps, swap, mean or sum, weights."""
    n, d = draw(batch_sizes), draw(st.integers(1, 4))
    data = {k: draw(score_arrays((n, d))) for k in ("anchor", "positive", "negative")}
    kwargs = {
        "margin": draw(family_margins),
        "p": draw(st.sampled_from([1.0, 2.0, 3.0, 0.5, float("inf")])),
        "eps": draw(st.sampled_from([0.0, 1e-6, 0.25])),
        "swap": draw(st.booleans()),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
    }
    return FamilyProblem("triplet", kwargs, {**data, **draw(_row_weights(n))}, draw(cut_points(n)))


@st.composite
def cosine_problems(draw: st.DrawFn) -> FamilyProblem:
    """Pairs of ``(N, D)`` embeddings (zero rows included) with +1/-1 targets, margins in [-1, 1], weights."""
    n, d = draw(batch_sizes), draw(st.integers(1, 4))
    elements = st.one_of(st.just(0.0), score_values)
    data = {
        "preds1": draw(score_arrays((n, d), elements)),
        "preds2": draw(score_arrays((n, d), elements)),
        "target": draw(_pm_one_labels((n,))),
    }
    kwargs = {"margin": draw(st.floats(-1.0, 1.0)), "reduction": draw(st.sampled_from(REDUCTIONS))}
    return FamilyProblem("cosine", kwargs, {**data, **draw(_row_weights(n))}, draw(cut_points(n)))


@st.composite
def multilabel_margin_problems(draw: st.DrawFn) -> FamilyProblem:
    """Label scores ``(N, L)`` with multi-hot targets (int or bool) or torch's index format, in either format
    setting that reads them right; any finite margin, mean or sum, weights."""
    n, labels = draw(batch_sizes), draw(st.integers(2, 5))
    preds = draw(score_arrays((n, labels)))
    multi_hot = draw(hnp.arrays(np.int64, (n, labels), elements=st.integers(0, 1)))
    fmt = draw(st.sampled_from(["multi-hot", "index"]))
    if fmt == "multi-hot":
        target = torch.from_numpy(multi_hot).bool() if draw(st.booleans()) else torch.from_numpy(multi_hot)
        setting = draw(st.sampled_from(["auto", "multi-hot"]))
    else:
        rows = []
        for row in multi_hot:
            true = [k for k in range(labels) if row[k]]
            rows.append(draw(st.permutations(true)) + [-1] * (labels - len(true)))
        target = torch.tensor(rows, dtype=torch.int64).reshape(n, labels)
        # "auto" reads an index batch right unless it holds no -1 and no index above 1: a batch of rows that list
        # every label, which with L >= 3 labels include the index 2; with L = 2 any batch cut from the stream may
        setting = "index" if labels == 2 else draw(st.sampled_from(["auto", "index"]))
    kwargs = {
        "num_labels": labels,
        "margin": draw(family_margins),
        "reduction": draw(st.sampled_from(REDUCTIONS)),
        "target_format": setting,
    }
    data = {"preds": preds, "target": target, **draw(_row_weights(n))}
    return FamilyProblem("multilabel-margin", kwargs, data, draw(cut_points(n)), fmt)

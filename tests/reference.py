"""Plain reference implementations, written for the tests with numpy and Python loops.

They share no code with hingemetrics: each formula is written out the long way, element by element, so that a
mistake in the package's vectorised arithmetic cannot hide behind the same mistake here.
"""

from __future__ import annotations

import math

import numpy as np


def _weights(n: int, weight: np.ndarray | None) -> np.ndarray:
    return np.ones(n) if weight is None else np.asarray(weight, dtype=np.float64).reshape(-1)


def _sigmoid(s: float) -> float:
    if s < 0:  # exp of a large positive number would overflow
        e = math.exp(s)
        return e / (1.0 + e)
    return 1.0 / (1.0 + math.exp(-s))


def _softmax(row) -> list[float]:
    top = max(row)
    exps = [math.exp(v - top) for v in row]
    return [e / sum(exps) for e in exps]


def binary_hinge(
    scores, target, *, margin=1.0, squared=False, weight=None, ignore_index=None, normalization=None
) -> float:
    """Weighted mean of max(0, m - y*s)^p with y = +1 for target 1, -1 for 0 or -1 (s squashed by "sigmoid")."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1)
    if normalization == "sigmoid":
        s = np.array([_sigmoid(v) for v in s])
    t = np.asarray(target).reshape(-1)
    w = _weights(s.size, weight)
    num = den = 0.0
    for si, ti, wi in zip(s, t, w):
        if ignore_index is not None and ti == ignore_index:
            continue
        y = 1.0 if ti == 1 else -1.0
        loss = max(0.0, margin - y * si)
        num += wi * (loss**2 if squared else loss)
        den += wi
    return num / den if den else float("nan")


def _rows(scores, target):
    """(N, C, ...) scores and (N, ...) targets as a list of (C,) rows and their labels."""
    s = np.asarray(scores, dtype=np.float64)
    s = np.moveaxis(s, 1, -1).reshape(-1, s.shape[1])
    return s, np.asarray(target).reshape(-1)


def multiclass_hinge(
    scores,
    target,
    *,
    mode="crammer-singer",
    margin=1.0,
    squared=False,
    weight=None,
    ignore_index=None,
    normalization=None,
    class_weight=None,
):
    """Weighted mean multiclass hinge; a (C,) array for one-vs-all. "softmax" squashes each sample's row.

    "categorical" is Keras' CategoricalHinge on the one-hot form of the label. ``class_weight`` multiplies a
    sample's loss by its class's weight (torch's MultiMarginLoss ``weight``) and leaves the denominator alone.
    """
    s, t = _rows(scores, target)
    if normalization == "softmax":
        s = np.array([_softmax(row) for row in s]).reshape(s.shape)
    n, c = s.shape
    w = _weights(n, weight)
    num = np.zeros(c) if mode == "one-vs-all" else 0.0
    den = 0.0
    for row, label, wi in zip(s, t, w):
        if ignore_index is not None and label == ignore_index:
            continue
        label = int(label)
        if mode == "crammer-singer":
            rival = max(row[j] for j in range(c) if j != label)
            loss = max(0.0, margin - row[label] + rival)
            loss = loss**2 if squared else loss
        elif mode == "categorical":
            one_hot = [1.0 if j == label else 0.0 for j in range(c)]
            pos = sum(y * v for y, v in zip(one_hot, row))
            neg = max((1.0 - y) * v for y, v in zip(one_hot, row))
            loss = max(0.0, neg - pos + margin)
            loss = loss**2 if squared else loss
        elif mode == "weston-watkins":
            terms = [max(0.0, margin - row[label] + row[j]) for j in range(c) if j != label]
            loss = sum(x**2 if squared else x for x in terms) / c
        else:
            loss = np.array([max(0.0, margin - (1.0 if j == label else -1.0) * row[j]) for j in range(c)])
            loss = loss**2 if squared else loss
        scale = 1.0 if class_weight is None else float(class_weight[label])
        num = num + wi * scale * loss
        den += wi
    return num / den if den else (np.full(c, np.nan) if mode == "one-vs-all" else float("nan"))


def multilabel_hinge(
    scores, target, *, average="macro", margin=1.0, squared=False, weight=None, ignore_index=None, normalization=None
):
    """A binary hinge for each label of (N, L, ...) inputs, averaged as asked ("sigmoid" squashes each score)."""
    s = np.asarray(scores, dtype=np.float64)
    if normalization == "sigmoid":
        s = np.vectorize(_sigmoid, otypes=[np.float64])(s) if s.size else s
    t = np.asarray(target)
    w = np.ones(s.shape) if weight is None else np.broadcast_to(np.asarray(weight, dtype=np.float64), s.shape)
    n_labels = s.shape[1]
    num, den = np.zeros(n_labels), np.zeros(n_labels)
    for index in np.ndindex(*s.shape):
        label = index[1]
        if ignore_index is not None and t[index] == ignore_index:
            continue
        y = 1.0 if t[index] == 1 else -1.0
        loss = max(0.0, margin - y * s[index])
        num[label] += w[index] * (loss**2 if squared else loss)
        den[label] += w[index]
    if average == "micro":
        return num.sum() / den.sum() if den.sum() else float("nan")
    with np.errstate(invalid="ignore", divide="ignore"):
        per_label = num / den
    if average == "none":
        return per_label
    seen = [per_label[j] for j in range(n_labels) if den[j] > 0]
    return sum(seen) / len(seen) if seen else float("nan")


def hinge_embedding(x, target, *, margin=1.0, reduction="mean") -> float:
    """x where y = 1, max(0, m - x) where y = -1; mean or sum over every element."""
    values = np.asarray(x, dtype=np.float64).reshape(-1)
    labels = np.asarray(target).reshape(-1)
    losses = [v if y == 1 else max(0.0, margin - v) for v, y in zip(values, labels)]
    if reduction == "sum":
        return float(sum(losses))
    return sum(losses) / len(losses) if losses else float("nan")

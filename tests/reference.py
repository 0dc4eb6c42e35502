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


def _reduce(losses, weight, reduction) -> float:
    """Weighted mean sum(w*l)/sum(w) (nan for nothing counted), or the weighted total for "sum"."""
    w = _weights(len(losses), weight)
    total = sum(wi * li for wi, li in zip(w, losses))
    if reduction == "sum":
        return float(total)
    den = float(sum(w))
    return total / den if den else float("nan")


def margin_ranking(x1, x2, target, *, margin=0.0, weight=None, reduction="mean") -> float:
    """max(0, -y*(x1 - x2) + m) per element."""
    a = np.asarray(x1, dtype=np.float64).reshape(-1)
    b = np.asarray(x2, dtype=np.float64).reshape(-1)
    y = np.asarray(target).reshape(-1)
    losses = [max(0.0, -float(yi) * (ai - bi) + margin) for ai, bi, yi in zip(a, b, y)]
    return _reduce(losses, weight, reduction)


def p_norm_distance(x, y, p=2.0, eps=1e-6) -> float:
    """(sum_k |x_k - y_k + eps|^p)^(1/p); the largest |x_k - y_k + eps| for p = inf."""
    diffs = [abs(float(xk) - float(yk) + eps) for xk, yk in zip(x, y)]
    if math.isinf(p):
        return max(diffs)
    return sum(d**p for d in diffs) ** (1.0 / p)


def cosine_distance(x, y) -> float:
    """1 - cos(x, y), with plain norms."""
    dot = sum(float(a) * float(b) for a, b in zip(x, y))
    norms = math.sqrt(sum(float(a) ** 2 for a in x)) * math.sqrt(sum(float(b) ** 2 for b in y))
    return 1.0 - dot / norms


def triplet_margin(
    anchor, positive, negative, *, margin=1.0, p=2.0, eps=1e-6, swap=False, distance=None, weight=None, reduction="mean"
) -> float:
    """max(0, d(a, p) - d(a, n) + m) per row, d the p-norm distance (or ``distance``); swap: min(d(a,n), d(p,n))."""
    rows = [np.asarray(x, dtype=np.float64).reshape(-1, np.shape(x)[-1]) for x in (anchor, positive, negative)]

    def d(x, y):
        return p_norm_distance(x, y, p, eps) if distance is None else distance(x, y)

    losses = []
    for a, pos, neg in zip(*rows):
        to_negative = d(a, neg)
        if swap:
            to_negative = min(to_negative, d(pos, neg))
        losses.append(max(0.0, d(a, pos) - to_negative + margin))
    return _reduce(losses, weight, reduction)


def cosine_embedding(x1, x2, target, *, margin=0.0, weight=None, reduction="mean") -> float:
    """1 - cos for y = 1, max(0, cos - m) for y = -1, with torch's 1e-12 added to each squared norm."""
    a = np.asarray(x1, dtype=np.float64).reshape(-1, np.shape(x1)[-1])
    b = np.asarray(x2, dtype=np.float64).reshape(-1, np.shape(x2)[-1])
    losses = []
    for u, v, y in zip(a, b, np.asarray(target).reshape(-1)):
        dot = sum(float(s) * float(t) for s, t in zip(u, v))
        sq_u = sum(float(s) ** 2 for s in u) + 1e-12
        sq_v = sum(float(t) ** 2 for t in v) + 1e-12
        cos = dot / math.sqrt(sq_u * sq_v)
        losses.append(1.0 - cos if y == 1 else max(0.0, cos - margin))
    return _reduce(losses, weight, reduction)


def true_label_sets(target, fmt) -> list[set[int]]:
    """The true labels of each row: positions of the 1s (multi-hot), or the indices before the first -1 (index)."""
    rows = np.asarray(target).reshape(-1, np.shape(target)[-1])
    sets = []
    for row in rows:
        if fmt == "multi-hot":
            sets.append({k for k, v in enumerate(row) if v == 1})
            continue
        labels = set()
        for v in row:
            if v < 0:
                break
            labels.add(int(v))
        sets.append(labels)
    return sets


def multilabel_margin(scores, target, *, fmt, margin=1.0, weight=None, reduction="mean") -> float:
    """sum over true j and false i of max(0, m - (s_j - s_i)), divided by the number of labels."""
    s = np.asarray(scores, dtype=np.float64).reshape(-1, np.shape(scores)[-1])
    n_labels = s.shape[1]
    losses = []
    for row, true in zip(s, true_label_sets(target, fmt)):
        total = 0.0
        for j in true:
            for i in range(n_labels):
                if i not in true:
                    total += max(0.0, margin - (row[j] - row[i]))
        losses.append(total / n_labels)
    return _reduce(losses, weight, reduction)

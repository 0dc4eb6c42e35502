"""Multiclass hinge losses (Crammer-Singer, categorical, one-vs-all, Weston-Watkins): functional form and helpers."""

from __future__ import annotations

import math
from collections.abc import Callable, Sequence

import torch
from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._common import (
    STAT_DTYPE,
    Block,
    RowReduction,
    as_scores,
    column_sums,
    exp_of_nonpositive,
    hinge_compute,
    hinge_transform_,
    index_blocks,
    loss_dtype,
    outside_unit_interval,
    reduce_over_blocks,
    reduce_through,
    row_sums,
    samples_in,
    settle_auto,
    squash,
    sum_over_blocks,
    take,
    take_weight,
    weighted_sums,
)

__all__ = ["multiclass_hinge_loss"]


def _is_one_hot(preds: Tensor, target: Tensor) -> bool:
    """Targets with the scores' own shape ``(N, C, ...)`` are one-hot; ``(N, ...)`` are class indices."""
    return target.dim() == preds.dim()


def _class_target_shape(preds: Tensor, target: Tensor) -> torch.Size:
    """The shape of the targets as class indices: ``(N, ...)``, or ``()`` for one sample's ``(C,)`` scores."""
    if not _is_one_hot(preds, target):
        return target.shape
    return target.shape[:1] + target.shape[2:] if target.dim() > 1 else torch.Size([])


def _multiclass_hinge_check_tensors(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    num_classes: int,
    ignore_index: int | None,
    validate_args: bool,
) -> C.Extrema:
    """Cheap checks always; value checks (class range, one-hot rows, NaN, weights) only under ``validate_args``.

    Returns:
        The ``(min, max)`` of ``preds`` read by the value checks, or None without them (or for an empty batch):
        the update takes it as ``score_extrema``.
    """
    C.check_float_preds(preds)
    C.check_target_dtype(target)
    if preds.dim() < 1 or preds.shape[1 if preds.dim() > 1 else 0] != num_classes:
        raise ValueError(
            f"Expected `preds` to have shape (N, {num_classes}, ...) with the classes on dimension 1 "
            f"(`num_classes`={num_classes}), but got {tuple(preds.shape)}."
        )
    index_shape = preds.shape[:1] + preds.shape[2:] if preds.dim() > 1 else torch.Size([])
    if target.shape != index_shape and target.shape != preds.shape:
        raise ValueError(
            f"Expected `target` to have shape {tuple(index_shape)} (class indices) or {tuple(preds.shape)} "
            f"(one-hot) to match `preds` of shape {tuple(preds.shape)}, but got {tuple(target.shape)}."
        )
    if sample_weight is not None:
        C.check_weight_shape(sample_weight, _class_target_shape(preds, target))
    C.check_same_device(preds=preds, target=target, sample_weight=sample_weight)
    if not _is_one_hot(preds, target):  # a one-hot target never meets `ignore_index`
        C.check_ignore_index_fits(ignore_index, target)
    C.refuse_meta(validate_args, preds)
    if validate_args:
        explain = _check_one_hot_values if _is_one_hot(preds, target) else None
        return C.check_class_values(preds, target, sample_weight, num_classes, ignore_index, explain)
    return None


def _check_one_hot_values(target: Tensor) -> None:
    """Require 0/1 entries with exactly one 1 along the class dimension; the message shows the first bad row."""
    if target.numel() == 0:
        return
    C.check_integral("target", target)
    classes = target.to(torch.int64).movedim(min(1, target.dim() - 1), -1)
    rows = classes.reshape(-1, classes.shape[-1])
    bad = ((rows != 0) & (rows != 1)).any(1) | (rows.sum(1) != 1)
    if bool(bad.any()):
        raise ValueError(
            "Expected a one-hot `target` of shape (N, C, ...): 0/1 entries with exactly one 1 along dimension 1, "
            f"but found a row that is not one-hot: [{C._fmt_values(rows[bad][0].tolist())}]."
        )


def _multiclass_hinge_update(
    preds: Tensor,
    target: Tensor,
    *,
    num_classes: int,
    margin: float,
    squared: bool,
    multiclass_mode: str,
    ignore_index: int | None,
    normalization: str | None,
    sample_weight: Tensor | None,
    score_extrema: C.Extrema = None,
    class_weight: Tensor | None = None,
    per_sample: bool = False,
    reduction: RowReduction | None = None,
) -> tuple[Tensor, ...]:
    """Summed statistics of one batch: ``(sum of w * loss, sum of w)`` in float64.

    The loss sum is a scalar, or ``(C,)`` for one-vs-all; the weight total is a scalar. The samples (or, in a large
    ``(N, C, ...)`` sample, its positions) are reduced in chunks taken from the inputs as they lie in memory (see
    :func:`~hingemetrics.functional._common.index_blocks`), and nothing is read back to the host.
    ``score_extrema``, the ``(min, max)`` of all of ``preds`` as the value checks read it, settles ``"auto"`` on
    the host, unless ``ignore_index`` leaves some rows out of the decision. ``class_weight``, ``(C,)`` weights on
    the scores' device (any float dtype), multiplies each sample's loss by the weight of its class; it is not part
    of ``w``, so the weight total is the same with or without it. ``per_sample`` gives the per-sample
    statistics instead, from the same element losses: each with a leading ``(N,)`` dimension (one sample for
    ``(C,)`` scores), the whole batch taken in one piece; with a ``reduction``, the total it folds of them
    (:func:`~hingemetrics.functional._common.reduce_over_blocks`).
    """
    if ignore_index is None or _is_one_hot(preds, target):
        normalization = settle_auto(normalization, score_extrema, "softmax")
    if preds.dim() == 1:  # a single sample: (C,) scores and a 0-d target
        preds, target = preds.unsqueeze(0), target.unsqueeze(0)
        sample_weight = None if sample_weight is None else sample_weight.reshape(1)
    one_hot = _is_one_hot(preds, target)
    if one_hot and target.dtype == torch.bool:
        target = target.view(torch.uint8)  # the same bytes, as numbers: argmax takes no bool
    if one_hot:
        ignore_index = None  # ignore_index applies to class indices only
    index_shape = preds.shape[:1] + preds.shape[2:]
    blocks = index_blocks(index_shape, num_classes, preds.device)

    def labels_of(block: Block) -> Tensor:
        return take(target, block, True).argmax(1) if one_hot else take(target, block, False).long()

    outside = None
    if normalization == "auto":
        counted = None if ignore_index is None else _counted_rows(preds, labels_of, ignore_index)
        outside = outside_unit_interval(preds, blocks, counted)
    per_row = ignore_index is not None or sample_weight is not None
    # Float64 where float32 could overflow, underflow or lose the margin: squared losses, a margin beyond float32,
    # and the Crammer-Singer difference of two raw scores; the (B, C) chunk itself stays float32. Weights multiply
    # in float64 (weighted_sums), so a loss does not depend on whether it is weighted.
    rival_based = multiclass_mode in ("crammer-singer", "categorical")
    widen = squared or (rival_based and normalization is None)
    dtype = loss_dtype(preds.dtype, margin, widen)
    samples = preds.shape[0] if per_sample or reduction is not None else None  # a reduction reads rows

    def block_sums(block: Block) -> tuple[Tensor, Tensor | None]:
        column = labels_of(block)
        valid = None if ignore_index is None else column != ignore_index
        if valid is not None:
            column = torch.where(valid, column, 0)  # any in-range class will do: these rows get weight 0
        column = column.unsqueeze(1)
        scores = as_scores(take(preds, block, True))
        if rival_based:
            categorical = multiclass_mode == "categorical"
            loss = _crammer_singer(scores, column, margin, squared, normalization, outside, dtype, categorical)
        elif multiclass_mode == "one-vs-all":
            loss = _one_vs_all(squash(scores, normalization, outside, dim=1), column, margin, squared, dtype)
        else:
            loss = _weston_watkins(squash(scores, normalization, outside, dim=1), column, margin, squared)
        if class_weight is not None:
            loss = by_class_weight(loss, class_weight, column)
        if not per_row and samples is None:
            return column_sums(loss), None
        weight = None if sample_weight is None else take_weight(sample_weight, block, index_shape)
        return weighted_sums(loss, valid, weight, samples_in(block, samples))

    loss_shape = torch.Size((num_classes,) if multiclass_mode == "one-vs-all" else ())
    weight_shape = torch.Size(()) if per_row else None
    count = math.prod(index_shape)

    def states(loss_sum: Tensor, weight_sum: Tensor) -> tuple[Tensor, Tensor]:
        return (loss_sum / num_classes if multiclass_mode == "weston-watkins" else loss_sum), weight_sum

    if reduction is not None:  # the reduction sees the states' rows
        through = reduce_through(states, reduction)
        return reduce_over_blocks(block_sums, blocks, preds.shape[0], preds.device, loss_shape, weight_shape, through)
    return states(*sum_over_blocks(block_sums, blocks, count, preds.device, loss_shape, weight_shape, samples))


def _counted_rows(preds: Tensor, labels_of: Callable[[Block], Tensor], ignore_index: int) -> Callable[[Block], Tensor]:
    """``counted(block)``: the block's ``(B, C)`` scores, 0.5 in rows whose label is ``ignore_index`` (``"auto"``)."""

    def counted(block: Block) -> Tensor:
        keep = (labels_of(block) != ignore_index).unsqueeze(1)
        return torch.where(keep, take(preds, block, True), 0.5)

    return counted


def by_class_weight(loss: Tensor, class_weight: Tensor, column: Tensor) -> Tensor:
    """``(B,)`` or ``(B, C)`` losses times the weight of each row's class (``(B, 1)`` indices), in float64."""
    scale = class_weight.to(STAT_DTYPE).index_select(0, column.squeeze(1))
    return loss.to(STAT_DTYPE) * (scale if loss.dim() == 1 else scale.unsqueeze(1))


def true_and_rival(scores: Tensor, column: Tensor) -> tuple[Tensor, Tensor]:
    """``(s_y, max_{j != y} s_j)`` of ``(B, C)`` scores and ``(B, 1)`` class indices, both ``(B,)``."""
    true_score = scores.gather(1, column).squeeze(1)
    rival = scores.scatter(1, column, float("-inf")).amax(1)
    return true_score, rival


def _crammer_singer(
    scores: Tensor,
    column: Tensor,
    margin: float,
    squared: bool,
    normalization: str | None,
    outside: Tensor | None,
    dtype: torch.dtype,
    categorical: bool = False,
) -> Tensor:
    r"""``(B,)`` losses ``max(0, m - s_y + max_{j != y} s_j)^p`` of a chunk of ``(B, C)`` raw scores, in ``dtype``.

    With ``categorical`` (Keras' categorical hinge) the best rival is ``max(0, max_{j != y} s_j)``: the rivals' max
    also sees a 0 from the true class. Probabilities are never negative, so on normalized scores the two agree and
    only the raw scores take the extra ``max``.

    Softmax keeps the order of a row's scores, so only the two scores in the formula are normalized, and the
    ``(B, C)`` softmax is never formed. With :math:`d = s_y - r` (``r`` the best rival), :math:`t` the larger of
    the two and :math:`Z = \sum_j e^{s_j - t}`, the gap between the two probabilities is

    .. math::
        p_y - p_r = \frac{2\sigma(d) - 1}{\max(\sigma(d),\ 1 - \sigma(d))\, Z}

    (it is :math:`(1 - e^{-d}) / Z` for :math:`d \ge 0` and :math:`(e^{d} - 1) / Z` below), which needs no
    ``exp`` or ``log`` (see :func:`~hingemetrics.functional._common.exp_of_nonpositive`). The two scores are
    selected exactly in the scores' dtype; their difference ``d`` is taken in ``dtype`` (float64 for raw scores,
    whose difference float32 could overflow).
    """
    true_score, rival = true_and_rival(scores, column)
    raw_rival = rival.clamp_min(0) if categorical else rival
    if normalization is None:
        return hinge_transform_(margin - (true_score.to(dtype) - raw_rival.to(dtype)), squared)
    # the probabilities' gap lies in [-1, 1]: the scores' own dtype holds it, even where the raw gap overflows
    # (the logistic function of an infinite gap is 0 or 1, its exact limit)
    top = torch.maximum(true_score, rival)
    total = row_sums(exp_of_nonpositive(scores - top.unsqueeze(1)))
    odds = (true_score - rival).sigmoid()
    rest = 1 - odds
    gap = (odds - rest).div_(torch.maximum(odds, rest).mul_(total)).to(dtype)
    if normalization == "auto":
        assert outside is not None, "normalization='auto' needs the batch's decision"
        gap = torch.where(outside, gap, true_score.to(dtype) - raw_rival.to(dtype))
    return hinge_transform_(margin - gap, squared)


def _one_vs_all(scores: Tensor, column: Tensor, margin: float, squared: bool, dtype: torch.dtype) -> Tensor:
    """``(B, C)`` losses ``max(0, m - y_c s_c)^p`` of a chunk of normalized scores, ``y_c = +1`` at the class."""
    scores = scores.to(dtype)
    loss = hinge_transform_(margin + scores, squared)  # every class as a negative ...
    positive = hinge_transform_(margin - scores.gather(1, column), squared)
    return loss.scatter_(1, column, positive)  # ... then the true class as the positive (a fresh tensor: in place)


def _weston_watkins(scores: Tensor, column: Tensor, margin: float, squared: bool) -> Tensor:
    """``(B,)`` float64 row totals ``sum_{j != y} max(0, m - s_y + s_j)^p`` of a chunk of normalized scores.

    The sums are float64, so the result does not depend on the order of the classes. No per-row write zeroes the
    true class's term (slow for a handful of classes): every class is summed and the true class's own term taken
    off. Squared, the terms are float64 and the true class's term is computed by the same operations on the same
    numbers, so it is the very value that was added. Not squared, ``max(0, s_j - c) = max(s_j, c) - c`` with
    ``c = s_y - m`` is summed in float64 from the start, one pass fewer; the true class adds
    ``max(s_y, c) - c = max(m, 0)``: ``m`` for a margin >= 0, exactly 0 for a negative one (then ``c > s_y``).
    """
    true_score = scores.gather(1, column)
    if squared:
        scores, true_score = scores.to(STAT_DTYPE), true_score.to(STAT_DTYPE)
        gap = margin - true_score
        pairs = hinge_transform_(gap + scores, squared)
        own = hinge_transform_(gap + true_score, squared).squeeze(1)
        return row_sums(pairs) - own
    floor = true_score.to(STAT_DTYPE) - margin
    raised = scores.to(STAT_DTYPE, copy=True).clamp_min_(floor)  # a copy: the scores may be the caller's
    return row_sums(raised) - (scores.shape[1] * floor + max(margin, 0.0)).squeeze(1)


def multiclass_hinge_loss(
    preds: Tensor,
    target: Tensor,
    num_classes: int,
    squared: bool = False,
    multiclass_mode: str = "crammer-singer",
    ignore_index: int | None = None,
    validate_args: bool = True,
    *,
    margin: float = 1.0,
    normalization: str | None = None,
    sample_weight: Tensor | None = None,
    class_weight: Tensor | Sequence[float] | None = None,
) -> Tensor:
    r"""Multiclass hinge loss on per-class decision scores.

    With :math:`s` the scores of a sample, :math:`y` its class, :math:`m` the margin and :math:`p = 2` when
    ``squared`` else 1:

    .. math::
        \text{crammer-singer:}\quad \ell = \max\big(0,\ m - s_y + \max_{j \ne y} s_j\big)^p

        \text{categorical:}\quad \ell = \max\big(0,\ m - s_y + \max(0, \max_{j \ne y} s_j)\big)^p

        \text{weston-watkins:}\quad \ell = \frac{1}{C} \sum_{j \ne y} \max(0,\ m - s_y + s_j)^p

        \text{one-vs-all:}\quad \ell_c = \max(0,\ m - y_c s_c)^p, \quad y_c = +1 \text{ if } c = y \text{ else } -1

    The result is :math:`\sum_i w_i \kappa_{y_i} \ell_i / \sum_i w_i`, a ``(C,)`` vector for one-vs-all, with
    :math:`w_i` the sample weights and :math:`\kappa` the class weights (1 without them). Crammer-Singer equals
    scikit-learn's multiclass ``hinge_loss`` and, with ``margin=0``, optax's ``multiclass_perceptron_loss``
    (:math:`\max_j s_j - s_y`); categorical equals Keras' ``CategoricalHinge`` (its ``max`` also sees the 0 that
    the one-hot target leaves at the true class, so it differs from Crammer-Singer where every rival is negative);
    Weston-Watkins equals ``torch.nn.MultiMarginLoss(p, margin, weight=class_weight)``.

    Args:
        preds: float tensor ``(N, C, ...)`` of scores.
        target: class indices ``(N, ...)``, or one-hot ``(N, C, ...)``. Extra dimensions are flattened into the
            batch.
        num_classes: the number of classes C.
        squared: square each loss.
        multiclass_mode: ``"crammer-singer"``, ``"one-vs-all"``, ``"weston-watkins"`` or ``"categorical"``.
        ignore_index: class-index value whose samples count in neither sum (index targets only): an int in the
            int64 range that the target's dtype holds exactly (else a ``ValueError``).
        validate_args: check the values, which reads data back to the host: no NaN or infinity in ``preds`` or
            ``sample_weight``, no negative weight, whole-number class indices in [0, C - 1] apart from
            ``ignore_index``, one-hot rows of 0s with exactly one 1. Types, shapes and devices are checked either
            way. Without it float indices are truncated, a one-hot row is read by its argmax, and an index out of
            range fails inside torch's indexing (``RuntimeError``, or a device-side assert on a GPU). On meta
            tensors, which hold no values, ``validate_args=True`` is refused with a ``ValueError``.
        margin: the margin :math:`m`, any finite real number: 0 gives the perceptron loss, a negative margin
            forgives a wrong class that scores up to :math:`|m|` above the true one. On softmax probabilities the
            score gaps lie in [-1, 1], so a margin <= -1 makes every loss 0 (and one >= 2 every loss positive).
        normalization: ``None`` for raw scores, ``"softmax"`` to always apply softmax over the classes, ``"auto"``
            to apply it to a batch when any counted value is outside [0, 1] (torchmetrics' behaviour). On
            probabilities (never negative) ``"categorical"`` and ``"crammer-singer"`` agree.
        sample_weight: non-negative weights ``(N, ...)`` (the index target's shape), or ``(N,)``.
            They multiply the losses in float64: only their ratios matter, at any scale their dtype holds.
        class_weight: ``(C,)`` non-negative finite weights, a tensor on the device of ``preds`` or a sequence of
            numbers: each sample's loss (its ``(C,)`` losses for one-vs-all) is multiplied by the weight of its
            class, as ``torch.nn.MultiMarginLoss(weight=...)`` does. The mean still divides by the number of
            samples (the sum of ``sample_weight``), not by the class weights. Their values are checked with
            ``validate_args`` (a sequence's always); shape and dtype always.

    Returns:
        A float64 scalar, or a ``(C,)`` float64 vector for one-vs-all; nan when nothing was counted.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import multiclass_hinge_loss
        >>> preds = torch.tensor([[0.25, 0.20, 0.55],
        ...                       [0.55, 0.05, 0.40],
        ...                       [0.10, 0.30, 0.60],
        ...                       [0.90, 0.05, 0.05]])
        >>> target = torch.tensor([0, 1, 2, 0])
        >>> multiclass_hinge_loss(preds, target, num_classes=3)
        tensor(0.9125, dtype=torch.float64)
        >>> multiclass_hinge_loss(preds, target, num_classes=3, squared=True)
        tensor(1.1131, dtype=torch.float64)
        >>> multiclass_hinge_loss(preds, target, num_classes=3, multiclass_mode="one-vs-all")
        tensor([0.8750, 1.1250, 1.1000], dtype=torch.float64)
        >>> scores = torch.tensor([[-0.5, -1.0, -2.0], [0.2, 1.0, -0.4]])
        >>> multiclass_hinge_loss(scores, torch.tensor([0, 0]), num_classes=3, margin=0)  # perceptron: (0 + 0.8) / 2
        tensor(0.4000, dtype=torch.float64)
        >>> multiclass_hinge_loss(scores, torch.tensor([0, 0]), 3, multiclass_mode="categorical")  # (1.5 + 1.8) / 2
        tensor(1.6500, dtype=torch.float64)
        >>> multiclass_hinge_loss(scores, torch.tensor([0, 1]), 3, multiclass_mode="weston-watkins",
        ...                       class_weight=[2.0, 1.0, 1.0])  # (2 * 0.5 / 3 + 1 * 0.2 / 3) / 2
        tensor(0.2000, dtype=torch.float64)
    """
    C.check_multiclass_args(num_classes, squared, multiclass_mode, ignore_index, validate_args, margin, normalization)
    weights = C.check_class_weight(class_weight, num_classes, read_values=validate_args)
    extrema = _multiclass_hinge_check_tensors(preds, target, sample_weight, num_classes, ignore_index, validate_args)
    if isinstance(class_weight, Tensor):
        C.check_same_device(preds=preds, class_weight=class_weight)
    elif weights is not None:
        weights = weights.to(preds.device)  # a sequence, from the host
    stats = _multiclass_hinge_update(
        preds,
        target,
        num_classes=num_classes,
        margin=margin,
        squared=squared,
        multiclass_mode=multiclass_mode,
        ignore_index=ignore_index,
        normalization=normalization,
        sample_weight=sample_weight,
        score_extrema=extrema,
        class_weight=weights,
    )
    return hinge_compute(*stats)

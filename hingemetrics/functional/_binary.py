"""Binary hinge loss: the functional form and the helpers that the class form shares."""

from __future__ import annotations

import math
from collections.abc import Callable

import torch
from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._common import (
    Block,
    RowReduction,
    as_scores,
    column_sums,
    hinge_compute,
    hinge_transform_,
    index_blocks,
    loss_dtype,
    outside_unit_interval,
    reduce_over_blocks,
    samples_in,
    settle_auto,
    squash,
    sum_over_blocks,
    take,
    take_weight,
    weighted_sums,
)

__all__ = ["binary_hinge_loss"]


def _binary_hinge_check_tensors(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    ignore_index: int | None,
    validate_args: bool,
) -> C.Extrema:
    """Cheap checks always; value checks (labels, NaN, weights) only under ``validate_args``.

    Returns:
        The ``(min, max)`` of ``preds`` read by the value checks, or None without them (or for an empty batch):
        the update takes it as ``score_extrema``.
    """
    C.check_float_preds(preds)
    C.check_target_dtype(target)
    C.check_same_shape(preds, target)
    if sample_weight is not None:
        C.check_weight_shape(sample_weight, target.shape)
    C.check_same_device(preds=preds, target=target, sample_weight=sample_weight)
    C.check_ignore_index_fits(ignore_index, target)
    C.refuse_meta(validate_args, preds)
    if validate_args:
        return C.check_binary_values(preds, target, sample_weight, ignore_index)
    return None


def _binary_hinge_update(
    preds: Tensor,
    target: Tensor,
    *,
    margin: float,
    squared: bool,
    ignore_index: int | None,
    normalization: str | None,
    sample_weight: Tensor | None,
    score_extrema: C.Extrema = None,
    per_sample: bool = False,
    reduction: RowReduction | None = None,
) -> tuple[Tensor, ...]:
    """Summed statistics of one batch: ``(sum of w * loss, sum of w)``, both float64 scalars.

    The target is read as positive where it is > 0 and negative elsewhere, so {0, 1}, {-1, 1} and bool targets
    share one code path; elements whose target equals ``ignore_index`` get weight 0. ``score_extrema``, the
    ``(min, max)`` of all of ``preds`` as the value checks read it, settles ``"auto"`` on the host; without it (or
    with ``ignore_index``, where only the counted scores decide) ``"auto"`` is decided on the device.
    ``per_sample`` gives the per-sample statistics instead: both ``(N,)`` (one sample for a 0-d score); with a
    ``reduction``, the total it folds of them (:func:`~hingemetrics.functional._common.reduce_over_blocks`).
    """
    if ignore_index is None:
        normalization = settle_auto(normalization, score_extrema, "sigmoid")
    if preds.dim() == 0:  # one score: a batch of one
        preds, target = preds.reshape(1), target.reshape(1)
        sample_weight = None if sample_weight is None else sample_weight.reshape(1)
    return binary_hinge_sums(
        preds,
        target,
        sample_weight,
        labels_on_dim1=False,
        margin=margin,
        squared=squared,
        ignore_index=ignore_index,
        normalization=normalization,
        per_sample=per_sample,
        reduction=reduction,
    )


def binary_hinge_sums(
    scores: Tensor,
    labels: Tensor,
    weight: Tensor | None,
    *,
    labels_on_dim1: bool,
    margin: float,
    squared: bool,
    ignore_index: int | None,
    normalization: str | None,
    per_sample: bool = False,
    reduction: RowReduction | None = None,
) -> tuple[Tensor, ...]:
    """Weighted binary hinge sums of ``(N, ...)`` scores, or per label of ``(N, L, ...)``, in chunks, no host reads.

    Args:
        scores: ``(N, ...)`` float scores, every element its own binary problem; with ``labels_on_dim1``,
            ``(N, L, ...)`` scores whose L labels are summed separately. Any layout: the chunks are taken from the
            tensors as they are (:func:`~hingemetrics.functional._common.take`), never from a full-size copy.
        labels: targets shaped like ``scores``: positive where > 0 (1, or True), negative elsewhere (0 or -1).
        weight: non-negative weights shaped like ``scores``, or ``(N,)`` for one weight per sample, or None.
        labels_on_dim1: whether dimension 1 holds labels that are summed separately.
        margin: the margin.
        squared: square each element loss.
        ignore_index: label value whose elements count in neither sum.
        normalization: ``None``, ``"sigmoid"`` or ``"auto"`` (decided once over the whole batch).
        per_sample: sum each sample (row along dimension 0) on its own, the whole batch in one piece: the
            per-sample statistics, from the same element losses.
        reduction: fold in each chunk's per-sample rows as they are made and return the fold's total
            (:data:`~hingemetrics.functional._common.RowReduction`), instead of the rows; implies ``per_sample``.

    Returns:
        ``(sum of w * loss, sum of w)`` in float64: scalars; with ``labels_on_dim1`` the loss sum is ``(L,)`` and
        the weight total is ``(L,)``, or a scalar when neither ``weight`` nor ``ignore_index`` is given. With
        ``per_sample`` each has a leading ``(N,)`` dimension.

    The element losses are float32 for float32 (or half) scores, unless they are squared or the margin is beyond
    float32's range, where they are float64 (:func:`~hingemetrics.functional._common.loss_dtype`); a weight
    multiplies a loss in float64. The same element has the same loss with or without weights.
    """
    device = scores.device
    columns = labels_on_dim1
    index_shape = scores.shape[:1] + scores.shape[2:] if columns else scores.shape
    blocks = index_blocks(index_shape, scores.shape[1] if columns else 1, device)
    if labels.dtype == torch.bool:
        labels = labels.view(torch.uint8)  # the same bytes, as numbers
    outside = None
    if normalization == "auto":
        counted = None if ignore_index is None else _counted_scores(scores, labels, columns, ignore_index)
        outside = outside_unit_interval(scores, blocks, counted)
    dtype = loss_dtype(scores.dtype, margin, widen=squared)
    margin_tensor = torch.full((), margin, dtype=dtype, device=device)
    per_element = ignore_index is not None or weight is not None
    samples = scores.shape[0] if per_sample or reduction is not None else None  # a reduction reads rows

    def block_sums(block: Block) -> tuple[Tensor, Tensor | None]:
        chunk_labels = take(labels, block, columns)
        chunk = squash(as_scores(take(scores, block, columns)).to(dtype), normalization, outside, dim=None)
        sign = _label_signs(chunk_labels, dtype)
        loss = hinge_transform_(torch.addcmul(margin_tensor, sign, chunk, value=-1), squared)
        if not per_element and samples is None:
            return column_sums(loss), None
        valid = None if ignore_index is None else chunk_labels != ignore_index
        chunk_weight = None if weight is None else take_weight(weight, block, index_shape, columns)
        return weighted_sums(loss, valid, chunk_weight, samples_in(block, samples))

    shape = scores.shape[1:2] if columns else torch.Size(())
    count = math.prod(index_shape)
    weight_shape = shape if per_element else None
    if reduction is not None:
        return reduce_over_blocks(block_sums, blocks, scores.shape[0], device, shape, weight_shape, reduction)
    return sum_over_blocks(block_sums, blocks, count, device, shape, weight_shape, samples)


def _counted_scores(scores: Tensor, labels: Tensor, columns: bool, ignore_index: int) -> Callable[[Block], Tensor]:
    """``counted(block)``: the block's scores, with 0.5 where the label is ``ignore_index`` (for ``"auto"``)."""

    def counted(block: Block) -> Tensor:
        return torch.where(take(labels, block, columns) != ignore_index, take(scores, block, columns), 0.5)

    return counted


def _label_signs(labels: Tensor, dtype: torch.dtype) -> Tensor:
    """``y`` in {-1, +1}: +1 where the label is > 0 (1, or True), -1 elsewhere (0, -1).

    Arithmetic, not a select on the label: a select branches on every element, and random labels defeat the branch
    predictor (several times slower on the CPU). For integer labels, > 0 is the same as > 0.5.
    """
    if labels.is_floating_point():
        return (labels > 0).to(dtype).mul_(2).sub_(1)
    return torch.sign(labels - 0.5).to(dtype)


def binary_hinge_loss(
    preds: Tensor,
    target: Tensor,
    squared: bool = False,
    ignore_index: int | None = None,
    validate_args: bool = True,
    *,
    margin: float = 1.0,
    normalization: str | None = None,
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Binary hinge loss on decision scores.

    .. math::
        \ell_i = \max(0,\ m - y_i s_i)^p, \qquad
        \text{loss} = \frac{\sum_i w_i \ell_i}{\sum_i w_i}

    with :math:`y_i = +1` where the target is 1 and :math:`-1` where it is 0 or -1, :math:`p = 2` when
    ``squared`` else 1, and :math:`w_i = 1` without ``sample_weight``. With ``margin=0`` this is the perceptron loss
    :math:`\max(0, -y_i s_i)`, optax's ``perceptron_loss``.

    Args:
        preds: float tensor ``(N, ...)`` of scores. With ``normalization=None`` (the default) these are raw
            decision scores, as in scikit-learn and Keras.
        target: tensor ``(N, ...)`` of labels in {0, 1} or {-1, 1}, or bool. Extra dimensions are flattened into
            the batch.
        squared: square each element loss.
        ignore_index: target value whose elements count in neither sum: an int in the int64 range that the
            target's dtype holds exactly (else a ``ValueError``: torch would compare a wrapped or rounded value).
        validate_args: check the values, which reads data back to the host: no NaN or infinity in ``preds`` or
            ``sample_weight``, no negative weight, and whole-number labels in {0, 1} or {-1, 1} (never 0 and -1
            together) apart from ``ignore_index``. Types, shapes and devices are checked either way. Without it a
            target counts as positive where it is > 0 and negative elsewhere, and NaN reaches the result. Meta
            tensors hold no values to check: ``validate_args=True`` on them is refused with a ``ValueError``.
        margin: the margin :math:`m`, any finite real number: 0 gives the perceptron loss, a negative margin
            forgives a wrong-side score up to :math:`|m|`. With ``normalization="sigmoid"`` the scores lie in
            (0, 1), so a margin <= -1 makes every loss 0.
        normalization: ``None`` for raw scores, ``"sigmoid"`` to always squash the scores, ``"auto"`` to squash a
            batch when any counted value is outside [0, 1] (torchmetrics' behaviour).
        sample_weight: non-negative weights shaped like ``target``, or ``(N,)`` for one weight per sample.
            They multiply the losses in float64: only their ratios matter, at any scale their dtype holds.

    Returns:
        A float64 scalar; nan when nothing was counted.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import binary_hinge_loss
        >>> preds = torch.tensor([0.5, 0.7, 0.1])
        >>> target = torch.tensor([0, 1, 1])
        >>> binary_hinge_loss(preds, target)
        tensor(0.9000, dtype=torch.float64)
        >>> binary_hinge_loss(torch.tensor([2.0, -0.5]), torch.tensor([1, -1]), squared=True)
        tensor(0.1250, dtype=torch.float64)
        >>> binary_hinge_loss(torch.tensor([2.0, -0.5, 0.3]), torch.tensor([1, 1, 0]), margin=0)  # perceptron
        tensor(0.2667, dtype=torch.float64)
    """
    C.check_binary_args(squared, ignore_index, validate_args, margin, normalization)
    extrema = _binary_hinge_check_tensors(preds, target, sample_weight, ignore_index, validate_args)
    stats = _binary_hinge_update(
        preds,
        target,
        margin=margin,
        squared=squared,
        ignore_index=ignore_index,
        normalization=normalization,
        sample_weight=sample_weight,
        score_extrema=extrema,
    )
    return hinge_compute(*stats)

"""Multilabel hinge loss: each label scored as a binary hinge on multi-hot targets."""

from __future__ import annotations

import torch
from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._binary import _binary_hinge_check_tensors, binary_hinge_sums
from hingemetrics.functional._common import RowReduction, reduce_through

__all__ = ["multilabel_hinge_loss"]

AVERAGES = ("micro", "macro", "none")


def check_multilabel_args(
    num_labels: object,
    squared: object,
    average: object,
    ignore_index: object,
    validate_args: object,
    margin: object,
    normalization: object,
) -> None:
    """Check the constructor arguments of the multilabel hinge loss."""
    C.check_count("num_labels", num_labels)
    C.check_choice("average", average, AVERAGES)
    C.check_binary_args(squared, ignore_index, validate_args, margin, normalization)


def _multilabel_hinge_check_tensors(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    num_labels: int,
    ignore_index: int | None,
    validate_args: bool,
) -> None:
    """The binary checks, plus the label dimension: ``preds`` and ``target`` are ``(N, L, ...)``."""
    C.check_tensor("preds", preds)
    if preds.dim() < 2 or preds.shape[1] != num_labels:
        raise ValueError(
            f"Expected `preds` to have shape (N, {num_labels}, ...) with the labels on dimension 1 "
            f"(`num_labels`={num_labels}), but got {tuple(preds.shape)}."
        )
    _binary_hinge_check_tensors(preds, target, sample_weight, ignore_index, validate_args)


def _multilabel_hinge_update(
    preds: Tensor,
    target: Tensor,
    *,
    num_labels: int,
    margin: float,
    squared: bool,
    ignore_index: int | None,
    normalization: str | None,
    sample_weight: Tensor | None,
    per_sample: bool = False,
    reduction: RowReduction | None = None,
) -> tuple[Tensor, ...]:
    """Per-label summed statistics of one batch: ``(sum of w * loss, sum of w)``, both ``(L,)`` float64.

    The labels are the columns of one binary hinge (:func:`binary_hinge_sums`), so ``"auto"`` decides over the
    whole batch and ``ignore_index`` and weights count per label. ``(N, L, ...)`` inputs are read one chunk of
    samples (or positions) at a time, in whatever layout they come. ``per_sample`` gives the per-sample
    statistics instead, both ``(N, L)``; with a ``reduction``, the total it folds of them
    (:func:`~hingemetrics.functional._common.reduce_over_blocks`).
    """
    sums = binary_hinge_sums(
        preds,
        target,
        sample_weight,
        labels_on_dim1=True,
        margin=margin,
        squared=squared,
        ignore_index=ignore_index,
        normalization=normalization,
        per_sample=per_sample,
        reduction=None if reduction is None else reduce_through(_label_states, reduction),
    )
    return sums if reduction is not None else _label_states(*sums)


def _label_states(loss_sum: Tensor, weight_sum: Tensor) -> tuple[Tensor, Tensor]:
    """The per-label states: a weight total shared by the labels (a scalar, or one per sample) spread over them."""
    shared = weight_sum.reshape(*weight_sum.shape, *(1,) * (loss_sum.dim() - weight_sum.dim()))
    return loss_sum, torch.broadcast_to(shared, loss_sum.shape)


def _multilabel_hinge_compute(loss_sum: Tensor, weight_sum: Tensor, average: str) -> Tensor:
    """Reduce per-label sums: pooled (``micro``), mean of per-label means (``macro``), or per label (``none``).

    ``macro`` averages over the labels that received any weight; it is nan when none did. The labels are the last
    dimension: sums with leading dimensions give one result per leading index.
    """
    if average == "micro":
        return loss_sum.sum(-1) / weight_sum.sum(-1)
    per_label = loss_sum / weight_sum
    if average == "none":
        return per_label
    seen = weight_sum > 0
    # divide by 1 where a label is unseen, not by 0: a 0 / 0 there would make the gradient (the normal interval's)
    # nan, although the macro value leaves that label out
    seen_mean = torch.where(seen, loss_sum, 0.0) / torch.where(seen, weight_sum, 1.0)
    return seen_mean.sum(-1) / seen.sum(-1)


def multilabel_hinge_loss(
    preds: Tensor,
    target: Tensor,
    num_labels: int,
    squared: bool = False,
    average: str = "macro",
    ignore_index: int | None = None,
    validate_args: bool = True,
    *,
    margin: float = 1.0,
    normalization: str | None = None,
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Multilabel hinge loss: a binary hinge for each label.

    For label :math:`l` with scores :math:`s_{il}` and targets :math:`y_{il} \in \{-1, +1\}`:

    .. math::
        \bar\ell_l = \frac{\sum_i w_{il} \max(0,\ m - y_{il} s_{il})^p}{\sum_i w_{il}}

    ``average="none"`` returns the ``(L,)`` vector :math:`\bar\ell`, ``"macro"`` its mean, and ``"micro"`` pools
    every element into one weighted mean.

    Args:
        preds: float tensor ``(N, L, ...)`` of scores.
        target: multi-hot tensor ``(N, L, ...)`` with labels in {0, 1} or {-1, 1}, or bool.
        num_labels: the number of labels L.
        squared: square each element loss.
        average: ``"micro"``, ``"macro"`` or ``"none"``.
        ignore_index: target value whose elements count in neither sum (per label), as in
            :func:`binary_hinge_loss`.
        validate_args: check the values, as in :func:`binary_hinge_loss` (reads data back to the host). Types,
            shapes and devices are checked either way.
        margin: the margin :math:`m`, any finite real number (0: the perceptron loss of each label).
        normalization: ``None`` (raw scores), ``"sigmoid"``, or ``"auto"`` (sigmoid on a batch when any counted
            value is outside [0, 1]).
        sample_weight: non-negative weights shaped like ``target``, or ``(N,)`` for one weight per sample.
            They multiply the losses in float64: only their ratios matter, at any scale their dtype holds.

    Returns:
        A float64 scalar, or an ``(L,)`` vector for ``average="none"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import multilabel_hinge_loss
        >>> preds = torch.tensor([[0.8, -1.2], [0.3, 0.4], [-0.5, 2.0]])
        >>> target = torch.tensor([[1, 0], [0, 1], [0, 1]])
        >>> multilabel_hinge_loss(preds, target, num_labels=2, average="none")
        tensor([0.6667, 0.2000], dtype=torch.float64)
        >>> multilabel_hinge_loss(preds, target, num_labels=2)
        tensor(0.4333, dtype=torch.float64)
    """
    check_multilabel_args(num_labels, squared, average, ignore_index, validate_args, margin, normalization)
    _multilabel_hinge_check_tensors(preds, target, sample_weight, num_labels, ignore_index, validate_args)
    stats = _multilabel_hinge_update(
        preds,
        target,
        num_labels=num_labels,
        margin=margin,
        squared=squared,
        ignore_index=ignore_index,
        normalization=normalization,
        sample_weight=sample_weight,
    )
    loss_sum, weight_sum = stats
    return _multilabel_hinge_compute(loss_sum, weight_sum, average)

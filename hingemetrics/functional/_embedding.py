"""Hinge-embedding loss: a streaming form of ``torch.nn.HingeEmbeddingLoss`` with checked targets."""

from __future__ import annotations

import torch
from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._common import (
    STAT_DTYPE,
    Block,
    as_scores,
    hinge_compute,
    index_blocks,
    loss_dtype,
    sum_over_blocks,
    take,
)

__all__ = ["hinge_embedding_loss"]

REDUCTIONS = ("mean", "sum")


def check_embedding_args(margin: object, reduction: object, validate_args: object) -> None:
    """Check the constructor arguments of the hinge-embedding loss."""
    C.check_margin(margin)
    C.check_choice("reduction", reduction, REDUCTIONS)
    C.check_bool("validate_args", validate_args)


def _check_pm_one_target(target: Tensor) -> None:
    if target.numel() == 0:
        return
    bad = (target != 1) & (target != -1)
    if bool(bad.any()):
        found = torch.unique(target[bad].to(torch.float64)).tolist()
        hint = " Map 0 labels to -1 first, e.g. `target * 2 - 1`." if 0 in found else ""
        raise ValueError(
            f"Expected `target` to hold only 1 (similar pair) and -1 (dissimilar pair), but found "
            f"{C._fmt_values(found)}.{hint}"
        )


def _hinge_embedding_check_tensors(preds: Tensor, target: Tensor, validate_args: bool) -> None:
    """Cheap checks always; the +1/-1 target rule and NaN only under ``validate_args``."""
    C.check_float_preds(preds)
    C.check_target_dtype(target)
    C.check_same_shape(preds, target)
    C.check_same_device(preds=preds, target=target)
    C.refuse_meta(validate_args, preds)
    if validate_args:
        _check_embedding_values(preds, target)


def _check_embedding_values(preds: Tensor, target: Tensor) -> None:
    """Require finite inputs and +1/-1 targets, from the extrema of both, read in one transfer."""
    kept_range, fraction_range = C.label_ranges(target, None, 0)
    scores, kept, fraction = C.read_extrema(C.value_range(preds), kept_range, fraction_range)
    if not C.finite(scores):
        C.raise_not_finite("preds", preds)
    check_pm_one_extrema(target, kept, fraction)


def check_pm_one_extrema(target: Tensor, kept: C.Extrema, fraction: C.Extrema) -> None:
    """Require +1/-1 targets, given the extrema of the target and of its fractional parts already read.

    Targets that reach down to 0 or below also have their zeros counted. Only a failing target is looked at
    element by element, to name the offending values.
    """
    ok = C.within(kept, -1, 1) and C.within(fraction, 0, 0)
    if ok and kept is not None and kept[0] <= 0:
        ok = int(torch.count_nonzero(target)) == target.numel()  # no 0 between the -1s and 1s
    if not ok:
        _check_pm_one_target(target)


def _hinge_embedding_update(preds: Tensor, target: Tensor, *, margin: float) -> tuple[Tensor, Tensor]:
    """Summed statistics of one batch: ``(sum of losses, number of elements)``, both float64 scalars.

    The inputs are read one chunk at a time, in whatever layout they come, so no temporary exceeds a chunk.
    """
    if preds.dim() == 0:
        preds, target = preds.reshape(1), target.reshape(1)
    dtype = loss_dtype(preds.dtype, margin, widen=False)

    def block_sums(block: Block) -> tuple[Tensor, None]:
        loss = embedding_losses(take(preds, block, False), take(target, block, False), margin, dtype)
        return loss.sum(dtype=STAT_DTYPE), None

    blocks = index_blocks(preds.shape, 1, preds.device)
    return sum_over_blocks(block_sums, blocks, preds.numel(), preds.device, torch.Size(()), None)


def embedding_losses(preds: Tensor, target: Tensor, margin: float, dtype: torch.dtype) -> Tensor:
    """Element losses ``x`` (target 1) or ``max(0, m - x)`` (otherwise), in ``dtype``, shaped like ``preds``."""
    x = as_scores(preds).to(dtype)
    return torch.where(target == 1, x, (margin - x).clamp_min_(0))


def _hinge_embedding_sample_rows(preds: Tensor, target: Tensor, *, margin: float) -> tuple[Tensor, Tensor]:
    """Per-sample statistics: ``(loss sum, element count)`` of each row along dimension 0, both ``(N,)`` float64.

    Plain (unchunked) arithmetic on the whole batch, with the kernel's element losses; a 0-d input is one row.
    """
    if preds.dim() == 0:
        preds, target = preds.reshape(1), target.reshape(1)
    loss = embedding_losses(preds, target, margin, loss_dtype(preds.dtype, margin, widen=False))
    per_row = loss.reshape(preds.shape[0], -1)
    count = torch.full((preds.shape[0],), per_row.shape[1], dtype=STAT_DTYPE, device=preds.device)
    return per_row.sum(1, dtype=STAT_DTYPE), count


def _hinge_embedding_compute(loss_sum: Tensor, count: Tensor, reduction: str) -> Tensor:
    """The mean over all elements, or the running total for ``reduction="sum"``."""
    return loss_sum if reduction == "sum" else hinge_compute(loss_sum, count)


def hinge_embedding_loss(
    preds: Tensor,
    target: Tensor,
    margin: float = 1.0,
    reduction: str = "mean",
    validate_args: bool = True,
) -> Tensor:
    r"""Hinge-embedding loss, as ``torch.nn.functional.hinge_embedding_loss`` but with checked targets.

    .. math::
        \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0,\ m - x_i) & y_i = -1 \end{cases}

    averaged over every element (``reduction="mean"``) or summed (``"sum"``). ``x`` is typically a distance
    between two embeddings, small for similar pairs (:math:`y = 1`) and at least :math:`m` for dissimilar ones.

    Args:
        preds: float tensor of any shape: the inputs :math:`x`.
        target: tensor of the same shape with values 1 and -1. torch accepts any value silently; here anything
            else is an error under ``validate_args``.
        margin: the margin :math:`m`, any finite real number (as in torch, which takes any margin).
        reduction: ``"mean"`` or ``"sum"``.
        validate_args: check the values, which reads data back to the host: no NaN or infinity in ``preds``,
            targets 1 or -1 only. Types, shapes and devices are checked either way. Without it a target counts as
            a similar pair where it equals 1 and as a dissimilar one elsewhere. On meta tensors, which hold no
            values, ``validate_args=True`` is refused with a ``ValueError``.

    Returns:
        A float64 scalar; nan for an empty input with ``"mean"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import hinge_embedding_loss
        >>> x = torch.tensor([0.2, 1.5, 0.4, 0.9])
        >>> y = torch.tensor([1, -1, -1, 1])
        >>> hinge_embedding_loss(x, y)
        tensor(0.4250, dtype=torch.float64)
    """
    check_embedding_args(margin, reduction, validate_args)
    _hinge_embedding_check_tensors(preds, target, validate_args)
    return _hinge_embedding_compute(*_hinge_embedding_update(preds, target, margin=margin), reduction)

"""``hinge_loss(task=...)``: one entry point that dispatches on the task."""

from __future__ import annotations

from collections.abc import Sequence

from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._binary import binary_hinge_loss
from hingemetrics.functional._multiclass import multiclass_hinge_loss
from hingemetrics.functional._multilabel import multilabel_hinge_loss

__all__ = ["hinge_loss"]


def hinge_loss(
    preds: Tensor,
    target: Tensor,
    task: str,
    num_classes: int | None = None,
    squared: bool = False,
    multiclass_mode: str = "crammer-singer",
    ignore_index: int | None = None,
    validate_args: bool = True,
    *,
    margin: float = 1.0,
    normalization: str | None = None,
    sample_weight: Tensor | None = None,
    num_labels: int | None = None,
    average: str = "macro",
    class_weight: Tensor | Sequence[float] | None = None,
) -> Tensor:
    r"""Hinge loss for the given ``task``: ``"binary"``, ``"multiclass"`` or ``"multilabel"``.

    Calls :func:`binary_hinge_loss`, :func:`multiclass_hinge_loss` or :func:`multilabel_hinge_loss` with the same
    arguments; see those for the formulas and shapes. ``num_classes`` is required for ``"multiclass"``,
    ``num_labels`` (and optionally ``average``) for ``"multilabel"``; ``class_weight`` is for ``"multiclass"`` only.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import hinge_loss
        >>> hinge_loss(torch.tensor([0.5, 0.7, 0.1]), torch.tensor([0, 1, 1]), task="binary")
        tensor(0.9000, dtype=torch.float64)
    """
    C.check_choice("task", task, C.TASKS)
    C.check_class_weight_task(class_weight, task)
    if task == "binary":
        return binary_hinge_loss(
            preds,
            target,
            squared,
            ignore_index,
            validate_args,
            margin=margin,
            normalization=normalization,
            sample_weight=sample_weight,
        )
    if task == "multilabel":
        if num_labels is None:
            raise ValueError("Expected `num_labels` (an int >= 2) for task='multilabel', but got None.")
        return multilabel_hinge_loss(
            preds,
            target,
            num_labels,
            squared,
            average,
            ignore_index,
            validate_args,
            margin=margin,
            normalization=normalization,
            sample_weight=sample_weight,
        )
    if num_classes is None:
        raise ValueError("Expected `num_classes` (an int >= 2) for task='multiclass', but got None.")
    return multiclass_hinge_loss(
        preds,
        target,
        num_classes,
        squared,
        multiclass_mode,
        ignore_index,
        validate_args,
        margin=margin,
        normalization=normalization,
        sample_weight=sample_weight,
        class_weight=class_weight,
    )

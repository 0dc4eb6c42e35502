"""Stateful hinge-embedding loss: ``torch.nn.HingeEmbeddingLoss`` over a whole stream of batches."""

from typing import Any

from torch import Tensor

from hingemetrics._base import SumStateMetric
from hingemetrics.functional._embedding import (
    _hinge_embedding_check_tensors,
    _hinge_embedding_compute,
    _hinge_embedding_sample_rows,
    _hinge_embedding_update,
    check_embedding_args,
)

__all__ = ["HingeEmbeddingLoss"]


class HingeEmbeddingLoss(SumStateMetric):
    r"""Hinge-embedding loss accumulated over batches.

    .. math::
        \ell_i = \begin{cases} x_i & y_i = 1 \\ \max(0,\ m - x_i) & y_i = -1 \end{cases}

    ``update(preds, target)`` takes float inputs of any shape and targets of the same shape in {1, -1}. Over any
    number of batches, ``compute()`` equals ``torch.nn.HingeEmbeddingLoss(margin, reduction)`` on the concatenated
    data: the mean over all elements, or the running total for ``reduction="sum"``. The state is the float64 loss
    sum and element count. Unlike torch, targets other than 1 and -1 are an error under ``validate_args``.

    Example:
        >>> import torch
        >>> from hingemetrics import HingeEmbeddingLoss
        >>> metric = HingeEmbeddingLoss(margin=1.0)
        >>> metric.update(torch.tensor([0.2, 1.5]), torch.tensor([1, -1]))
        >>> metric.update(torch.tensor([0.4, 0.9]), torch.tensor([-1, 1]))
        >>> metric.compute()
        tensor(0.4250, dtype=torch.float64)
    """

    plot_lower_bound = None  # an input x with y = 1 may be negative, so the loss may be too
    _compute_args = ("reduction",)

    loss_sum: Tensor
    count: Tensor

    def __init__(
        self,
        margin: float = 1.0,
        reduction: str = "mean",
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_embedding_args(margin, reduction, validate_args)
        self.margin = margin
        self.reduction = reduction
        self.validate_args = validate_args
        self._add_sum_state("loss_sum")
        self._add_sum_state("count")
        self._add_config_key(margin=float(margin))

    def update(self, preds: Tensor, target: Tensor) -> None:  # type: ignore[override]
        """Add a batch of inputs ``preds`` and +1/-1 targets of the same shape."""
        self._accumulate(preds, target)

    def _batch_statistics(self, preds: Tensor, target: Tensor) -> tuple[Tensor, ...]:
        _hinge_embedding_check_tensors(preds, target, self.validate_args)
        return _hinge_embedding_update(preds, target, margin=self.margin)

    def _sample_statistics(self, preds: Tensor, target: Tensor) -> tuple[Tensor, ...]:
        _hinge_embedding_check_tensors(preds, target, self.validate_args)
        return _hinge_embedding_sample_rows(preds, target, margin=self.margin)

    def _compute_from(self, loss_sum: Tensor, count: Tensor) -> Tensor:
        return _hinge_embedding_compute(loss_sum, count, self.reduction)

    def compute(self) -> Tensor:
        """The mean (or total, for ``reduction="sum"``) hinge-embedding loss since the last reset."""
        return self._compute_from(self.loss_sum, self.count)

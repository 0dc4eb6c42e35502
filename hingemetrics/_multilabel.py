"""Stateful multilabel hinge metric."""

from typing import Any

from torch import Tensor

from hingemetrics._base import WeightedSumStateMetric
from hingemetrics.functional._common import RowReduction
from hingemetrics.functional._multilabel import (
    _multilabel_hinge_check_tensors,
    _multilabel_hinge_compute,
    _multilabel_hinge_update,
    check_multilabel_args,
)

__all__ = ["MultilabelHingeLoss"]


class MultilabelHingeLoss(WeightedSumStateMetric):
    r"""Multilabel hinge loss, a binary hinge per label, accumulated over batches.

    .. math::
        \bar\ell_l = \frac{\sum_i w_{il} \max(0,\ m - y_{il} s_{il})^p}{\sum_i w_{il}}

    ``update(preds, target, sample_weight=None)`` takes float scores ``(N, L, ...)``, multi-hot targets
    ``(N, L, ...)`` in {0, 1} or {-1, 1} (or bool), and optional weights shaped like ``target`` or ``(N,)``.
    The state is per label (weighted loss sum and weight total, both ``(L,)`` float64), so ``ignore_index`` and
    weights count per label. ``compute()`` gives the ``(L,)`` vector for ``average="none"``, its mean over the
    labels that received weight for ``"macro"``, or the pooled weighted mean for ``"micro"``. See
    :func:`hingemetrics.functional.multilabel_hinge_loss` for every argument.

    Example:
        >>> import torch
        >>> from hingemetrics import MultilabelHingeLoss
        >>> metric = MultilabelHingeLoss(num_labels=2, average="none")
        >>> metric.update(torch.tensor([[0.8, -1.2], [0.3, 0.4]]), torch.tensor([[1, 0], [0, 1]]))
        >>> metric.update(torch.tensor([[-0.5, 2.0]]), torch.tensor([[0, 1]]))
        >>> metric.compute()
        tensor([0.6667, 0.2000], dtype=torch.float64)
    """

    _compute_args = ("average",)

    loss_sum: Tensor
    weight_sum: Tensor

    def __init__(
        self,
        num_labels: int,
        squared: bool = False,
        average: str = "macro",
        ignore_index: int | None = None,
        validate_args: bool = True,
        *,
        margin: float = 1.0,
        normalization: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        check_multilabel_args(num_labels, squared, average, ignore_index, validate_args, margin, normalization)
        self.num_labels = num_labels
        self.squared = squared
        self.average = average
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.margin = margin
        self.normalization = normalization
        self._add_sum_state("loss_sum", (num_labels,))
        self._add_sum_state("weight_sum", (num_labels,))
        self._add_config_key(
            num_labels=num_labels,
            margin=float(margin),
            squared=squared,
            ignore_index=ignore_index,
            normalization=normalization,
        )

    def _weighted_statistics(
        self,
        preds: Tensor,
        target: Tensor,
        sample_weight: Tensor | None,
        per_sample: bool,
        reduction: RowReduction | None = None,
    ) -> tuple[Tensor, ...]:
        _multilabel_hinge_check_tensors(
            preds, target, sample_weight, self.num_labels, self.ignore_index, self.validate_args
        )
        return _multilabel_hinge_update(
            preds,
            target,
            num_labels=self.num_labels,
            margin=self.margin,
            squared=self.squared,
            ignore_index=self.ignore_index,
            normalization=self.normalization,
            sample_weight=sample_weight,
            per_sample=per_sample,
            reduction=reduction,
        )

    def _compute_from(self, loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
        return _multilabel_hinge_compute(loss_sum, weight_sum, self.average)

    def compute(self) -> Tensor:
        """The averaged hinge loss over everything seen since the last reset."""
        return self._compute_from(self.loss_sum, self.weight_sum)

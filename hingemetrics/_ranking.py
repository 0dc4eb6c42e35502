"""Stateful ranking and embedding losses: the torch.nn margin losses over a whole stream of batches.

Every class keeps two float64 sums, the weighted loss total and the weight total (the number of losses without
weights), and reports their ratio (``reduction="mean"``) or the loss total (``"sum"``). The arithmetic lives in
:mod:`hingemetrics.functional._ranking`, shared with the functional forms.
"""

from collections.abc import Callable
from typing import Any

from torch import Tensor

from hingemetrics._base import SumStateMetric
from hingemetrics.functional import _ranking as R

__all__ = ["CosineEmbeddingLoss", "MarginRankingLoss", "MultilabelMarginLoss", "TripletMarginLoss"]


class _MeanOrSumLoss(SumStateMetric):
    """The states and the compute shared by the family: ``loss_sum`` and ``weight_sum``, mean or sum.

    Subclasses give ``_plan(*update_args)``, which checks a batch and returns its :class:`~R.Plan`; the batch
    statistics and the per-sample statistics are its two reductions.
    """

    plot_lower_bound = None  # a negative margin can make every loss 0, any other value is >= 0 but unbounded above
    _compute_args = ("reduction",)

    loss_sum: Tensor
    weight_sum: Tensor

    def __init__(self, reduction: str, validate_args: bool, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.reduction = reduction
        self.validate_args = validate_args
        self._add_sum_state("loss_sum")
        self._add_sum_state("weight_sum")

    def _plan(self, *args: Any, **kwargs: Any) -> R.Plan:
        raise NotImplementedError

    def _batch_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        """``(sum of w * loss, sum of w)`` of a batch: the arguments of ``update``, checked as it checks them."""
        return R.summed(self._plan(*args, **kwargs))

    def _sample_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        """The statistics of ``_batch_statistics``, one ``(N,)`` float64 entry per sample (row), not summed."""
        return R.per_sample(self._plan(*args, **kwargs))

    def _compute_from(self, loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
        """The mean (or sum) from states of any leading shape: ``(*lead,)`` from ``(*lead,)`` sums."""
        return R.mean_or_sum(loss_sum, weight_sum, self.reduction)

    def compute(self) -> Tensor:
        """The weighted mean (or the weighted total, for ``reduction="sum"``) since the last reset."""
        return self._compute_from(self.loss_sum, self.weight_sum)


class _PairLoss(_MeanOrSumLoss):
    """A loss of pairs ``(preds1, preds2)`` with +1/-1 targets and a margin: margin ranking, cosine embedding.

    Subclasses name their tensor checks and their plan (``_check_tensors``, ``_make_plan``).
    """

    _check_tensors: Callable[..., None]
    _make_plan: Callable[..., R.Plan]

    def __init__(self, margin: float = 0.0, reduction: str = "mean", validate_args: bool = True, **kwargs: Any) -> None:
        R.check_pair_args(margin, reduction, validate_args)
        super().__init__(reduction, validate_args, **kwargs)
        self.margin = margin
        self._add_config_key(margin=float(margin))

    def update(  # type: ignore[override]
        self, preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None = None
    ) -> None:
        """Add a batch of pairs, their +1/-1 targets and optional weights (see the class docstring for shapes)."""
        self._accumulate(preds1, preds2, target, sample_weight)

    def _plan(self, preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> R.Plan:
        type(self)._check_tensors(preds1, preds2, target, sample_weight, self.validate_args)
        return type(self)._make_plan(preds1, preds2, target, sample_weight, margin=self.margin)


class MarginRankingLoss(_PairLoss):
    r"""Margin ranking loss accumulated over batches: ``torch.nn.MarginRankingLoss`` with weights.

    .. math::
        \ell_i = \max(0,\ m - y_i (x_{1i} - x_{2i}))

    ``update(preds1, preds2, target, sample_weight=None)`` takes float scores of any one shape, targets of that
    shape in {1, -1} (1: ``preds1`` should rank higher) and optional non-negative weights shaped like ``target``
    or ``(N,)``. ``compute()`` is the weighted mean :math:`\sum_i w_i \ell_i / \sum_i w_i`, or the weighted total
    for ``reduction="sum"``; without weights it equals ``torch.nn.MarginRankingLoss(margin, reduction=...)`` on
    the concatenated batches. See :func:`hingemetrics.functional.margin_ranking_loss` for every argument.

    Example:
        >>> import torch
        >>> from hingemetrics import MarginRankingLoss
        >>> metric = MarginRankingLoss(margin=0.5)
        >>> metric.update(torch.tensor([0.5, 2.0]), torch.tensor([1.0, 0.5]), torch.tensor([1, 1]))
        >>> metric.update(torch.tensor([-1.0]), torch.tensor([0.0]), torch.tensor([-1]))
        >>> metric.compute()
        tensor(0.3333, dtype=torch.float64)
    """

    _check_tensors = staticmethod(R._ranking_check_tensors)
    _make_plan = staticmethod(R._ranking_plan)


class TripletMarginLoss(_MeanOrSumLoss):
    r"""Triplet margin loss accumulated over batches: ``torch.nn.TripletMarginLoss`` with weights.

    .. math::
        \ell_i = \max(0,\ d(a_i, p_i) - d(a_i, n_i) + m), \qquad d(x, y) = \lVert x - y + \epsilon \rVert_p

    ``update(anchor, positive, negative, sample_weight=None)`` takes float embeddings of one shape, ``(N, D)`` or
    ``(D,)``, and optional non-negative ``(N,)`` weights. ``swap=True`` takes the smaller of :math:`d(a, n)` and
    :math:`d(p, n)` as the negative distance. A ``distance_function`` replaces :math:`d` (as in
    ``torch.nn.TripletMarginWithDistanceLoss``; ``p`` and ``eps`` are then unused); it is called once per chunk
    of rows, on ``(B, D)`` tensors, and must return ``(B,)`` distances. ``compute()`` is the weighted mean
    :math:`\sum_i w_i \ell_i / \sum_i w_i`, or the weighted total for ``reduction="sum"``. See
    :func:`hingemetrics.functional.triplet_margin_loss` for every argument.

    Example:
        >>> import torch
        >>> from hingemetrics import TripletMarginLoss
        >>> metric = TripletMarginLoss(margin=1.0, eps=0.0)
        >>> metric.update(torch.tensor([[0.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([[0.0, 1.5]]))
        >>> metric.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.5]]), torch.tensor([[3.0, 1.0]]))
        >>> metric.compute()
        tensor(0.2500, dtype=torch.float64)
    """

    def __init__(
        self,
        margin: float = 1.0,
        p: float = 2.0,
        eps: float = 1e-6,
        swap: bool = False,
        reduction: str = "mean",
        distance_function: R.Distance | None = None,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        R.check_triplet_args(margin, p, eps, swap, reduction, distance_function, validate_args)
        super().__init__(reduction, validate_args, **kwargs)
        self.margin = margin
        self.p = p
        self.eps = eps
        self.swap = swap
        self.distance_function = distance_function
        distance = R.distance_name(distance_function)
        if distance is None:
            self._add_config_key(margin=float(margin), p=float(p), eps=float(eps), swap=swap, distance=None)
        else:
            self._add_config_key(margin=float(margin), swap=swap, distance=distance)

    def update(  # type: ignore[override]
        self, anchor: Tensor, positive: Tensor, negative: Tensor, sample_weight: Tensor | None = None
    ) -> None:
        """Add a batch of triplets (rows of ``anchor``, ``positive``, ``negative``) and optional weights."""
        self._accumulate(anchor, positive, negative, sample_weight)

    def _plan(self, anchor: Tensor, positive: Tensor, negative: Tensor, sample_weight: Tensor | None = None) -> R.Plan:
        R._triplet_check_tensors(anchor, positive, negative, sample_weight, self.validate_args)
        return R._triplet_plan(
            anchor,
            positive,
            negative,
            sample_weight,
            margin=self.margin,
            p=self.p,
            eps=self.eps,
            swap=self.swap,
            distance_function=self.distance_function,
        )


class CosineEmbeddingLoss(_PairLoss):
    r"""Cosine embedding loss accumulated over batches: ``torch.nn.CosineEmbeddingLoss`` with weights.

    .. math::
        \ell_i = \begin{cases} 1 - \cos(x_{1i}, x_{2i}) & y_i = 1 \\
        \max(0,\ \cos(x_{1i}, x_{2i}) - m) & y_i = -1 \end{cases}

    with torch's cosine (each squared norm plus :math:`10^{-12}`), in float64. ``update(preds1, preds2, target,
    sample_weight=None)`` takes float embeddings ``(N, D)`` (or ``(D,)``), targets ``(N,)`` (or ``()``) in
    {1, -1} and optional non-negative ``(N,)`` weights. ``compute()`` is the weighted mean, or the weighted total
    for ``reduction="sum"``. See :func:`hingemetrics.functional.cosine_embedding_loss` for every argument.

    Example:
        >>> import torch
        >>> from hingemetrics import CosineEmbeddingLoss
        >>> metric = CosineEmbeddingLoss(margin=0.5)
        >>> metric.update(torch.tensor([[1.0, 0.0]]), torch.tensor([[0.0, 1.0]]), torch.tensor([1]))
        >>> metric.update(torch.tensor([[1.0, 1.0]]), torch.tensor([[1.0, 1.0]]), torch.tensor([-1]))
        >>> metric.compute()
        tensor(0.7500, dtype=torch.float64)
    """

    _check_tensors = staticmethod(R._cosine_check_tensors)
    _make_plan = staticmethod(R._cosine_plan)


class MultilabelMarginLoss(_MeanOrSumLoss):
    r"""Multilabel margin loss accumulated over batches: ``torch.nn.MultiLabelMarginLoss`` with weights.

    .. math::
        \ell = \frac{1}{L} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ m - (x_j - x_i))

    for a sample with scores :math:`x` over :math:`L` labels and true labels :math:`Y`. ``update(preds, target,
    sample_weight=None)`` takes float scores ``(N, L)`` (or ``(L,)``), a target of the same shape, multi-hot
    (0/1 or bool) or in torch's index format (the true labels' indices, then trailing -1 padding), and optional
    non-negative ``(N,)`` weights. ``target_format="auto"`` reads a bool target as multi-hot and any other, per
    batch, as the index format when it holds a value outside {0, 1}; an index-format batch that lists indices 0
    and 1 only, with no padding (possible with ``num_labels=2``), reads as multi-hot, so pass
    ``target_format="index"`` (or ``"multi-hot"``) where that can happen. See
    :func:`hingemetrics.functional.multilabel_margin_loss` for every argument. At ``margin=1`` and without
    weights it equals ``torch.nn.MultiLabelMarginLoss(reduction=...)`` on the concatenated batches.

    Example:
        >>> import torch
        >>> from hingemetrics import MultilabelMarginLoss
        >>> metric = MultilabelMarginLoss(num_labels=4)
        >>> metric.update(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([[3, 0, -1, -1]]))
        >>> metric.update(torch.tensor([[0.1, 0.2, 0.4, 0.8]]), torch.tensor([[0, 0, 0, 1]]))
        >>> metric.compute()
        tensor(0.5875, dtype=torch.float64)
    """

    def __init__(
        self,
        num_labels: int,
        margin: float = 1.0,
        reduction: str = "mean",
        validate_args: bool = True,
        *,
        target_format: str = "auto",
        **kwargs: Any,
    ) -> None:
        R.check_multilabel_margin_args(num_labels, margin, reduction, target_format, validate_args)
        super().__init__(reduction, validate_args, **kwargs)
        self.num_labels = num_labels
        self.margin = margin
        self.target_format = target_format
        self._add_config_key(num_labels=num_labels, margin=float(margin), target_format=target_format)

    def update(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> None:
        """Add a batch of label scores, their targets (multi-hot or index format) and optional weights."""
        self._accumulate(preds, target, sample_weight)

    def _plan(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> R.Plan:
        target_format = R._multilabel_margin_check_tensors(
            preds, target, sample_weight, self.num_labels, self.target_format, self.validate_args
        )
        return R._multilabel_margin_plan(
            preds,
            target,
            sample_weight,
            num_labels=self.num_labels,
            margin=self.margin,
            target_format=target_format,
        )

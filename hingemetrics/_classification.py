"""Stateful binary and multiclass hinge metrics, and the ``HingeLoss(task=...)`` dispatcher."""

from collections.abc import Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric

from hingemetrics import _precision as P
from hingemetrics._base import SumStateMetric, WeightedSumStateMetric
from hingemetrics._multilabel import MultilabelHingeLoss
from hingemetrics.functional import _checks as C
from hingemetrics.functional._binary import _binary_hinge_check_tensors, _binary_hinge_update
from hingemetrics.functional._common import STAT_DTYPE, RowReduction, hinge_compute
from hingemetrics.functional._multiclass import _multiclass_hinge_check_tensors, _multiclass_hinge_update

__all__ = ["BinaryHingeLoss", "HingeLoss", "MulticlassHingeLoss"]


class BinaryHingeLoss(WeightedSumStateMetric):
    r"""Binary hinge loss, accumulated over batches.

    .. math::
        \text{loss} = \frac{\sum_i w_i \max(0,\ m - y_i s_i)^p}{\sum_i w_i}

    with :math:`y_i = +1` where the target is 1 and :math:`-1` where it is 0 or -1, and :math:`p = 2` when
    ``squared``. The margin :math:`m` is any finite real number; ``margin=0`` is the perceptron loss
    :math:`\max(0, -y_i s_i)` (optax's ``perceptron_loss``). The state is the float64 pair (weighted loss sum,
    weight total).

    ``update(preds, target, sample_weight=None)`` takes float scores ``(N, ...)``, labels ``(N, ...)`` in {0, 1} or
    {-1, 1} (or bool), and optional non-negative weights shaped like ``target`` or ``(N,)``. ``compute()`` returns a
    float64 scalar, nan before any data. See :func:`hingemetrics.functional.binary_hinge_loss` for every argument.

    Example:
        >>> import torch
        >>> from hingemetrics import BinaryHingeLoss
        >>> metric = BinaryHingeLoss()
        >>> metric.update(torch.tensor([0.5, 0.7]), torch.tensor([0, 1]))
        >>> metric.update(torch.tensor([0.1]), torch.tensor([1]))
        >>> metric.compute()
        tensor(0.9000, dtype=torch.float64)
        >>> perceptron = BinaryHingeLoss(margin=0)
        >>> perceptron(torch.tensor([0.5, 0.7, -0.1]), torch.tensor([0, 1, 1]))  # (0.5 + 0 + 0.1) / 3
        tensor(0.2000, dtype=torch.float64)
    """

    loss_sum: Tensor
    weight_sum: Tensor

    def __init__(
        self,
        squared: bool = False,
        ignore_index: int | None = None,
        validate_args: bool = True,
        *,
        margin: float = 1.0,
        normalization: str | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        C.check_binary_args(squared, ignore_index, validate_args, margin, normalization)
        self.squared = squared
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.margin = margin
        self.normalization = normalization
        self._add_sum_state("loss_sum")
        self._add_sum_state("weight_sum")
        self._add_config_key(
            margin=float(margin), squared=squared, ignore_index=ignore_index, normalization=normalization
        )

    def _weighted_statistics(
        self,
        preds: Tensor,
        target: Tensor,
        sample_weight: Tensor | None,
        per_sample: bool,
        reduction: RowReduction | None = None,
    ) -> tuple[Tensor, ...]:
        extrema = _binary_hinge_check_tensors(preds, target, sample_weight, self.ignore_index, self.validate_args)
        return _binary_hinge_update(
            preds,
            target,
            margin=self.margin,
            squared=self.squared,
            ignore_index=self.ignore_index,
            normalization=self.normalization,
            sample_weight=sample_weight,
            score_extrema=extrema,
            per_sample=per_sample,
            reduction=reduction,
        )

    def _compute_from(self, loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
        return hinge_compute(loss_sum, weight_sum)

    def compute(self) -> Tensor:
        """The weighted mean hinge loss over everything seen since the last reset."""
        return self._compute_from(self.loss_sum, self.weight_sum)


class MulticlassHingeLoss(WeightedSumStateMetric):
    r"""Multiclass hinge loss (Crammer-Singer, categorical, one-vs-all or Weston-Watkins), accumulated over batches.

    .. math::
        \text{crammer-singer:}\quad \ell = \max\big(0,\ m - s_y + \max_{j \ne y} s_j\big)^p

        \text{categorical:}\quad \ell = \max\big(0,\ m - s_y + \max(0, \max_{j \ne y} s_j)\big)^p

        \text{weston-watkins:}\quad \ell = \frac{1}{C} \sum_{j \ne y} \max(0,\ m - s_y + s_j)^p

        \text{one-vs-all:}\quad \ell_c = \max(0,\ m - y_c s_c)^p

    ``update(preds, target, sample_weight=None)`` takes float scores ``(N, C, ...)``, class indices ``(N, ...)`` or
    one-hot targets ``(N, C, ...)``, and optional weights ``(N, ...)`` or ``(N,)``. ``compute()`` returns the
    weighted mean: a float64 scalar, or a ``(C,)`` vector for one-vs-all. The state is the weighted loss sum (per
    class for one-vs-all) and the weight total. See :func:`hingemetrics.functional.multiclass_hinge_loss`.

    ``margin`` is any finite real number (0: the perceptron loss, optax's ``multiclass_perceptron_loss`` for
    Crammer-Singer). ``"categorical"`` is Keras' ``CategoricalHinge``. ``class_weight``, ``(C,)`` non-negative
    weights (a tensor or a sequence), multiplies each sample's loss by the weight of its class, as
    ``torch.nn.MultiMarginLoss(weight=...)`` does, and leaves the denominator (the number of samples, or the sum of
    ``sample_weight``) alone. The class weights are read when the metric is built, become part of its configuration
    (merges, checkpoints and syncs compare them) and are kept as a float64 buffer that moves with the metric.

    Example:
        >>> import torch
        >>> from hingemetrics import MulticlassHingeLoss
        >>> metric = MulticlassHingeLoss(num_classes=3, multiclass_mode="one-vs-all")
        >>> preds = torch.tensor([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40],
        ...                       [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
        >>> metric(preds, torch.tensor([0, 1, 2, 0]))
        tensor([0.8750, 1.1250, 1.1000], dtype=torch.float64)
        >>> weighted = MulticlassHingeLoss(3, multiclass_mode="weston-watkins", class_weight=[1.0, 1.0, 4.0])
        >>> weighted(preds, torch.tensor([0, 1, 2, 0]))  # = torch.nn.MultiMarginLoss(weight=...)
        tensor(0.8500, dtype=torch.float64)
    """

    loss_sum: Tensor
    weight_sum: Tensor

    def __init__(
        self,
        num_classes: int,
        squared: bool = False,
        multiclass_mode: str = "crammer-singer",
        ignore_index: int | None = None,
        validate_args: bool = True,
        *,
        margin: float = 1.0,
        normalization: str | None = None,
        class_weight: Tensor | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        C.check_multiclass_args(
            num_classes, squared, multiclass_mode, ignore_index, validate_args, margin, normalization
        )
        weights = C.check_class_weight(class_weight, num_classes, read_values=True)
        self.num_classes = num_classes
        self.squared = squared
        self.multiclass_mode = multiclass_mode
        self.ignore_index = ignore_index
        self.validate_args = validate_args
        self.margin = margin
        self.normalization = normalization
        self._add_sum_state("loss_sum", (num_classes,) if multiclass_mode == "one-vs-all" else ())
        self._add_sum_state("weight_sum")
        # a buffer, not a state: it moves with the metric (and keeps its float64) but is never summed or synced
        self.register_buffer(
            "class_weight", None if weights is None else weights.to(self.weight_sum.device), persistent=False
        )
        # the weights join the configuration only when given, so a metric without them keeps its old key
        by_class = {} if weights is None else {"class_weight": tuple(weights.tolist())}
        self._add_config_key(
            num_classes=num_classes,
            margin=float(margin),
            squared=squared,
            multiclass_mode=multiclass_mode,
            ignore_index=ignore_index,
            normalization=normalization,
            **by_class,
        )

    def _weighted_statistics(
        self,
        preds: Tensor,
        target: Tensor,
        sample_weight: Tensor | None,
        per_sample: bool,
        reduction: RowReduction | None = None,
    ) -> tuple[Tensor, ...]:
        extrema = _multiclass_hinge_check_tensors(
            preds, target, sample_weight, self.num_classes, self.ignore_index, self.validate_args
        )
        return _multiclass_hinge_update(
            preds,
            target,
            num_classes=self.num_classes,
            margin=self.margin,
            squared=self.squared,
            multiclass_mode=self.multiclass_mode,
            ignore_index=self.ignore_index,
            normalization=self.normalization,
            sample_weight=sample_weight,
            score_extrema=extrema,
            class_weight=self._class_weights(),
            per_sample=per_sample,
            reduction=reduction,
        )

    def _compute_from(self, loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
        if self.multiclass_mode == "one-vs-all":
            weight_sum = weight_sum.unsqueeze(-1)  # one total per (leading index), shared by the classes
        return hinge_compute(loss_sum, weight_sum)

    def compute(self) -> Tensor:
        """The weighted mean hinge loss (per class for one-vs-all) since the last reset."""
        return self._compute_from(self.loss_sum, self.weight_sum)

    def _class_weights(self) -> Tensor | None:
        """The ``class_weight`` buffer: ``(C,)`` float64 on the metric's device, or None.

        Read from the module's buffers, not declared on the class: torch 2.1's ``torch.jit.script`` cannot parse
        a ``Tensor | None`` class annotation.
        """
        return self._buffers["class_weight"]

    def _apply(self, fn: Any, *args: Any, **kwargs: Any) -> torch.nn.Module:
        """Move (or cast) the metric as the base class does, then refill the class weights from the configuration.

        The weights are written anew from the numbers recorded at construction, on the buffer's new device in
        float64 (float32 on a device without it), whatever cast ``fn`` is: a move off the meta device has no values
        to carry (the base class gives zeros there, an empty state), and ``set_dtype`` changes the states only.
        """
        out = super()._apply(fn, *args, **kwargs)
        weights = self._class_weights()
        if weights is not None and weights.device.type != "meta":
            device = weights.device
            dtype = P.state_dtype_for(device, STAT_DTYPE)
            self.class_weight = torch.tensor(self._config_args["class_weight"], dtype=dtype, device=device)
        return out


class HingeLoss(Metric):
    r"""Hinge loss for a task, built as the task's own metric class.

    ``HingeLoss(task="binary", ...)`` builds a :class:`BinaryHingeLoss`, ``HingeLoss(task="multiclass",
    num_classes=C, ...)`` a :class:`MulticlassHingeLoss` and ``HingeLoss(task="multilabel", num_labels=L, ...)``
    a :class:`MultilabelHingeLoss`. The arguments are those of the task's class, in the same order as
    torchmetrics' ``HingeLoss``; ``num_labels``, ``average`` and ``class_weight`` (multiclass only) are
    keyword-only.

    As torchmetrics' ``HingeLoss``, the class is a ``torchmetrics.Metric`` subclass whose constructor hands back an
    instance of the task's class, which is what ``update`` and ``compute`` run on.

    Example:
        >>> import torch
        >>> from hingemetrics import HingeLoss
        >>> metric = HingeLoss(task="binary")
        >>> type(metric).__name__
        'BinaryHingeLoss'
        >>> metric(torch.tensor([0.5, 0.7, 0.1]), torch.tensor([0, 1, 1]))
        tensor(0.9000, dtype=torch.float64)
    """

    def __new__(  # type: ignore[misc]
        cls,
        task: str,
        num_classes: int | None = None,
        squared: bool = False,
        multiclass_mode: str = "crammer-singer",
        ignore_index: int | None = None,
        validate_args: bool = True,
        *,
        margin: float = 1.0,
        normalization: str | None = None,
        num_labels: int | None = None,
        average: str = "macro",
        class_weight: Tensor | Sequence[float] | None = None,
        **kwargs: Any,
    ) -> SumStateMetric:
        C.check_choice("task", task, C.TASKS)
        C.check_class_weight_task(class_weight, task)
        common: dict[str, Any] = {"margin": margin, "normalization": normalization, **kwargs}
        if task == "binary":
            return BinaryHingeLoss(squared, ignore_index, validate_args, **common)
        if task == "multilabel":
            if num_labels is None:
                raise ValueError("Expected `num_labels` (an int >= 2) for task='multilabel', but got None.")
            return MultilabelHingeLoss(num_labels, squared, average, ignore_index, validate_args, **common)
        if num_classes is None:
            raise ValueError("Expected `num_classes` (an int >= 2) for task='multiclass', but got None.")
        return MulticlassHingeLoss(
            num_classes, squared, multiclass_mode, ignore_index, validate_args, class_weight=class_weight, **common
        )

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Never runs: ``HingeLoss(task=...)`` returns the task's metric, whose ``update`` is used."""
        raise NotImplementedError(f"{type(self).__name__} is built as the task's metric class; use what it returns.")

    def compute(self) -> None:
        """Never runs: ``HingeLoss(task=...)`` returns the task's metric, whose ``compute`` is used."""
        raise NotImplementedError(f"{type(self).__name__} is built as the task's metric class; use what it returns.")

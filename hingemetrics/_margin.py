"""Margin distribution: a fixed-bin histogram of per-sample margins, kept as summed float64 state."""

import math
from collections.abc import Sequence
from functools import partial
from typing import Any, NamedTuple

import torch
from torch import Tensor
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from hingemetrics._base import SumStateMetric
from hingemetrics._plot import plot_histogram
from hingemetrics.functional import _checks as C
from hingemetrics.functional._binary import _binary_hinge_check_tensors
from hingemetrics.functional._common import STAT_DTYPE, Block, add_up, as_scores, index_blocks, take
from hingemetrics.functional._multiclass import _is_one_hot, _multiclass_hinge_check_tensors, true_and_rival

__all__ = ["MarginDistribution", "MarginHistogram"]

TASKS = ("binary", "multiclass")


class MarginHistogram(NamedTuple):
    """What :meth:`MarginDistribution.compute` returns (all float64 tensors).

    Attributes:
        counts: ``(bins,)`` number of samples whose margin fell in each bin (end bins include values beyond the
            range).
        edges: ``(bins + 1,)`` bin edges: bin ``i`` holds ``edges[i] <= margin < edges[i + 1]``, the last bin also
            its right edge.
        misclassified: fraction of samples with margin < 0 (exact, not read off the bins); nan before any data.
        inside_margin: fraction of samples with margin < m, misclassified ones included; nan before any data.
        total: number of samples seen.
    """

    counts: Tensor
    edges: Tensor
    misclassified: Tensor
    inside_margin: Tensor
    total: Tensor


def _check_range(value: Any) -> tuple[float, float]:
    """Require a pair ``(low, high)`` of finite real numbers with ``low < high``."""
    if (
        not isinstance(value, Sequence)
        or isinstance(value, str)
        or len(value) != 2
        or not all(isinstance(v, (int, float)) and not isinstance(v, bool) for v in value)
    ):
        raise TypeError(f"Expected `range` to be a pair (low, high) of floats, but got {value!r}.")
    low, high = float(value[0]), float(value[1])
    if not (math.isfinite(low) and math.isfinite(high) and low < high):
        raise ValueError(
            f"Expected `range` to be a pair (low, high) of finite floats with low < high, but got {value!r}."
        )
    return low, high


def binary_margins(scores: Tensor, target: Tensor, block: Block) -> Tensor:
    """``y * s`` in float64 for one block of ``(N, ...)`` scores, flattened.

    ``y = +1`` where the target is 1 (or True) and ``-1`` elsewhere.
    """
    sign = (take(target, block, False) > 0).to(STAT_DTYPE).mul_(2).sub_(1)
    return sign.mul_(as_scores(take(scores, block, False)))


def multiclass_margins(scores: Tensor, target: Tensor, block: Block) -> Tensor:
    """``s_y - max_{j != y} s_j`` in float64 for one block of ``(N, C, ...)`` scores and index or one-hot targets.

    Both scores are selected exactly in the scores' dtype; only the ``(B,)`` difference is float64.
    """
    one_hot = _is_one_hot(scores, target)
    labels = take(target, block, True).argmax(1) if one_hot else take(target, block, False).long()
    true_score, rival = true_and_rival(as_scores(take(scores, block, True)), labels.unsqueeze(1))
    return true_score.to(STAT_DTYPE) - rival.to(STAT_DTYPE)


class MarginDistribution(SumStateMetric):
    r"""Histogram of per-sample margins, with the exact fractions misclassified and inside the margin.

    The margin of a sample is how far its score lies on the right side of the decision boundary:

    .. math::
        \text{binary:}\quad \gamma_i = y_i s_i, \qquad
        \text{multiclass:}\quad \gamma_i = s_{i, y_i} - \max_{j \ne y_i} s_{ij}

    with :math:`y_i = +1` for target 1 (or True) and :math:`-1` for 0 or -1. A sample is misclassified when
    :math:`\gamma_i < 0` and inside the margin when :math:`\gamma_i < m`; its hinge loss is
    :math:`\max(0, m - \gamma_i)`, so the histogram shows where a hinge loss comes from.

    ``update(preds, target)`` takes, for ``task="binary"``, float scores ``(N, ...)`` and labels of the same shape
    in {0, 1}, {-1, 1} or bool; for ``task="multiclass"``, scores ``(N, C, ...)`` and class indices ``(N, ...)``
    or one-hot targets ``(N, C, ...)``. Each margin is counted in one of ``bins`` equal bins over ``range``;
    margins outside the range go to the end bins. The state is float64 sums (the per-bin counts, the numbers
    misclassified and inside the margin, the total), so it syncs across processes like every hingemetrics metric.
    ``compute()`` returns a :class:`MarginHistogram`.

    Args:
        task: ``"binary"`` or ``"multiclass"``.
        num_classes: the number of classes C (an int >= 2), required for ``task="multiclass"``; ignored for
            ``"binary"``.
        bins: the number of equal-width bins (an int >= 2).
        range: ``(low, high)``, the span the bins cover.
        margin: the margin :math:`m > 0`: the second line of the plot and the threshold of ``inside_margin``.
        validate_args: check label values and NaN (reads data back to the host). With ``validate_args=False``
            a NaN margin is counted nowhere.
        kwargs: passed on to :class:`torchmetrics.Metric`.

    Example:
        >>> import torch
        >>> from hingemetrics import MarginDistribution
        >>> metric = MarginDistribution(task="binary", bins=4, range=(-2.0, 2.0))
        >>> metric.update(torch.tensor([0.5, -0.7, 3.0, 0.2]), torch.tensor([1, 1, 1, 0]))
        >>> result = metric.compute()
        >>> result.counts
        tensor([0., 2., 1., 1.], dtype=torch.float64)
        >>> result.edges
        tensor([-2., -1.,  0.,  1.,  2.], dtype=torch.float64)
        >>> result.misclassified, result.inside_margin
        (tensor(0.5000, dtype=torch.float64), tensor(0.7500, dtype=torch.float64))
    """

    is_differentiable = False
    higher_is_better = None  # neither: a histogram is not a score

    counts: Tensor
    misclassified: Tensor
    inside_margin: Tensor
    total: Tensor

    def __init__(
        self,
        task: str = "binary",
        num_classes: int | None = None,
        bins: int = 40,
        range: tuple[float, float] = (-2.0, 2.0),
        margin: float = 1.0,
        validate_args: bool = True,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        C.check_choice("task", task, TASKS)
        if task == "multiclass":
            if num_classes is None:
                raise ValueError("Expected `num_classes` (an int >= 2) for task='multiclass', but got None.")
            C.check_count("num_classes", num_classes)
        C.check_count("bins", bins)
        self.range = _check_range(range)
        C.check_margin(margin, positive=True)
        C.check_bool("validate_args", validate_args)
        self.task = task
        self.num_classes = num_classes if task == "multiclass" else None
        self.bins = bins
        self.margin = margin
        self.validate_args = validate_args
        self._add_sum_state("counts", (bins,))
        self._add_sum_state("misclassified")
        self._add_sum_state("inside_margin")
        self._add_sum_state("total")
        self._add_config_key(task=task, num_classes=self.num_classes, bins=bins, range=self.range, margin=float(margin))

    def update(self, preds: Tensor, target: Tensor) -> None:  # type: ignore[override]
        """Count the margins of a batch of scores ``preds`` and labels ``target`` (shapes in the class docstring)."""
        self._accumulate(preds, target)

    def _edges(self, device: torch.device | None = None) -> Tensor:
        low, high = self.range
        steps = torch.arange(self.bins + 1, dtype=STAT_DTYPE, device=device) / self.bins
        return low + (high - low) * steps  # exact at both ends, and at 0 whenever 0 is an edge

    def _bin_bounds(self, device: torch.device) -> Tensor:
        """``(bins + 1,)`` lower bounds of the bins, with -inf for the first and +inf past the last.

        Bin ``i`` holds the margins in ``[bounds[i], bounds[i + 1])``: the edges inside the range, and the end
        bins open towards the values beyond it.
        """
        inf = torch.full((1,), math.inf, dtype=STAT_DTYPE, device=device)
        return torch.cat([-inf, self._edges(device)[1:-1], inf])

    def _bin_index(self, margins: Tensor, bounds: Tensor) -> Tensor:
        """The bin of each margin of a chunk: ``i`` with ``bounds[i] <= margin < bounds[i + 1]``; 0 for NaN.

        The bins have equal widths, so the bin is the margin's offset from the range's start in bin widths; a
        margin within rounding of an edge may be one bin off that way, and one comparison with each of its bin's
        two bounds puts it right (the bins are wider than float64's spacing at the range's magnitude). Every step
        is an element-wise operation that torch keeps on the calling thread for a chunk (``torch.bucketize``, like
        ``floor``, would split each chunk over the threads).
        """
        low, high = self.range
        guess = (margins - low).mul_(self.bins / (high - low)).nan_to_num_(0.0).clamp_(0, self.bins - 1).long()
        index = guess + (margins >= bounds.index_select(0, guess + 1))  # one up, where it is past its bin's end
        return index.sub_((margins < bounds.index_select(0, guess)).long())  # one down, where it is before it

    def _batch_statistics(self, preds: Tensor, target: Tensor) -> tuple[Tensor, ...]:
        if self.num_classes is None:
            _binary_hinge_check_tensors(preds, target, None, None, self.validate_args)
        else:
            _multiclass_hinge_check_tensors(preds, target, None, self.num_classes, None, self.validate_args)
        if preds.dim() == (0 if self.num_classes is None else 1):  # one sample: a batch of one
            preds, target = preds.unsqueeze(0), target.unsqueeze(0)
        if self.num_classes is None:
            blocks = index_blocks(preds.shape, 1, preds.device)
            margins_of = partial(binary_margins, preds, target)
        else:
            if target.dtype == torch.bool:
                target = target.view(torch.uint8)  # the same bytes, as numbers: argmax takes no bool
            blocks = index_blocks(preds.shape[:1] + preds.shape[2:], self.num_classes, preds.device)
            margins_of = partial(multiclass_margins, preds, target)
        bounds = self._bin_bounds(preds.device)
        counts = torch.zeros(self.bins, dtype=STAT_DTYPE, device=preds.device)
        sums = []
        for block in blocks:  # one chunk of margins at a time: no temporary of the batch's size
            margins = margins_of(block)
            counted = (~margins.isnan()).to(STAT_DTYPE)
            counts.index_add_(0, self._bin_index(margins, bounds), counted)
            below = torch.stack([(margins < 0).sum(dtype=STAT_DTYPE), (margins < self.margin).sum(dtype=STAT_DTYPE)])
            sums.append(torch.cat([below, counted.sum().reshape(1)]))
        totals = add_up(sums, torch.Size((3,)), preds.device)
        return counts, totals[0], totals[1], totals[2]

    def compute(self) -> MarginHistogram:
        """The histogram and the fractions since the last reset; see :class:`MarginHistogram`."""
        return MarginHistogram(
            counts=self.counts.clone(),
            edges=self._edges(self.counts.device),
            misclassified=self.misclassified / self.total,
            inside_margin=self.inside_margin / self.total,
            total=self.total.clone(),
        )

    def plot(
        self,
        val: Tensor | Sequence[Tensor] | None = None,
        ax: _AX_TYPE | None = None,
        *,
        labels: Sequence[str] | None = None,
    ) -> _PLOT_OUT_TYPE:
        """Draw the histogram as bars, with dashed vertical lines at 0 and at the margin ``m``.

        Args:
            val: a :class:`MarginHistogram` (a result of ``compute`` or ``forward``). Without it, ``compute()``
                is plotted.
            ax: a matplotlib axis to draw into; a new figure is made without it.
            labels: not used: a histogram has no per-class series. Must be None.

        Returns:
            ``(fig, ax)``.

        Example:
            >>> import torch
            >>> from hingemetrics import MarginDistribution
            >>> metric = MarginDistribution(task="multiclass", num_classes=3, bins=20, range=(-3.0, 3.0))
            >>> metric.update(torch.randn(100, 3), torch.randint(3, (100,)))
            >>> fig, ax = metric.plot()
            >>> len(ax.patches), len(ax.get_lines())
            (20, 2)
            >>> import matplotlib.pyplot as plt
            >>> plt.close(fig)
        """
        if labels is not None:
            raise ValueError(f"Expected `labels` to be None for a margin histogram, but got {labels!r}.")
        result = self.compute() if val is None else val
        if not isinstance(result, MarginHistogram):
            raise TypeError(
                f"Expected `val` to be a MarginHistogram (a result of `compute`), but got {type(result).__name__}."
            )
        return plot_histogram(
            result.counts,
            result.edges,
            ax,
            margin=self.margin,
            misclassified=float(result.misclassified),
            inside_margin=float(result.inside_margin),
            name=type(self).__name__,
        )

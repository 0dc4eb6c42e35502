"""Plotting for hingemetrics metrics: one value, a history of values, per-class vectors, and margin histograms.

Every function returns ``(fig, ax)`` and draws into ``ax`` when one is given, so several calls can share an axis
(a train curve and a test curve, say). matplotlib is imported only when something is drawn.

The y-axis starts at the metric's ``plot_lower_bound`` (0 for a hinge loss) and its top follows the data, since a
hinge loss has no upper bound: a fixed top of 1 would cut off a loss of 1.3.
"""

from __future__ import annotations

import math
from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import torch
from torch import Tensor

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure
    from torchmetrics import Metric

__all__: list[str] = []

# Above this many steps a history is drawn as a plain line: markers would only blur it.
_MAX_MARKED_STEPS = 30


def _new_or_given_axes(ax: Axes | None) -> tuple[Figure, Axes]:
    if ax is not None:
        return ax.get_figure(), ax  # type: ignore[return-value]
    import matplotlib.pyplot as plt

    fig, new_ax = plt.subplots()
    return fig, new_ax


def _as_history(val: Tensor | Sequence[Any], value_shape: tuple[int, ...]) -> tuple[Tensor, bool]:
    """Read ``val`` as ``(T, K)`` float64 rows, and say whether it is a history (True) or one result (False).

    One result has the metric's ``value_shape``; a history is a list of such results or a tensor with one more
    leading dimension (what ``torch.stack`` of the list, or ``MetricTracker.compute_all()``, gives).
    """
    expected = f"one result of shape {value_shape} or a history of them"
    if isinstance(val, Tensor):
        values = val.detach().to("cpu", torch.float64)
        if tuple(values.shape) == value_shape:
            return values.reshape(1, -1), False
        if values.dim() == len(value_shape) + 1 and tuple(values.shape[1:]) == value_shape and len(values) > 0:
            return values.reshape(len(values), -1), True
        raise ValueError(f"Expected `val` to be {expected}, but got a tensor of shape {tuple(values.shape)}.")
    if isinstance(val, Sequence) and not isinstance(val, str):
        if len(val) == 0:
            raise ValueError(f"Expected `val` to be {expected}, but got an empty sequence.")
        steps = [torch.as_tensor(v).detach().to("cpu", torch.float64) for v in val]
        shapes = {tuple(s.shape) for s in steps}
        if shapes != {value_shape}:
            raise ValueError(f"Expected `val` to be {expected}, but got a sequence of shapes {sorted(shapes)}.")
        return torch.stack(steps).reshape(len(steps), -1), True
    raise TypeError(f"Expected `val` to be a tensor or a sequence of tensors, but got {type(val).__name__}.")


def _series_names(labels: Sequence[str] | None, count: int, prefix: str) -> list[str | None]:
    if labels is not None:
        if isinstance(labels, str) or len(labels) != count:
            got = repr(labels) if isinstance(labels, str) else f"{len(labels)}"
            raise ValueError(
                f"Expected `labels` to be a sequence of {count} names (one per plotted series), but got {got}."
            )
        return [str(name) for name in labels]
    if count == 1:
        return [None]
    return [f"{prefix} {i}" for i in range(count)]


def _set_y_limits(ax: Axes, lower_bound: float | None, upper_bound: float | None) -> None:
    """Start at the lower bound, end a tenth above the highest value drawn on ``ax`` (or at the upper bound)."""
    ax.relim()
    data_low, data_high = float(ax.dataLim.y0), float(ax.dataLim.y1)
    if not (math.isfinite(data_low) and math.isfinite(data_high) and data_low <= data_high):
        # nothing but NaN drawn (a metric that saw no data)
        data_low, data_high = (lower_bound or 0.0), (lower_bound or 0.0) + 1.0
    bottom = lower_bound if lower_bound is not None else data_low
    span = data_high - bottom if data_high > bottom else 1.0
    if lower_bound is None:
        bottom -= 0.1 * span
    top = upper_bound if upper_bound is not None else data_high + 0.1 * span
    ax.set_ylim(bottom, top)


def plot_values(
    val: Tensor | Sequence[Any],
    ax: Axes | None = None,
    *,
    value_shape: tuple[int, ...] = (),
    name: str | None = None,
    labels: Sequence[str] | None = None,
    legend_prefix: str = "Class",
    lower_bound: float | None = 0.0,
    upper_bound: float | None = None,
) -> tuple[Figure, Axes]:
    """Draw one result, or a history of results, of a metric whose results have shape ``value_shape``.

    * one scalar: a single marker with its value written next to it;
    * one vector (``value_shape=(K,)``): K bars, one per class or label, named on the x-axis and in the legend;
    * a history (a list of results, or a tensor with a leading step dimension): one line per class or label
      against the step, named in the legend.

    Args:
        val: a result, a list of results, or results stacked along a new first dimension.
        ax: the axis to draw into; a new figure is made without it.
        value_shape: the shape of one result: ``()`` or ``(K,)``.
        name: the y-axis label.
        labels: one name per series (per class or label; one name for a scalar metric's single series).
        legend_prefix: what unnamed series are called: ``"Class 0"``, ``"Label 0"``.
        lower_bound: where the y-axis starts; None to follow the data.
        upper_bound: where the y-axis ends; None to follow the data.

    Returns:
        ``(fig, ax)``.

    Example:
        >>> import torch
        >>> fig, ax = plot_values([torch.tensor(1.4), torch.tensor(0.9), torch.tensor(0.5)], name="loss")
        >>> len(ax.get_lines()), float(ax.get_ylim()[0])
        (1, 0.0)
        >>> import matplotlib.pyplot as plt
        >>> plt.close(fig)
    """
    from matplotlib.ticker import MaxNLocator

    rows, is_history = _as_history(val, value_shape)
    names = _series_names(labels, rows.shape[1], legend_prefix)
    fig, ax = _new_or_given_axes(ax)
    if is_history:
        steps = torch.arange(rows.shape[0]).tolist()
        marker = "o" if rows.shape[0] <= _MAX_MARKED_STEPS else None
        for column, label in zip(rows.T.tolist(), names, strict=True):
            ax.plot(steps, column, marker=marker, label=label, clip_on=False)
        ax.set_xlabel("step")
        ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    elif rows.shape[1] == 1 and not value_shape:
        value = rows[0, 0].item()
        ax.plot([0], [value], marker="o", markersize=9, linestyle="none", label=names[0], clip_on=False)
        ax.annotate(f"{value:.4f}", (0, value), xytext=(10, 0), textcoords="offset points", va="center")
        ax.set_xlim(-1, 1)
        ax.set_xticks([])
    else:
        tick_names = [n if n is not None else str(i) for i, n in enumerate(names)]
        for i, (value, label) in enumerate(zip(rows[0].tolist(), tick_names, strict=True)):
            ax.bar(i, value, color=f"C{i % 10}", label=label)
        ax.set_xticks(range(len(tick_names)), tick_names)
    _finish(ax, name, lower_bound, upper_bound)
    return fig, ax


def _finish(ax: Axes, name: str | None, lower_bound: float | None, upper_bound: float | None) -> None:
    """The y-limits, the y-label, the grid, and a legend where a series is named."""
    _set_y_limits(ax, lower_bound, upper_bound)
    if name is not None:
        ax.set_ylabel(name)
    ax.grid(True, alpha=0.4)
    if any(not label.startswith("_") for label in ax.get_legend_handles_labels()[1]):
        ax.legend()


def _result_shape(metric: Metric) -> tuple[int, ...]:
    """The shape of one ``compute()`` result, read off the current state without syncing or caching.

    ``type(metric).compute`` is the class's own function, not the wrapper torchmetrics puts on the instance, so
    this neither warns before the first update nor touches the cached result. Every hingemetrics ``compute`` is a
    cheap pure function of the summed state.
    """
    return tuple(torch.as_tensor(type(metric).compute(metric)).shape)


def plot_metric(
    metric: Metric,
    val: Tensor | Sequence[Any] | None = None,
    ax: Axes | None = None,
    labels: Sequence[str] | None = None,
) -> tuple[Figure, Axes]:
    """Plot ``val`` (default: ``metric.compute()``) with the metric's name, bounds and class or label names."""
    if val is None:
        val = metric.compute()
    if labels is None:
        labels = getattr(metric, "plot_labels", None)
    prefix = metric.plot_legend_name or ("Label" if hasattr(metric, "num_labels") else "Class")
    return plot_values(
        val,
        ax,
        value_shape=_result_shape(metric),
        name=type(metric).__name__,
        labels=labels,
        legend_prefix=prefix,
        lower_bound=metric.plot_lower_bound,
        upper_bound=metric.plot_upper_bound,
    )


def plot_histogram(
    counts: Tensor,
    edges: Tensor,
    ax: Axes | None = None,
    *,
    margin: float,
    misclassified: float,
    inside_margin: float,
    name: str | None = None,
) -> tuple[Figure, Axes]:
    """Draw margin counts as bars over their bins, with dashed lines at 0 and at the margin ``m``.

    Args:
        counts: ``(B,)`` count per bin.
        edges: ``(B + 1,)`` bin edges.
        ax: the axis to draw into; a new figure is made without it.
        margin: where the second line goes.
        misclassified: the fraction of margins below 0, shown in the legend.
        inside_margin: the fraction of margins below ``margin``, shown in the legend.
        name: the title.

    Returns:
        ``(fig, ax)``.
    """
    fig, ax = _new_or_given_axes(ax)
    left = edges[:-1].detach().cpu().tolist()
    widths = edges.diff().detach().cpu().tolist()
    ax.bar(left, counts.detach().cpu().tolist(), width=widths, align="edge", color="C0", edgecolor="white")
    ax.axvline(0.0, color="C3", linestyle="--", label=f"misclassified (margin < 0): {misclassified:.1%}")
    inside_label = f"inside the margin (margin < {margin:g}): {inside_margin:.1%}"
    ax.axvline(margin, color="C2", linestyle="--", label=inside_label)
    ax.set_xlabel("margin (values beyond the range are counted in the end bins)")
    ax.set_ylabel("count")
    if name is not None:
        ax.set_title(name)
    _set_y_limits(ax, 0.0, None)
    ax.grid(True, axis="y", alpha=0.4)
    ax.legend()
    return fig, ax


def _interval_rows(val: Any, value_shape: tuple[int, ...]) -> tuple[dict[str, Tensor], bool]:
    """Read interval results as ``{"value", "low", "high"}`` of ``(T, K)`` rows, and whether it is a history.

    One result is a dict of tensors of ``value_shape``; a history a list of such dicts, or one dict whose tensors
    have a leading step dimension (``MetricTracker.compute_all()``).
    """
    keys = ("value", "low", "high")
    if isinstance(val, dict):
        missing = [key for key in keys if key not in val]
        if missing:
            raise ValueError(f"Expected `val` to hold {list(keys)}, but it lacks {missing}.")
        rows = {key: _as_history(val[key], value_shape) for key in keys}
        return {key: row for key, (row, _) in rows.items()}, rows["value"][1]
    if (
        isinstance(val, Sequence)
        and not isinstance(val, str)
        and len(val) > 0
        and all(isinstance(v, dict) for v in val)
    ):
        stacked = {key: torch.stack([torch.as_tensor(v[key]) for v in val]) for key in keys}
        return _interval_rows(stacked, value_shape)
    raise TypeError(
        f"Expected `val` to be an interval result (a dict with {list(keys)}) or a history of them, but got "
        f"{type(val).__name__}."
    )


def plot_interval(
    val: Any,
    ax: Axes | None = None,
    *,
    value_shape: tuple[int, ...] = (),
    name: str | None = None,
    labels: Sequence[str] | None = None,
    legend_prefix: str = "Class",
    lower_bound: float | None = 0.0,
) -> tuple[Figure, Axes]:
    """Draw a value with its interval: a marker with an error bar, bars with error bars, or a line with a band.

    Args:
        val: ``{"value", "low", "high"}`` of one result, a list of them, or one dict stacked along a new first
            dimension (a history).
        ax: the axis to draw into; a new figure is made without it.
        value_shape: the shape of one result: ``()`` or ``(K,)``.
        name: the y-axis label.
        labels: one name per series (per class, label or group).
        legend_prefix: what unnamed series are called.
        lower_bound: where the y-axis starts; None to follow the data.

    Returns:
        ``(fig, ax)``.

    Example:
        >>> import torch
        >>> one = {"value": torch.tensor(0.8), "low": torch.tensor(0.7), "high": torch.tensor(0.9)}
        >>> fig, ax = plot_interval([one, one, one], name="loss")
        >>> len(ax.collections)  # the shaded band
        1
        >>> import matplotlib.pyplot as plt
        >>> plt.close(fig)
    """
    rows, is_history = _interval_rows(val, value_shape)
    value, low, high = rows["value"], rows["low"], rows["high"]
    names = _series_names(labels, value.shape[1], legend_prefix)
    fig, ax = _new_or_given_axes(ax)
    if is_history:
        steps = list(range(value.shape[0]))
        for k, label in enumerate(names):
            ax.plot(steps, value[:, k].tolist(), color=f"C{k % 10}", label=label)
            everywhere = [True] * len(steps)  # given: matplotlib 3.6 fails to build this default with numpy 1.24
            ax.fill_between(
                steps, low[:, k].tolist(), high[:, k].tolist(), where=everywhere, color=f"C{k % 10}", alpha=0.25
            )
        ax.set_xlabel("step")
    else:
        centre, below, above = value[0], (value[0] - low[0]).clamp_min(0), (high[0] - value[0]).clamp_min(0)
        error = [below.tolist(), above.tolist()]
        if not value_shape:
            ax.errorbar([0], centre.tolist(), yerr=error, fmt="o", capsize=6, label=names[0])
            ax.set_xlim(-1, 1)
            ax.set_xticks([])
        else:
            ticks = [n if n is not None else str(i) for i, n in enumerate(names)]
            colors = [f"C{i % 10}" for i in range(len(ticks))]
            ax.bar(range(len(ticks)), centre.tolist(), yerr=error, capsize=4, color=colors)
            ax.set_xticks(range(len(ticks)), ticks)
    _finish(ax, name, lower_bound, None)
    return fig, ax

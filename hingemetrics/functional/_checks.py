"""Argument and tensor checks shared by the functional and the class forms.

Two tiers, as everywhere in hingemetrics:

* cheap checks on types, dtypes, shapes and devices always run, because they read only metadata and never
  synchronise with the device;
* checks on values (target range, NaN, negative weights) run only under ``validate_args=True``, because each one
  reads data back to the host.

Every message names the argument, says what was expected and shows what came.
"""

from __future__ import annotations

import math
import numbers
import threading
import weakref
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from hingemetrics._compat import aminmax, is_compiling
from hingemetrics.functional._common import on_one_thread

__all__: list[str] = []

BINARY_NORMALIZATIONS = (None, "auto", "sigmoid")
MULTICLASS_NORMALIZATIONS = (None, "auto", "softmax")
MULTICLASS_MODES = ("crammer-singer", "one-vs-all", "weston-watkins")
TASKS = ("binary", "multiclass", "multilabel")


# --------------------------------------------------------------------------------------------------- arguments
def check_bool(name: str, value: Any) -> None:
    """Require a plain bool."""
    if not isinstance(value, bool):
        raise TypeError(f"Expected `{name}` to be a bool, but got {value!r} of type {type(value).__name__}.")


def check_margin(margin: Any) -> None:
    """Require a finite real number > 0."""
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
        raise TypeError(f"Expected `margin` to be a float > 0, but got {margin!r} of type {type(margin).__name__}.")
    if not math.isfinite(margin) or margin <= 0:
        raise ValueError(f"Expected `margin` to be a finite float > 0, but got {margin!r}.")


def check_ignore_index(ignore_index: Any) -> None:
    """Require None or an int."""
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(
            f"Expected `ignore_index` to be None or an int, but got {ignore_index!r} of type "
            f"{type(ignore_index).__name__}."
        )


def check_choice(name: str, value: Any, allowed: Sequence[Any]) -> None:
    """Require ``value`` to be one of ``allowed``."""
    if not any(value is a or (isinstance(value, str) and value == a) for a in allowed):
        raise ValueError(f"Expected `{name}` to be one of {tuple(allowed)}, but got {value!r}.")


def check_count(name: str, value: Any, minimum: int = 2) -> None:
    """Require an int >= ``minimum`` (used for ``num_classes`` and ``num_labels``)."""
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(
            f"Expected `{name}` to be an int >= {minimum}, but got {value!r} of type {type(value).__name__}."
        )
    if value < minimum:
        raise ValueError(f"Expected `{name}` to be an int >= {minimum}, but got {value}.")


def check_binary_args(squared: Any, ignore_index: Any, validate_args: Any, margin: Any, normalization: Any) -> None:
    """Check the constructor arguments of the binary hinge loss."""
    check_bool("squared", squared)
    check_ignore_index(ignore_index)
    check_bool("validate_args", validate_args)
    check_margin(margin)
    check_choice("normalization", normalization, BINARY_NORMALIZATIONS)


def check_multiclass_args(
    num_classes: Any,
    squared: Any,
    multiclass_mode: Any,
    ignore_index: Any,
    validate_args: Any,
    margin: Any,
    normalization: Any,
) -> None:
    """Check the constructor arguments of the multiclass hinge loss."""
    check_count("num_classes", num_classes)
    check_bool("squared", squared)
    check_choice("multiclass_mode", multiclass_mode, MULTICLASS_MODES)
    check_ignore_index(ignore_index)
    check_bool("validate_args", validate_args)
    check_margin(margin)
    check_choice("normalization", normalization, MULTICLASS_NORMALIZATIONS)


# ----------------------------------------------------------------------------------------------- tensors: cheap
def check_tensor(name: str, value: Any) -> None:
    """Require a torch.Tensor."""
    if not isinstance(value, Tensor):
        raise TypeError(f"Expected `{name}` to be a torch.Tensor, but got {type(value).__name__}.")


def check_float_preds(preds: Any, name: str = "preds") -> None:
    """Require a floating-point tensor of scores."""
    check_tensor(name, preds)
    if not preds.is_floating_point():
        raise TypeError(
            f"Expected `{name}` to be a floating-point tensor of scores, but got dtype {preds.dtype}. "
            f"Convert it with `{name}.float()` if the integers are meant as scores."
        )


def check_target_dtype(target: Any, name: str = "target") -> None:
    """Require an integer, bool or floating-point target (float targets must hold whole numbers)."""
    check_tensor(name, target)
    if target.is_complex():
        raise TypeError(f"Expected `{name}` to be an integer, bool or float tensor, but got dtype {target.dtype}.")


def check_same_device(**tensors: Tensor | None) -> None:
    """Require every given tensor on one device."""
    present = {k: v for k, v in tensors.items() if v is not None}
    devices = {v.device for v in present.values()}
    if len(devices) > 1:
        found = ", ".join(f"`{k}` on {v.device}" for k, v in present.items())
        raise ValueError(f"Expected all inputs on the same device, but got {found}.")


def check_same_shape(preds: Tensor, target: Tensor) -> None:
    """Require ``preds`` and ``target`` of one shape."""
    if preds.shape != target.shape:
        raise ValueError(
            f"Expected `preds` and `target` to have the same shape, but got {tuple(preds.shape)} and "
            f"{tuple(target.shape)}."
        )


def check_weight_shape(sample_weight: Any, target_shape: torch.Size) -> None:
    """Require a weight tensor shaped like the target, or ``(N,)`` with one weight per sample."""
    check_tensor("sample_weight", sample_weight)
    if sample_weight.is_complex() or sample_weight.dtype == torch.bool:
        raise TypeError(f"Expected `sample_weight` to be a real-valued tensor, but got dtype {sample_weight.dtype}.")
    per_sample = len(target_shape) >= 1 and tuple(sample_weight.shape) == (target_shape[0],)
    if sample_weight.shape != target_shape and not per_sample:
        expected = f"{tuple(target_shape)}"
        if len(target_shape) > 1:
            expected += f" or ({target_shape[0]},)"
        raise ValueError(
            f"Expected `sample_weight` to have shape {expected} (the target's shape, or one weight per sample), "
            f"but got {tuple(sample_weight.shape)}."
        )


# ------------------------------------------------------------------------------------- tensors: values (syncs)
Extrema = tuple[float, float] | None


def read_extrema(*tensors: Tensor | None) -> list[Extrema]:
    """The ``(min, max)`` of each tensor, all read back to the host in one transfer.

    A NaN anywhere in a floating-point tensor makes both its minimum and maximum NaN. None and empty tensors give
    None. This is the only synchronisation the fast value checks need: one ``aminmax`` pass per tensor, no
    temporaries, then one small copy to the host. On the CPU the passes run on one thread (see
    :func:`~hingemetrics.functional._common.on_one_thread`).
    """
    present = [t for t in tensors if t is not None and t.numel()]
    if not present:
        return [None] * len(tensors)
    stacked = on_one_thread(
        lambda: torch.stack([torch.stack(aminmax(t)).to(torch.float64) for t in present]), present[0].device
    )
    pairs = iter(stacked.tolist())
    extrema: list[Extrema] = []
    for t in tensors:
        if t is not None and t.numel():
            low, high = next(pairs)
            extrema.append((low, high))
        else:
            extrema.append(None)
    return extrema


class _LastScores(threading.local):
    """The scores that this thread's last value check read, and their extrema, for the update that follows it."""

    def __init__(self) -> None:
        self.scores: weakref.ref[Tensor] | None = None
        self.version = -1
        self.extrema: Extrema = None


_LAST_SCORES = _LastScores()


def _remember_scores(preds: Tensor, extrema: Extrema) -> None:
    _LAST_SCORES.scores, _LAST_SCORES.version, _LAST_SCORES.extrema = weakref.ref(preds), preds._version, extrema


def recall_score_extrema(preds: Tensor) -> Extrema:
    """The ``(min, max)`` of ``preds`` if this thread's last value check read this very tensor, unchanged since.

    An update that follows its value check can then decide ``normalization="auto"`` on the host, with no second
    pass over the scores. The answer is given once; a different tensor, one changed in place (its version
    counter moved) or one already asked about gives None, and so does anything under ``torch.compile``.
    """
    if is_compiling():
        return None
    last = _LAST_SCORES
    seen, version, extrema = last.scores, last.version, last.extrema
    last.scores = None
    if seen is None or seen() is not preds or preds._version != version:
        return None
    return extrema


def _finite(extrema: Extrema) -> bool:
    return extrema is None or (math.isfinite(extrema[0]) and math.isfinite(extrema[1]))


def _within(extrema: Extrema, low: float, high: float) -> bool:
    """Whether every value lies in [low, high]; False when the extrema are NaN."""
    return extrema is None or (extrema[0] >= low and extrema[1] <= high)


def check_finite(name: str, value: Tensor) -> None:
    """Require no NaN or infinity (reads the data back to the host)."""
    if value.is_floating_point() and not _finite(read_extrema(value)[0]):
        _raise_not_finite(name, value)


def _raise_not_finite(name: str, value: Tensor) -> None:
    bad = value[~torch.isfinite(value)].flatten()[0].item()
    raise ValueError(f"Expected `{name}` to hold only finite values, but found {bad}.")


def check_weight_values(sample_weight: Tensor) -> None:
    """Require finite, non-negative weights."""
    _check_weight_extrema(sample_weight, read_extrema(sample_weight)[0])


def _check_weight_extrema(sample_weight: Tensor, extrema: Extrema) -> None:
    if not _finite(extrema):
        _raise_not_finite("sample_weight", sample_weight)
    if not _within(extrema, 0, math.inf):
        bad = sample_weight[sample_weight < 0].flatten()[0].item()
        raise ValueError(f"Expected `sample_weight` to be non-negative, but found {bad}.")


def check_integral(name: str, target: Tensor) -> None:
    """Require a float target to hold whole numbers only."""
    if target.is_floating_point() and target.numel():
        frac = target != torch.round(target)
        if bool(frac.any()):
            bad = target[frac].flatten()[0].item()
            raise ValueError(f"Expected `{name}` to hold whole-number labels, but found {bad}.")


def _labels_and_fractions(target: Tensor, ignore_index: int | None, fill: int) -> tuple[Tensor, Tensor | None]:
    """The target with ``ignore_index`` replaced by an allowed ``fill``, and its fractional parts if it is float."""
    labels = target if ignore_index is None else torch.where(target == ignore_index, fill, target)
    return labels, torch.frac(labels) if labels.is_floating_point() else None


def check_binary_values(preds: Tensor, target: Tensor, sample_weight: Tensor | None, ignore_index: int | None) -> None:
    """Every value check of a binary batch (finite scores, labels, weights), with one read back to the host.

    The checks compare minima and maxima; only a batch that fails one is looked at again, element by element, to
    name the offending values. Labels in {-1, 1} cost a second read, for the zeros that would mix conventions.
    """
    labels, fractions = (None, None) if target.dtype == torch.bool else _labels_and_fractions(target, ignore_index, 1)
    scores, kept, fraction, weights = read_extrema(preds, labels, fractions, sample_weight)
    if not _finite(scores):
        _raise_not_finite("preds", preds)
    _remember_scores(preds, scores)
    if labels is not None:
        ok = _within(kept, -1, 1) and _within(fraction, 0, 0)
        if ok and kept is not None and kept[0] < 0:  # {-1, 1}: a 0 would mix the two conventions
            ok = not bool((labels == 0).any())
        if not ok:
            check_binary_target_values(target, ignore_index)
    if sample_weight is not None:
        _check_weight_extrema(sample_weight, weights)


def check_class_values(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    num_classes: int,
    ignore_index: int | None,
    explain_one_hot: Callable[[Tensor], None] | None = None,
) -> None:
    """Every value check of a multiclass batch (finite scores, targets, weights), with one read back to the host.

    Index targets must lie in [0, num_classes - 1] apart from ``ignore_index``. With ``explain_one_hot`` the target
    is one-hot ``(N, C, ...)``: 0 and 1 with exactly one 1 along dimension 1; a target that is not is handed to
    ``explain_one_hot``, which raises with the offending row. Only a failing batch is looked at element by element.
    """
    if explain_one_hot is not None:
        labels, fractions = _labels_and_fractions(target, None, 0)
        per_row = target.sum(1) if target.dim() > 1 else target.sum().reshape(1)
        high = 1
    else:
        labels, fractions = _labels_and_fractions(target, ignore_index, 0)
        per_row = None
        high = num_classes - 1
    scores, kept, fraction, rows, weights = read_extrema(preds, labels, fractions, per_row, sample_weight)
    if not _finite(scores):
        _raise_not_finite("preds", preds)
    _remember_scores(preds, scores)
    labels_ok = _within(kept, 0, high) and _within(fraction, 0, 0) and _within(rows, 1, 1)
    if not labels_ok:
        if explain_one_hot is not None:
            explain_one_hot(target)
        else:
            check_class_target_values(target, num_classes, ignore_index, "class")
    if sample_weight is not None:
        _check_weight_extrema(sample_weight, weights)


def check_binary_target_values(target: Tensor, ignore_index: int | None) -> None:
    """Require labels in {0, 1} or {-1, 1} (bool is fine); a value equal to ``ignore_index`` is skipped."""
    if target.dtype == torch.bool or target.numel() == 0:
        return
    check_integral("target", target)
    kept = target if ignore_index is None else target[target != ignore_index]
    present = torch.unique(kept).tolist()
    allowed = {-1, 0, 1}
    unexpected = [v for v in present if v not in allowed]
    if unexpected:
        extra = "" if ignore_index is None else f" (or `ignore_index`={ignore_index})"
        raise ValueError(
            f"Expected `target` to hold binary labels in {{0, 1}} or {{-1, 1}}{extra}, but found "
            f"{_fmt_values(unexpected)}."
        )
    if 0 in present and -1 in present:
        raise ValueError(
            "Expected `target` to use one label convention, {0, 1} or {-1, 1}, but found both 0 and -1. "
            "Map the negatives to one value, or pass the value to skip as `ignore_index`."
        )


def check_class_target_values(target: Tensor, num_classes: int, ignore_index: int | None, name: str) -> None:
    """Require class indices in [0, num_classes - 1], apart from ``ignore_index``."""
    if target.numel() == 0:
        return
    check_integral("target", target)
    bad = (target < 0) | (target >= num_classes)
    if ignore_index is not None:
        bad &= target != ignore_index
    if bool(bad.any()):
        found = torch.unique(target[bad]).tolist()
        extra = "" if ignore_index is None else f" (or `ignore_index`={ignore_index})"
        raise ValueError(
            f"Expected `target` to hold {name} indices in [0, {num_classes - 1}]{extra}, but found "
            f"{_fmt_values(found)}."
        )


def _fmt_values(values: Sequence[float]) -> str:
    shown = [int(v) if float(v).is_integer() else v for v in values[:5]]
    more = "" if len(values) <= 5 else f" and {len(values) - 5} more"
    return ", ".join(str(v) for v in shown) + more

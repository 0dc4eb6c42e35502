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
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor

from hingemetrics._compat import aminmax
from hingemetrics.functional._common import Block, combine_extrema, extrema, index_blocks, take

__all__: list[str] = []

BINARY_NORMALIZATIONS = (None, "auto", "sigmoid")
MULTICLASS_NORMALIZATIONS = (None, "auto", "softmax")
MULTICLASS_MODES = ("crammer-singer", "one-vs-all", "weston-watkins", "categorical")
TASKS = ("binary", "multiclass", "multilabel")


# --------------------------------------------------------------------------------------------------- arguments
def check_bool(name: str, value: Any) -> None:
    """Require a plain bool."""
    if not isinstance(value, bool):
        raise TypeError(f"Expected `{name}` to be a bool, but got {value!r} of type {type(value).__name__}.")


def check_margin(margin: Any, positive: bool = False) -> None:
    """Require a finite real number (> 0 with ``positive``).

    A hinge loss takes any finite margin, as torch.nn's margin losses do: 0 is the perceptron loss, a negative
    margin forgives violations up to ``|m|``. NaN and infinity are refused: every loss would be NaN or infinite.
    """
    wanted = "a finite float > 0" if positive else "a finite real number"
    if isinstance(margin, bool) or not isinstance(margin, numbers.Real):
        kind = "a float > 0" if positive else "a real number"
        raise TypeError(f"Expected `margin` to be {kind}, but got {margin!r} of type {type(margin).__name__}.")
    if not math.isfinite(margin) or (positive and margin <= 0):
        raise ValueError(f"Expected `margin` to be {wanted}, but got {margin!r}.")


def check_class_weight_task(class_weight: Any, task: str) -> None:
    """Refuse ``class_weight`` for a task other than multiclass, where no class picks a weight."""
    if class_weight is not None and task != "multiclass":
        raise ValueError(
            f"Expected `class_weight` only with task='multiclass' (one weight per class), but got it with "
            f"task={task!r}."
        )


def check_class_weight(class_weight: Any, num_classes: int, read_values: bool) -> Tensor | None:
    """Require None, or ``(C,)`` class weights (a real tensor or a sequence of numbers); return them as float64.

    A tensor keeps its device. Its values (finite, non-negative) are read only with ``read_values``: reading a
    tensor on an accelerator synchronises with it. A sequence lives on the host, so its values are always checked.
    """
    if class_weight is None:
        return None
    expected = f"None, a ({num_classes},) tensor or a sequence of {num_classes} non-negative numbers"
    if isinstance(class_weight, Tensor):
        if class_weight.is_complex() or class_weight.dtype == torch.bool:
            raise TypeError(
                f"Expected `class_weight` to be {expected}, but got a tensor of dtype {class_weight.dtype}."
            )
        weights = class_weight.to(torch.float64)
    elif isinstance(class_weight, Sequence) and not isinstance(class_weight, str):
        bad = [w for w in class_weight if isinstance(w, bool) or not isinstance(w, numbers.Real)]
        if bad:
            raise TypeError(
                f"Expected `class_weight` to be {expected}, but got a {type(class_weight).__name__} holding "
                f"{bad[0]!r} of type {type(bad[0]).__name__}."
            )
        # on the host, whatever the default device: the numbers are host data
        weights = torch.tensor([float(w) for w in class_weight], dtype=torch.float64, device="cpu")
        read_values = True
    else:
        raise TypeError(f"Expected `class_weight` to be {expected}, but got {type(class_weight).__name__}.")
    if tuple(weights.shape) != (num_classes,):
        raise ValueError(
            f"Expected `class_weight` to have shape ({num_classes},) (one weight per class, `num_classes`="
            f"{num_classes}), but got {tuple(weights.shape)}."
        )
    if read_values:
        if weights.device.type == "meta":
            raise ValueError("Expected `class_weight` to hold values to check, but got a meta tensor.")
        if not bool(torch.isfinite(weights).all()):
            raise_not_finite("class_weight", weights)
        if bool((weights < 0).any()):
            raise ValueError(f"Expected `class_weight` to be non-negative, but found {weights[weights < 0][0].item()}.")
    return weights


def check_ignore_index(ignore_index: Any) -> None:
    """Require None or an int in the int64 range (a target tensor can hold no larger integer)."""
    if ignore_index is not None and (isinstance(ignore_index, bool) or not isinstance(ignore_index, int)):
        raise TypeError(
            f"Expected `ignore_index` to be None or an int, but got {ignore_index!r} of type "
            f"{type(ignore_index).__name__}."
        )
    if ignore_index is not None and not -(2**63) <= ignore_index < 2**63:
        raise ValueError(
            f"Expected `ignore_index` to be None or an int in the int64 range [-2**63, 2**63 - 1], but got "
            f"{ignore_index}."
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


def check_ignore_index_fits(ignore_index: int | None, target: Tensor) -> None:
    """Require ``ignore_index`` to be a value that ``target``'s dtype holds exactly.

    torch compares an integer tensor with a Python int in the tensor's dtype, so a value out of its range wraps
    around (``-100`` equals ``156`` in uint8) and a float target rounds it: either would skip the wrong elements.
    A bool target is compared in int64, where every ``ignore_index`` fits. Reads only the dtype.
    """
    if ignore_index is None or target.dtype == torch.bool:
        return
    if target.is_floating_point():
        digits = round(-math.log2(torch.finfo(target.dtype).eps)) + 1  # significant bits, the implicit one included
        magnitude = abs(ignore_index)
        exact = magnitude == 0 or (magnitude >> ((magnitude & -magnitude).bit_length() - 1)).bit_length() <= digits
        if exact and magnitude <= torch.finfo(target.dtype).max:
            return
        held = f"integers that {target.dtype} holds exactly (up to 2**{digits} in magnitude)"
    else:
        info = torch.iinfo(target.dtype)
        if info.min <= ignore_index <= info.max:
            return
        held = f"[{info.min}, {info.max}]"
    raise ValueError(
        f"Expected `ignore_index` to be a value of the target's dtype {target.dtype}, in {held}, but got "
        f"{ignore_index}. Pass the target in a wider dtype (e.g. `target.long()`) or another `ignore_index`."
    )


def refuse_meta(validate_args: bool, preds: Tensor) -> None:
    """Refuse ``validate_args=True`` on meta tensors, which hold no values for the value checks to read.

    The cheap checks have already required every input on one device, so ``preds`` stands for them all.
    """
    if validate_args and preds.device.type == "meta":
        raise ValueError(
            "Expected inputs that hold values for `validate_args=True`, which reads them back to check them, but "
            "got meta tensors (shapes without data). Pass `validate_args=False` to run on meta tensors: types, "
            "shapes and devices are still checked."
        )


# ------------------------------------------------------------------------------------- tensors: values (syncs)
Extrema = tuple[float, float] | None


def read_extrema(*pairs: Tensor | None) -> list[Extrema]:
    """Read ``(2,)`` ``[min, max]`` tensors (see :func:`value_range`) back to the host, all in one transfer.

    None (an absent or empty tensor) stays None. This is the only synchronisation the fast value checks need: one
    pass per tensor that builds no full-size temporary, then one small copy to the host.
    """
    present = [pair for pair in pairs if pair is not None]
    if not present:
        return [None] * len(pairs)
    values = iter(torch.stack(present).tolist())
    extrema: list[Extrema] = []
    for pair in pairs:
        if pair is None:
            extrema.append(None)
        else:
            low, high = next(values)
            extrema.append((low, high))
    return extrema


def value_range(tensor: Tensor | None) -> Tensor | None:
    """``[min, max]`` of a tensor as a ``(2,)`` float64 tensor on its device, or None for an absent or empty one.

    NaN anywhere makes both NaN. No temporary of the tensor's size is made, whatever its layout.
    """
    return None if tensor is None or tensor.numel() == 0 else extrema(tensor)


def finite(extrema: Extrema) -> bool:
    return extrema is None or (math.isfinite(extrema[0]) and math.isfinite(extrema[1]))


def within(extrema: Extrema, low: float, high: float) -> bool:
    """Whether every value lies in [low, high]; False when the extrema are NaN."""
    return extrema is None or (extrema[0] >= low and extrema[1] <= high)


def raise_not_finite(name: str, value: Tensor) -> None:
    bad = value[~torch.isfinite(value)].flatten()[0].item()
    raise ValueError(f"Expected `{name}` to hold only finite values, but found {bad}.")


def _check_weight_extrema(sample_weight: Tensor, extrema: Extrema) -> None:
    if not finite(extrema):
        raise_not_finite("sample_weight", sample_weight)
    if not within(extrema, 0, math.inf):
        bad = sample_weight[sample_weight < 0].flatten()[0].item()
        raise ValueError(f"Expected `sample_weight` to be non-negative, but found {bad}.")


def check_integral(name: str, target: Tensor) -> None:
    """Require a float target to hold whole numbers only."""
    if target.is_floating_point() and target.numel():
        frac = target != torch.round(target)
        if bool(frac.any()):
            bad = target[frac].flatten()[0].item()
            raise ValueError(f"Expected `{name}` to hold whole-number labels, but found {bad}.")


def label_ranges(target: Tensor, ignore_index: int | None, fill: int) -> tuple[Tensor | None, Tensor | None]:
    """``[min, max]`` of the target with ``ignore_index`` replaced by ``fill``, and of its fractional parts.

    Both are ``(2,)`` float64 tensors on the device: None for an empty target, and no fractional parts (None) for
    an integer one. Integer targets without ``ignore_index`` take one pass with no temporary; otherwise the
    replacement and the fractional parts are made one chunk at a time.
    """
    if target.numel() == 0:
        return None, None
    floating = target.is_floating_point()
    if ignore_index is None and not floating:
        return extrema(target), None
    if target.dim() == 0:
        target = target.reshape(1)

    def ranges(block: Block) -> Tensor:
        labels = take(target, block, False)
        if ignore_index is not None:
            labels = torch.where(labels == ignore_index, fill, labels)
        kept = torch.stack(aminmax(labels))
        if floating:
            kept = torch.cat([kept, torch.stack(aminmax(torch.frac(labels)))])
        return kept.to(torch.float64)

    parts = torch.stack([ranges(block) for block in index_blocks(target.shape, 1, target.device)])
    low, high = parts[:, 0::2].amin(0), parts[:, 1::2].amax(0)
    kept = torch.stack([low[0], high[0]])
    return kept, torch.stack([low[1], high[1]]) if floating else None


def _row_sum_range(target: Tensor) -> Tensor | None:
    """``[min, max]`` of the sums of a one-hot ``(N, C, ...)`` target along dimension 1, one chunk at a time.

    A ``(C,)`` target has one sum. None for an empty target.
    """
    if target.numel() == 0:
        return None
    if target.dim() == 1:
        return extrema(target.sum().reshape(1))
    index_shape = target.shape[:1] + target.shape[2:]
    blocks = index_blocks(index_shape, target.shape[1], target.device)
    return combine_extrema([extrema(take(target, block, True).sum(1)) for block in blocks])


def check_binary_values(
    preds: Tensor, target: Tensor, sample_weight: Tensor | None, ignore_index: int | None
) -> Extrema:
    """Every value check of a binary batch (finite scores, labels, weights), with one read back to the host.

    The checks compare minima and maxima; only a batch that fails one is looked at again, element by element, to
    name the offending values. Labels in {-1, 1} cost a second read, for the zeros that would mix conventions.

    Returns:
        The ``(min, max)`` of ``preds`` that the check read (None for an empty batch), for the caller to pass on
        to the update (see :func:`~hingemetrics.functional._common.settle_auto`).
    """
    kept_range, fraction_range = (None, None) if target.dtype == torch.bool else label_ranges(target, ignore_index, 1)
    scores, kept, fraction, weights = read_extrema(
        value_range(preds), kept_range, fraction_range, value_range(sample_weight)
    )
    if not finite(scores):
        raise_not_finite("preds", preds)
    if kept_range is not None:
        ok = within(kept, -1, 1) and within(fraction, 0, 0)
        if ok and kept is not None and kept[0] < 0 and ignore_index != 0:
            # {-1, 1}: a 0 would mix the two conventions (counting needs no temporary; ignored values are not 0)
            ok = int(torch.count_nonzero(target)) == target.numel()
        if not ok:
            check_binary_target_values(target, ignore_index)
    if sample_weight is not None:
        _check_weight_extrema(sample_weight, weights)
    return scores


def check_class_values(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    num_classes: int,
    ignore_index: int | None,
    explain_one_hot: Callable[[Tensor], None] | None = None,
) -> Extrema:
    """Every value check of a multiclass batch (finite scores, targets, weights), with one read back to the host.

    Index targets must lie in [0, num_classes - 1] apart from ``ignore_index``. With ``explain_one_hot`` the target
    is one-hot ``(N, C, ...)``: 0 and 1 with exactly one 1 along dimension 1; a target that is not is handed to
    ``explain_one_hot``, which raises with the offending row. Only a failing batch is looked at element by element.

    Returns:
        The ``(min, max)`` of ``preds`` that the check read (None for an empty batch).
    """
    if explain_one_hot is not None:
        kept_range, fraction_range = label_ranges(target, None, 0)
        rows_range = _row_sum_range(target)
        high = 1
    else:
        kept_range, fraction_range = label_ranges(target, ignore_index, 0)
        rows_range = None
        high = num_classes - 1
    scores, kept, fraction, rows, weights = read_extrema(
        value_range(preds), kept_range, fraction_range, rows_range, value_range(sample_weight)
    )
    if not finite(scores):
        raise_not_finite("preds", preds)
    labels_ok = within(kept, 0, high) and within(fraction, 0, 0) and within(rows, 1, 1)
    if not labels_ok:
        if explain_one_hot is not None:
            explain_one_hot(target)
        else:
            check_class_target_values(target, num_classes, ignore_index, "class")
    if sample_weight is not None:
        _check_weight_extrema(sample_weight, weights)
    return scores


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

"""The dtype of the summed states: float64 through module casts, lower only by an explicit ``set_dtype``.

A metric's states are sums that grow with every batch, so their precision bounds the precision of the result. A
module cast (``parent.to(torch.bfloat16)``, ``parent.half()``, ...) is meant for weights and activations; here it
moves the states to the new device but leaves their dtype alone. These helpers decide, for one cast function and
one state, what the state becomes; they take everything they need as arguments.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import NamedTuple

import torch
from torch import Tensor

__all__ = ["StatePrecisionWarning", "state_dtype_for"]

#: Device types without float64 tensors: the states fall back to float32 there.
NO_FLOAT64_DEVICES = frozenset({"mps"})

#: What each narrower state dtype costs, in the words of the warnings.
PRECISION_COST = {
    torch.float32: (
        "float32 keeps 24 significant bits (about 7 decimal digits): a count of unit weights stops being exact past "
        "2**24 = 16,777,216, and every batch added to a large sum is rounded to about 1e-7 of it"
    ),
    torch.float16: (
        "float16 keeps 11 significant bits (about 3 decimal digits) and overflows to inf past 65504: a sum stops "
        "growing by 1 at 2048, and 1e5 unit weights sum to inf, after which the mean reads 0 or nan"
    ),
    torch.bfloat16: (
        "bfloat16 keeps 8 significant bits (about 2 decimal digits): a sum stops growing by 1 at 256, so a mean "
        "over a long stream drifts far from the truth (10,000 batches of one 0.7 loss each read 0.5)"
    ),
}


class StatePrecisionWarning(UserWarning):
    """A metric keeps its sums in a dtype narrower than float64, or a cast called on it left them as they were."""


def state_dtype_for(device: torch.device | str, dtype: torch.dtype = torch.float64) -> torch.dtype:
    """The dtype that a summed state asked to be ``dtype`` takes on ``device``.

    float64 where the device has it; float32 on a device without float64 (MPS). Any other dtype is kept.

    Example:
        >>> import torch
        >>> state_dtype_for("cpu"), state_dtype_for("mps"), state_dtype_for("mps", torch.float16)
        (torch.float64, torch.float32, torch.float16)
    """
    if dtype == torch.float64 and torch.device(device).type in NO_FLOAT64_DEVICES:
        return torch.float32
    return dtype


def as_dtype(dst_type: torch.dtype | str) -> torch.dtype:
    """A dtype from a dtype or its name: ``"torch.float16"``, or a tensor type as ``Tensor.type`` takes it.

    ``"torch.HalfTensor"`` and ``"torch.cuda.HalfTensor"`` both give float16; nothing is allocated or moved.
    """
    if isinstance(dst_type, torch.dtype):
        return dst_type
    found: object = None
    if isinstance(dst_type, str) and dst_type.startswith("torch."):
        found = torch
        for part in dst_type.split(".")[1:]:
            found = getattr(found, part, None)
    dtype = found if isinstance(found, torch.dtype) else getattr(found, "dtype", None)
    if not isinstance(dtype, torch.dtype):
        raise TypeError(
            f"Expected `dst_type` to be a torch.dtype or the name of a tensor type or dtype, but got {dst_type!r}."
        )
    return dtype


def precision_cost(dtype: torch.dtype) -> str:
    """The sentence that says what keeping sums in ``dtype`` costs."""
    return PRECISION_COST.get(dtype, f"{dtype} is not float64, so the sums lose precision")


class CastPlan(NamedTuple):
    """What one module cast function does: the device it moves tensors to, and the dtype it casts floats to."""

    device: torch.device
    float_dtype: torch.dtype | None  # None: the function keeps every dtype (a move, ``share_memory_``, ...)
    empty: bool = False  # ``Module.to_empty``'s function, which allocates memory without copying the values


def plan_of(fn: Callable[[Tensor], Tensor], device: torch.device) -> CastPlan:
    """Find out what ``fn`` does by applying it to two empty float tensors (of two dtypes) on ``device``."""
    wide, narrow = (fn(torch.zeros(0, dtype=d, device=device)) for d in (torch.float32, torch.float16))
    casts = wide.dtype != torch.float32 or narrow.dtype != torch.float16
    empty = "Module.to_empty" in getattr(fn, "__qualname__", "")
    return CastPlan(wide.device, wide.dtype if casts else None, empty)


def state_fn(fn: Callable[[Tensor], Tensor], plan: CastPlan, wanted: torch.dtype | None) -> Callable[[Tensor], Tensor]:
    """``fn`` as it applies to a metric's tensors: it moves them, and gives floats the dtype ``wanted``.

    ``wanted`` is the metric's state dtype for its states (float64 unless ``set_dtype`` chose another), or None for
    the other tensors (the cached results), which keep their own dtype. Either way a float64 tensor moved to a
    device without float64 becomes float32 there, and comes back as ``wanted`` when it moves back.

    ``to_empty`` allocates memory for parameters that are initialised next; a metric's state has no such second
    step, so here a tensor with values moves with them, and one on the meta device (which holds none) becomes
    zeros: an empty state, never whatever memory was allocated.
    """
    step = functools.partial(Tensor.to, device=plan.device) if plan.empty else fn

    def moved(t: Tensor) -> Tensor:
        if not t.is_floating_point():
            return step(t) if plan.float_dtype is None or wanted is not None else t.to(plan.device)
        fn_dtype = t.dtype if plan.float_dtype is None else plan.float_dtype
        want = state_dtype_for(plan.device, t.dtype if wanted is None else wanted)
        if t.device.type == "meta" and plan.device.type != "meta":
            return torch.zeros(t.shape, dtype=want, device=plan.device)
        if want == fn_dtype:
            return step(t)
        if plan.float_dtype is not None:  # a cast that must not change this tensor's dtype: move it only
            return t.to(device=plan.device, dtype=want)
        if want.itemsize < t.dtype.itemsize:  # narrow first: the destination may lack the wider dtype (MPS)
            return step(t.to(want))
        return step(t).to(want)  # widen after the move: the source may lack the wider dtype

    return moved

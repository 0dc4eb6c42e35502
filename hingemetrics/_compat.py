"""What differs between the torch releases that hingemetrics supports (``torch>=2.1``), answered in one place.

Each shim is chosen from what the installed torch offers (once, at import, where that is cheap), and the rest of
the package calls it without asking itself. The choice is made by a small function that takes what it looks at
as an argument, so that every branch can be tested on any torch.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Any, TypeVar

import torch
import torch._utils
from lightning_utilities import apply_to_collection
from torch import Tensor

__all__: list[str] = []

T = TypeVar("T")


def _pick_is_compiling(compiler: object) -> Callable[[], bool]:
    """``compiler.is_compiling`` where it exists (torch 2.3 on), else ``torch._utils.is_compiling`` (2.1 and 2.2).

    Both answer False when called eagerly, and ``torch.compile`` replaces either call by the constant True while it
    traces, so a branch on the answer costs no graph break, even under ``fullgraph=True``. The older one is not
    ``torch._dynamo.is_compiling``, which torch 2.1 treats the same way, because that would import the compiler
    with hingemetrics.
    """
    found = getattr(compiler, "is_compiling", None)
    if callable(found):
        return found
    return torch._utils.is_compiling


#: Whether ``torch.compile`` is tracing the caller (True) or it runs eagerly (False).
is_compiling: Callable[[], bool] = _pick_is_compiling(torch.compiler)


def _has_cpu_half_aminmax() -> bool:
    """Whether this torch has a CPU ``aminmax`` kernel for float16 (torch 2.1 has none)."""
    try:
        torch.aminmax(torch.zeros(1, dtype=torch.float16))
    except RuntimeError:
        return False
    return True


#: Elements of ``t`` converted to float32 at a time where float16 has no CPU ``aminmax`` (128 KiB of float32).
_HALF_CHUNK = 1 << 15


def _aminmax(t: Tensor, cpu_half_kernel: bool) -> tuple[Tensor, Tensor]:
    """``torch.aminmax(t)``; without ``cpu_half_kernel``, a float16 CPU tensor is reduced in float32 chunks.

    Every float16 value, NaN and infinities included, is exact in float32, so the minimum and maximum are the same
    values; they come back as float16. Only one chunk is converted at a time, so the temporary stays small.
    """
    if not cpu_half_kernel and t.dtype == torch.float16 and t.device.type == "cpu" and t.numel():
        parts = [torch.stack(torch.aminmax(part.float())) for part in t.reshape(-1).split(_HALF_CHUNK)]
        both = torch.stack(parts)
        return both[:, 0].amin().half(), both[:, 1].amax().half()
    low, high = torch.aminmax(t)
    return low, high


_CPU_HALF_AMINMAX = _has_cpu_half_aminmax()


def aminmax(t: Tensor) -> tuple[Tensor, Tensor]:
    """``(min, max)`` of every element of ``t``, a NaN in either when ``t`` holds one, in ``t``'s dtype."""
    return _aminmax(t, _CPU_HALF_AMINMAX)


def _pick_start_ns(event_type: type) -> Callable[[Any], int]:
    """How to read a profiler event's start in nanoseconds: ``start_ns()``, or ``start_us()`` where torch lacks it.

    ``event_type`` is the class of the profiler's events (``torch._C._autograd._KinetoEvent``).
    """
    if hasattr(event_type, "start_ns"):
        return lambda event: int(event.start_ns())
    return lambda event: int(event.start_us()) * 1000


#: The start of one of ``prof.profiler.kineto_results.events()`` in nanoseconds (to the microsecond on torch 2.1).
event_start_ns: Callable[[Any], int] = _pick_start_ns(torch._C._autograd._KinetoEvent)


def _pick_group_name(group_type: type) -> Callable[[Any], str]:
    """How to read a process group's name: its ``group_name`` (newer torch), else c10d's record (torch 2.1)."""
    if hasattr(group_type, "group_name"):
        return lambda group: str(group.group_name)
    from torch.distributed import distributed_c10d

    return lambda group: str(distributed_c10d._get_process_group_name(group))


def group_name(group: Any) -> str:
    """The name of a process group, the same on every rank of it (``"0"`` for the default group)."""
    import torch.distributed as dist

    return _pick_group_name(dist.ProcessGroup)(group)


def own_storage(obj: T) -> T:
    """``obj`` with every tensor in it (in dicts, lists, tuples...) replaced by a copy with a storage of its own.

    For the arguments of a spawned process: on torch 2.1, a spawn whose arguments share a storage (two slices of one
    tensor) fails with ``ValueError: bad value(s) in fds_to_keep``.
    """
    copied: T = apply_to_collection(obj, Tensor, lambda t: t.detach().clone())
    return copied

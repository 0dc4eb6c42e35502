"""Arithmetic shared by every hinge loss: score preparation, weighting, chunking and the summed statistics.

Nothing here reads tensor data back to the host or branches on it, so these helpers are safe inside
``torch.compile(fullgraph=True)`` and issue no device synchronisation. Decisions that depend on the data (the
``"auto"`` normalization) stay on the device as 0-d tensors and are applied with ``torch.where``, unless the value
checks have already read what they need (:func:`settle_auto`).

Large batches are reduced in chunks of rows: every temporary then has the size of a chunk, not of the batch, so
the memory an update needs beyond its inputs stays small, and on the CPU the temporaries stay in cache and are
reused by the allocator instead of being mapped afresh for every operation.
"""

from __future__ import annotations

import functools
from collections.abc import Callable
from typing import TypeVar

import torch
from torch import Tensor

from hingemetrics._compat import is_compiling

__all__: list[str] = []

STAT_DTYPE = torch.float64
T = TypeVar("T")

#: Elements of one chunk on the CPU (128 KiB of float32): the temporaries of element-wise work stay in cache.
CPU_CHUNK_ELEMENTS = 1 << 15
#: Elements of one chunk on an accelerator, where chunks only bound the memory and each launch has a cost.
DEVICE_CHUNK_ELEMENTS = 1 << 22


def as_scores(preds: Tensor) -> Tensor:
    """Half and bfloat16 scores are computed in float32; float32 and float64 stay as they are."""
    if preds.dtype in (torch.float16, torch.bfloat16):
        return preds.float()
    return preds


def chunk_rows(num_rows: int, row_size: int, device: torch.device, cpu_scale: int = 1) -> list[slice]:
    """Split ``num_rows`` rows of ``row_size`` elements into slices of about one chunk each.

    Args:
        num_rows: the rows to split (the first dimension).
        row_size: elements per row.
        device: where the work runs; chunks are larger on accelerators.
        cpu_scale: chunks this many times larger on the CPU, for work with more steps per chunk.

    Under ``torch.compile`` the whole batch is one chunk: the compiler fuses the arithmetic itself. An empty batch
    has no chunk at all.
    """
    if is_compiling():
        step = max(num_rows, 1)
    else:
        budget = CPU_CHUNK_ELEMENTS * cpu_scale if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS
        step = max(1, budget // max(row_size, 1))
    return [slice(start, start + step) for start in range(0, num_rows, step)]


def map_chunks(
    fn: Callable[[slice], T], num_rows: int, row_size: int, device: torch.device, cpu_scale: int = 1
) -> list[T]:
    """``fn(rows)`` for every chunk of :func:`chunk_rows`, in order, on one CPU thread (see :func:`on_one_thread`)."""
    return on_one_thread(lambda: [fn(rows) for rows in chunk_rows(num_rows, row_size, device, cpu_scale)], device)


def on_one_thread(fn: Callable[[], T], device: torch.device) -> T:
    """``fn()`` with torch set to one CPU thread (for CPU work outside ``torch.compile``); the setting comes back.

    Every operation that torch spreads over its threads waits for all of them. On a machine whose cores are also
    busy with other work (data-loader workers, other jobs), a thread that is not running stalls each such step,
    and a loop of many small steps takes many times longer than the same work on one thread (ten times longer, on
    two cores with one other busy process). One thread per step costs little, since a chunk is small and stays in
    cache. torch's thread setting is put back when ``fn`` returns or raises.
    """
    threads = _claim_one_thread(device)
    try:
        return fn()
    finally:
        if threads is not None:
            torch.set_num_threads(threads)


def _claim_one_thread(device: torch.device) -> int | None:
    """Set torch to one CPU thread for a chunk loop; returns the setting to restore, or None if nothing changed.

    Only with torch's OpenMP backend (the usual one), where the setting can change at any time; the native thread
    pool warns when its size changes after use, so there the threads are left as they are.
    """
    if device.type != "cpu" or is_compiling() or not _openmp_backend():
        return None
    threads = torch.get_num_threads()
    if threads == 1:
        return None
    torch.set_num_threads(1)
    return threads


@functools.cache
def _openmp_backend() -> bool:
    return "parallel backend: OpenMP" in torch.__config__.parallel_info()


def sum_over_chunks(
    chunk_sums: Callable[[slice], tuple[Tensor, Tensor | None]],
    num_rows: int,
    row_size: int,
    device: torch.device,
    loss_shape: torch.Size,
    weight_shape: torch.Size | None,
    cpu_scale: int = 1,
) -> tuple[Tensor, Tensor]:
    """Add up ``chunk_sums(rows) -> (loss sum, weight sum)`` over the chunks of a batch (see :func:`map_chunks`).

    With ``weight_shape`` None every row counts once: the chunks give no weight sum (None) and the weight total is
    ``num_rows``. An empty batch gives zeros of ``loss_shape`` and ``weight_shape``.
    """
    parts = map_chunks(chunk_sums, num_rows, row_size, device, cpu_scale)
    loss_sum = add_up([loss for loss, _ in parts], loss_shape, device)
    if weight_shape is None:
        return loss_sum, torch.full((), num_rows, dtype=STAT_DTYPE, device=device)
    return loss_sum, add_up([weight for _, weight in parts if weight is not None], weight_shape, device)


def add_up(parts: list[Tensor], shape: torch.Size, device: torch.device) -> Tensor:
    """The sum of the per-chunk ``parts`` (all of one shape, or broadcastable to ``shape``); zeros without any."""
    if not parts:
        return torch.zeros(shape, dtype=STAT_DTYPE, device=device)
    if len(parts) == 1:
        return parts[0]
    return torch.stack(torch.broadcast_tensors(*parts)).sum(0)


def outside_unit_interval(scores: Tensor, valid: Tensor | None) -> Tensor:
    """Whether any counted score lies outside [0, 1] (or is NaN), as a 0-d bool tensor on the scores' device.

    Args:
        scores: ``(M, ...)`` scores.
        valid: mask of the elements that count, shaped like ``scores`` or like its leading dimensions (then it
            covers whole rows), or None when all count.

    Without a mask this is one pass (``aminmax``) with no temporary; with one, the ignored elements are replaced by
    0.5 one chunk at a time.
    """

    def inside(part: Tensor) -> Tensor:
        low, high = torch.aminmax(part)
        return (low >= 0) & (high <= 1)  # False for NaN, which torchmetrics also squashes

    if valid is None:
        flags = [on_one_thread(lambda: inside(scores), scores.device)] if scores.numel() else []
    else:
        valid = valid.reshape(valid.shape + (1,) * (scores.dim() - valid.dim()))
        flags = map_chunks(
            lambda rows: inside(torch.where(valid[rows], scores[rows], 0.5)),
            scores.shape[0],
            scores[:1].numel(),
            scores.device,
        )
    if not flags:
        return torch.zeros((), dtype=torch.bool, device=scores.device)
    return ~(flags[0] if len(flags) == 1 else torch.stack(flags).all())


def squash(scores: Tensor, normalization: str | None, outside: Tensor | None, dim: int | None) -> Tensor:
    """Apply the normalization to a chunk of scores, given the batch's ``"auto"`` decision ``outside``.

    Args:
        scores: ``(B,)`` or ``(B, K)`` binary scores (``dim=None``: sigmoid), or ``(B, C)`` class scores (``dim=1``:
            softmax over the classes).
        normalization: ``None``, ``"sigmoid"``, ``"softmax"`` or ``"auto"``.
        outside: the 0-d result of :func:`outside_unit_interval` over the whole batch (``"auto"`` only).
        dim: None for sigmoid, the class dimension for softmax.
    """
    if normalization is None:
        return scores
    squashed = scores.sigmoid() if dim is None else softmax_rows(scores)
    if normalization != "auto":
        return squashed
    assert outside is not None, "normalization='auto' needs the batch's decision"
    return torch.where(outside, squashed, scores)


def softmax_rows(scores: Tensor) -> Tensor:
    """Softmax over dimension 1 of ``(B, C)`` scores.

    torch's softmax kernel handles one row at a time, which is slow on the CPU for a handful of classes; there the
    same arithmetic is written as whole-chunk operations (row sums as a matrix-vector product).
    """
    if scores.shape[1] >= 64 or scores.device.type != "cpu":
        return scores.softmax(1)
    exps = (scores - scores.amax(1, keepdim=True)).exp()
    return exps / row_sums(exps).unsqueeze(1)


def row_sums(values: Tensor) -> Tensor:
    """Sum ``(B, K)`` over dimension 1, as a matrix-vector product (fast for any K on every device)."""
    return values @ torch.ones(values.shape[1], dtype=values.dtype, device=values.device)


def settle_auto(normalization: str | None, extrema: tuple[float, float] | None, applies: str) -> str | None:
    """``normalization`` with ``"auto"`` decided on the host, when the scores' finite extrema are already known.

    ``applies`` is what ``"auto"`` applies (``"sigmoid"`` or ``"softmax"``); the result is that, or None for scores
    all within [0, 1]. Any other normalization, or unknown extrema, comes back unchanged.
    """
    if normalization != "auto" or extrema is None:
        return normalization
    low, high = extrema
    return None if low >= 0 and high <= 1 else applies


def per_element_weights(sample_weight: Tensor | None, target_shape: torch.Size) -> Tensor | None:
    """Broadcast ``(N,)`` per-sample weights to the target's shape and flatten them to ``(M,)``."""
    if sample_weight is None:
        return None
    if sample_weight.shape != target_shape:  # one weight per sample: spread it over the extra dimensions
        sample_weight = sample_weight.reshape((-1,) + (1,) * (len(target_shape) - 1)).expand(target_shape)
    return sample_weight.reshape(-1)


def weighted_sums(loss: Tensor, valid: Tensor | None, weight: Tensor | None) -> tuple[Tensor, Tensor]:
    """Reduce element losses to ``(sum of w * loss, sum of w)`` in float64.

    Args:
        loss: ``(M,)`` or ``(M, K)`` element losses (K classes or labels, each summed separately).
        valid: ``(M,)`` or ``(M, K)`` mask of elements that count (False where the target is ``ignore_index``),
            or None when all count.
        weight: ``(M,)`` or ``(M, K)`` non-negative weights, or None for unit weights.

    Returns:
        The loss sum, shaped like ``loss`` without its first dimension, and the weight total: a scalar when neither
        ``valid`` nor ``weight`` varies along K, else one per column.
    """
    if weight is not None and weight.dim() < loss.dim():
        weight = weight.unsqueeze(-1)
    if valid is not None:
        if valid.dim() < loss.dim():
            valid = valid.unsqueeze(-1)
        # where(), not a product: the loss of an ignored element may be anything, NaN included
        loss = torch.where(valid, loss, 0.0)
        weight = valid.to(loss.dtype) if weight is None else torch.where(valid, weight.to(loss.dtype), 0.0)
    if weight is None:
        return column_sums(loss), torch.full((), loss.shape[0], dtype=STAT_DTYPE, device=loss.device)
    if loss.dim() > 1 and weight.shape[-1] == 1:  # one weight per row, the same for every column
        row_weight = weight.squeeze(-1)
        return column_sums(loss, row_weight), row_weight.sum(dtype=STAT_DTYPE)
    return column_sums(loss * weight), column_sums(weight)


def column_sums(values: Tensor, row_weight: Tensor | None = None) -> Tensor:
    """Sum ``(M,)`` or ``(M, K)`` values over dimension 0 in float64, each row weighted by ``row_weight`` if given.

    For ``(M, K)`` this is a float64 matrix-vector product: faster than a reduction over the rows, for any K.
    """
    if values.dim() == 1:
        return (values if row_weight is None else values * row_weight).sum(dtype=STAT_DTYPE)
    if row_weight is None:
        row_weight = torch.ones(values.shape[0], dtype=STAT_DTYPE, device=values.device)
    return row_weight.to(STAT_DTYPE) @ values.to(STAT_DTYPE)


def hinge_compute(loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
    """The weighted mean: ``loss_sum / weight_sum``; nan when nothing was counted."""
    return loss_sum / weight_sum


def hinge_transform_(margin_term: Tensor, squared: bool) -> Tensor:
    """``max(0, margin_term)``, squared when asked, in place: for a ``margin_term`` the caller has just made and owns.

    Writing over the fresh temporary spares an allocation per step; autograd supports both in-place steps.
    """
    loss = margin_term.clamp_min_(0)
    return loss.square_() if squared else loss

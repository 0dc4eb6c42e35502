"""Arithmetic shared by every hinge loss: score preparation, weighting, chunking and the summed statistics.

Nothing here reads tensor data back to the host or branches on it, so these helpers are safe inside
``torch.compile(fullgraph=True)`` and issue no device synchronisation. Decisions that depend on the data (the
``"auto"`` normalization) stay on the device as 0-d tensors and are applied with ``torch.where``, unless the value
checks have already read what they need (:func:`settle_auto`).

Large batches are reduced in chunks (:func:`index_blocks`): blocks of samples, or of positions within a sample,
each taken from the inputs as they lie in memory, whatever their layout (``(N, C, H, W)``, channels-last, a
transposed view), and brought into ``(B,)`` or ``(B, K)`` rows one chunk at a time (:func:`take`). Everything an
update makes, the conversion of half-precision scores, the labels as int64, the ``ignore_index`` mask, a weight
spread over a sample's positions, has the size of a chunk, not of the batch: the memory an update needs beyond its
inputs stays small, and on the CPU the temporaries stay in cache and are reused by the allocator instead of being
mapped afresh for every operation.

On the CPU a chunk holds fewer elements than torch's grain size for splitting an operation over its threads, so
each step of a chunk runs on the calling thread alone. torch's own rule makes that choice; the thread setting is
never touched. A loop of small steps that each waited for every thread would stall whenever another process keeps
a core busy (data-loader workers, other jobs), once per step.

Precision: element losses are computed in float32 where float32 holds them (float32 or half scores, a margin of
moderate size, not squared), and in float64 wherever float32 could overflow, underflow or lose the margin
(:func:`loss_dtype`): a squared loss, a margin beyond float32's range, the Crammer-Singer difference of two raw
scores. A weight multiplies a loss in float64, and every sum is float64 (:func:`weighted_sums`).
"""

from __future__ import annotations

import functools
import itertools
import math
from collections.abc import Callable, Sequence
from typing import NamedTuple, TypeVar

import torch
from torch import Tensor

from hingemetrics._compat import aminmax, is_compiling

__all__: list[str] = []

STAT_DTYPE = torch.float64
T = TypeVar("T")
Block = tuple[slice, ...]


class RowFold(NamedTuple):
    """A reduction of one batch's per-sample rows, in progress.

    ``add(rows, piece)`` folds in the rows (one tensor per state, ``(n, *state_shape)``) of the samples ``piece``
    of the batch; ``total()`` ends the fold and gives its sums, a tuple of tensors whose shapes do not depend on
    the pieces. Work that does not depend on the rows themselves (counts, the share of rows that are one row
    expanded over the samples) is left to ``total``, once per batch, not done once per chunk.
    """

    add: Callable[[tuple[Tensor, ...], slice], None]
    total: Callable[[], tuple[Tensor, ...]]


#: ``start(samples, device) -> RowFold``: what a wrapper does with a batch's per-sample rows. A kernel calls it once
#: with the batch's number of samples, folds in the rows of each of its chunks as they are made, then takes the
#: total (:func:`reduce_over_blocks`), so that the rows of the whole batch are never held at once.
RowReduction = Callable[[int, torch.device], RowFold]

#: torch's grain size on the CPU: an operation on fewer elements runs on the calling thread, not split over threads.
TORCH_GRAIN_SIZE = 32768
#: Elements of one chunk on the CPU, just below the grain size: every step of a chunk runs on one thread, with no
#: wait for the others, and its temporaries (128 KiB of float32) stay in cache.
CPU_CHUNK_ELEMENTS = TORCH_GRAIN_SIZE - 1
#: Elements of one chunk on an accelerator, where chunks only bound the memory and each launch has a cost.
DEVICE_CHUNK_ELEMENTS = 1 << 22
#: Margins whose magnitude lies in this range (or 0) combine with any finite float32 score in float32 arithmetic
#: without overflow (``|m| + |s|`` stays below float32's maximum) and without rounding the margin to a subnormal.
FLOAT32_MARGINS = (2.0**-126, 2.0**100)


def as_scores(preds: Tensor) -> Tensor:
    """Half and bfloat16 scores are computed in float32; float32 and float64 stay as they are.

    Called on one chunk at a time, so the float32 copy has the size of a chunk.
    """
    if preds.dtype in (torch.float16, torch.bfloat16):
        return preds.float()
    return preds


def margin_fits_float32(margin: float) -> bool:
    """Whether ``margin`` combines with float32 scores in float32 without overflow or a subnormal margin."""
    low, high = FLOAT32_MARGINS
    return margin == 0 or low <= abs(margin) <= high


def loss_dtype(scores_dtype: torch.dtype, margin: float, widen: bool) -> torch.dtype:
    """The dtype in which element losses are computed.

    float64 for float64 scores, when ``widen`` (a squared loss, whose square float32 could overflow or flush to
    zero, or a difference of two raw scores) or when the margin does not fit float32
    (:func:`margin_fits_float32`); float32 otherwise (half-precision scores included).

    It never depends on the weights: a weight multiplies a loss in float64 (:func:`weighted_sums`), so unit
    weights give exactly the losses, and the sums, of no weights.
    """
    if scores_dtype == torch.float64 or widen or not margin_fits_float32(margin):
        return STAT_DTYPE
    return torch.float32


# ------------------------------------------------------------------------------------------------- chunking
def _budget(device: torch.device) -> int:
    return CPU_CHUNK_ELEMENTS if device.type == "cpu" else DEVICE_CHUNK_ELEMENTS


def index_blocks(index_shape: Sequence[int], row_size: int, device: torch.device) -> list[Block]:
    """Cover the index space ``(N, D1, ..., Dk)`` with blocks of at most one chunk of elements each, in order.

    Each index position holds ``row_size`` elements (the classes or labels of a position, or 1). A block is a
    tuple of slices over the leading index dimensions (the dimensions after them are whole): blocks of whole
    samples when a sample fits in a chunk; otherwise single samples, split along their first position dimension,
    and so on, down to single positions. A block selects a piece of any tensor laid out over the index space,
    whatever its strides, without a copy (:func:`take`).

    Under ``torch.compile`` the whole index space is one block. An empty index space has no block.
    """
    shape = tuple(index_shape)
    if math.prod(shape) == 0:
        return []
    if is_compiling():
        return [(slice(None),)]
    budget = _budget(device)
    depth, unit = 0, row_size * math.prod(shape[1:])
    while unit > budget and depth < len(shape) - 1:
        depth += 1
        unit //= shape[depth]
    step = max(1, budget // unit)
    outer = itertools.product(*(range(n) for n in shape[:depth]))
    return [
        (*(slice(i, i + 1) for i in index), slice(start, start + step))
        for index in outer
        for start in range(0, shape[depth], step)
    ]


def take(x: Tensor, block: Block, classes: bool) -> Tensor:
    """The elements of ``x`` in ``block``, as ``(B,)`` or, with ``classes``, as ``(B, K)``.

    ``x`` lies over the index space, or with ``classes`` is ``(N, K, ...)`` with its K classes or labels on
    dimension 1. A view where the layout allows one; otherwise a copy of the block alone.
    """
    if classes:
        part = x[(block[0], slice(None), *block[1:])]
        return part if part.dim() == 2 else part.movedim(1, -1).reshape(-1, x.shape[1])
    part = x[block]
    return part if part.dim() == 1 else part.reshape(-1)


def take_weight(weight: Tensor, block: Block, index_shape: Sequence[int], classes: bool = False) -> Tensor:
    """The weights of ``block``: ``(B,)`` per position, or ``(B, K)`` for weights shaped ``(N, K, ...)``.

    ``(N,)`` weights (one per sample) are spread over the block's positions; the copy has the size of the block.
    """
    if weight.dim() > 1 or len(index_shape) == 1:
        return take(weight, block, classes and weight.dim() > len(index_shape))
    spread = weight.reshape((-1,) + (1,) * (len(index_shape) - 1)).expand(tuple(index_shape))  # a view: no copy
    return spread[block].reshape(-1)


def map_blocks(fn: Callable[[Block], T], blocks: Sequence[Block]) -> list[T]:
    """``fn(block)`` for every block, in order."""
    return [fn(block) for block in blocks]


def sum_over_blocks(
    block_sums: Callable[[Block], tuple[Tensor, Tensor | None]],
    blocks: Sequence[Block],
    count: int,
    device: torch.device,
    loss_shape: torch.Size,
    weight_shape: torch.Size | None,
    samples: int | None = None,
) -> tuple[Tensor, Tensor]:
    """Add up ``block_sums(block) -> (loss sum, weight sum)`` over the blocks of a batch.

    With ``weight_shape`` None every position counts once: the blocks give no weight sum (None) and the weight
    total is ``count``, the number of positions. An empty batch gives zeros of ``loss_shape`` and ``weight_shape``.

    With ``samples`` (the per-sample statistics), ``block_sums`` reduces each sample of its block on its own
    (:func:`weighted_sums` with :func:`samples_in`) and the result is the rows of the batch's ``samples`` samples,
    ``(samples, *loss_shape)`` and ``(samples, ...)``, the blocks' rows in order; a sample larger than a chunk,
    split over several blocks, adds up their partial rows. A batch without elements gives zero rows.
    """
    if samples is not None:
        return _rows_over_blocks(map_blocks(block_sums, blocks), blocks, samples, device, loss_shape, weight_shape)
    parts = map_blocks(block_sums, blocks)
    loss_sum = add_up([loss for loss, _ in parts], loss_shape, device)
    if weight_shape is None:
        return loss_sum, torch.full((), count, dtype=STAT_DTYPE, device=device)
    return loss_sum, add_up([weight for _, weight in parts if weight is not None], weight_shape, device)


def reduce_over_blocks(
    block_rows: Callable[[Block], tuple[Tensor, Tensor | None]],
    blocks: Sequence[Block],
    samples: int,
    device: torch.device,
    loss_shape: torch.Size,
    weight_shape: torch.Size | None,
    reduction: RowReduction,
) -> tuple[Tensor, ...]:
    """What ``reduction`` makes of a batch's per-sample rows, folded in block by block (see :class:`RowFold`).

    ``block_rows`` is a kernel's ``block_sums`` in its per-sample form (see :func:`sum_over_blocks`). Each block
    of whole samples is folded in as soon as its rows are made, while they are in cache, so the rows of the whole
    batch are never held; samples split over several blocks are joined first and folded in as one piece.
    """
    fold = reduction(samples, device)

    def rows_of(block: Block) -> tuple[Tensor, Tensor]:
        loss, weight = block_rows(block)
        assert weight is not None, "per-sample rows always carry their weights"
        return loss, weight

    if blocks and len(blocks[0]) == 1:  # blocks of whole samples
        for block in blocks:
            fold.add(rows_of(block), block[0])
    else:
        joined = _rows_over_blocks(map_blocks(block_rows, blocks), blocks, samples, device, loss_shape, weight_shape)
        fold.add(joined, slice(0, samples))
    return fold.total()


def fold_rows(reduction: RowReduction, rows: Sequence[Tensor]) -> tuple[Tensor, ...]:
    """The total of ``reduction``'s fold of a whole batch's per-sample ``rows``, folded in as one piece."""
    samples = rows[0].shape[0]
    fold = reduction(samples, rows[0].device)
    fold.add(tuple(rows), slice(0, samples))
    return fold.total()


def reduce_through(transform: Callable[..., tuple[Tensor, ...]], reduction: RowReduction) -> RowReduction:
    """``reduction`` of ``transform(*rows)``: for a kernel whose rows become the metric's state rows so."""

    def start(samples: int, device: torch.device) -> RowFold:
        fold = reduction(samples, device)
        return RowFold(lambda rows, piece: fold.add(transform(*rows), piece), fold.total)

    return start


def _rows_over_blocks(
    parts: list[tuple[Tensor, Tensor | None]],
    blocks: Sequence[Block],
    samples: int,
    device: torch.device,
    loss_shape: torch.Size,
    weight_shape: torch.Size | None,
) -> tuple[Tensor, Tensor]:
    """The per-sample rows of a batch from its blocks' rows (see :func:`sum_over_blocks`)."""
    if not parts:
        weight_rows = torch.zeros((samples, *(weight_shape or ())), dtype=STAT_DTYPE, device=device)
        return torch.zeros((samples, *loss_shape), dtype=STAT_DTYPE, device=device), weight_rows
    losses = torch.cat([loss for loss, _ in parts])
    weights = torch.cat([weight for _, weight in parts if weight is not None])
    if losses.shape[0] == samples:  # blocks of whole samples
        return losses, weights
    owner = torch.tensor([block[0].start for block in blocks], device=device)  # one sample per block
    return (
        losses.new_zeros((samples, *losses.shape[1:])).index_add_(0, owner, losses),
        weights.new_zeros((samples, *weights.shape[1:])).index_add_(0, owner, weights),
    )


def samples_in(block: Block, samples: int | None) -> int | None:
    """How many of a batch's ``samples`` samples ``block`` covers, its length along dimension 0; None stays None."""
    return None if samples is None else len(range(samples)[block[0]])


def add_up(parts: list[Tensor], shape: torch.Size, device: torch.device) -> Tensor:
    """The sum of the per-chunk ``parts`` (all of one shape, or broadcastable to ``shape``); zeros without any."""
    if not parts:
        return torch.zeros(shape, dtype=STAT_DTYPE, device=device)
    if len(parts) == 1:
        return parts[0]
    return torch.stack(torch.broadcast_tensors(*parts)).sum(0)


# ------------------------------------------------------------------------------------------------- extrema
def in_memory_order(x: Tensor) -> Tensor | None:
    """``x`` with its dimensions permuted into the order they lie in memory, if that makes it contiguous.

    Every dense layout (contiguous, channels-last, a transposed view) has one; an expanded or strided-with-gaps
    tensor has none (None). A whole-tensor reduction of the permuted view reads the memory in order and makes no
    copy, where torch would copy a permuted input first.
    """
    strides = x.stride()
    order = sorted(range(x.dim()), key=lambda d: -strides[d])
    dense = x.permute(order)
    return dense if dense.is_contiguous() else None


def extrema(x: Tensor) -> Tensor:
    """``[min, max]`` of a non-empty tensor as a ``(2,)`` float64 tensor on its device, without a host read.

    NaN anywhere makes both NaN. A dense tensor is reduced in one pass with no temporary; any other layout one
    chunk at a time, so no temporary exceeds a chunk.
    """
    dense = in_memory_order(x)
    if dense is not None:
        return torch.stack(aminmax(dense)).to(STAT_DTYPE)
    flat = [torch.stack(aminmax(take(x, b, False))) for b in index_blocks(x.shape or (1,), 1, x.device)]
    return combine_extrema([part.to(STAT_DTYPE) for part in flat])


def combine_extrema(parts: Sequence[Tensor]) -> Tensor:
    """The ``[min, max]`` of several ``(2,)`` ``[min, max]`` tensors (NaN propagates)."""
    if len(parts) == 1:
        return parts[0]
    stacked = torch.stack(list(parts))
    return torch.stack([stacked[:, 0].min(), stacked[:, 1].max()])


def inside_unit_interval(pair: Tensor) -> Tensor:
    """Whether ``[min, max]`` lies within [0, 1], as a 0-d bool tensor.

    False for NaN, which torchmetrics also squashes.
    """
    return (pair[0] >= 0) & (pair[1] <= 1)


def outside_unit_interval(
    scores: Tensor, blocks: Sequence[Block] | None = None, counted: Callable[[Block], Tensor] | None = None
) -> Tensor:
    """Whether any counted score lies outside [0, 1] (or is NaN), as a 0-d bool tensor on the scores' device.

    Args:
        scores: the scores, any shape.
        blocks: the chunks of the batch (:func:`index_blocks`); only needed with ``counted``.
        counted: ``counted(block)`` gives the block's scores with those that do not count replaced by 0.5, or None
            when all count.

    Without ``counted`` this is one pass over the scores (:func:`extrema`); with it, one chunk at a time.
    """
    if counted is None:
        if scores.numel() == 0:
            return torch.zeros((), dtype=torch.bool, device=scores.device)
        return ~inside_unit_interval(extrema(scores))
    assert blocks is not None, "counted scores come by blocks"
    flags = map_blocks(lambda block: inside_unit_interval(torch.stack(aminmax(counted(block)))), blocks)
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

    On the CPU the arithmetic is written as whole-chunk operations: torch's softmax kernel handles one row at a time
    (slow for a handful of classes) and splits the rows over its threads with a grain of its own, below the size
    of a chunk, so every chunk would wait for every thread.
    """
    if scores.device.type != "cpu":
        return scores.softmax(1)
    exps = exp_of_nonpositive(scores - scores.amax(1, keepdim=True))
    return exps / row_sums(exps).unsqueeze(1)


def exp_of_nonpositive(values: Tensor) -> Tensor:
    r"""``exp(values)`` for values <= 0 (scores minus their row's maximum), by a route that suits chunks.

    On the CPU torch's ``exp`` (and ``log``) split their work over the threads from 2,048 elements on, far below
    the size of a chunk, so every chunk would wait for every thread. The logistic function splits only from the
    usual grain size, and for :math:`t \le 0`

    .. math::
        e^t = \frac{\sigma(t)}{1 - \sigma(t)}

    with :math:`1 - \sigma(t) \in [1/2, 1)`, so no digits cancel: a few units in the last place, as ``exp``.
    Below about -88 (float32) both give 0.
    """
    if values.device.type != "cpu":
        return values.exp()
    positive = values.sigmoid()
    return positive / (1 - positive)  # not in place: the logistic's gradient reads its output


def row_sums(values: Tensor) -> Tensor:
    """Sum ``(B, K)`` over dimension 1.

    On an accelerator this is a matrix-vector product (fast for any K). On the CPU it is torch's own reduction,
    which keeps a chunk on the calling thread; the BLAS library behind a matrix-vector product runs a thread pool
    of its own, which waits for every core at each step and stalls when another process keeps one busy. Either
    way, ``torch.mv`` and never ``@``: autocast runs ``matmul`` in its lower precision (bfloat16 on the CPU).
    """
    if values.device.type == "cpu":
        return values.sum(1)
    return torch.mv(values, torch.ones(values.shape[1], dtype=values.dtype, device=values.device))


def settle_auto(normalization: str | None, extrema: tuple[float, float] | None, applies: str) -> str | None:
    """``normalization`` with ``"auto"`` decided on the host, when the scores' finite extrema are already known.

    ``applies`` is what ``"auto"`` applies (``"sigmoid"`` or ``"softmax"``); the result is that, or None for scores
    all within [0, 1]. Any other normalization, or unknown extrema, comes back unchanged.
    """
    if normalization != "auto" or extrema is None:
        return normalization
    low, high = extrema
    return None if low >= 0 and high <= 1 else applies


# ------------------------------------------------------------------------------------------------ the sums
def weighted_sums(
    loss: Tensor, valid: Tensor | None, weight: Tensor | None, samples: int | None = None
) -> tuple[Tensor, Tensor]:
    """Reduce a chunk's element losses to ``(sum of w * loss, sum of w)`` in float64.

    Args:
        loss: ``(B,)`` or ``(B, K)`` element losses (K classes or labels, each summed separately).
        valid: ``(B,)`` or ``(B, K)`` mask of elements that count (False where the target is ``ignore_index``),
            or None when all count.
        weight: ``(B,)`` or ``(B, K)`` non-negative weights of any float dtype, or None for unit weights.
        samples: None to sum over all B rows; for the per-sample statistics, the number N of samples whose
            positions the B rows are, ``B / N`` consecutive rows each (:func:`sample_sums`).

    Returns:
        The loss sum, shaped like ``loss`` without its first dimension, and the weight total: a scalar when neither
        ``valid`` nor ``weight`` varies along K, else one per column. With ``samples``, each gets a leading
        ``(N,)`` dimension: one sum per sample. Without ``weight`` and ``valid`` every sample has the same weight
        total, so those rows are one value expanded over the samples (stride 0, see :func:`is_constant`).

    Every product ``w * loss`` and every sum is float64, and no weight is ever cast to a narrower dtype: the
    weighted mean does not depend on the scale of the weights, for any scale their dtype can hold.
    """
    total = column_sums if samples is None else functools.partial(sample_sums, samples=samples)
    if valid is not None:
        # where(), not a product: the loss of an ignored element may be anything, NaN included
        loss = torch.where(valid if valid.dim() == loss.dim() else valid.unsqueeze(-1), loss, 0.0)
    if weight is None and valid is None:
        count = loss.shape[0] if samples is None else loss.shape[0] // samples
        lead = () if samples is None else (samples,)
        # every sample's weight total is the same: one value, read as a row per sample (a view, stride 0)
        return total(loss), torch.full((), count, dtype=STAT_DTYPE, device=loss.device).expand(lead)
    by_row = loss.dim() == 1 or all(t is None or t.dim() == 1 for t in (valid, weight))
    if by_row:  # one weight per row, the same for every column
        if weight is None:
            assert valid is not None
            return total(loss), total(valid)
        row_weight = weight if valid is None else torch.where(valid, weight, 0.0)
        return total(loss, row_weight), total(row_weight)
    if weight is None:
        assert valid is not None
        return total(loss), total(valid)
    if weight.dim() < loss.dim():
        weight = weight.unsqueeze(-1)
    if valid is not None:
        weight = torch.where(valid if valid.dim() == loss.dim() else valid.unsqueeze(-1), weight, 0.0)
    if weight.shape != loss.shape:
        weight = weight.expand(loss.shape)
    return total(loss.to(STAT_DTYPE) * weight), total(weight)


def is_constant(rows: Tensor) -> bool:
    """Whether ``(n, ...)`` per-sample rows are one row expanded over the samples (stride 0 along dimension 0)."""
    return rows.dim() > 0 and rows.shape[0] > 1 and rows.stride(0) == 0


def column_sums(values: Tensor, row_weight: Tensor | None = None) -> Tensor:
    """Sum ``(B,)`` or ``(B, K)`` values over dimension 0 in float64, each row weighted by ``row_weight`` if given.

    The products are float64. For ``(B, K)`` on an accelerator this is a float64 matrix-vector product, faster than
    a reduction over the rows for any K; on the CPU it is torch's reduction, which stays on the calling thread (see
    :func:`row_sums`).
    """
    if values.dim() == 1:
        if row_weight is None:
            return values.sum(dtype=STAT_DTYPE)
        return (values.to(STAT_DTYPE) * row_weight).sum()
    if values.device.type == "cpu":
        if row_weight is None:
            return values.sum(0, dtype=STAT_DTYPE)
        return (values.to(STAT_DTYPE) * row_weight.to(STAT_DTYPE).unsqueeze(1)).sum(0)
    if row_weight is None:
        row_weight = torch.ones(values.shape[0], dtype=STAT_DTYPE, device=values.device)
    return torch.mv(values.to(STAT_DTYPE).T, row_weight.to(STAT_DTYPE))  # mv: autocast leaves it alone


def sample_sums(values: Tensor, row_weight: Tensor | None = None, *, samples: int) -> Tensor:
    """Sum ``(B,)`` or ``(B, K)`` values over each sample's rows, weighted by ``row_weight``: ``(N,)`` or ``(N, K)``.

    The B rows are the positions of ``samples`` samples, ``B / samples`` consecutive rows each (a whole batch
    taken by :func:`take`). The products and sums are float64.
    """
    values = values.to(STAT_DTYPE)
    if row_weight is not None:
        row_weight = row_weight.to(STAT_DTYPE)
        values = values * (row_weight if values.dim() == 1 else row_weight.unsqueeze(1))
    if values.shape[0] == samples:  # one row per sample: nothing to add up
        return values
    return values.reshape(samples, -1, *values.shape[1:]).sum(1)


def hinge_compute(loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
    """The weighted mean: ``loss_sum / weight_sum``; nan when nothing was counted."""
    return loss_sum / weight_sum


def hinge_transform_(margin_term: Tensor, squared: bool) -> Tensor:
    """``max(0, margin_term)``, squared when asked, in place: for a ``margin_term`` the caller has just made and owns.

    Writing over the fresh temporary spares an allocation per step; autograd supports both in-place steps. A squared
    loss is float64 (:func:`loss_dtype`), so its square neither overflows nor underflows.
    """
    loss = margin_term.clamp_min_(0)
    return loss.square_() if squared else loss

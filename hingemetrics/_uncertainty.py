r"""Error bars for every hingemetrics metric: ``ConfidenceInterval``, ``PerGroup`` and ``PairedComparison``.

Each wrapper builds on the per-sample protocol of :class:`~hingemetrics._base.SumStateMetric`: a metric's state is
a sum :math:`S = \sum_i s_i` of per-sample rows (``_sample_statistics``) and its value a differentiable function
:math:`f(S)` (``_compute_from``). The wrappers keep more sums of the same rows, so they are
:class:`~hingemetrics._base.SumStateMetric` subclasses too: every state syncs in the one ``all_reduce``, passes
the agreement check, pickles, loads from a state dict and merges. The normal interval and ``PerGroup`` hand their
sums to the metric as a fold (``_reduce_samples``): the metrics' kernels fold in each chunk's rows as they are
made, so the rows of a whole batch are never held at once, and what needs no rows is done once per batch.

* The delta method: :math:`\operatorname{Var} f(S) \approx g^\top \operatorname{Cov}(S)\, g` with
  :math:`g = \nabla f(S)` (autograd) and :math:`\operatorname{Cov}(S) \approx \frac{n}{n-1}\big(\sum_i s_i
  s_i^\top - S S^\top / n\big)`. The second moments are kept per block of state elements (see :class:`_Layout`).
* The Poisson bootstrap: every sample gets ``R`` independent Poisson(1) weights :math:`p_{ir}`; the resampled
  sums :math:`S_r = \sum_i p_{ir} s_i` are one ``(R, *state_shape)`` sum per state.
"""

from __future__ import annotations

import hashlib
import inspect
import math
import secrets
import statistics
from collections.abc import Callable, Sequence
from typing import TYPE_CHECKING, Any, NamedTuple

import torch
import torch.distributed as dist
from torch import Tensor

from hingemetrics._base import SumStateMetric
from hingemetrics.functional import _checks as C
from hingemetrics.functional._common import (
    STAT_DTYPE,
    RowFold,
    RowReduction,
    _budget,
    add_up,
    fold_rows,
    index_blocks,
    is_constant,
)

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

__all__ = ["ConfidenceInterval", "PairedComparison", "PerGroup"]

METHODS = ("normal", "bootstrap")
#: The most state elements whose full second-moment matrix the normal interval keeps (``K x K`` float64).
MAX_FULL_STATES = 256


# ------------------------------------------------------------------------------------------ argument checks
def _check_level(level: Any) -> float:
    if isinstance(level, bool) or not isinstance(level, (int, float)):
        raise TypeError(f"Expected `level` to be a float in (0, 1), but got {type(level).__name__}.")
    if not 0 < level < 1:
        raise ValueError(f"Expected `level` to be a float in (0, 1), but got {level}.")
    return float(level)


def _check_metric(metric: Any, wrapper: str) -> SumStateMetric:
    if not isinstance(metric, SumStateMetric) or isinstance(metric, (ConfidenceInterval, PairedComparison)):
        raise TypeError(
            f"Expected `metric` to be a hingemetrics metric (or a PerGroup) for {wrapper}, but got "
            f"{type(metric).__name__}."
        )
    return metric


def _z_of(level: float) -> float:
    """The two-sided normal quantile: 1.96 for 0.95."""
    return statistics.NormalDist().inv_cdf((1 + level) / 2)


# ----------------------------------------------------------------------------------------- flat state vectors
def _shapes(metric: SumStateMetric) -> list[torch.Size]:
    return [getattr(metric, name).shape for name in metric._sum_states]


def _flatten(parts: Sequence[Tensor], lead: int) -> Tensor:
    """States (or rows) with ``lead`` leading dimensions, as one ``(*lead_shape, K)`` float64 tensor."""
    return torch.cat([part.reshape((*part.shape[:lead], -1)).to(STAT_DTYPE) for part in parts], dim=-1)


def _unflatten(flat: Tensor, shapes: Sequence[torch.Size]) -> list[Tensor]:
    """``(..., K)`` back into states of ``shapes`` with the same leading dimensions."""
    pieces = flat.split([math.prod(shape) for shape in shapes], dim=-1)
    return [piece.reshape((*flat.shape[:-1], *shape)) for piece, shape in zip(pieces, shapes, strict=True)]


class _Layout(NamedTuple):
    """Which state elements each result element depends on: the blocks of the second-moment state.

    ``members`` is ``(B, J)``: the flat state indices of each block. ``block_of`` is ``(E,)``: the block of each of
    the ``E`` elements of the result, whose shape is ``result_shape``. A per-class vector (one-vs-all) gets one
    block per class (its loss sum and the weight total, J = 2); a result that reads every state element (multilabel
    ``"macro"``) one block of all K.
    """

    members: Tensor
    block_of: Tensor
    result_shape: torch.Size


def _layout_of(metric: SumStateMetric) -> _Layout:
    """Read the layout off the gradient of ``metric._compute_from`` at a generic positive point.

    Result elements that each depend on the same number J of state elements get a block each when that is smaller
    than one block of every element; otherwise one block of all K elements, up to :data:`MAX_FULL_STATES`.
    """
    shapes = _shapes(metric)
    size = sum(math.prod(shape) for shape in shapes)
    with torch.inference_mode(False), torch.enable_grad():
        point = torch.linspace(1.0, 2.0, size, dtype=STAT_DTYPE).requires_grad_()
        result = metric._compute_from(*_unflatten(point, shapes))
        supports = []
        for element in result.reshape(-1).unbind():
            (grad,) = torch.autograd.grad(element, point, retain_graph=True, allow_unused=True)
            used = [] if grad is None else grad.nonzero().reshape(-1).tolist()
            supports.append(used or [0])
    widths = {len(used) for used in supports}
    width = max(widths)
    if len(widths) == 1 and len(supports) * width**2 <= size**2 and width <= MAX_FULL_STATES:
        index = torch.tensor(supports, dtype=torch.long)
        return _Layout(index, torch.arange(len(supports)), result.shape)
    if size > MAX_FULL_STATES:
        raise ValueError(
            f"Expected a metric whose result elements each read a few state elements, or at most "
            f"{MAX_FULL_STATES} state elements in all, for method='normal', but {type(metric).__name__} has "
            f"{size} that its result mixes. Use method='bootstrap'."
        )
    return _Layout(torch.arange(size).reshape(1, size), torch.zeros(len(supports), dtype=torch.long), result.shape)


class _RowSums(NamedTuple):
    """What a wrapper adds up from a batch's flat per-sample rows (see :func:`_sum_rows`)."""

    sums: Tensor  #: ``(K,)``, or ``(G, K)`` by group
    samples: Tensor  #: ``()``, or ``(G,)``: the number of samples
    moments: Tensor | None  #: ``(B, J, J)`` or ``(G, B, J, J)``: the summed products of the rows per block
    resampled: Tensor | None  #: ``(R, K)`` or ``(R, G, K)``: the sums with the samples weighted by ``weight``


class _Pairs(NamedTuple):
    """The distinct products :math:`v_a v_b` (``a <= b``) that a layout's second moments need, and where each goes.

    ``left`` and ``right`` are ``(U,)`` flat state indices; ``entries`` is ``(B, J, J)``: the product of each entry
    of each block's moment matrix. One-vs-all with C classes needs ``3C`` entries but ``2C + 1`` distinct products.
    """

    left: Tensor
    right: Tensor
    entries: Tensor


def _pairs_of(members: Tensor) -> _Pairs:
    """The :class:`_Pairs` of a layout's ``(B, J)`` blocks (host arithmetic, once per wrapper)."""
    blocks = members.tolist()
    position: dict[tuple[int, int], int] = {}
    index = [[[position.setdefault((min(a, b), max(a, b)), len(position)) for b in row] for a in row] for row in blocks]
    left, right = zip(*position, strict=True)
    return _Pairs(torch.tensor(left), torch.tensor(right), torch.tensor(index))


def _sum_rows(
    flat_columns: Callable[[slice], Tensor],
    count: int,
    width: int,
    device: torch.device,
    *,
    groups: Tensor | None = None,
    num_groups: int | None = None,
    pairs: _Pairs | None = None,
    weight: Tensor | None = None,
) -> _RowSums:
    r"""Add up the ``count`` flat rows of a batch, ``flat_columns(piece) -> (K, n)`` one piece of rows at a time.

    The sums :math:`\sum_i v_i` (by group: of each group's rows), the sample count, with ``pairs`` (of a layout's
    blocks; grouped rows only, :func:`_moment_reduction` takes the ungrouped ones) each group's second moments
    :math:`\sum_i v_i v_i^\top` on each block, and with ``weight`` (``(N, R)``) the
    resampled sums :math:`\sum_i p_{ir} v_i`. Each piece holds at most one kernel chunk of elements
    (:func:`~hingemetrics.functional._common.index_blocks`), so, as in the metrics' own kernels, every step stays
    below torch's grain size on the CPU and runs on the calling thread. The products are float64 and elementwise;
    the bootstrap's weighted sums without groups are one float64 matrix product over the batch.
    """
    num = 0 if num_groups is None else num_groups
    lead: tuple[int, ...] = () if groups is None else (num,)
    resamples = 0 if weight is None else weight.shape[1]
    distinct = 0 if pairs is None else pairs.left.numel()
    spread_size = resamples * (width + 1) if groups is not None else 0
    row_size = max(width + (groups is not None), distinct, spread_size)
    if pairs is not None:
        assert groups is not None, "ungrouped moments come from _moment_reduction"
        left, right = pairs.left.to(device), pairs.right.to(device)
    parts: list[list[Tensor]] = []
    for piece in _pieces(count, row_size, device):
        columns = flat_columns(piece)  # (K, n): each column of the rows contiguous
        flat = columns.T
        out = []
        if groups is None:
            out.append(columns.sum(1))
        else:
            ids = groups[piece]
            with_count = torch.cat([flat, flat.new_ones((flat.shape[0], 1))], dim=1)
            out.append(with_count.new_zeros((num, width + 1)).index_add_(0, ids, with_count))
        if pairs is not None:
            # index_select and one contiguous product, not flat[:, members] and a broadcast: torch's advanced
            # indexing splits even a small piece over threads, and a broadcast over dimensions of size J is slow
            products = flat.index_select(1, left) * flat.index_select(1, right)  # (n, U)
            out.append(products.new_zeros((num, distinct)).index_add_(0, ids, products))
        if weight is not None and groups is not None:
            spread = weight[piece].unsqueeze(-1) * with_count.unsqueeze(1)  # (n, R, K + 1)
            out.append(spread.new_zeros((num, *spread.shape[1:])).index_add_(0, ids, spread))
        parts.append(out)
    shapes: list[tuple[int, ...]] = [(*lead, width + 1)] if groups is not None else [(width,)]
    if pairs is not None:
        shapes.append((*lead, distinct))
    if weight is not None and groups is not None:
        shapes.append((num, resamples, width + 1))
    totals = [add_up([part[i] for part in parts], torch.Size(shape), device) for i, shape in enumerate(shapes)]
    if groups is not None:
        grouped, *rest = totals
        totals = [grouped[:, :width], grouped[:, width], *rest]
    else:
        totals.insert(1, torch.full((), count, dtype=STAT_DTYPE, device=device))
    sums, total_count, *rest = totals
    moments = rest.pop(0)[..., pairs.entries.to(device)] if pairs is not None else None
    resampled = None
    if weight is not None and groups is not None:
        resampled = rest.pop(0).transpose(0, 1)  # (R, G, K + 1)
    elif weight is not None:  # one float64 matrix product over the whole batch (autocast leaves float64 alone)
        resampled = (flat_columns(slice(None)) @ weight).T if count else weight.new_zeros((resamples, width))
    return _RowSums(sums, total_count, moments, resampled)


class _ProductGroup(NamedTuple):
    """The distinct products between the columns of two states: ``left`` and ``right`` pick the columns.

    A picker is None for all of the state's columns in order, an ``int`` for one column (broadcast), or a ``(m,)``
    index tensor; ``where`` is ``(m,)``: the positions of the products among a layout's distinct ones.
    """

    left_state: int
    right_state: int
    left: int | Tensor | None
    right: int | Tensor | None
    where: list[int]


def _picker(columns: list[int], width: int) -> int | Tensor | None:
    if columns == list(range(width)):
        return None
    if len(set(columns)) == 1:
        return columns[0]
    return torch.tensor(columns)


def _product_groups(pairs: _Pairs, shapes: Sequence[torch.Size]) -> list[_ProductGroup]:
    """The layout's distinct products (``pairs``) grouped by the two states they read (host arithmetic, once)."""
    widths = [math.prod(shape) for shape in shapes]
    starts = [sum(widths[:i]) for i in range(len(widths))]

    def locate(flat: int) -> tuple[int, int]:
        state = max(i for i, start in enumerate(starts) if start <= flat)
        return state, flat - starts[state]

    grouped: dict[tuple[int, int], list[tuple[int, int, int]]] = {}
    for position, (a, b) in enumerate(zip(pairs.left.tolist(), pairs.right.tolist(), strict=True)):
        (sa, ca), (sb, cb) = locate(a), locate(b)
        grouped.setdefault((sa, sb), []).append((ca, cb, position))
    out = []
    for (sa, sb), items in grouped.items():
        left = _picker([ca for ca, _, _ in items], widths[sa])
        right = _picker([cb for _, cb, _ in items], widths[sb])
        if isinstance(left, int) and isinstance(right, int) and len(items) > 1:  # cannot happen for distinct pairs
            left, right = torch.tensor([ca for ca, _, _ in items]), torch.tensor([cb for _, cb, _ in items])
        out.append(_ProductGroup(sa, sb, left, right, [position for _, _, position in items]))
    return out


def _pick(columns: Tensor, picker: int | Tensor | None, dim: int = 1) -> Tensor:
    """The entries of ``columns`` along ``dim`` that a picker (see :class:`_ProductGroup`) selects."""
    if picker is None:
        return columns
    if isinstance(picker, int):
        return columns.narrow(dim, picker, 1)
    return columns.index_select(dim, picker.to(columns.device))


class _MomentPiece(NamedTuple):
    """What one piece of per-sample rows adds to the normal interval's sums (see :func:`_moment_reduction`).

    ``samples`` is the piece's number of samples. Per state: ``constant`` says whether its rows are one row
    expanded over the piece's samples, ``sums`` holds their ``(m,)`` column sums and ``first`` that one row (None
    where the rows vary). Per product group, ``products`` holds the ``(m,)`` or scalar sums of its products where
    both of its states vary; the products of a constant state need no rows and are left to :func:`_moment_total`
    (None).
    """

    samples: int
    constant: tuple[bool, ...]
    sums: list[Tensor]
    first: list[Tensor | None]
    products: list[Tensor | None]


def _flat(row: Tensor) -> Tensor:
    """``(n, m)``: the rows of one state, each flattened."""
    return row if row.dim() == 2 else row.reshape(row.shape[0], math.prod(row.shape[1:]))


def _one_row(row: Tensor) -> Tensor:
    """``(m,)``: the one row of a state whose rows are one row expanded over the samples (:func:`is_constant`)."""
    return row[:1] if row.dim() == 1 else _flat(row)[0]


def _row_pieces(tensors: Sequence[Tensor], width: int, device: torch.device) -> list[Sequence[Tensor]]:
    """``tensors`` (one row per sample) cut into pieces of at most one kernel chunk of rows of ``width`` elements.

    The tensors themselves when they fit in one chunk, as the rows of one kernel block do: no slicing then.
    """
    count = tensors[0].shape[0]
    if count * width <= _budget(device):
        return [tensors]
    return [[tensor[sub] for tensor in tensors] for sub in _pieces(count, width, device)]


def _sums_and_first(row: Tensor) -> tuple[Tensor, Tensor | None]:
    """``(m,)`` column sums of one state's float64 rows, and the one row where they are one row expanded."""
    if is_constant(row):
        first = _one_row(row)
        return first * row.shape[0], first
    if row.dim() == 1:
        return row.sum(0, keepdim=True), None
    return _flat(row).sum(0), None


def _varying_products(left: Tensor, right: Tensor, group: _ProductGroup) -> Tensor:
    """The sums over the samples of the products that ``group`` pairs of two states' varying rows.

    A dot product, a matrix-vector product or ``vecdot``: none makes the ``(n, m)`` products, and a column of one
    broadcast over the other is read in place. Scalar for one product of two vectors, else ``(m,)``.
    """
    if left.dim() == 1 and right.dim() == 1:
        return torch.dot(left, right)
    a, b = _pick(_flat(left), group.left), _pick(_flat(right), group.right)
    if a.shape[1] == 1 and b.shape[1] == 1:
        return torch.dot(a[:, 0], b[:, 0])
    if a.shape[1] == 1:
        return a[:, 0] @ b
    if b.shape[1] == 1:
        return b[:, 0] @ a
    return torch.linalg.vecdot(a, b, dim=0)


def _moment_piece(rows: Sequence[Tensor], products: Sequence[_ProductGroup]) -> _MomentPiece:
    """The :class:`_MomentPiece` of one piece of float64 rows (one tensor per state)."""
    sums, first = zip(*(_sums_and_first(row) for row in rows), strict=True)
    constant = tuple(one is not None for one in first)
    return _MomentPiece(
        rows[0].shape[0],
        constant,
        list(sums),
        list(first),
        [
            None
            if constant[g.left_state] or constant[g.right_state]
            else _varying_products(rows[g.left_state], rows[g.right_state], g)
            for g in products
        ],
    )


def _stacked(parts: Sequence[Tensor | None]) -> Tensor:
    """``(C, ...)``: the pieces' parts of one kind, which all of them have."""
    present = [part for part in parts if part is not None]
    assert len(present) == len(parts), "pieces that are constant alike have the same parts"
    return torch.stack(present)


def _moment_total(pieces: Sequence[_MomentPiece], products: Sequence[_ProductGroup]) -> tuple[Tensor, Tensor]:
    """The ``(K,)`` sums and ``(U,)`` distinct products of a batch from its pieces, once per batch.

    Pieces whose states are constant alike are stacked: a product with a constant state is that state's one row
    times the other state's sums, piece by piece (the one row differs between pieces only in principle).
    """
    alike: dict[tuple[bool, ...], list[_MomentPiece]] = {}
    for piece in pieces:
        alike.setdefault(piece.constant, []).append(piece)
    sums_parts, moment_parts = [], []
    for same in alike.values():
        constant = same[0].constant
        sums = [torch.stack([piece.sums[s] for piece in same]) for s in range(len(constant))]  # (C, m) each
        first = [_stacked([piece.first[s] for piece in same]) if constant[s] else None for s in range(len(constant))]
        moments = []
        for g, group in enumerate(products):
            left_first, right_first = first[group.left_state], first[group.right_state]
            if left_first is not None:
                moments.append((_pick(left_first, group.left) * _pick(sums[group.right_state], group.right)).sum(0))
            elif right_first is not None:
                moments.append((_pick(sums[group.left_state], group.left) * _pick(right_first, group.right)).sum(0))
            else:
                moments.append(_stacked([piece.products[g] for piece in same]).sum(0).reshape(-1))
        sums_parts.append(torch.cat([state.sum(0) for state in sums]))
        moment_parts.append(torch.cat(moments))
    device = sums_parts[0].device
    return (
        add_up(sums_parts, sums_parts[0].shape, device),
        add_up(moment_parts, moment_parts[0].shape, device),
    )


def _moment_reduction(products: Sequence[_ProductGroup]) -> RowReduction:
    r"""The sums that the normal interval adds up from per-sample rows (one tensor per state), without groups.

    The fold's total is the ``(K,)`` sums :math:`\sum_i v_i`, the number of samples and the ``(U,)`` distinct
    products :math:`\sum_i v_{ia} v_{ib}` of ``products`` (:func:`_product_groups`), in the groups' order
    (:func:`_moments` puts them in place). Each piece of rows is read state by state, at most one kernel chunk of
    elements at a time, so that each step runs on the calling thread, and the rows are never joined into one copy.
    A piece gives only what needs its rows (:func:`_moment_piece`); the rest is done once per batch
    (:func:`_moment_total`).
    """
    widest = max(len(group.where) for group in products)

    def start(samples: int, device: torch.device) -> RowFold:
        pieces: list[_MomentPiece] = []

        def add(rows: tuple[Tensor, ...], piece: slice) -> None:
            stat_rows = [row.to(STAT_DTYPE) for row in rows]  # no copy of float64 rows: an expanded row stays so
            width = max(widest, *(math.prod(row.shape[1:]) for row in rows))
            pieces.extend(_moment_piece(part, products) for part in _row_pieces(stat_rows, width, device))

        def total() -> tuple[Tensor, ...]:
            assert pieces, "a fold gets at least one piece of rows"
            sums, moments = _moment_total(pieces, products)
            count = sum(piece.samples for piece in pieces)
            return sums, torch.full((), count, dtype=STAT_DTYPE, device=device), moments

        return RowFold(add, total)

    return start


class _MomentPlan(NamedTuple):
    """What the normal interval needs to add up second moments without groups (host arithmetic, once per wrapper).

    ``products`` are a layout's distinct products grouped by the states they read (:func:`_product_groups`), the
    order in which :func:`_moment_reduction` gives them; ``entries`` is ``(B, J, J)``: where each entry of the
    blocks' moment matrices lies among them.
    """

    products: list[_ProductGroup]
    entries: Tensor


def _moment_plan(pairs: _Pairs, shapes: Sequence[torch.Size]) -> _MomentPlan:
    """The :class:`_MomentPlan` of a layout's ``pairs`` over states of ``shapes``."""
    products = _product_groups(pairs, shapes)
    order = torch.tensor([position for group in products for position in group.where], dtype=torch.long)
    inverse = torch.empty_like(order).index_copy_(0, order, torch.arange(order.numel()))
    return _MomentPlan(products, inverse[pairs.entries])


def _moments(plan: _MomentPlan, products: Tensor) -> Tensor:
    """``(B, J, J)``: the blocks' moment matrices from :func:`_moment_reduction`'s summed products."""
    return products[plan.entries.to(products.device)]


def _group_reduction(groups: Tensor, num_groups: int) -> RowReduction:
    """PerGroup's sums of per-sample rows: ``(K + 1, G)``, each group's sums of the K state columns, then its count.

    ``groups`` holds the ``(N,)`` int64 group ids of the batch, checked against its number of samples when the
    fold starts. Each piece's counts come from adding a row of ones into the groups' columns with ``index_add_``;
    each varying state's columns are added the same way, straight from the rows (no copy), into one running sum per
    state. A state whose rows are one row expanded over the samples (unweighted weight totals) is not read row by
    row: its group sums are that row times the piece's counts, one matrix product per batch.
    """

    def start(samples: int, device: torch.device) -> RowFold:
        _check_group_ids(groups, samples, device)
        ones = torch.ones((1, min(samples, _budget(device))), dtype=STAT_DTYPE, device=device)  # a chunk's count
        widths: list[int] = []
        counts: list[Tensor] = []  # (1, G) per piece
        varying: dict[int, Tensor] = {}  # state -> (W, G): the group sums of its varying rows so far
        constant: dict[int, list[tuple[Tensor, Tensor]]] = {}  # state -> (its one row, the piece's counts) per piece

        def add_piece(rows: Sequence[Tensor], ids: Tensor) -> None:
            count = ids.shape[0]
            piece_counts = torch.zeros((1, num_groups), dtype=STAT_DTYPE, device=device)
            piece_counts.index_add_(1, ids, ones if count == ones.shape[1] else ones[:, :count])
            counts.append(piece_counts)
            for state, row in enumerate(rows):
                if is_constant(row):
                    constant.setdefault(state, []).append((_one_row(row), piece_counts))
                    continue
                columns = row.unsqueeze(0) if row.dim() == 1 else _flat(row).T  # (W, n)
                if state not in varying:
                    varying[state] = torch.zeros((widths[state], num_groups), dtype=STAT_DTYPE, device=device)
                varying[state].index_add_(1, ids, columns)

        def add(rows: tuple[Tensor, ...], piece: slice) -> None:
            if not widths:
                widths.extend(math.prod(row.shape[1:]) for row in rows)
            stat_rows = [row.to(STAT_DTYPE) for row in rows]  # no copy of float64 rows: an expanded row stays so
            for *part, ids in _row_pieces([*stat_rows, groups[piece]], max(widths), device):
                add_piece(part, ids)

        def total() -> tuple[Tensor, ...]:
            assert counts, "a fold gets at least one piece of rows"
            piece_counts = torch.cat(counts)  # (C, G)
            sums = []
            for state, width in enumerate(widths):
                parts = [varying[state]] if state in varying else []
                if state in constant:
                    one_rows, their_counts = zip(*constant[state], strict=True)
                    counted = piece_counts if len(their_counts) == len(counts) else torch.cat(their_counts)
                    parts.append(torch.stack(one_rows).T @ counted)  # (W, C) @ (C, G)
                sums.append(add_up(parts, torch.Size((width, num_groups)), device))
            return (torch.cat([*sums, piece_counts.sum(0, keepdim=True)]),)

        return RowFold(add, total)

    return start


def _weight_argument(metric: SumStateMetric, sample_weight: Tensor | None) -> dict[str, Tensor]:
    """``sample_weight`` as a keyword argument for ``metric``, refused for a metric whose ``update`` takes none."""
    if sample_weight is None:
        return {}
    if "sample_weight" not in inspect.signature(metric.update).parameters:
        raise TypeError(
            f"Expected no `sample_weight` for {type(metric).__name__}, whose update takes none, but got one."
        )
    return {"sample_weight": sample_weight}


def _check_group_ids(groups: Tensor, count: int, device: torch.device) -> None:
    """``groups`` must be one id per sample of the batch (``count``), on its ``device``."""
    if tuple(groups.shape) != (count,):
        raise ValueError(
            f"Expected `groups` to have shape ({count},), one id per sample, but got {tuple(groups.shape)}."
        )
    if groups.device != device:
        raise ValueError(f"Expected `groups` on the inputs' device {device}, but got {groups.device}.")


def _pieces(count: int, width: int, device: torch.device) -> list[slice]:
    """Consecutive slices of ``count`` rows of ``width`` elements each, at most one kernel chunk per slice.

    As few slices as that allows, of about equal length (not full chunks and a small remainder).
    """
    full = [block[0] for block in index_blocks((count,), max(width, 1), device)]
    if len(full) < 2:
        return full
    step = -(-count // len(full))
    return [slice(start, min(start + step, count)) for start in range(0, count, step)]


def _flat_columns(rows: Sequence[Tensor]) -> Callable[[slice], Tensor]:
    """``piece -> (K, n)``: the rows of ``piece`` of every state, flattened, as float64 columns one above another."""

    def columns(piece: slice) -> Tensor:
        parts = [row[piece] for row in rows]
        return torch.cat([part.reshape(part.shape[0], -1).T.to(STAT_DTYPE) for part in parts], dim=0)

    return columns


def _gradients(metric: SumStateMetric, flat: Tensor, layout: _Layout) -> Tensor:
    """``(G, E, J)``: the gradient of each result element of ``metric`` at ``(G, K)`` states, on its block."""
    shapes = _shapes(metric)
    with torch.inference_mode(False), torch.enable_grad():
        point = flat.detach().clone().requires_grad_()
        result = metric._compute_from(*_unflatten(point, shapes)).reshape(flat.shape[0], -1)
        grads = []
        for element, block in enumerate(layout.block_of.tolist()):
            (grad,) = torch.autograd.grad(result[:, element].sum(), point, retain_graph=True, allow_unused=True)
            grad = torch.zeros_like(point) if grad is None else grad
            grad = grad[:, layout.members[block].to(grad.device)]
            # no standard error for a nan value (nothing counted): its gradient may read 0 where nothing is defined
            grads.append(torch.where(result[:, element].detach().isnan().unsqueeze(1), torch.nan, grad))
    return torch.stack(grads, dim=1).detach()


def delta_stderr(grads: Tensor, sums: Tensor, moments: Tensor, count: Tensor, block_of: Tensor) -> Tensor:
    r"""The delta-method standard error of each result element: ``(G, E)``.

    .. math::
        \operatorname{se}^2 = g^\top \tfrac{n}{n-1}\Big(M - \frac{S S^\top}{n}\Big) g

    Args:
        grads: ``(G, E, J)`` gradients of each result element on its block.
        sums: ``(G, B, J)`` the summed states on each block, :math:`S`.
        moments: ``(G, B, J, J)`` :math:`M = \sum_i s_i s_i^\top` on each block.
        count: ``(G,)`` the number of samples :math:`n`.
        block_of: ``(E,)`` the block of each result element.

    Returns:
        nan where fewer than two samples were seen.
    """
    n = count.reshape(-1, 1, 1, 1)
    centred = moments - sums.unsqueeze(-1) * sums.unsqueeze(-2) / n
    cov = (centred * (n / (n - 1))).index_select(1, block_of.to(moments.device))
    var = torch.einsum("gej,gejk,gek->ge", grads, cov, grads)
    var = torch.where(count.reshape(-1, 1) > 1, var.clamp_min(0), torch.nan)
    return var.sqrt()


def normal_interval(value: Tensor, stderr: Tensor, level: float) -> dict[str, Tensor]:
    """``value ± z * stderr``, with ``z`` the two-sided normal quantile of ``level``."""
    half = _z_of(level) * stderr
    return {"value": value, "low": value - half, "high": value + half, "stderr": stderr}


def _rank_of(group: Any) -> int:
    if dist.is_available() and dist.is_initialized():
        return int(dist.get_rank(group))
    return 0


def _draw_seed(base: int, rank: int, draw: int) -> int:
    """A 63-bit seed for the Poisson weights of one update, mixed from the base seed, the rank and the draw."""
    digest = hashlib.sha256(f"{base}:{rank}:{draw}".encode()).digest()
    return int.from_bytes(digest[:8], "little") >> 1


# --------------------------------------------------------------------------------------------------- PerGroup
class PerGroup(SumStateMetric):
    r"""A metric computed separately for each of ``num_groups`` groups of samples, in one state.

    ``update(*inputs, groups, sample_weight=None)`` takes the wrapped metric's inputs and an integer group id in
    ``[0, num_groups)`` per sample (``(N,)``, on the inputs' device). The inputs and weights are checked by the
    wrapped metric. Each state is the wrapped metric's with a leading ``(G,)`` dimension, filled by adding every
    sample's statistics to its group's row, plus the number of samples per group: memory :math:`O(G \times
    \text{state})` whatever the data. ``compute()`` is ``(G, *result_shape)``, nan for a group without samples.

    Wrap a PerGroup in :class:`ConfidenceInterval` for an interval per group.

    Example:
        >>> import torch
        >>> import hingemetrics as hm
        >>> metric = hm.PerGroup(hm.BinaryHingeLoss(), num_groups=3, group_names=["a", "b", "c"])
        >>> metric.update(torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1, 1, 1]), groups=torch.tensor([0, 0, 1]))
        >>> metric.compute()
        tensor([0.2500, 2.0000,    nan], dtype=torch.float64)
    """

    higher_is_better: bool | None = None

    def __init__(
        self,
        metric: SumStateMetric,
        num_groups: int,
        group_names: Sequence[str] | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.metric = _check_metric(metric, "PerGroup")
        if isinstance(metric, PerGroup):
            raise TypeError("Expected `metric` to be a hingemetrics metric for PerGroup, but got a PerGroup.")
        C.check_count("num_groups", num_groups)
        if group_names is not None:
            if isinstance(group_names, str) or len(group_names) != num_groups:
                got = repr(group_names) if isinstance(group_names, str) else f"{len(group_names)} names"
                raise ValueError(f"Expected `group_names` to be {num_groups} names (one per group), but got {got}.")
            group_names = [str(name) for name in group_names]
        self.num_groups = num_groups
        self.group_names = group_names
        for name, shape in zip(metric._sum_states, _shapes(metric), strict=True):
            self._add_sum_state(f"group_{name}", (num_groups, *shape))
        self._add_sum_state("group_samples", (num_groups,))
        self._add_config_key(metric=metric._config(), num_groups=num_groups)

    def update(  # type: ignore[override]
        self, *inputs: Tensor, groups: Tensor, sample_weight: Tensor | None = None, **named: Tensor
    ) -> None:
        """Add a batch: the wrapped metric's inputs (by position or name), one group id per sample, and weights."""
        self._accumulate(*inputs, groups=groups, sample_weight=sample_weight, **named)

    def _grouped_rows(
        self, *inputs: Tensor, groups: Tensor, sample_weight: Tensor | None = None, **named: Tensor
    ) -> tuple[tuple[Tensor, ...], Tensor]:
        """The wrapped metric's per-sample rows and the checked ``(N,)`` int64 group ids."""
        ids = self._group_ids(groups)
        weight = _weight_argument(self.metric, sample_weight)
        rows = self.metric._sample_statistics(*inputs, **named, **weight)
        _check_group_ids(ids, rows[0].shape[0], rows[0].device)
        return rows, ids

    def _group_ids(self, groups: Tensor) -> Tensor:
        """``groups`` as int64 ids, after the checks that need no inputs: its type and, under validation, its range."""
        C.check_tensor("groups", groups)
        if groups.is_floating_point() or groups.is_complex() or groups.dtype == torch.bool:
            raise TypeError(f"Expected `groups` to be an integer tensor of group ids, but got dtype {groups.dtype}.")
        if getattr(self.metric, "validate_args", True) and groups.numel():
            (id_range,) = C.read_extrema(C.value_range(groups))  # the metrics' own range check: one host read
            assert id_range is not None  # groups holds at least one id
            low, high = id_range
            if low < 0 or high >= self.num_groups:
                bad = int(low if low < 0 else high)
                raise ValueError(
                    f"Expected every group id in [0, {self.num_groups - 1}] (`num_groups`={self.num_groups}), "
                    f"but found {bad}."
                )
        return groups.long()

    def _batch_statistics(
        self, *inputs: Tensor, groups: Tensor, sample_weight: Tensor | None = None, **named: Tensor
    ) -> tuple[Tensor, ...]:
        ids = self._group_ids(groups)
        weight = _weight_argument(self.metric, sample_weight)
        (total,) = self.metric._reduce_samples(_group_reduction(ids, self.num_groups), *inputs, **named, **weight)
        sums = total[:-1].T.contiguous()  # (G, K)
        return (*_unflatten(sums, _shapes(self.metric)), total[-1])

    def _sample_statistics(self, *inputs: Tensor, **kwargs: Any) -> tuple[Tensor, ...]:
        """Each sample's statistics in its group's row, zeros in the others: ``(N, G, ...)`` per state."""
        rows, groups = self._grouped_rows(*inputs, **kwargs)
        one_hot = torch.nn.functional.one_hot(groups, self.num_groups).to(STAT_DTYPE)
        spread = [one_hot.reshape(*one_hot.shape, *(1,) * (row.dim() - 1)) * row.unsqueeze(1) for row in rows]
        return (*spread, one_hot)

    def _compute_from(self, *states: Tensor) -> Tensor:
        """The wrapped metric's value per group (any leading dimensions), nan for a group without samples."""
        *inner, count = states
        value = self.metric._compute_from(*inner)
        empty = (count == 0).reshape(*count.shape, *(1,) * (value.dim() - count.dim()))
        return torch.where(empty, torch.nan, value)

    def plot(  # type: ignore[override]
        self, val: Tensor | Sequence[Tensor] | None = None, ax: Axes | None = None
    ) -> tuple[Figure, Axes]:
        """Draw one bar per group, named by ``group_names`` (a history: one line per group)."""
        from hingemetrics._plot import plot_values

        value = self.compute() if val is None else val
        shape = (self.num_groups,)
        return plot_values(
            value,
            ax,
            value_shape=shape,
            name=f"{type(self.metric).__name__} per group",
            labels=self.group_names,
            legend_prefix="Group",
            lower_bound=self.metric.plot_lower_bound,
        )


# ------------------------------------------------------------------------------------------ ConfidenceInterval
class ConfidenceInterval(SumStateMetric):
    r"""A hingemetrics metric with a confidence interval: ``compute()`` gives value, low, high and stderr.

    Each entry of the result dict is shaped like the wrapped metric's result (a per-class vector gives per-class
    intervals; a :class:`PerGroup` gives one interval per group). ``update`` takes the wrapped metric's inputs.

    * ``method="normal"``: the delta method on the summed states (see the module docstring): the interval
      ``value ± z * stderr``, from the states' sums, their count and the sums of their products per block, a few
      more summed numbers than the metric itself. For a ratio :math:`\sum w\ell / \sum w` it is the classic
      :math:`\operatorname{se}^2 = \frac{n}{n-1} \sum_i w_i^2 (\ell_i - \hat\mu)^2 / (\sum_i w_i)^2`. A
      total (``HingeEmbeddingLoss(reduction="sum")``) gets an interval for the total.
    * ``method="bootstrap"``: the Poisson bootstrap with ``num_resamples`` resamples: each sample gets
      ``num_resamples`` Poisson(1) weights and each state one ``(num_resamples, *shape)`` resampled sum. The
      interval is the percentile one, stderr the standard deviation over the resamples. With a ``seed`` the same
      batches in the same order give the same interval (each rank mixes its rank into the seed; ``reset`` starts
      the draws over). Costs ``O(num_resamples)`` per sample.

    Args:
        metric: the metric to wrap (any hingemetrics metric, or a :class:`PerGroup`); it is not updated itself.
        level: the confidence level in (0, 1).
        method: ``"normal"`` or ``"bootstrap"``.
        num_resamples: resamples of the bootstrap (an int >= 2).
        seed: the bootstrap's seed; None draws one from the operating system.

    Example:
        >>> import torch
        >>> import hingemetrics as hm
        >>> metric = hm.ConfidenceInterval(hm.BinaryHingeLoss())
        >>> metric.update(torch.tensor([0.5, 2.0, -1.0, 0.1]), torch.tensor([1, 1, 1, 0]))
        >>> result = metric.compute()
        >>> sorted(result)
        ['high', 'low', 'stderr', 'value']
        >>> result["value"], result["stderr"]
        (tensor(0.9000, dtype=torch.float64), tensor(0.4301, dtype=torch.float64))
    """

    higher_is_better: bool | None = None
    _compute_args = ("level",)

    num_samples: Tensor
    moments: Tensor
    draws: Tensor

    def __init__(
        self,
        metric: SumStateMetric,
        level: float = 0.95,
        method: str = "normal",
        num_resamples: int = 1000,
        seed: int | None = None,
        **kwargs: Any,
    ) -> None:
        super().__init__(**kwargs)
        self.metric = _check_metric(metric, "ConfidenceInterval")
        self.level = _check_level(level)
        C.check_choice("method", method, METHODS)
        C.check_count("num_resamples", num_resamples)
        if seed is not None and (isinstance(seed, bool) or not isinstance(seed, int)):
            raise TypeError(f"Expected `seed` to be an int or None, but got {type(seed).__name__}.")
        self.method = method
        self.num_resamples = num_resamples
        self.seed = seed
        self._base_seed = secrets.randbits(62) if seed is None else seed
        self._inner: SumStateMetric = metric.metric if isinstance(metric, PerGroup) else metric
        self._num_groups: int | None = metric.num_groups if isinstance(metric, PerGroup) else None
        self._layout = _layout_of(self._inner) if method == "normal" else None
        self._pairs = None if self._layout is None else _pairs_of(self._layout.members)
        #: How the normal interval adds up the moments of a metric without groups (see _moment_reduction).
        self._plan = None if self._pairs is None else _moment_plan(self._pairs, _shapes(self._inner))
        names, shapes = metric._sum_states, _shapes(metric)
        for name, shape in zip(names, shapes, strict=True):
            self._add_sum_state(f"sum_{name}", shape)
        lead = () if self._num_groups is None else (self._num_groups,)
        self._add_sum_state("num_samples", lead)
        if self._layout is not None:
            self._add_sum_state("moments", (*lead, *self._layout.members.shape, self._layout.members.shape[1]))
        else:
            for name, shape in zip(names, shapes, strict=True):
                self._add_sum_state(f"boot_{name}", (num_resamples, *shape))
            self._add_sum_state("draws")
        self._add_config_key(metric=metric._config(), method=method, num_resamples=num_resamples, seed=seed)
        #: The draws before ``forward``'s reset of the state (0 outside ``forward``), see :meth:`_poisson_weights`.
        self._draws_before = 0

    def update(self, *args: Any, **kwargs: Any) -> None:
        """Add a batch: the wrapped metric's inputs (for a PerGroup, with ``groups=``)."""
        self._accumulate(*args, **kwargs)

    @torch.jit.unused
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Add the batch and return the interval on it alone; the bootstrap draws its weights as ``update`` would.

        torchmetrics' ``forward`` updates a reset state with the batch, whose draw count is then 0: without the
        count from before the reset every batch would get the first batch's Poisson weights.
        """
        self._draws_before = 0 if self._layout is not None else int(self.draws.item())
        try:
            return super().forward(*args, **kwargs)
        finally:
            self._draws_before = 0

    def _batch_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        wrapped = self.metric
        shapes = _shapes(self._inner)
        if not isinstance(wrapped, PerGroup) and self._plan is not None:
            # the normal interval without groups: the kernel adds up the rows' sums and products chunk by chunk
            reduction = _moment_reduction(self._plan.products)
            flat_sums, samples, products = self._inner._reduce_samples(reduction, *args, **kwargs)
            return (*_unflatten(flat_sums, shapes), samples, _moments(self._plan, products))
        if isinstance(wrapped, PerGroup):
            rows, groups = wrapped._grouped_rows(*args, **kwargs)
        else:
            rows, groups = self._inner._sample_statistics(*args, **kwargs), None
        count, device = rows[0].shape[0], rows[0].device
        layout = self._layout
        summed = _sum_rows(
            _flat_columns(rows),
            count,
            sum(math.prod(shape) for shape in shapes),
            device,
            groups=groups,
            num_groups=self._num_groups,
            pairs=self._pairs,
            weight=None if layout is not None else self._poisson_weights(count, device),
        )
        sums = (*_unflatten(summed.sums, shapes), *(() if groups is None else (summed.samples,)))
        if summed.moments is not None:
            return (*sums, summed.samples, summed.moments)
        assert summed.resampled is not None
        if groups is None:
            resampled = _unflatten(summed.resampled, shapes)
        else:  # (R, G, K + 1): each group's inner sums, then its resampled sample count (PerGroup's last state)
            resampled = [*_unflatten(summed.resampled[..., :-1], shapes), summed.resampled[..., -1]]
        return (*sums, summed.samples, *resampled, torch.ones((), dtype=STAT_DTYPE, device=device))

    def _poisson_weights(self, count: int, device: torch.device) -> Tensor:
        """``(count, R)`` Poisson(1) weights of this update, from a generator seeded by seed, rank and draw number."""
        draw = self._draws_before + int(self.draws.item())
        generator = torch.Generator(device=device)
        generator.manual_seed(_draw_seed(self._base_seed, _rank_of(self.process_group), draw))
        rates = torch.ones((count, self.num_resamples), dtype=STAT_DTYPE, device=device)
        return torch.poisson(rates, generator=generator)

    def _sums(self, prefix: str) -> list[Tensor]:
        return [getattr(self, f"{prefix}_{name}") for name in self.metric._sum_states]

    def compute(self) -> dict[str, Tensor]:
        """``{"value", "low", "high", "stderr"}``, each shaped like the wrapped metric's result."""
        sums = self._sums("sum")
        value = self.metric._compute_from(*sums)
        if self._layout is None:
            resampled = self.metric._compute_from(*self._sums("boot"))
            return _percentile_interval(value, resampled, self.level)
        grouped = self._num_groups is not None
        inner = sums[: len(self._inner._sum_states)]
        flat = _flatten(inner, 1) if grouped else _flatten(inner, 0).unsqueeze(0)
        layout = self._layout
        grads = _gradients(self._inner, flat, layout)
        moments = self.moments if grouped else self.moments.unsqueeze(0)
        count = self.num_samples.reshape(-1)
        blocks = flat[:, layout.members.to(flat.device)]
        stderr = delta_stderr(grads, blocks, moments, count, layout.block_of).reshape(value.shape)
        return normal_interval(value, stderr, self.level)

    def plot(  # type: ignore[override]
        self, val: dict[str, Tensor] | Sequence[dict[str, Tensor]] | None = None, ax: Axes | None = None
    ) -> tuple[Figure, Axes]:
        """Draw the value with its interval as an error bar; a history as a line with a shaded band.

        ``val`` is one result of ``compute()``, a list of them, or ``MetricTracker.compute_all()`` (a dict of
        results stacked along a new first dimension). A vector result (per class, per group) is drawn as bars with
        error bars, named by the PerGroup's ``group_names`` or the metric's ``plot_labels``.
        """
        from hingemetrics._plot import plot_interval

        names = self.metric.group_names if isinstance(self.metric, PerGroup) else self._inner.plot_labels
        return plot_interval(
            self.compute() if val is None else val,
            ax,
            value_shape=self._result_shape(),
            name=type(self._inner).__name__,
            labels=names,
            legend_prefix="Group" if isinstance(self.metric, PerGroup) else "Class",
            lower_bound=None,  # a normal interval may reach below a loss's bound of 0
        )

    def _result_shape(self) -> tuple[int, ...]:
        return tuple(self.metric._compute_from(*self._sums("sum")).shape)


def _percentile_interval(value: Tensor, resampled: Tensor, level: float) -> dict[str, Tensor]:
    """The percentile interval and the standard deviation over the ``(R, ...)`` resampled values (nan ignored)."""
    tail = (1 - level) / 2
    quantiles = torch.tensor([tail, 1 - tail], dtype=resampled.dtype, device=resampled.device)
    low, high = torch.nanquantile(resampled, quantiles, dim=0)
    finite = ~resampled.isnan()
    count = finite.sum(0)
    mean = torch.where(finite, resampled, 0.0).sum(0) / count
    spread = torch.where(finite, (resampled - mean) ** 2, 0.0).sum(0) / (count - 1)
    stderr = torch.where(count > 1, spread, torch.nan).sqrt()
    return {"value": value, "low": low, "high": high, "stderr": stderr}


# ------------------------------------------------------------------------------------------- PairedComparison
def paired_result(
    metric: SumStateMetric,
    layout: _Layout,
    sums_a: Tensor,
    sums_b: Tensor,
    count: Tensor,
    moments: Tensor,
    level: float,
) -> dict[str, Tensor]:
    """The result of :class:`PairedComparison` for ``G`` comparisons at once: each entry ``(G, *result_shape)``.

    Args:
        metric: the metric both models are scored by.
        layout: its :class:`_Layout`; the joint blocks are its blocks of model a followed by the same of model b.
        sums_a: ``(G, K)`` model a's summed states, flattened.
        sums_b: ``(G, K)`` model b's.
        count: ``(G,)`` the number of samples.
        moments: ``(G, B, 2J, 2J)`` the summed products of the joint rows on each joint block.
        level: the confidence level.
    """
    shapes = _shapes(metric)
    value_a = metric._compute_from(*_unflatten(sums_a, shapes))
    value_b = metric._compute_from(*_unflatten(sums_b, shapes))
    grad_a, grad_b = _gradients(metric, sums_a, layout), _gradients(metric, sums_b, layout)
    index = layout.members.to(sums_a.device)
    blocks_a, blocks_b = sums_a[:, index], sums_b[:, index]
    width = index.shape[1]
    block_of = layout.block_of
    joint = torch.cat([blocks_a, blocks_b], dim=-1)
    stderr = delta_stderr(torch.cat([-grad_a, grad_b], dim=-1), joint, moments, count, block_of)
    side_a = delta_stderr(grad_a, blocks_a, moments[..., :width, :width], count, block_of)
    side_b = delta_stderr(grad_b, blocks_b, moments[..., width:, width:], count, block_of)
    difference = value_b - value_a
    shape = difference.shape
    interval = normal_interval(difference, stderr.reshape(shape), level)
    return {
        "value_a": value_a,
        "value_b": value_b,
        "stderr_a": side_a.reshape(shape),
        "stderr_b": side_b.reshape(shape),
        "difference": difference,
        "stderr": interval["stderr"],
        "low": interval["low"],
        "high": interval["high"],
        "p_value": torch.special.erfc(difference.abs() / interval["stderr"] / math.sqrt(2)),
    }


class PairedComparison(SumStateMetric):
    r"""Two models scored by one metric on the same samples, and the paired interval of their difference.

    ``update(preds_a, preds_b, target, sample_weight=None)`` scores model a and model b on the same targets (and
    weights). For a metric with other inputs, ``preds_a`` and ``preds_b`` may each be a tuple of the model's
    leading inputs (``(input1, input2)`` of a ranking loss); ``target`` and ``sample_weight``, shared by both, follow
    them where given. The state is both models' sums, the sample count and the second moments of the joint rows
    :math:`(s^a_i, s^b_i)` per block, so it syncs in one collective.

    ``compute()`` returns a dict, each entry shaped like the metric's result:

    * ``value_a``, ``value_b``: the two metrics; ``stderr_a``, ``stderr_b``: their delta-method standard errors;
    * ``difference``: :math:`d = f(S_b) - f(S_a)`, b minus a;
    * ``stderr``: its delta-method standard error with the cross terms,
      :math:`\operatorname{se}^2 = (-g_a, g_b)^\top \operatorname{Cov}(S_a, S_b)\, (-g_a, g_b)`; since both
      models err on the same hard samples, it is usually far below :math:`\sqrt{se_a^2 + se_b^2}`;
    * ``low``, ``high``: the normal interval :math:`d \pm z\,\operatorname{se}` at ``level``;
    * ``p_value``: two-sided, under the normal approximation, of no difference: :math:`2(1 - \Phi(|d| / se))`.

    Example:
        >>> import torch
        >>> import hingemetrics as hm
        >>> metric = hm.PairedComparison(hm.BinaryHingeLoss())
        >>> target = torch.tensor([1, 0, 1, 1, 0])
        >>> metric.update(torch.tensor([0.2, -0.1, 0.4, -0.3, 0.5]), torch.tensor([0.9, -0.8, 1.2, 0.1, -0.2]), target)
        >>> result = metric.compute()
        >>> [round(result[key].item(), 4) for key in ("value_a", "value_b", "difference", "stderr")]
        [1.02, 0.4, -0.62, 0.0583]
        >>> [round(result[key].item(), 4) for key in ("stderr_a", "stderr_b")]  # each alone: far wider
        [0.1655, 0.1871]
    """

    higher_is_better: bool | None = None
    _compute_args = ("level",)

    num_samples: Tensor
    moments: Tensor

    def __init__(self, metric: SumStateMetric, level: float = 0.95, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self.metric = _check_metric(metric, "PairedComparison")
        if isinstance(metric, PerGroup):
            raise TypeError("Expected `metric` to be a hingemetrics metric for PairedComparison, but got a PerGroup.")
        self.level = _check_level(level)
        layout = _layout_of(metric)
        size = sum(math.prod(shape) for shape in _shapes(metric))
        self._layout = _Layout(
            torch.cat([layout.members, layout.members + size], dim=1), layout.block_of, layout.result_shape
        )
        self._single = layout
        self._pairs = _pairs_of(self._layout.members)
        self._plan = _moment_plan(self._pairs, [*_shapes(metric), *_shapes(metric)])
        for side in ("a", "b"):
            for name, shape in zip(metric._sum_states, _shapes(metric), strict=True):
                self._add_sum_state(f"{side}_{name}", shape)
        self._add_sum_state("num_samples")
        self._add_sum_state("moments", (*self._layout.members.shape, self._layout.members.shape[1]))
        self._add_config_key(metric=metric._config())

    def update(  # type: ignore[override]
        self,
        preds_a: Tensor | Sequence[Tensor],
        preds_b: Tensor | Sequence[Tensor],
        target: Tensor | None = None,
        sample_weight: Tensor | None = None,
    ) -> None:
        """Add a batch scored by both models; see the class docstring."""
        self._accumulate(preds_a, preds_b, target, sample_weight)

    def _model_rows(self, preds: Any, target: Tensor | None, sample_weight: Tensor | None) -> tuple[Tensor, ...]:
        inputs = tuple(preds) if isinstance(preds, (tuple, list)) else (preds,)
        args = (*inputs, target) if target is not None else inputs
        weight = _weight_argument(self.metric, sample_weight)
        return self.metric._sample_statistics(*args, **weight)

    def _batch_statistics(
        self, preds_a: Any, preds_b: Any, target: Tensor | None, sample_weight: Tensor | None
    ) -> tuple[Tensor, ...]:
        rows_a = self._model_rows(preds_a, target, sample_weight)
        rows_b = self._model_rows(preds_b, target, sample_weight)
        if rows_a[0].shape[0] != rows_b[0].shape[0]:
            raise ValueError(
                f"Expected `preds_a` and `preds_b` to score the same samples, but got {rows_a[0].shape[0]} and "
                f"{rows_b[0].shape[0]}."
            )
        shapes = _shapes(self.metric)
        # model a's states then model b's, as the joint layout numbers them
        sums, samples, products = fold_rows(_moment_reduction(self._plan.products), (*rows_a, *rows_b))
        sums_a, sums_b = sums.split(sum(math.prod(shape) for shape in shapes))
        return (*_unflatten(sums_a, shapes), *_unflatten(sums_b, shapes), samples, _moments(self._plan, products))

    def compute(self) -> dict[str, Tensor]:
        """The two values, their difference b - a, its paired interval and p-value; see the class docstring."""
        names = self.metric._sum_states
        sums_a = _flatten([getattr(self, f"a_{name}") for name in names], 0).unsqueeze(0)
        sums_b = _flatten([getattr(self, f"b_{name}") for name in names], 0).unsqueeze(0)
        count, moments = self.num_samples.reshape(1), self.moments.unsqueeze(0)
        result = paired_result(self.metric, self._single, sums_a, sums_b, count, moments, self.level)
        return {key: value[0] for key, value in result.items()}

    def plot(  # type: ignore[override]
        self, val: dict[str, Tensor] | Sequence[dict[str, Tensor]] | None = None, ax: Axes | None = None
    ) -> tuple[Figure, Axes]:
        """Draw the difference b - a with its interval (a history: a line with a shaded band), and a line at 0."""
        from hingemetrics._plot import plot_interval

        result = self.compute() if val is None else val
        parts = [result] if isinstance(result, dict) else list(result)
        as_interval = [{"value": r["difference"], "low": r["low"], "high": r["high"]} for r in parts]
        fig, ax = plot_interval(
            as_interval[0] if isinstance(result, dict) else as_interval,
            ax,
            value_shape=tuple(self._single.result_shape),
            name=f"{type(self.metric).__name__}: b - a",
            labels=self.metric.plot_labels,
            legend_prefix="Class",
            lower_bound=None,
        )
        ax.axhline(0.0, color="gray", linewidth=1)
        return fig, ax

"""The ranking and embedding family: margin ranking, triplet margin, cosine embedding and multilabel margin losses.

Each loss is written once, as the element (or row) losses of one chunk of a batch (a :class:`Plan`), and reduced
two ways: summed over the batch chunk by chunk (:func:`summed`, the update of the metric classes and of the
functional forms), or kept per sample (:func:`per_sample`, the per-sample statistics that the wrappers use).

The state of every one of them is ``(sum of w * loss, sum of w)``: the weight total is the number of losses
without weights. ``reduction="mean"`` divides, ``"sum"`` reports the weighted total.

Chunks follow the rules of :mod:`hingemetrics.functional._common`: blocks of rows taken from the inputs as they
lie, each below torch's grain size on the CPU; a user's distance function is called once per chunk of rows.
Nothing in the update reads data back to the host unless ``validate_args`` asks for the value checks.
"""

from __future__ import annotations

import math
import numbers
from collections.abc import Callable
from typing import Any, NamedTuple

import torch
from torch import Tensor

from hingemetrics.functional import _checks as C
from hingemetrics.functional._common import (
    STAT_DTYPE,
    Block,
    _budget,
    as_scores,
    extrema,
    index_blocks,
    row_sums,
    sum_over_blocks,
    take,
    take_weight,
    weighted_sums,
)
from hingemetrics.functional._embedding import REDUCTIONS, _hinge_embedding_compute, check_pm_one_extrema

__all__ = ["cosine_embedding_loss", "margin_ranking_loss", "multilabel_margin_loss", "triplet_margin_loss"]

TARGET_FORMATS = ("auto", "multi-hot", "index")
#: The constant torch adds to each squared norm in ``cosine_embedding_loss`` (``EPSILON`` in ATen's Loss.cpp).
COSINE_EPSILON = 1e-12

Distance = Callable[[Tensor, Tensor], Tensor]


# --------------------------------------------------------------------------------------------------- arguments
def check_pair_args(margin: Any, reduction: Any, validate_args: Any) -> None:
    """The constructor arguments of the margin ranking and cosine embedding losses."""
    C.check_margin(margin)
    C.check_choice("reduction", reduction, REDUCTIONS)
    C.check_bool("validate_args", validate_args)


def check_triplet_args(
    margin: Any, p: Any, eps: Any, swap: Any, reduction: Any, distance_function: Any, validate_args: Any
) -> None:
    """The constructor arguments of the triplet margin loss."""
    check_pair_args(margin, reduction, validate_args)
    for name, value in (("p", p), ("eps", eps)):
        if isinstance(value, bool) or not isinstance(value, numbers.Real):
            raise TypeError(f"Expected `{name}` to be a float, but got {value!r} of type {type(value).__name__}.")
    if not p > 0:  # NaN fails too
        raise ValueError(f"Expected `p` to be a float > 0 (the order of the norm, inf for the largest), but got {p!r}.")
    if not (math.isfinite(eps) and eps >= 0):
        raise ValueError(f"Expected `eps` to be a finite float >= 0, but got {eps!r}.")
    C.check_bool("swap", swap)
    if distance_function is not None and not callable(distance_function):
        raise TypeError(
            "Expected `distance_function` to be None or a callable of two (B, D) tensors returning (B,) distances, "
            f"but got {distance_function!r} of type {type(distance_function).__name__}."
        )


def check_multilabel_margin_args(
    num_labels: Any, margin: Any, reduction: Any, target_format: Any, validate_args: Any
) -> None:
    """The constructor arguments of the multilabel margin loss."""
    C.check_count("num_labels", num_labels)
    check_pair_args(margin, reduction, validate_args)
    C.check_choice("target_format", target_format, TARGET_FORMATS)


def distance_name(distance_function: Distance | None) -> str | None:
    """A name for the distance function that is the same in every process (no address): part of the config key."""
    if distance_function is None:
        return None
    module = getattr(distance_function, "__module__", None) or type(distance_function).__module__
    name = getattr(distance_function, "__qualname__", None) or type(distance_function).__qualname__
    return f"{module}.{name}"


# -------------------------------------------------------------------------------------------- tensors: cheap
def _check_same_shapes(**tensors: Tensor) -> None:
    shapes = [tuple(t.shape) for t in tensors.values()]
    if len(set(shapes)) > 1:
        names = [f"`{name}`" for name in tensors]
        listed = ", ".join(names[:-1]) + f" and {names[-1]}"
        found = ", ".join(str(s) for s in shapes[:-1]) + f" and {shapes[-1]}"
        raise ValueError(f"Expected {listed} to have the same shape, but got {found}.")


def _check_rows(name: str, x: Tensor) -> None:
    if x.dim() not in (1, 2):
        raise ValueError(
            f"Expected `{name}` to be an (N, D) or (D,) tensor of embeddings, but got shape {tuple(x.shape)}."
        )


def _check_row_tensor(name: str, value: Any, index_shape: torch.Size, of: str, what: str) -> None:
    """Require ``value`` shaped ``index_shape``: one entry per row of the embeddings."""
    C.check_tensor(name, value)
    if value.shape != index_shape:
        raise ValueError(
            f"Expected `{name}` to have shape {tuple(index_shape)} ({what} per row of `{of}`), but got "
            f"{tuple(value.shape)}."
        )


def _check_row_weight(sample_weight: Tensor | None, index_shape: torch.Size, of: str) -> None:
    if sample_weight is None:
        return
    _check_row_tensor("sample_weight", sample_weight, index_shape, of, "one weight")
    if sample_weight.is_complex() or sample_weight.dtype == torch.bool:
        raise TypeError(f"Expected `sample_weight` to be a real-valued tensor, but got dtype {sample_weight.dtype}.")


def _check_embeddings(validate_args: bool, sample_weight: Tensor | None, **embeddings: Tensor) -> None:
    """Float tensors of one (N, D) or (D,) shape on one device (with the weights)."""
    for name, x in embeddings.items():
        C.check_float_preds(x, name)
    for name, x in embeddings.items():
        _check_rows(name, x)
    _check_same_shapes(**embeddings)
    first = next(iter(embeddings.values()))
    _check_row_weight(sample_weight, first.shape[:-1], next(iter(embeddings)))
    C.check_same_device(**embeddings, sample_weight=sample_weight)
    C.refuse_meta(validate_args, first)


# ----------------------------------------------------------------------------------- tensors: values (syncs)
def _check_values(floats: dict[str, Tensor], sample_weight: Tensor | None, pm_one_target: Tensor | None = None) -> None:
    """Finite inputs, non-negative weights and (if given) +1/-1 targets, from extrema read in one transfer."""
    kept_range, fraction_range = (None, None)
    if pm_one_target is not None:
        kept_range, fraction_range = C.label_ranges(pm_one_target, None, 0)
    ranges = [C.value_range(x) for x in floats.values()]
    *read, kept, fraction, weights = C.read_extrema(*ranges, kept_range, fraction_range, C.value_range(sample_weight))
    for (name, x), found in zip(floats.items(), read, strict=True):
        if not C.finite(found):
            C.raise_not_finite(name, x)
    if pm_one_target is not None:
        check_pm_one_extrema(pm_one_target, kept, fraction)
    if sample_weight is not None:
        C._check_weight_extrema(sample_weight, weights)


# ------------------------------------------------------------------------------------------------- reductions
class Plan(NamedTuple):
    """How to reduce one batch: the losses of any block of its index space ``(N, ...)``, and the weights.

    ``losses(block)`` gives the ``(B,)`` losses of the block's positions; ``row_size`` is the number of input
    elements one position reads (D for a row of embeddings), which sizes the chunks.
    """

    losses: Callable[[Block], Tensor]
    index_shape: torch.Size
    row_size: int
    device: torch.device
    sample_weight: Tensor | None


def summed(plan: Plan) -> tuple[Tensor, Tensor]:
    """``(sum of w * loss, sum of w)`` over the batch, both float64 scalars, one chunk at a time."""
    index_shape = plan.index_shape

    def block_sums(block: Block) -> tuple[Tensor, Tensor]:
        weight = None if plan.sample_weight is None else take_weight(plan.sample_weight, block, index_shape)
        return weighted_sums(plan.losses(block), None, weight)

    blocks = index_blocks(index_shape, plan.row_size, plan.device)
    weight_shape = None if plan.sample_weight is None else torch.Size(())
    return sum_over_blocks(block_sums, blocks, math.prod(index_shape), plan.device, torch.Size(()), weight_shape)


def per_sample(plan: Plan) -> tuple[Tensor, Tensor]:
    """The statistics of :func:`summed` kept per sample: two ``(N,)`` float64 tensors (extra positions summed)."""
    shape = plan.index_shape
    n = shape[0]
    if n == 0:
        empty = torch.zeros(0, dtype=STAT_DTYPE, device=plan.device)
        return empty, empty.clone()
    loss = plan.losses((slice(None),) * len(shape)).to(STAT_DTYPE).reshape(n, -1)
    if plan.sample_weight is None:
        weight = torch.ones_like(loss)
    else:
        w = plan.sample_weight.to(STAT_DTYPE)
        if w.shape != shape:  # one weight per sample, spread over its positions
            w = w.reshape((n,) + (1,) * (len(shape) - 1)).expand(shape)
        weight = w.reshape(n, -1)
    return (loss * weight).sum(1), weight.sum(1)


def mean_or_sum(loss_sum: Tensor, weight_sum: Tensor, reduction: str) -> Tensor:
    """``loss_sum / weight_sum`` for ``"mean"`` (nan when nothing was counted), ``loss_sum`` for ``"sum"``."""
    return _hinge_embedding_compute(loss_sum, weight_sum, reduction)


def _pair_loss(
    check: Callable[..., None],
    plan: Callable[..., Plan],
    inputs: tuple[Tensor, Tensor, Tensor, Tensor | None],
    margin: float,
    reduction: str,
    validate_args: bool,
) -> Tensor:
    """The functional form of a pair loss: its arguments checked, its tensors checked, its plan reduced."""
    check_pair_args(margin, reduction, validate_args)
    check(*inputs, validate_args)
    return mean_or_sum(*summed(plan(*inputs, margin=margin)), reduction)


def _as_rows(x: Tensor) -> Tensor:
    """``(N, D)`` as it is, ``(D,)`` as one row ``(1, D)`` (a view)."""
    return x.unsqueeze(0) if x.dim() == 1 else x


def _as_index(x: Tensor | None) -> Tensor | None:
    """A per-row tensor of a ``(D,)`` input, ``()``, as ``(1,)``; ``(N,)`` as it is."""
    return None if x is None else x.reshape(-1)


# ---------------------------------------------------------------------------------------------- margin ranking
def _ranking_check_tensors(
    preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None, validate_args: bool
) -> None:
    C.check_float_preds(preds1, "preds1")
    C.check_float_preds(preds2, "preds2")
    C.check_target_dtype(target)
    _check_same_shapes(preds1=preds1, preds2=preds2, target=target)
    if sample_weight is not None:
        C.check_weight_shape(sample_weight, target.shape)
    C.check_same_device(preds1=preds1, preds2=preds2, target=target, sample_weight=sample_weight)
    C.refuse_meta(validate_args, preds1)
    if validate_args:
        _check_values({"preds1": preds1, "preds2": preds2}, sample_weight, target)


def _ranking_plan(
    preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None, *, margin: float
) -> Plan:
    r""":math:`\max(0,\ m - y (x_1 - x_2))` per element; the difference of raw scores is float64."""
    if preds1.dim() == 0:
        preds1, preds2, target = preds1.reshape(1), preds2.reshape(1), target.reshape(1)
        sample_weight = _as_index(sample_weight)
    dtype = STAT_DTYPE  # a difference of two raw scores: float64, as everywhere in the package

    def losses(block: Block) -> Tensor:
        gap = as_scores(take(preds1, block, False)).to(dtype) - as_scores(take(preds2, block, False)).to(dtype)
        signed = torch.where(take(target, block, False) == 1, gap, -gap)
        return (margin - signed).clamp_min_(0)

    return Plan(losses, preds1.shape, 1, preds1.device, sample_weight)


def margin_ranking_loss(
    preds1: Tensor,
    preds2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    reduction: str = "mean",
    validate_args: bool = True,
    *,
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Margin ranking loss, as ``torch.nn.functional.margin_ranking_loss`` with checked targets and weights.

    .. math::
        \ell_i = \max(0,\ m - y_i (x_{1i} - x_{2i})), \qquad
        \text{mean} = \frac{\sum_i w_i \ell_i}{\sum_i w_i}, \quad \text{sum} = \sum_i w_i \ell_i

    :math:`y_i = 1` says that :math:`x_{1i}` should rank above :math:`x_{2i}` (by at least :math:`m`), and
    :math:`y_i = -1` the reverse.

    Args:
        preds1: float tensor of any shape: the first scores :math:`x_1`.
        preds2: float tensor of the same shape: the second scores :math:`x_2`.
        target: tensor of the same shape with values 1 and -1 (torch accepts anything silently; here anything else
            is an error under ``validate_args``; without it, a target counts as 1 where it equals 1 and as -1
            elsewhere).
        margin: the margin :math:`m`, any finite float (torch's default 0).
        reduction: ``"mean"`` (the weighted mean) or ``"sum"`` (the weighted total).
        validate_args: check the values (reads data back to the host): finite scores, targets 1 or -1, finite
            non-negative weights. Types, shapes and devices are checked either way.
        sample_weight: non-negative weights shaped like ``target``, or ``(N,)`` for one weight per sample.

    Returns:
        A float64 scalar; nan for an empty batch with ``"mean"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import margin_ranking_loss
        >>> x1, x2 = torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, 0.5, 0.0])
        >>> margin_ranking_loss(x1, x2, torch.tensor([1, 1, -1]), margin=0.5)
        tensor(0.3333, dtype=torch.float64)
    """
    return _pair_loss(
        _ranking_check_tensors, _ranking_plan, (preds1, preds2, target, sample_weight), margin, reduction, validate_args
    )


# ---------------------------------------------------------------------------------------------- triplet margin
def _triplet_check_tensors(
    anchor: Tensor, positive: Tensor, negative: Tensor, sample_weight: Tensor | None, validate_args: bool
) -> None:
    _check_embeddings(validate_args, sample_weight, anchor=anchor, positive=positive, negative=negative)
    if validate_args:
        _check_values({"anchor": anchor, "positive": positive, "negative": negative}, sample_weight)


def _pairwise(p: float, eps: float) -> Distance:
    def distance(x: Tensor, y: Tensor) -> Tensor:
        return torch.pairwise_distance(x, y, p, eps)

    return distance


def _checked_distance(distance_function: Distance) -> Distance:
    """The user's distance, called on ``(B, D)`` rows, required to return ``(B,)``: one distance per row."""

    def distance(x: Tensor, y: Tensor) -> Tensor:
        d = distance_function(x, y)
        if not isinstance(d, Tensor) or d.shape != x.shape[:1]:
            got = f"shape {tuple(d.shape)}" if isinstance(d, Tensor) else f"a {type(d).__name__}"
            raise ValueError(
                f"Expected `distance_function` to return one distance per row, a tensor of shape ({x.shape[0]},) "
                f"for embeddings of shape {tuple(x.shape)}, but got {got}."
            )
        return d

    return distance


def _triplet_plan(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    sample_weight: Tensor | None,
    *,
    margin: float,
    p: float,
    eps: float,
    swap: bool,
    distance_function: Distance | None,
) -> Plan:
    r""":math:`\max(0,\ d(a, p) - d(a, n) + m)` per row, combined in float64.

    The p-norm distances are float64 too: the loss is a difference of two distances, which float32 would leave
    with a few digits where it is small. A user's distance function gets the rows as they come (half precision
    as float32), so a model inside it sees its own dtype; its distances are combined in float64.
    """
    rows = [_as_rows(x) for x in (anchor, positive, negative)]
    own = distance_function is not None
    distance = _checked_distance(distance_function) if distance_function is not None else _pairwise(p, eps)

    def losses(block: Block) -> Tensor:
        a, pos, neg = [as_scores(x[block]) if own else x[block].double() for x in rows]
        to_negative = distance(a, neg).double()
        if swap:
            to_negative = torch.minimum(to_negative, distance(pos, neg).double())
        return (distance(a, pos).double() - to_negative + margin).clamp_min(0)

    return Plan(losses, rows[0].shape[:1], rows[0].shape[1], anchor.device, _as_index(sample_weight))


def triplet_margin_loss(
    anchor: Tensor,
    positive: Tensor,
    negative: Tensor,
    margin: float = 1.0,
    p: float = 2.0,
    eps: float = 1e-6,
    swap: bool = False,
    reduction: str = "mean",
    distance_function: Distance | None = None,
    validate_args: bool = True,
    *,
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Triplet margin loss, as ``torch.nn.TripletMarginLoss`` (or ``TripletMarginWithDistanceLoss``) with weights.

    .. math::
        \ell_i = \max(0,\ d(a_i, p_i) - d(a_i, n_i) + m), \qquad
        d(x, y) = \lVert x - y + \epsilon \rVert_p

    With ``swap=True`` the distance to the negative is :math:`\min(d(a_i, n_i), d(p_i, n_i))` (the distance swap
    of Balntas et al.). With a ``distance_function`` it replaces :math:`d` (``p`` and ``eps`` are then unused),
    as in ``torch.nn.TripletMarginWithDistanceLoss``. The mean is :math:`\sum_i w_i \ell_i / \sum_i w_i`, the sum
    :math:`\sum_i w_i \ell_i`.

    Args:
        anchor: float embeddings ``(N, D)``, or ``(D,)`` for one triplet.
        positive: float embeddings of the same shape.
        negative: float embeddings of the same shape.
        margin: the margin :math:`m`, any finite float.
        p: the order of the norm, > 0 (``float("inf")`` for the largest absolute difference).
        eps: the constant :math:`\epsilon \ge 0` added to each difference, as torch does.
        swap: use the distance swap.
        reduction: ``"mean"`` or ``"sum"``.
        distance_function: None, or a callable ``f(x, y)`` of two ``(B, D)`` tensors returning the ``(B,)``
            distances of their rows. It is called on chunks of rows (a ``(D,)`` triplet as one ``(1, D)`` row),
            so it must treat rows independently; a result of any other shape is a ``ValueError``. It gets the
            embeddings in their dtype (float16 and bfloat16 as float32); its distances are combined in float64.
        validate_args: check the values (reads data back to the host): finite embeddings, finite non-negative
            weights. Types, shapes and devices are checked either way.
        sample_weight: non-negative ``(N,)`` weights, one per triplet (``()`` for one ``(D,)`` triplet).

    Returns:
        A float64 scalar; nan for an empty batch with ``"mean"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import triplet_margin_loss
        >>> anchor = torch.tensor([[0.0, 0.0], [1.0, 1.0]])
        >>> positive = torch.tensor([[0.0, 1.0], [1.0, 1.5]])
        >>> negative = torch.tensor([[0.0, 1.5], [3.0, 1.0]])
        >>> triplet_margin_loss(anchor, positive, negative, margin=1.0, eps=0.0)
        tensor(0.2500, dtype=torch.float64)
    """
    check_triplet_args(margin, p, eps, swap, reduction, distance_function, validate_args)
    _triplet_check_tensors(anchor, positive, negative, sample_weight, validate_args)
    plan = _triplet_plan(
        anchor,
        positive,
        negative,
        sample_weight,
        margin=margin,
        p=p,
        eps=eps,
        swap=swap,
        distance_function=distance_function,
    )
    return mean_or_sum(*summed(plan), reduction)


# -------------------------------------------------------------------------------------------- cosine embedding
def _cosine_check_tensors(
    preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None, validate_args: bool
) -> None:
    _check_embeddings(validate_args, sample_weight, preds1=preds1, preds2=preds2)
    C.check_target_dtype(target)
    _check_row_tensor("target", target, preds1.shape[:-1], "preds1", "one")
    C.check_same_device(preds1=preds1, target=target)
    if validate_args:
        _check_values({"preds1": preds1, "preds2": preds2}, sample_weight, target)


def _cosine_plan(
    preds1: Tensor, preds2: Tensor, target: Tensor, sample_weight: Tensor | None, *, margin: float
) -> Plan:
    r""":math:`1 - \cos` or :math:`\max(0, \cos - m)` per row, in float64, with torch's constant in the norms."""
    x1, x2, y = _as_rows(preds1), _as_rows(preds2), _as_index(target)
    assert y is not None

    def losses(block: Block) -> Tensor:
        a, b = as_scores(x1[block]).double(), as_scores(x2[block]).double()
        norms = (row_sums(a * a) + COSINE_EPSILON) * (row_sums(b * b) + COSINE_EPSILON)
        cos = row_sums(a * b) / norms.sqrt_()
        return torch.where(y[block] == 1, 1 - cos, (cos - margin).clamp_min(0))

    return Plan(losses, x1.shape[:1], x1.shape[1], preds1.device, _as_index(sample_weight))


def cosine_embedding_loss(
    preds1: Tensor,
    preds2: Tensor,
    target: Tensor,
    margin: float = 0.0,
    reduction: str = "mean",
    validate_args: bool = True,
    *,
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Cosine embedding loss, as ``torch.nn.functional.cosine_embedding_loss`` with checked targets and weights.

    .. math::
        \cos_i = \frac{x_{1i} \cdot x_{2i}}{\sqrt{(\lVert x_{1i} \rVert^2 + \epsilon)
        (\lVert x_{2i} \rVert^2 + \epsilon)}}, \qquad
        \ell_i = \begin{cases} 1 - \cos_i & y_i = 1 \\ \max(0,\ \cos_i - m) & y_i = -1 \end{cases}

    with torch's :math:`\epsilon = 10^{-12}` (so a zero vector has cosine 0, not nan), computed in float64.
    The mean is :math:`\sum_i w_i \ell_i / \sum_i w_i`, the sum :math:`\sum_i w_i \ell_i`.

    Args:
        preds1: float embeddings ``(N, D)``, or ``(D,)`` for one pair.
        preds2: float embeddings of the same shape.
        target: ``(N,)`` (``()`` for one pair) with values 1 (similar) and -1 (dissimilar). Anything else is an
            error under ``validate_args``; without it a target other than 1 counts as -1.
        margin: the margin :math:`m`, any finite float (torch's default 0; useful values lie in [-1, 1]).
        reduction: ``"mean"`` or ``"sum"``.
        validate_args: check the values (reads data back to the host). Types, shapes and devices are checked
            either way.
        sample_weight: non-negative ``(N,)`` weights, one per pair.

    Returns:
        A float64 scalar; nan for an empty batch with ``"mean"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import cosine_embedding_loss
        >>> x1 = torch.tensor([[1.0, 0.0], [1.0, 1.0]])
        >>> x2 = torch.tensor([[0.0, 1.0], [1.0, 1.0]])
        >>> cosine_embedding_loss(x1, x2, torch.tensor([1, -1]), margin=0.5)
        tensor(0.7500, dtype=torch.float64)
    """
    return _pair_loss(
        _cosine_check_tensors, _cosine_plan, (preds1, preds2, target, sample_weight), margin, reduction, validate_args
    )


# ------------------------------------------------------------------------------------------- multilabel margin
def _multilabel_margin_check_tensors(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    num_labels: int,
    target_format: str,
    validate_args: bool,
) -> str:
    """The checks of a multilabel margin batch; returns the target format, decided when the values were read.

    ``"auto"`` comes back unchanged when nothing was read (``validate_args=False``): the update then decides on
    the device.
    """
    C.check_float_preds(preds)
    if preds.dim() not in (1, 2) or preds.shape[-1] != num_labels:
        raise ValueError(
            f"Expected `preds` to have shape (N, {num_labels}) or ({num_labels},) with the labels last "
            f"(`num_labels`={num_labels}), but got {tuple(preds.shape)}."
        )
    C.check_target_dtype(target)
    C.check_same_shape(preds, target)
    _check_row_weight(sample_weight, preds.shape[:-1], "preds")
    C.check_same_device(preds=preds, target=target, sample_weight=sample_weight)
    C.refuse_meta(validate_args, preds)
    if target.dtype == torch.bool:
        target_format = "multi-hot" if target_format == "auto" else target_format
    if not validate_args:
        return target_format
    labels = target.to(torch.int8) if target.dtype == torch.bool else target
    kept_range, fraction_range = C.label_ranges(labels, None, 0)
    scores, kept, fraction, weights = C.read_extrema(
        C.value_range(preds), kept_range, fraction_range, C.value_range(sample_weight)
    )
    if not C.finite(scores):
        C.raise_not_finite("preds", preds)
    if not C.within(fraction, 0, 0):
        C.check_integral("target", target)
    if target_format == "auto":
        target_format = "multi-hot" if C.within(kept, 0, 1) else "index"
    if target_format == "multi-hot" and not C.within(kept, 0, 1):
        found = torch.unique(labels[(labels != 0) & (labels != 1)].double()).tolist()
        raise ValueError(
            f"Expected a multi-hot `target` of 0 and 1 (`target_format`='multi-hot'), but found {C._fmt_values(found)}."
        )
    if target_format == "index":
        _check_index_target(_as_rows(labels), num_labels, kept)
    if sample_weight is not None:
        C._check_weight_extrema(sample_weight, weights)
    return target_format


def _index_rows(labels: Tensor, num_labels: int) -> tuple[Tensor, Tensor]:
    """``(B, L)`` index-format labels as ``(listed, index)``.

    ``listed`` marks the entries before the first negative one; ``index`` holds the labels, with every other
    entry (and any index beyond the labels) sent to the spare column L.
    """
    labels = labels.long()
    listed = (labels >= 0).cumprod(1).bool()
    return listed, torch.where(listed & (labels < num_labels), labels, num_labels)


def _check_index_target(rows: Tensor, num_labels: int, kept: C.Extrema) -> None:
    """Indices in [0, L-1] padded with trailing -1s, each listed once per row; a second read for the rows."""
    if rows.numel() == 0:
        return
    if not C.within(kept, -1, num_labels - 1):
        found = torch.unique(rows[(rows < -1) | (rows >= num_labels)].double()).tolist()
        raise ValueError(
            f"Expected `target` in torch's index format to hold label indices in [0, {num_labels - 1}] padded with "
            f"-1, but found {C._fmt_values(found)}."
        )

    def faults(block: Block) -> Tensor:
        part = rows[block]
        listed, index = _index_rows(part, num_labels)
        late = ((part >= 0) & ~listed).any(1)  # an index after the padding began
        counts = torch.zeros(part.shape[0], num_labels + 1, dtype=torch.int64, device=part.device)
        repeated = (counts.scatter_add_(1, index, listed.long())[:, :num_labels] > 1).any(1)
        return torch.stack([late, repeated], 1)

    flags = torch.cat([faults(block) for block in index_blocks(rows.shape[:1], rows.shape[1], rows.device)])
    late, repeated = flags.any(0).tolist() if flags.numel() else (False, False)
    if late:
        row = int(flags[:, 0].nonzero()[0])
        raise ValueError(
            "Expected the -1 padding of `target` to follow the last label index of its row, but row "
            f"{row} is {rows[row].tolist()}."
        )
    if repeated:
        row = int(flags[:, 1].nonzero()[0])
        raise ValueError(
            f"Expected each label index at most once in a row of `target`, but row {row} is {rows[row].tolist()}."
        )


def _multilabel_margin_plan(
    preds: Tensor,
    target: Tensor,
    sample_weight: Tensor | None,
    *,
    num_labels: int,
    margin: float,
    target_format: str,
) -> Plan:
    r"""Per row: :math:`\frac{1}{L} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ m - (x_j - x_i))`, in float64.

    A ``target_format`` still ``"auto"`` is decided on the device from the extrema of the target (one pass, no
    read): the index format when any value lies outside [0, 1]. The ``(B, L, L)`` pairs of a chunk are taken a
    slice of columns at a time, so no temporary exceeds a chunk however many labels there are.
    """
    x, t = _as_rows(preds), _as_rows(target)
    index_format: Tensor | None = None
    if target_format == "auto":
        pair = extrema(t) if t.numel() else torch.zeros(2, dtype=STAT_DTYPE, device=t.device)
        index_format = (pair[0] < 0) | (pair[1] > 1)
    dtype = STAT_DTYPE  # differences of raw scores: float64

    def true_labels(labels: Tensor) -> Tensor:
        if target_format == "multi-hot":
            return labels > 0
        index = _index_rows(labels, num_labels)[1]
        mask = torch.zeros(labels.shape[0], num_labels + 1, dtype=torch.bool, device=labels.device)
        as_index = mask.scatter_(1, index, True)[:, :num_labels]
        return as_index if index_format is None else torch.where(index_format, as_index, labels > 0)

    def losses(block: Block) -> Tensor:
        scores = as_scores(x[block]).to(dtype)
        positive = true_labels(t[block])
        rows = scores.shape[0]
        step = max(1, _budget(scores.device) // max(1, rows * num_labels))
        total = torch.zeros(rows, dtype=dtype, device=scores.device)
        for start in range(0, num_labels, step):
            cols = slice(start, start + step)
            terms = (margin - scores.unsqueeze(2) + scores[:, None, cols]).clamp_min_(0)  # [b, j, i]: j true, i not
            pairs = positive.unsqueeze(2) & ~positive[:, None, cols]
            total = total + torch.where(pairs, terms, 0.0).sum((1, 2))
        return total / num_labels

    return Plan(losses, x.shape[:1], num_labels * num_labels, preds.device, _as_index(sample_weight))


def multilabel_margin_loss(
    preds: Tensor,
    target: Tensor,
    num_labels: int,
    margin: float = 1.0,
    reduction: str = "mean",
    validate_args: bool = True,
    *,
    target_format: str = "auto",
    sample_weight: Tensor | None = None,
) -> Tensor:
    r"""Multilabel margin loss, as ``torch.nn.functional.multilabel_margin_loss`` (at margin 1) with weights.

    For a sample with scores :math:`x` over :math:`L` labels and true labels :math:`Y`:

    .. math::
        \ell = \frac{1}{L} \sum_{j \in Y} \sum_{i \notin Y} \max(0,\ m - (x_j - x_i))

    every true label should score at least :math:`m` above every false one. The mean is
    :math:`\sum_i w_i \ell_i / \sum_i w_i`, the sum :math:`\sum_i w_i \ell_i`.

    The target comes in either of two formats, ``(N, L)`` like ``preds`` (``(L,)`` for one sample):

    * multi-hot: 0/1 (or bool), 1 for a true label;
    * torch's index format: the true labels' indices, then -1 padding to the end of the row
      (``[3, 0, -1, -1]`` for labels 3 and 0). Only trailing padding is allowed, and each index once.

    ``target_format="auto"`` (the default) reads a bool target as multi-hot and any other target, per batch, as
    the index format when it holds a value outside {0, 1} (a -1, or an index above 1) and as multi-hot otherwise.
    The one target that reads both ways is an index-format batch without any padding and with indices 0 and 1
    only: with ``num_labels=2``, rows such as ``[0, 1]`` or ``[1, 0]`` (both labels true) would read as multi-hot.
    Pass ``target_format="index"`` (or ``"multi-hot"``) to fix the format and skip the guess.

    Args:
        preds: float scores ``(N, L)`` or ``(L,)``.
        target: the true labels, as above.
        num_labels: the number of labels L.
        margin: the margin :math:`m`, any finite float (torch's is 1).
        reduction: ``"mean"`` or ``"sum"``.
        validate_args: check the values (reads data back to the host): finite scores, whole-number targets, index
            format indices in [0, L-1] with trailing padding and no repeats, multi-hot values in {0, 1}, finite
            non-negative weights. Types, shapes and devices are checked either way. Without it, an index format
            row lists the indices before its first negative entry (as torch), out-of-range indices are dropped,
            and a multi-hot entry above 0 is true.
        target_format: ``"auto"``, ``"multi-hot"`` or ``"index"``.
        sample_weight: non-negative ``(N,)`` weights, one per sample.

    Returns:
        A float64 scalar; nan for an empty batch with ``"mean"``.

    Example:
        >>> import torch
        >>> from hingemetrics.functional import multilabel_margin_loss
        >>> preds = torch.tensor([[0.1, 0.2, 0.4, 0.8]])
        >>> multilabel_margin_loss(preds, torch.tensor([[3, 0, -1, -1]]), num_labels=4)
        tensor(0.8500, dtype=torch.float64)
        >>> multilabel_margin_loss(preds, torch.tensor([[1, 0, 0, 1]]), num_labels=4)
        tensor(0.8500, dtype=torch.float64)
    """
    check_multilabel_margin_args(num_labels, margin, reduction, target_format, validate_args)
    target_format = _multilabel_margin_check_tensors(
        preds, target, sample_weight, num_labels, target_format, validate_args
    )
    plan = _multilabel_margin_plan(
        preds, target, sample_weight, num_labels=num_labels, margin=margin, target_format=target_format
    )
    return mean_or_sum(*summed(plan), reduction)

"""Arithmetic shared by every hinge loss: score preparation, weighting and the summed statistics.

Nothing here reads tensor data back to the host or branches on it, so these helpers are safe inside
``torch.compile(fullgraph=True)`` and issue no device synchronisation.
"""

from __future__ import annotations

import torch
from torch import Tensor

__all__: list[str] = []

STAT_DTYPE = torch.float64


def as_scores(preds: Tensor) -> Tensor:
    """Half and bfloat16 scores are computed in float32; float32 and float64 stay as they are."""
    if preds.dtype in (torch.float16, torch.bfloat16):
        return preds.float()
    return preds


def normalize_scores(scores: Tensor, normalization: str | None, valid: Tensor | None, dim: int | None) -> Tensor:
    """Apply the requested normalization to raw scores.

    Args:
        scores: ``(M,)`` binary scores (``dim=None``) or ``(M, C)`` class scores (``dim=1``).
        normalization: ``None`` (raw scores), ``"sigmoid"``, ``"softmax"`` or ``"auto"``.
        valid: ``(M,)`` mask of rows that count, or None when all do.
        dim: None for sigmoid, the class dimension for softmax.

    ``"auto"`` follows torchmetrics: the batch is normalized when any counted value lies outside [0, 1].
    The decision is taken with ``torch.where`` so that it stays on the device.
    """
    if normalization is None:
        return scores
    squash = scores.sigmoid() if dim is None else scores.softmax(dim)
    if normalization != "auto":
        return squash
    outside = (scores < 0) | (scores > 1)
    if valid is not None:
        outside &= valid if dim is None else valid.unsqueeze(1)
    return torch.where(outside.any(), squash, scores)


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
        loss_sum = loss.sum(0, dtype=STAT_DTYPE)
        return loss_sum, torch.full((), loss.shape[0], dtype=STAT_DTYPE, device=loss.device)
    weight_sum = weight.sum(0, dtype=STAT_DTYPE)
    if weight.dim() == loss.dim() and weight.shape[-1] == 1 and loss.dim() > 1:
        weight_sum = weight_sum.squeeze(-1)
    return (loss * weight).sum(0, dtype=STAT_DTYPE), weight_sum


def hinge_compute(loss_sum: Tensor, weight_sum: Tensor) -> Tensor:
    """The weighted mean: ``loss_sum / weight_sum``; nan when nothing was counted."""
    return loss_sum / weight_sum


def hinge_transform(margin_term: Tensor, squared: bool) -> Tensor:
    """``max(0, margin_term)``, squared when asked."""
    loss = margin_term.clamp_min(0)
    return loss.square() if squared else loss

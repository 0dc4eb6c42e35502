"""Precise accumulation over long streams, and half / bfloat16 inputs computed in float32.

The exact answers are computed here with numpy in float64 from the very float32 values the metric sees, batch by
batch, and the batch sums are added with ``math.fsum``: that is exact to float64 rounding.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch
import torchmetrics

import hingemetrics as hm
import hingemetrics.functional as F
from tests import reference as ref
from tests.cases import CASES, Case, cat_batches

BATCHES, VALUES = 2000, 5000  # 10 million float32 values per stream
REL = 1e-7


def _rel(value: float, exact: float) -> float:
    return abs(value - exact) / abs(exact)


# ------------------------------------------------------------------------------------------------ the streams
def _binary_stream(seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        yield torch.rand(VALUES, generator=gen), torch.randint(0, 2, (VALUES,), generator=gen)


def _binary_exact(preds: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    s, y = preds.numpy().astype(np.float64), np.where(target.numpy() == 1, 1.0, -1.0)
    return float(np.maximum(0.0, 1.0 - y * s).sum()), float(s.size)


def _weighted_stream(seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        preds = torch.randn(VALUES, generator=gen) * 2
        yield preds, torch.randint(0, 2, (VALUES,), generator=gen), torch.rand(VALUES, generator=gen)


def _weighted_exact(preds: torch.Tensor, target: torch.Tensor, weight: torch.Tensor) -> tuple[float, float]:
    s, y = preds.numpy().astype(np.float64), np.where(target.numpy() == 1, 1.0, -1.0)
    w = weight.numpy().astype(np.float64)
    return float((w * np.square(np.maximum(0.0, 1.0 - y * s))).sum()), float(w.sum())


def _multiclass_stream(seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        yield torch.randn(VALUES // 5, 5, generator=gen), torch.randint(0, 5, (VALUES // 5,), generator=gen)


def _crammer_singer_exact(preds: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    s, y = preds.numpy().astype(np.float64), target.numpy()
    rows = np.arange(len(y))
    true = s[rows, y]
    rival = s.copy()
    rival[rows, y] = -np.inf
    return float(np.maximum(0.0, 1.0 - true + rival.max(1)).sum()), float(len(y))


def _multilabel_stream(seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        yield torch.randn(VALUES // 2, 2, generator=gen), torch.randint(0, 2, (VALUES // 2, 2), generator=gen)


def _embedding_stream(seed: int) -> Iterator[tuple[torch.Tensor, ...]]:
    gen = torch.Generator().manual_seed(seed)
    for _ in range(BATCHES):
        yield torch.rand(VALUES, generator=gen) * 3, torch.randint(0, 2, (VALUES,), generator=gen) * 2 - 1


def _embedding_exact(preds: torch.Tensor, target: torch.Tensor) -> tuple[float, float]:
    x, y = preds.numpy().astype(np.float64), target.numpy()
    return float(np.where(y == 1, x, np.maximum(0.0, 1.0 - x)).sum()), float(x.size)


STREAMS: dict[str, tuple[Callable[[], torchmetrics.Metric], Callable, Callable]] = {
    "binary": (hm.BinaryHingeLoss, _binary_stream, _binary_exact),
    "binary-weighted-squared": (lambda: hm.BinaryHingeLoss(squared=True), _weighted_stream, _weighted_exact),
    "multiclass-crammer-singer": (lambda: hm.MulticlassHingeLoss(5), _multiclass_stream, _crammer_singer_exact),
    "multilabel-micro": (lambda: hm.MultilabelHingeLoss(2, average="micro"), _multilabel_stream, _binary_exact),
    "embedding": (hm.HingeEmbeddingLoss, _embedding_stream, _embedding_exact),
}


def _run(name: str, seed: int = 0) -> tuple[float, float]:
    """The metric's value over a long stream, and the exact value."""
    make, stream, exact = STREAMS[name]
    metric = make()
    loss_sums, weight_sums = [], []
    for batch in stream(seed):
        metric.update(*batch)
        loss, weight = exact(*batch)
        loss_sums.append(loss)
        weight_sums.append(weight)
    return metric.compute().item(), math.fsum(loss_sums) / math.fsum(weight_sums)


@pytest.mark.parametrize("name", list(STREAMS))
def test_a_long_float32_stream_agrees_with_the_exact_answer(name):
    value, exact = _run(name)
    assert _rel(value, exact) <= REL, (value, exact, _rel(value, exact))


def test_a_float32_running_sum_misses_what_the_float64_state_keeps():
    """The same stream through a float32 running sum (each batch summed in float32 and added to a float32 total,
    as torchmetrics' own BinaryHingeLoss keeps it) misses a relative 1e-7; hingemetrics does not."""
    tm = torchmetrics.classification.BinaryHingeLoss()  # scores in [0, 1]: torchmetrics uses them as they are
    assert tm.measures.dtype == torch.float32
    ours = hm.BinaryHingeLoss()
    running, count = torch.zeros((), dtype=torch.float32), torch.zeros((), dtype=torch.float32)
    loss_sums = []
    for preds, target in _binary_stream(0):
        tm.update(preds, target)
        ours.update(preds, target)
        running += (1 - torch.where(target == 1, preds, -preds)).clamp_min(0).sum()
        count += preds.numel()
        loss_sums.append(_binary_exact(preds, target)[0])
    exact = math.fsum(loss_sums) / (BATCHES * VALUES)
    assert _rel((running / count).item(), exact) > REL
    assert _rel(tm.compute().item(), exact) > REL
    assert _rel(ours.compute().item(), exact) <= REL


# ---------------------------------------------------------------------------------------- half and bfloat16
def _low(batch: dict[str, torch.Tensor], dtype: torch.dtype) -> dict[str, torch.Tensor]:
    """The batch with scores (and weights) rounded to ``dtype``."""
    return {k: v.to(dtype) if v.is_floating_point() and k != "target" else v for k, v in batch.items()}


def _upcast(batch: dict[str, torch.Tensor]) -> dict[str, torch.Tensor]:
    return {k: v.float() if v.is_floating_point() and k != "target" else v for k, v in batch.items()}


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_half_and_bfloat16_inputs_are_computed_in_float32(case: Case, dtype):
    gen = torch.Generator().manual_seed(0)
    batches = [_low(case.draw(gen, n), dtype) for n in (64, 1, 33)]
    low, upcast = case.make(), case.make()
    for batch in batches:
        batch_low, batch_upcast = low(**batch), upcast(**_upcast(batch))
        assert batch_low.dtype == torch.float64
        assert torch.equal(batch_low, batch_upcast)
    assert torch.equal(low.compute(), upcast.compute())
    # and the float32 computation is the exact one up to float32 rounding
    np.testing.assert_allclose(low.compute().numpy(), case.oracle(_upcast(cat_batches(batches))), rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16])
def test_functional_forms_compute_half_inputs_in_float32(dtype):
    gen = torch.Generator().manual_seed(0)
    # scores near the margin, where the difference 1 - s loses digits in half precision
    preds = (1 - torch.rand(1000, generator=gen) * 1e-2).to(dtype)
    target = torch.ones(1000, dtype=torch.long)
    weight = torch.rand(1000, generator=gen).to(dtype)
    value = F.binary_hinge_loss(preds, target, sample_weight=weight)
    assert torch.equal(value, F.binary_hinge_loss(preds.float(), target, sample_weight=weight.float()))
    exact = float(
        (weight.double() * (1 - preds.double())).sum() / weight.double().sum()
    )  # the float64 answer on the rounded inputs
    assert _rel(value.item(), exact) < 1e-6
    scores = torch.randn(100, 4, generator=gen).to(dtype)
    labels = torch.randint(0, 4, (100,), generator=gen)
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins"):
        got = F.multiclass_hinge_loss(scores, labels, 4, multiclass_mode=mode)
        assert torch.equal(got, F.multiclass_hinge_loss(scores.float(), labels, 4, multiclass_mode=mode))
    pairs = torch.rand(50, generator=gen).to(dtype)
    signs = torch.randint(0, 2, (50,), generator=gen) * 2 - 1
    assert torch.equal(F.hinge_embedding_loss(pairs, signs), F.hinge_embedding_loss(pairs.float(), signs))


# ------------------------------------------------------------------------------ any weight scale, any margin
PREDS = torch.tensor([0.5, -0.25, 0.25, 1.5, 3.0])
LABELS = torch.tensor([1, 0, 1, 0, -100])  # the last one is ignored where ignore_index=-100, negative otherwise
WEIGHTS = torch.tensor([1.0, 2.0, 3.0, 4.0, 5.0])
SCORES = torch.tensor([[0.5, 0.25, -0.25], [0.25, 1.0, 0.5], [-1.0, 2.0, 0.5], [0.125, 0.25, 0.75], [2.0, 0.0, 1.0]])
CLASSES = torch.tensor([0, 2, 1, 0, -100])
MODES = ("crammer-singer", "one-vs-all", "weston-watkins")


def _unscaled_references(ignore_index, margin=1.0, squared=False, weight=WEIGHTS):
    """The plain references on the unscaled weights, in float64: what every scale must give."""
    w = None if weight is None else weight.double().numpy()
    kw = {"margin": margin, "squared": squared, "ignore_index": ignore_index}
    labels = np.where(LABELS.numpy() == -100, -100 if ignore_index is not None else 0, LABELS.numpy())
    classes = np.where(CLASSES.numpy() == -100, -100 if ignore_index is not None else 1, CLASSES.numpy())
    multi_hot = (SCORES > 0.3).long().numpy()
    multi_hot[-1] = -100 if ignore_index is not None else 0
    return (
        {
            "binary": ref.binary_hinge(PREDS.double().numpy(), labels, weight=w, **kw),
            **{
                mode: ref.multiclass_hinge(SCORES.double().numpy(), classes, mode=mode, weight=w, **kw)
                for mode in MODES
            },
            "multilabel": ref.multilabel_hinge(
                SCORES.double().numpy(), multi_hot, average="none", weight=None if w is None else w[:, None], **kw
            ),
        },
        torch.from_numpy(labels),
        torch.from_numpy(classes),
        torch.from_numpy(multi_hot),
    )


def _ours(labels, classes, multi_hot, ignore_index, margin=1.0, squared=False, weight=None):
    kw = {"margin": margin, "squared": squared, "ignore_index": ignore_index, "sample_weight": weight}
    return {
        "binary": F.binary_hinge_loss(PREDS, labels, **kw),
        **{mode: F.multiclass_hinge_loss(SCORES, classes, 3, multiclass_mode=mode, **kw) for mode in MODES},
        "multilabel": F.multilabel_hinge_loss(SCORES, multi_hot, 3, average="none", **kw),
    }


@pytest.mark.parametrize(
    ("dtype", "scale"),
    [
        (torch.float32, 2.0**-149),  # the smallest float32, a subnormal: float32 products of it round to 0 or it
        (torch.float32, 1e-45),
        (torch.float32, 2.0**125),  # 5 * 2**125 is a float32; times a loss of 2.5 it is not
        (torch.float64, 1e-50),
        (torch.float64, 1e39),  # beyond float32: a float32 copy of the weights would be inf
        (torch.float64, 1e300),
    ],
)
@pytest.mark.parametrize("ignore_index", [None, -100])
def test_every_loss_is_the_same_at_any_weight_scale(dtype, scale, ignore_index):
    want, labels, classes, multi_hot = _unscaled_references(ignore_index)
    got = _ours(labels, classes, multi_hot, ignore_index, weight=WEIGHTS.to(dtype) * scale)
    for name, value in got.items():
        np.testing.assert_allclose(value.numpy(), want[name], rtol=1e-12, err_msg=name)


@pytest.mark.parametrize(
    ("margin", "rtol"),
    [
        (1e-40, 1e-12),  # below float32's normal range: float64 arithmetic, exact
        (2.0**-130, 1e-12),
        (1e30, 2.0**-22),  # within float32's range: the margin is rounded to float32, as 0.1 would be
        (1e39, 1e-12),  # beyond float32: float64 arithmetic
        (1e300, 1e-12),
    ],
)
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("ignore_index", [None, -100])
def test_any_finite_margin_gives_the_float64_value(margin, rtol, squared, ignore_index):
    """Margins too small for a normal float32 or too large for any: computed in float64, not refused, not inf."""
    if squared and margin > 1e150:
        pytest.skip("the square of the margin is beyond float64")
    want, labels, classes, multi_hot = _unscaled_references(ignore_index, margin, squared, weight=None)
    got = _ours(labels, classes, multi_hot, ignore_index, margin, squared)
    for name, value in got.items():
        np.testing.assert_allclose(value.numpy(), want[name], rtol=rtol, err_msg=name)
    pairs = torch.tensor([0.5, 1.5, 0.25]), torch.tensor([1, -1, -1])
    expected = ref.hinge_embedding(pairs[0].double().numpy(), pairs[1].numpy(), margin=margin)
    assert F.hinge_embedding_loss(*pairs, margin=margin).item() == pytest.approx(expected, rel=rtol, abs=0)


@pytest.mark.parametrize("score", [-1e20, 1e-30, 3e38])
def test_a_squared_loss_is_squared_in_float64(score):
    """(1 - y s)^2 of a finite float32 score: 1e40 for s = -1e20 (beyond float32), 1e-60 for 1e-30 (below it)."""
    preds = torch.tensor([score])
    for label, margin in ((1, 1.0), (0, 1e-30)):
        y = 1.0 if label == 1 else -1.0
        expected = max(0.0, margin - y * float(preds[0])) ** 2
        got = F.binary_hinge_loss(preds, torch.tensor([label]), squared=True, margin=margin).item()
        assert got == pytest.approx(expected, rel=1e-12, abs=0) and (expected == 0 or got > 0)


@pytest.mark.parametrize("squared", [False, True])
def test_a_margin_below_float32s_normal_range_is_not_rounded_to_a_subnormal(squared):
    """A margin of 3e-41 with scores of its size (float32 subnormals): the margin is not rounded to float32, whose
    subnormals near 1e-41 carry only about 13 bits."""
    margin = 3e-41
    preds, target = torch.tensor([1e-41, -2e-41, 5e-41]), torch.tensor([1, 1, 0])
    assert 0 < abs(float(preds[0])) < torch.finfo(torch.float32).tiny  # subnormal scores
    losses = [max(0.0, margin - (1.0 if t == 1 else -1.0) * float(s)) for s, t in zip(preds, target)]
    expected = sum(loss**2 if squared else loss for loss in losses) / 3
    assert F.binary_hinge_loss(preds, target, squared=squared, margin=margin).item() == pytest.approx(
        expected, rel=1e-12, abs=0
    )
    scores, classes = preds.reshape(1, 3), torch.tensor([2])
    rival = max(float(scores[0, 0]), float(scores[0, 1]))
    loss = max(0.0, margin - float(scores[0, 2]) + rival)
    got = F.multiclass_hinge_loss(scores, classes, 3, squared=squared, margin=margin).item()
    assert got == pytest.approx(loss**2 if squared else loss, rel=1e-12, abs=0)

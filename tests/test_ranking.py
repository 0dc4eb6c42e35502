"""The ranking and embedding family against torch.nn, by hand, in chunks, and through the per-sample protocol.

torch.nn's losses are the neighbours these metrics must agree with: ``MarginRankingLoss``, ``TripletMarginLoss``
(and ``TripletMarginWithDistanceLoss``), ``CosineEmbeddingLoss`` and ``MultiLabelMarginLoss``, on the
concatenated batches of a stream (``compute``) and on each batch (``forward`` and the functional forms). With
float64 inputs they agree to float64 rounding.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as TF

import hingemetrics as hm
from hingemetrics.benchmark.update import peak_temporary_bytes
from hingemetrics.functional import (
    _common,
    cosine_embedding_loss,
    margin_ranking_loss,
    multilabel_margin_loss,
    triplet_margin_loss,
)
from tests.cases import CASES, as_index_format, cat_batches, draw_batches

FAMILY = [c for c in CASES if c.make().__class__.__module__ == "hingemetrics._ranking"]
SIZES = (5, 1, 9, 0)


def _close(ours: torch.Tensor, theirs: torch.Tensor, rtol: float = 1e-12) -> None:
    assert ours.dtype == torch.float64
    torch.testing.assert_close(ours, theirs.double(), rtol=rtol, atol=rtol)


def _stream(gen: torch.Generator, draw, sizes=SIZES) -> list[dict[str, torch.Tensor]]:
    return [draw(gen, n) for n in sizes]


def _weighted(losses: torch.Tensor, weight: torch.Tensor, reduction: str) -> torch.Tensor:
    """torch.nn's ``reduction="none"`` losses reduced with weights, the way the metrics document it."""
    total = (weight.double() * losses.double()).sum()
    return total if reduction == "sum" else total / weight.double().sum()


# ------------------------------------------------------------------------------------------------ torch.nn parity
def _pairs(gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    x1, x2 = torch.randn(2, n, generator=gen, dtype=torch.float64)
    return {"preds1": x1, "preds2": x2, "target": torch.randint(0, 2, (n,), generator=gen) * 2 - 1}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("margin", [0.0, 0.5, -0.25])
def test_margin_ranking_equals_torch(margin, reduction):
    batches = _stream(torch.Generator().manual_seed(0), _pairs)
    metric = hm.MarginRankingLoss(margin, reduction)
    torch_loss = torch.nn.MarginRankingLoss(margin, reduction=reduction)
    for b in batches[:-1]:  # torch's mean of an empty batch is nan, as ours
        _close(metric(**b), torch_loss(b["preds1"], b["preds2"], b["target"]))
        _close(margin_ranking_loss(**b, margin=margin, reduction=reduction), torch_loss(*b.values()))
    metric.update(**batches[-1])
    whole = cat_batches(batches)
    _close(metric.compute(), torch_loss(whole["preds1"], whole["preds2"], whole["target"]))


def _triplets(gen: torch.Generator, n: int, d: int = 5) -> dict[str, torch.Tensor]:
    a, p, neg = torch.randn(3, n, d, generator=gen, dtype=torch.float64)
    return {"anchor": a, "positive": a + 0.7 * p, "negative": neg}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize(
    "kw",
    [{}, {"p": 1.0, "swap": True}, {"p": 3.0, "eps": 0.0, "margin": 0.5}, {"p": math.inf}, {"p": 0.5, "swap": True}],
    ids=["p2", "p1-swap", "p3-eps0", "p-inf", "p-half-swap"],
)
def test_triplet_equals_torch(kw, reduction):
    batches = _stream(torch.Generator().manual_seed(1), _triplets)
    metric = hm.TripletMarginLoss(**kw, reduction=reduction)
    torch_loss = torch.nn.TripletMarginLoss(**kw, reduction=reduction)
    for b in batches[:-1]:
        _close(metric(**b), torch_loss(**b))
        _close(triplet_margin_loss(**b, **kw, reduction=reduction), torch_loss(**b))
    metric.update(**batches[-1])
    _close(metric.compute(), torch_loss(**cat_batches(batches)))


def _cosine_distance(x: torch.Tensor, y: torch.Tensor) -> torch.Tensor:
    return 1 - TF.cosine_similarity(x, y)


@pytest.mark.parametrize("distance", [_cosine_distance, torch.nn.PairwiseDistance(p=1.5)], ids=["cosine", "module"])
@pytest.mark.parametrize("swap", [False, True])
def test_triplet_with_a_distance_function_equals_torch(distance, swap):
    batches = _stream(torch.Generator().manual_seed(2), _triplets)
    metric = hm.TripletMarginLoss(margin=0.4, swap=swap, distance_function=distance)
    torch_loss = torch.nn.TripletMarginWithDistanceLoss(distance_function=distance, margin=0.4, swap=swap)
    for b in batches[:-1]:
        _close(metric(**b), torch_loss(**b))
    metric.update(**batches[-1])
    _close(metric.compute(), torch_loss(**cat_batches(batches)))


def _embedding_pairs(gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    x1, x2 = torch.randn(2, n, 4, generator=gen, dtype=torch.float64)
    if n > 2:
        x1[0] = 0.0  # a zero vector: torch's 1e-12 in each squared norm makes its cosine 0
        x2[2] = 1e-7  # tiny: the 1e-12 moves its norm
    return {"preds1": x1, "preds2": x1 * 0.5 + x2, "target": torch.randint(0, 2, (n,), generator=gen) * 2 - 1}


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("margin", [0.0, 0.3, -0.5])
def test_cosine_embedding_equals_torch_to_float64_rounding(margin, reduction):
    batches = _stream(torch.Generator().manual_seed(3), _embedding_pairs)
    metric = hm.CosineEmbeddingLoss(margin, reduction)
    torch_loss = torch.nn.CosineEmbeddingLoss(margin, reduction=reduction)
    for b in batches[:-1]:
        _close(metric(**b), torch_loss(b["preds1"], b["preds2"], b["target"]))
        _close(cosine_embedding_loss(**b, margin=margin, reduction=reduction), torch_loss(*b.values()))
    metric.update(**batches[-1])
    whole = cat_batches(batches)
    _close(metric.compute(), torch_loss(whole["preds1"], whole["preds2"], whole["target"]))


@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("fmt", ["multi-hot", "bool", "index", "index-explicit"])
def test_multilabel_margin_equals_torch(fmt, reduction):
    gen = torch.Generator().manual_seed(4)
    labels = 5
    multi_hot = [torch.randint(0, 2, (n, labels), generator=gen) for n in SIZES]
    scores = [torch.randn(n, labels, generator=gen, dtype=torch.float64) for n in SIZES]
    index = [as_index_format(t, gen) for t in multi_hot]
    given = {"multi-hot": multi_hot, "bool": [t.bool() for t in multi_hot]}.get(fmt, index)
    kwargs = {"target_format": "index"} if fmt == "index-explicit" else {}
    metric = hm.MultilabelMarginLoss(labels, reduction=reduction, **kwargs)
    torch_loss = torch.nn.MultiLabelMarginLoss(reduction=reduction)
    for x, t, torch_t in list(zip(scores, given, index, strict=True))[:-1]:
        _close(metric(x, t), torch_loss(x, torch_t))
        _close(multilabel_margin_loss(x, t, labels, reduction=reduction, **kwargs), torch_loss(x, torch_t))
    metric.update(scores[-1], given[-1])
    _close(metric.compute(), torch_loss(torch.cat(scores), torch.cat(index)))


def test_weights_reduce_torchs_per_sample_losses():
    gen = torch.Generator().manual_seed(5)
    w = torch.rand(9, generator=gen, dtype=torch.float64)
    b = _pairs(gen, 9)
    for reduction in ("mean", "sum"):
        theirs = _weighted(TF.margin_ranking_loss(*b.values(), margin=0.2, reduction="none"), w, reduction)
        _close(margin_ranking_loss(**b, margin=0.2, reduction=reduction, sample_weight=w), theirs)
        t = _triplets(gen, 9)
        theirs = _weighted(TF.triplet_margin_loss(**t, p=1.0, swap=True, reduction="none"), w, reduction)
        _close(triplet_margin_loss(**t, p=1.0, swap=True, reduction=reduction, sample_weight=w), theirs)
        e = _embedding_pairs(gen, 9)
        theirs = _weighted(TF.cosine_embedding_loss(*e.values(), margin=0.1, reduction="none"), w, reduction)
        _close(cosine_embedding_loss(**e, margin=0.1, reduction=reduction, sample_weight=w), theirs)
        x, mh = torch.randn(9, 4, generator=gen, dtype=torch.float64), torch.randint(0, 2, (9, 4), generator=gen)
        theirs = _weighted(TF.multilabel_margin_loss(x, as_index_format(mh, gen), reduction="none"), w, reduction)
        _close(multilabel_margin_loss(x, mh, 4, reduction=reduction, sample_weight=w), theirs)


def test_single_samples_as_torch_takes_them():
    """A 0-d score pair, a (D,) triplet or pair of embeddings, an (L,) row of label scores: one sample each."""
    gen = torch.Generator().manual_seed(6)
    x1, x2 = torch.randn(2, generator=gen, dtype=torch.float64)
    _close(
        margin_ranking_loss(x1, x2, torch.tensor(-1), margin=0.3),
        TF.margin_ranking_loss(x1, x2, torch.tensor(-1), margin=0.3),
    )
    a, p, n = torch.randn(3, 4, generator=gen, dtype=torch.float64)
    _close(triplet_margin_loss(a, p, n, swap=True), TF.triplet_margin_loss(a, p, n, swap=True))
    _close(
        triplet_margin_loss(a, p, n, sample_weight=torch.tensor(2.0), reduction="sum"),
        2 * TF.triplet_margin_loss(a, p, n),
    )
    _close(
        cosine_embedding_loss(a, p, torch.tensor(-1), margin=-0.2),
        TF.cosine_embedding_loss(a, p, torch.tensor(-1), margin=-0.2),
    )
    index = torch.tensor([2, 0, -1, -1])
    _close(multilabel_margin_loss(a, index, 4), TF.multilabel_margin_loss(a, index))
    _close(multilabel_margin_loss(a, torch.tensor([1, 0, 1, 0]), 4), TF.multilabel_margin_loss(a, index))


# --------------------------------------------------------------------------------------------------- by hand
def test_hand_worked_values():
    # ranking: x1 - x2 = [-0.5, 1.5, -1.0], y = [1, 1, -1], m = 0.5: max(0, 0.5 - y * gap) = [1.0, 0.0, 0.0]
    x1, x2, y = torch.tensor([0.5, 2.0, -1.0]), torch.tensor([1.0, 0.5, 0.0]), torch.tensor([1, 1, -1])
    assert margin_ranking_loss(x1, x2, y, margin=0.5, reduction="sum").item() == 1.0
    # weights 3, 1, 0: (3 * 1.0) / 4
    weight = torch.tensor([3.0, 1.0, 0.0])
    assert margin_ranking_loss(x1, x2, y, margin=0.5, sample_weight=weight).item() == 0.75
    # triplet, eps 0, p 1: d(a, p) = 1, d(a, n) = 3, d(p, n) = 2; margin 2.5: 1 - 3 + 2.5 = 0.5, swapped 1 - 2 + 2.5
    a, p, n = torch.tensor([0.0, 0.0]), torch.tensor([1.0, 0.0]), torch.tensor([2.0, 1.0])
    assert triplet_margin_loss(a, p, n, margin=2.5, p=1.0, eps=0.0).item() == 0.5
    assert triplet_margin_loss(a, p, n, margin=2.5, p=1.0, eps=0.0, swap=True).item() == 1.5
    # cosine: orthogonal similar pair 1 - 0 = 1; a dissimilar pair at 60 degrees, margin 0.25: 0.5 - 0.25
    u, v = torch.tensor([[1.0, 0.0], [1.0, 0.0]]), torch.tensor([[0.0, 2.0], [0.5, math.sqrt(3) / 2]])
    value = cosine_embedding_loss(u, v, torch.tensor([1, -1]), margin=0.25, reduction="sum").item()
    assert value == pytest.approx(1.25, abs=1e-7)
    # multilabel margin: scores [0, 1, 3], true {2}: (max(0, 1 - 3) + max(0, 1 - 2)) / 3 = 0; true {0}: (2 + 4) / 3
    scores = torch.tensor([[0.0, 1.0, 3.0], [0.0, 1.0, 3.0]])
    assert multilabel_margin_loss(scores, torch.tensor([[0, 0, 1], [1, 0, 0]]), 3, reduction="sum").item() == 2.0


def test_a_multilabel_target_is_read_in_the_format_its_values_show():
    """-1 padding or an index above 1 is torch's format; 0/1 alone is multi-hot; ``target_format`` settles it.

    Scores [-0.5, 0.5]: label 0 alone true costs (1 - (-0.5 - 0.5)) / 2 = 1, label 1 alone 0, both true 0.
    """
    scores = torch.tensor([[-0.5, 0.5]])
    cases = [  # (target, target_format, expected)
        ([[1, 0]], "auto", 1.0),  # multi-hot: label 0
        ([[1, 0]], "multi-hot", 1.0),
        ([[1, 0]], "index", 0.0),  # torch's format: labels 1 and 0, nothing false
        ([[0, 1]], "auto", 0.0),  # multi-hot: label 1
        ([[0, -1]], "auto", 1.0),  # index: label 0
        ([[1, -1]], "index", 0.0),  # index: label 1
        ([[-1, -1]], "auto", 0.0),  # index: no true label
    ]
    for target, fmt, want in cases:
        target = torch.tensor(target)
        assert multilabel_margin_loss(scores, target, 2, target_format=fmt).item() == want, (target, fmt)
        # without validation the format is decided on the device, with the same outcome
        assert multilabel_margin_loss(scores, target, 2, target_format=fmt, validate_args=False).item() == want


# --------------------------------------------------------------------------------------------- chunks, memory
def test_many_chunks_split_rows_and_label_pairs_alike(monkeypatch):
    gen = torch.Generator().manual_seed(7)
    x, mh = torch.randn(40, 7, generator=gen), torch.randint(0, 2, (40, 7), generator=gen)
    t = _triplets(gen, 40)
    whole = (
        multilabel_margin_loss(x, mh, 7),
        triplet_margin_loss(**t),
        triplet_margin_loss(**t, distance_function=_cosine_distance),
    )
    calls: list[tuple[int, ...]] = []

    def counted(a: torch.Tensor, b: torch.Tensor) -> torch.Tensor:
        calls.append(tuple(a.shape))
        return _cosine_distance(a, b)

    monkeypatch.setattr(_common, "CPU_CHUNK_ELEMENTS", 16)  # fewer than one row's 49 label pairs: columns split
    chunked = (
        multilabel_margin_loss(x, mh, 7),
        triplet_margin_loss(**t),
        triplet_margin_loss(**t, distance_function=counted),
    )
    for ours, one in zip(chunked, whole, strict=True):
        torch.testing.assert_close(ours, one, rtol=1e-12, atol=1e-15)
    # three rows of 5 make a chunk of 16: the distance is called twice per chunk (positive, negative), on 3 rows
    assert len(calls) == 2 * math.ceil(40 / 3) and set(calls) == {(3, 5), (1, 5)}


@pytest.mark.parametrize(
    ("name", "call", "inputs"),
    [
        ("triplet", lambda a, p, n: triplet_margin_loss(a, p, n, swap=True), [(1 << 15, 16)] * 3),
        ("multilabel-margin", lambda x, t: multilabel_margin_loss(x, t, 32, validate_args=False), [(1 << 13, 32)] * 2),
    ],
)
def test_temporary_memory_stays_within_twice_the_inputs(name, call, inputs):
    gen = torch.Generator().manual_seed(8)
    tensors = [torch.randn(shape, generator=gen) for shape in inputs]
    if name == "multilabel-margin":
        tensors[1] = (tensors[1] > 0).long()
    call(*tensors)
    peak = peak_temporary_bytes(lambda: call(*tensors), torch.device("cpu"))
    held = sum(t.numel() * t.element_size() for t in tensors)
    assert peak is not None and 0 < peak <= 2 * held


# -------------------------------------------------------------------------------------------- per-sample protocol
@pytest.mark.parametrize("case", FAMILY, ids=[c.name for c in FAMILY])
def test_sample_statistics_sum_to_the_batch_statistics(case):
    (batch,) = draw_batches(case, (11,))
    metric = case.make()
    rows, batch_stats = metric._sample_statistics(**batch), metric._batch_statistics(**batch)
    for name, per_sample, total in zip(metric._sum_states, rows, batch_stats, strict=True):
        assert per_sample.shape == (11,) and per_sample.dtype == torch.float64, name
        torch.testing.assert_close(per_sample.sum(0), total, rtol=1e-12, atol=1e-14)


@pytest.mark.parametrize("case", FAMILY, ids=[c.name for c in FAMILY])
def test_compute_from_states_with_leading_dimensions_is_compute_per_slice(case):
    batches = draw_batches(case, (4, 6, 3, 5, 2, 7))
    metrics = [case.make() for _ in batches]
    for metric, batch in zip(metrics, batches, strict=True):
        metric.update(**batch)
    states = [torch.stack([getattr(m, n) for m in metrics]).reshape(2, 3) for n in metrics[0]._sum_states]
    states[0].requires_grad_(True)
    values = metrics[0]._compute_from(*states)
    assert values.shape == (2, 3)
    expected = np.array([case.oracle(b) for b in batches]).reshape(2, 3)
    np.testing.assert_allclose(values.detach().numpy(), expected, rtol=1e-6)
    np.testing.assert_array_equal(values.detach().reshape(-1).numpy(), [m.compute().item() for m in metrics])
    (grad,) = torch.autograd.grad(values.sum(), states[0])  # differentiable: d mean / d loss_sum = 1 / weight_sum
    want = 1.0 if case.kwargs.get("reduction") == "sum" else 1 / states[1]
    torch.testing.assert_close(grad, torch.broadcast_to(torch.as_tensor(want, dtype=torch.float64), (2, 3)))

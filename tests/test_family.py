"""The rest of the hinge family: Weston-Watkins, one-hot targets, multilabel and hinge-embedding."""

from __future__ import annotations

import re

import numpy as np
import pytest
import torch
import torch.nn.functional as F

import hingemetrics as hm
from hingemetrics.functional import hinge_embedding_loss, hinge_loss, multiclass_hinge_loss, multilabel_hinge_loss
from tests import reference as ref


def _batches(gen, sizes, c):
    return [(torch.randn(n, c, generator=gen) * 2, torch.randint(0, c, (n,), generator=gen)) for n in sizes]


# -------------------------------------------------------------------------------------------- Weston-Watkins
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [0.5, 1.0, 2.0])
@pytest.mark.parametrize("seed", range(3))
def test_weston_watkins_equals_torch_multi_margin_loss(p, margin, seed):
    gen = torch.Generator().manual_seed(seed)
    c = int(torch.randint(2, 7, (1,), generator=gen))
    batches = _batches(gen, (5, 11, 1, 8), c)
    metric = hm.MulticlassHingeLoss(c, squared=p == 2, multiclass_mode="weston-watkins", margin=margin)
    for preds, target in batches:
        batch_value = metric(preds, target)
        expected = F.multi_margin_loss(preds.double(), target, p=p, margin=margin)
        torch.testing.assert_close(batch_value, expected, rtol=1e-6, atol=1e-7)
        functional = multiclass_hinge_loss(preds, target, c, p == 2, "weston-watkins", margin=margin)
        torch.testing.assert_close(functional, expected, rtol=1e-6, atol=1e-7)
    all_preds = torch.cat([b[0] for b in batches])
    all_target = torch.cat([b[1] for b in batches])
    expected = F.multi_margin_loss(all_preds.double(), all_target, p=p, margin=margin)
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-6, atol=1e-7)


# ------------------------------------------------------------------------------------------ one-hot targets
@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins"])
@pytest.mark.parametrize("extra", [(), (3,), (2, 2)])
@pytest.mark.parametrize("weighted", [False, True])
def test_one_hot_targets_equal_class_indices(mode, extra, weighted):
    gen = torch.Generator().manual_seed(11)
    c, n = 4, 9
    preds = torch.randn((n, c, *extra), generator=gen)
    target = torch.randint(0, c, (n, *extra), generator=gen)
    one_hot = F.one_hot(target, c).movedim(-1, 1)  # (N, C, ...)
    weight = torch.rand((n, *extra), generator=gen) if weighted else None
    by_index = multiclass_hinge_loss(preds, target, c, multiclass_mode=mode, sample_weight=weight)
    by_one_hot = multiclass_hinge_loss(preds, one_hot, c, multiclass_mode=mode, sample_weight=weight)
    torch.testing.assert_close(by_one_hot, by_index, rtol=0, atol=0)
    metric = hm.MulticlassHingeLoss(c, multiclass_mode=mode)
    metric.update(preds, one_hot.float(), weight)  # Keras-style float one-hot works too
    torch.testing.assert_close(metric.compute(), by_index, rtol=0, atol=0)


def test_one_hot_row_that_is_not_one_hot_is_an_error():
    preds = torch.randn(2, 3)
    with pytest.raises(ValueError, match="found a row that is not one-hot"):
        multiclass_hinge_loss(preds, torch.tensor([[1, 0, 0], [0, 1, 1]]), 3)
    with pytest.raises(ValueError, match="found a row that is not one-hot"):
        multiclass_hinge_loss(preds, torch.tensor([[1, 0, 0], [0, 0, 0]]), 3)
    with pytest.raises(ValueError, match=r"whole-number labels, but found 0\.5"):
        multiclass_hinge_loss(preds, torch.tensor([[0.5, 0.5, 0.0], [0.0, 1.0, 0.0]]), 3)


# ---------------------------------------------------------------------------------------------- multilabel
@pytest.mark.parametrize("average", ["micro", "macro", "none"])
@pytest.mark.parametrize("weighted", [False, True])
@pytest.mark.parametrize("ignore_index", [None, -100])
@pytest.mark.parametrize("squared", [False, True])
def test_multilabel_matches_per_label_reference(average, weighted, ignore_index, squared):
    gen = torch.Generator().manual_seed(5)
    labels = 4
    metric = hm.MultilabelHingeLoss(labels, squared, average, ignore_index, margin=0.8)
    seen = []
    for n in (6, 1, 10):
        preds = torch.randn((n, labels, 2), generator=gen, dtype=torch.float64)
        target = torch.randint(0, 2, (n, labels, 2), generator=gen)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=gen) < 0.25] = ignore_index
        weight = torch.rand((n,), generator=gen, dtype=torch.float64) if weighted else None
        metric.update(preds, target, weight)
        seen.append((preds, target, weight))
    preds = torch.cat([s[0] for s in seen])
    target = torch.cat([s[1] for s in seen])
    weight = None if not weighted else torch.cat([s[2] for s in seen])[:, None, None].expand(target.shape)
    expected = ref.multilabel_hinge(
        preds.numpy(),
        target.numpy(),
        average=average,
        margin=0.8,
        squared=squared,
        ignore_index=ignore_index,
        weight=None if weight is None else weight.numpy(),
    )
    np.testing.assert_allclose(metric.compute().numpy(), expected, rtol=1e-12)
    functional = multilabel_hinge_loss(
        preds, target, labels, squared, average, ignore_index, margin=0.8, sample_weight=weight
    )
    np.testing.assert_allclose(functional.numpy(), expected, rtol=1e-12)


def test_multilabel_normalization_decides_over_the_whole_batch():
    # label 0 holds probabilities, label 1 a logit: "auto" squashes every label of the batch
    preds = torch.tensor([[0.2, 3.0], [0.7, 0.1]], dtype=torch.float64)
    target = torch.tensor([[0, 1], [1, 0]])
    squashed = torch.sigmoid(preds).numpy()
    for normalization in ("auto", "sigmoid"):
        got = multilabel_hinge_loss(preds, target, 2, average="none", normalization=normalization)
        np.testing.assert_allclose(got.numpy(), ref.multilabel_hinge(squashed, target.numpy(), average="none"))
    probs = preds.clamp(0, 1)
    got = multilabel_hinge_loss(probs, target, 2, average="none", normalization="auto")
    np.testing.assert_allclose(got.numpy(), ref.multilabel_hinge(probs.numpy(), target.numpy(), average="none"))


def test_multilabel_dispatch():
    preds, target = torch.randn(5, 3), torch.randint(0, 2, (5, 3))
    metric = hm.HingeLoss("multilabel", num_labels=3, average="micro")
    assert isinstance(metric, hm.MultilabelHingeLoss)
    torch.testing.assert_close(metric(preds, target), multilabel_hinge_loss(preds, target, 3, average="micro"))
    torch.testing.assert_close(
        hinge_loss(preds, target, "multilabel", num_labels=3, average="none"),
        multilabel_hinge_loss(preds, target, 3, average="none"),
    )
    with pytest.raises(ValueError, match="Expected `num_labels`"):
        hm.HingeLoss("multilabel")
    with pytest.raises(ValueError, match="Expected `num_labels`"):
        hinge_loss(preds, target, "multilabel")


# ------------------------------------------------------------------------------------------ hinge-embedding
@pytest.mark.parametrize("reduction", ["mean", "sum"])
@pytest.mark.parametrize("margin", [0.5, 1.0, 3.0])
@pytest.mark.parametrize("shape", [(7,), (4, 5), (3, 2, 2)])
def test_hinge_embedding_equals_torch_over_batches(reduction, margin, shape):
    gen = torch.Generator().manual_seed(2)
    metric = hm.HingeEmbeddingLoss(margin, reduction)
    xs, ys = [], []
    for _ in range(4):
        x = torch.randn(shape, generator=gen) * 2
        y = torch.randint(0, 2, shape, generator=gen) * 2 - 1
        batch = metric(x, y)
        torch.testing.assert_close(
            batch, F.hinge_embedding_loss(x.double(), y, margin=margin, reduction=reduction), rtol=1e-6, atol=1e-7
        )
        torch.testing.assert_close(
            hinge_embedding_loss(x, y, margin, reduction),
            F.hinge_embedding_loss(x.double(), y, margin=margin, reduction=reduction),
            rtol=1e-6,
            atol=1e-7,
        )
        xs.append(x.reshape(-1))
        ys.append(y.reshape(-1))
    expected = F.hinge_embedding_loss(torch.cat(xs).double(), torch.cat(ys), margin=margin, reduction=reduction)
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-6, atol=1e-7)


def test_hinge_embedding_rejects_the_original_examples_random_float_targets():
    x = torch.randn(3, 5, requires_grad=True)
    random_targets = torch.randn(3, 5)  # torch.nn silently computes something with these
    with pytest.raises(ValueError, match=re.escape("Expected `target` to hold only 1 (similar pair) and -1")):
        hinge_embedding_loss(x, random_targets)
    with pytest.raises(ValueError, match="Map 0 labels to -1 first"):
        hm.HingeEmbeddingLoss().update(x, torch.randint(0, 2, (3, 5)))
    loss = hinge_embedding_loss(x, torch.randint(0, 2, (3, 5)) * 2 - 1)
    loss.backward()  # still differentiable with valid targets
    assert x.grad is not None and x.grad.shape == x.shape


# ---------------------------------------------------------------------------------------------- bad inputs
@pytest.mark.parametrize(
    ("call", "error", "message"),
    [
        (lambda: hm.MultilabelHingeLoss(1), ValueError, "Expected `num_labels` to be an int >= 2, but got 1."),
        (lambda: hm.MultilabelHingeLoss(3, average="weighted"), ValueError, "Expected `average` to be one of"),
        (lambda: hm.MultilabelHingeLoss(3, normalization="softmax"), ValueError, "`normalization` to be one of"),
        (lambda: hm.HingeEmbeddingLoss(reduction="none"), ValueError, "Expected `reduction` to be one of"),
        (lambda: hm.HingeEmbeddingLoss(margin=float("nan")), ValueError, "Expected `margin` to be a finite real"),
        (
            lambda: multilabel_hinge_loss(torch.randn(4, 3), torch.randint(0, 2, (4, 3)), 2),
            ValueError,
            "Expected `preds` to have shape (N, 2, ...) with the labels on dimension 1 (`num_labels`=2), "
            "but got (4, 3).",
        ),
        (
            lambda: multilabel_hinge_loss(torch.randn(4, 3), torch.randint(0, 3, (4, 3)), 3),
            ValueError,
            "binary labels in {0, 1} or {-1, 1}, but found 2.",
        ),
        (
            lambda: hinge_embedding_loss(torch.randn(4), torch.tensor([1, -1])),
            ValueError,
            "Expected `preds` and `target` to have the same shape, but got (4,) and (2,).",
        ),
        (
            lambda: hinge_embedding_loss(torch.tensor([1, 2]), torch.tensor([1, -1])),
            TypeError,
            "Expected `preds` to be a floating-point tensor of scores, but got dtype torch.int64.",
        ),
    ],
)
def test_new_bad_inputs_get_clear_errors(call, error, message):
    with pytest.raises(error, match=re.escape(message)):
        call()

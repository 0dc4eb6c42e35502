"""Parity with the neighbours: torchmetrics 1.9 under ``normalization="auto"``, scikit-learn under the default."""

from __future__ import annotations

import numpy as np
import pytest
import torch
import torchmetrics.classification as tmc
import torchmetrics.functional.classification as tmf
from sklearn.metrics import hinge_loss as sk_hinge_loss

import hingemetrics as hm
from hingemetrics.functional import binary_hinge_loss, hinge_loss, multiclass_hinge_loss

SEEDS = range(6)


def _random_extra_dims(gen: torch.Generator) -> tuple[int, ...]:
    return tuple(int(d) for d in torch.randint(2, 4, (int(torch.randint(0, 3, (1,), generator=gen)),), generator=gen))


def _scores(shape, gen, kind):
    if kind == "logits":
        return torch.randn(shape, generator=gen) * 3
    return torch.rand(shape, generator=gen)  # probabilities: torchmetrics leaves them alone


def _close(ours, theirs):
    np.testing.assert_allclose(ours.double().numpy(), theirs.double().numpy(), rtol=1e-5, atol=1e-6)


# ------------------------------------------------------------------------------------------ torchmetrics, binary
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("ignore_index", [None, -1])
def test_binary_matches_torchmetrics(seed, kind, squared, ignore_index):
    gen = torch.Generator().manual_seed(seed)
    extra = _random_extra_dims(gen)
    ours = hm.BinaryHingeLoss(squared, ignore_index, normalization="auto")
    theirs = tmc.BinaryHingeLoss(squared, ignore_index)
    for n in (int(x) for x in torch.randint(1, 20, (3,), generator=gen)):
        preds = _scores((n, *extra), gen, kind)
        target = torch.randint(0, 2, (n, *extra), generator=gen)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=gen) < 0.2] = ignore_index
        _close(ours(preds, target), theirs(preds, target))  # forward: the batch value
        _close(
            binary_hinge_loss(preds, target, squared, ignore_index, normalization="auto"),
            tmf.binary_hinge_loss(preds, target, squared, ignore_index),
        )
    _close(ours.compute(), theirs.compute())


def test_auto_normalization_decides_after_ignored_elements_are_removed():
    # the only value outside [0, 1] is ignored: torchmetrics then leaves the batch as probabilities
    preds = torch.tensor([0.2, 0.9, 5.0])
    target = torch.tensor([0, 1, -1])
    _close(
        binary_hinge_loss(preds, target, ignore_index=-1, normalization="auto"),
        tmf.binary_hinge_loss(preds, target, ignore_index=-1),
    )
    assert binary_hinge_loss(preds, target, ignore_index=-1, normalization="auto").item() == pytest.approx(
        (1.2 + 0.1) / 2
    )


# -------------------------------------------------------------------------------------- torchmetrics, multiclass
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("kind", ["logits", "probs"])
@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all"])
@pytest.mark.parametrize("ignore_index", [None, 255])
def test_multiclass_matches_torchmetrics(seed, kind, squared, mode, ignore_index):
    gen = torch.Generator().manual_seed(100 + seed)
    c = int(torch.randint(2, 6, (1,), generator=gen))
    extra = _random_extra_dims(gen)
    ours = hm.MulticlassHingeLoss(c, squared, mode, ignore_index, normalization="auto")
    theirs = tmc.MulticlassHingeLoss(c, squared, mode, ignore_index)
    for n in (int(x) for x in torch.randint(1, 20, (3,), generator=gen)):
        preds = _scores((n, c, *extra), gen, kind)
        target = torch.randint(0, c, (n, *extra), generator=gen)
        if ignore_index is not None:
            target[torch.rand(target.shape, generator=gen) < 0.2] = ignore_index
        _close(ours(preds, target), theirs(preds, target))
        _close(
            multiclass_hinge_loss(preds, target, c, squared, mode, ignore_index, normalization="auto"),
            tmf.multiclass_hinge_loss(preds, target, c, squared, mode, ignore_index),
        )
    ours.update(preds, target)
    theirs.update(preds, target)
    _close(ours.compute(), theirs.compute())


def test_task_dispatch_matches_torchmetrics():
    gen = torch.Generator().manual_seed(7)
    preds, target = torch.randn(10, 3, generator=gen), torch.randint(0, 3, (10,), generator=gen)
    for mode in ("crammer-singer", "one-vs-all"):
        _close(
            hinge_loss(preds, target, "multiclass", 3, multiclass_mode=mode, normalization="auto"),
            tmf.hinge_loss(preds, target, "multiclass", 3, multiclass_mode=mode),
        )
        metric = hm.HingeLoss("multiclass", 3, multiclass_mode=mode, normalization="auto")
        assert isinstance(metric, hm.MulticlassHingeLoss)
        _close(metric(preds, target), tmc.HingeLoss("multiclass", num_classes=3, multiclass_mode=mode)(preds, target))


def test_positional_order_matches_torchmetrics():
    preds, target = torch.tensor([0.3, 0.8, 0.6]), torch.tensor([0, 1, 0])
    _close(binary_hinge_loss(preds, target, True), tmf.binary_hinge_loss(preds, target, True))
    assert hm.BinaryHingeLoss(True).squared is True
    assert hm.MulticlassHingeLoss(3, True, "one-vs-all", 4).ignore_index == 4


# ------------------------------------------------------------------------------------------------ scikit-learn
@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("labels", [(0, 1), (-1, 1)])
@pytest.mark.parametrize("weighted", [False, True])
def test_binary_matches_sklearn(seed, labels, weighted):
    gen = torch.Generator().manual_seed(200 + seed)
    n = 50
    scores = torch.randn(n, generator=gen, dtype=torch.float64) * 2
    target = torch.tensor(labels)[torch.randint(0, 2, (n,), generator=gen)]
    target[:2] = torch.tensor(labels)  # both classes present, as scikit-learn needs
    weight = torch.rand(n, generator=gen, dtype=torch.float64) if weighted else None
    expected = sk_hinge_loss(target.numpy(), scores.numpy(), sample_weight=None if weight is None else weight.numpy())
    assert binary_hinge_loss(scores, target, sample_weight=weight).item() == pytest.approx(expected, rel=1e-12)
    metric = hm.BinaryHingeLoss()
    metric.update(scores[:20], target[:20], None if weight is None else weight[:20])
    metric.update(scores[20:], target[20:], None if weight is None else weight[20:])
    assert metric.compute().item() == pytest.approx(expected, rel=1e-12)


def test_binary_bool_target_matches_sklearn():
    scores = torch.tensor([1.5, -0.3, 0.2, -2.0], dtype=torch.float64)
    target = torch.tensor([True, False, True, False])
    expected = sk_hinge_loss(target.numpy().astype(int), scores.numpy())
    assert binary_hinge_loss(scores, target).item() == pytest.approx(expected, rel=1e-12)


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("weighted", [False, True])
def test_multiclass_crammer_singer_matches_sklearn_with_labels(seed, weighted):
    gen = torch.Generator().manual_seed(300 + seed)
    n, c = 40, 5
    scores = torch.randn(n, c, generator=gen, dtype=torch.float64)
    target = torch.randint(0, c - 1, (n,), generator=gen)  # class c-1 never appears: `labels` names it
    weight = torch.rand(n, generator=gen, dtype=torch.float64) if weighted else None
    expected = sk_hinge_loss(
        target.numpy(),
        scores.numpy(),
        labels=np.arange(c),
        sample_weight=None if weight is None else weight.numpy(),
    )
    ours = multiclass_hinge_loss(scores, target, c, sample_weight=weight)
    assert ours.item() == pytest.approx(expected, rel=1e-12)
    metric = hm.MulticlassHingeLoss(c)
    for part in (slice(0, 13), slice(13, None)):
        metric.update(scores[part], target[part], None if weight is None else weight[part])
    assert metric.compute().item() == pytest.approx(expected, rel=1e-12)


def test_default_is_raw_scores_not_torchmetrics_squashing():
    # tanh-like outputs in [-1, 1]: raw hinge and torchmetrics differ, and we agree with scikit-learn by default
    scores = torch.tensor([-0.9, 0.8, -0.2, 0.95], dtype=torch.float64)
    target = torch.tensor([0, 1, 1, 1])
    raw = binary_hinge_loss(scores, target).item()
    assert raw == pytest.approx(sk_hinge_loss(target.numpy(), scores.numpy()), rel=1e-12)
    auto = binary_hinge_loss(scores, target, normalization="auto").item()
    assert auto == pytest.approx(tmf.binary_hinge_loss(scores, target).item(), rel=1e-6)
    assert abs(raw - auto) > 0.1

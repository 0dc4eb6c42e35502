"""The options of the binary and multiclass hinges beyond a positive margin: any finite margin (0 is the
perceptron), Keras' categorical hinge, and torch's per-class weights.

The oracles are written here from the neighbours' own formulas (optax's perceptron losses, Keras'
``categorical_hinge``; neither is installed) or are the neighbour itself (``torch.nn.MultiMarginLoss``).
"""

from __future__ import annotations

import pytest
import torch
import torch.nn.functional as F

import hingemetrics as hm
from hingemetrics.functional import (
    binary_hinge_loss,
    hinge_embedding_loss,
    hinge_loss,
    multiclass_hinge_loss,
    multilabel_hinge_loss,
)
from tests import reference as ref


def _scores(gen: torch.Generator, *shape: int, loc: float = 0.0) -> torch.Tensor:
    return torch.randn(shape, generator=gen, dtype=torch.float64) + loc


# ------------------------------------------------------------------------------ optax's perceptron losses
def optax_perceptron_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """optax ``perceptron_loss``: max(0, -y * s) per element, y in {-1, 1}; here averaged."""
    return torch.stack([max(torch.tensor(0.0, dtype=s.dtype), -y * s) for s, y in zip(scores, labels)]).mean()


def optax_multiclass_perceptron_loss(scores: torch.Tensor, labels: torch.Tensor) -> torch.Tensor:
    """optax ``multiclass_perceptron_loss``: max_j s_j - s_y per sample; here averaged."""
    return torch.stack([row.max() - row[int(y)] for row, y in zip(scores, labels)]).mean()


@pytest.mark.parametrize("seed", range(3))
def test_binary_margin_zero_is_optax_perceptron_loss(seed):
    gen = torch.Generator().manual_seed(seed)
    scores = _scores(gen, 40)
    pm1 = torch.randint(0, 2, (40,), generator=gen) * 2 - 1
    expected = optax_perceptron_loss(scores, pm1)
    assert expected > 0
    torch.testing.assert_close(binary_hinge_loss(scores, pm1, margin=0), expected, rtol=1e-12, atol=0)
    metric = hm.BinaryHingeLoss(margin=0)
    metric.update(scores[:15], (pm1[:15] > 0).long())  # the {0, 1} convention says the same
    metric.update(scores[15:], pm1[15:])
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-12, atol=0)
    torch.testing.assert_close(hm.HingeLoss("binary", margin=0.0)(scores, pm1), expected, rtol=1e-12, atol=0)


@pytest.mark.parametrize("seed", range(3))
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_multiclass_margin_zero_is_optax_multiclass_perceptron_loss(seed, dtype):
    gen = torch.Generator().manual_seed(10 + seed)
    scores = _scores(gen, 30, 5).to(dtype)
    labels = torch.randint(0, 5, (30,), generator=gen)
    expected = optax_multiclass_perceptron_loss(scores.double(), labels)
    assert expected > 0
    torch.testing.assert_close(multiclass_hinge_loss(scores, labels, 5, margin=0), expected, rtol=1e-12, atol=0)
    metric = hm.HingeLoss("multiclass", 5, margin=0)
    metric.update(scores[:11], labels[:11])
    metric.update(scores[11:], labels[11:])
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-12, atol=0)


# ------------------------------------------------------------------------------------ any finite margin
MARGINS = [0.0, -0.5, -3.0, 0.25, 1e-3]


@pytest.mark.parametrize("margin", MARGINS)
@pytest.mark.parametrize("squared", [False, True])
def test_any_finite_margin_matches_the_references(margin, squared):
    gen = torch.Generator().manual_seed(3)
    scores, labels = _scores(gen, 25), torch.randint(0, 2, (25,), generator=gen)
    expected = ref.binary_hinge(scores.numpy(), labels.numpy(), margin=margin, squared=squared)
    assert binary_hinge_loss(scores, labels, squared, margin=margin).item() == pytest.approx(expected, rel=1e-12)
    multilabel_scores, multilabel_target = _scores(gen, 12, 3), torch.randint(0, 2, (12, 3), generator=gen)
    expected = ref.multilabel_hinge(
        multilabel_scores.numpy(), multilabel_target.numpy(), margin=margin, squared=squared
    )
    ours = multilabel_hinge_loss(multilabel_scores, multilabel_target, 3, squared, margin=margin)
    assert ours.item() == pytest.approx(expected, rel=1e-12)
    class_scores, classes = _scores(gen, 20, 4), torch.randint(0, 4, (20,), generator=gen)
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins", "categorical"):
        expected = ref.multiclass_hinge(
            class_scores.numpy(), classes.numpy(), mode=mode, margin=margin, squared=squared
        )
        ours = multiclass_hinge_loss(class_scores, classes, 4, squared, mode, margin=margin)
        torch.testing.assert_close(ours, torch.as_tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)


@pytest.mark.parametrize("margin", [0.0, -0.5, -2.0])
def test_hinge_embedding_takes_any_finite_margin_as_torch_does(margin):
    gen = torch.Generator().manual_seed(4)
    x, y = _scores(gen, 30), torch.randint(0, 2, (30,), generator=gen) * 2 - 1
    expected = F.hinge_embedding_loss(x, y.double(), margin=margin)
    torch.testing.assert_close(hinge_embedding_loss(x, y, margin=margin), expected, rtol=1e-12, atol=1e-15)
    metric = hm.HingeEmbeddingLoss(margin=margin)
    metric.update(x[:13], y[:13])
    metric.update(x[13:], y[13:])
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-12, atol=1e-15)


def test_a_margin_at_or_below_minus_one_on_probabilities_is_zero_as_documented():
    """Probabilities' gaps lie within [-1, 1]: the documented reason why such a margin says nothing."""
    gen = torch.Generator().manual_seed(5)
    scores, classes = _scores(gen, 30, 4) * 5, torch.randint(0, 4, (30,), generator=gen)
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins", "categorical"):
        loss = multiclass_hinge_loss(scores, classes, 4, multiclass_mode=mode, margin=-1.0, normalization="softmax")
        assert torch.all(loss == 0), mode
        assert torch.all(multiclass_hinge_loss(scores, classes, 4, multiclass_mode=mode, margin=-0.9) > 0), mode
    labels = torch.randint(0, 2, (30,), generator=gen)
    assert binary_hinge_loss(scores[:, 0], labels, margin=-1.0, normalization="sigmoid") == 0
    assert binary_hinge_loss(scores[:, 0], labels, margin=-0.5, normalization="sigmoid") > 0


# ---------------------------------------------------------------------------------- Keras' categorical hinge
def keras_categorical_hinge(scores: torch.Tensor, one_hot: torch.Tensor, margin: float = 1.0) -> torch.Tensor:
    """Keras ``categorical_hinge`` (margin 1 there): max(0, neg - pos + m), pos = sum(y s), neg = max((1 - y) s)."""
    losses = []
    for row, y in zip(scores.tolist(), one_hot.tolist()):
        pos = sum(t * s for t, s in zip(y, row))
        neg = max((1 - t) * s for t, s in zip(y, row))
        losses.append(max(0.0, neg - pos + margin))
    return torch.tensor(sum(losses) / len(losses), dtype=torch.float64)


@pytest.mark.parametrize("margin", [1.0, 0.5, 0.0, -0.5])
@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_categorical_mode_is_keras_categorical_hinge(margin, dtype):
    gen = torch.Generator().manual_seed(6)
    c = 4
    scores = _scores(gen, 50, c, loc=-1.0).to(dtype)
    classes = torch.randint(0, c, (50,), generator=gen)
    one_hot = F.one_hot(classes, c)
    expected = keras_categorical_hinge(scores.double(), one_hot, margin)
    for target in (classes, one_hot, one_hot.float()):
        ours = multiclass_hinge_loss(scores, target, c, multiclass_mode="categorical", margin=margin)
        torch.testing.assert_close(ours, expected, rtol=1e-12, atol=1e-15)
    metric = hm.HingeLoss("multiclass", c, multiclass_mode="categorical", margin=margin)
    metric.update(scores[:21], one_hot[:21])
    metric.update(scores[21:], classes[21:])
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-12, atol=1e-15)
    functional = hinge_loss(scores, classes, "multiclass", c, multiclass_mode="categorical", margin=margin)
    torch.testing.assert_close(functional, expected, rtol=1e-12, atol=1e-15)


def test_categorical_differs_from_crammer_singer_by_about_a_tenth_on_negative_scores():
    """Scores from normal(-1, 1) over 5 classes: the best rival is often negative, where Keras' max sees the 0 of
    the true class instead (the figure quoted in docs/families/classification-options.md)."""
    gen = torch.Generator().manual_seed(7)
    scores = _scores(gen, 2000, 5, loc=-1.0)
    classes = torch.randint(0, 5, (2000,), generator=gen)
    categorical = keras_categorical_hinge(scores, F.one_hot(classes, 5))
    crammer_singer = torch.tensor(ref.multiclass_hinge(scores.numpy(), classes.numpy()))
    relative = float((categorical - crammer_singer) / crammer_singer)
    assert 0.05 < relative < 0.15
    ours_categorical = multiclass_hinge_loss(scores, classes, 5, multiclass_mode="categorical")
    ours_crammer_singer = multiclass_hinge_loss(scores, classes, 5)
    assert float((ours_categorical - ours_crammer_singer) / ours_crammer_singer) == pytest.approx(relative, rel=1e-9)


@pytest.mark.parametrize("normalization", ["softmax", "auto"])
def test_categorical_and_crammer_singer_agree_on_probabilities(normalization):
    gen = torch.Generator().manual_seed(8)
    for scores in (_scores(gen, 30, 4, loc=-1.0) * 3, torch.rand(30, 4, generator=gen, dtype=torch.float64)):
        classes = torch.randint(0, 4, (30,), generator=gen)
        cs = multiclass_hinge_loss(scores, classes, 4, True, normalization=normalization)
        categorical = multiclass_hinge_loss(scores, classes, 4, True, "categorical", normalization=normalization)
        torch.testing.assert_close(categorical, cs, rtol=0, atol=0)


# ------------------------------------------------------------------------------------------- class weights
@pytest.mark.parametrize("p", [1, 2])
@pytest.mark.parametrize("margin", [1.0, 0.5, 0.0, -0.5, -2.0])
def test_weston_watkins_with_class_weights_is_torch_multi_margin_loss(p, margin):
    gen = torch.Generator().manual_seed(9)
    c = 5
    weight = torch.rand(c, generator=gen, dtype=torch.float64) * 3
    scores = _scores(gen, 40, c).float()
    classes = torch.randint(0, c, (40,), generator=gen)
    expected = F.multi_margin_loss(scores.double(), classes, p=p, margin=margin, weight=weight)
    metric = hm.MulticlassHingeLoss(c, p == 2, "weston-watkins", margin=margin, class_weight=weight)
    for part in (slice(0, 17), slice(17, 18), slice(18, None)):
        metric.update(scores[part], classes[part])
    torch.testing.assert_close(metric.compute(), expected, rtol=1e-6, atol=1e-9)
    functional = multiclass_hinge_loss(scores, classes, c, p == 2, "weston-watkins", margin=margin, class_weight=weight)
    torch.testing.assert_close(functional, expected, rtol=1e-6, atol=1e-9)
    as_list = multiclass_hinge_loss(
        scores, classes, c, p == 2, "weston-watkins", margin=margin, class_weight=weight.tolist()
    )
    torch.testing.assert_close(as_list, functional, rtol=0, atol=0)


@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins", "categorical"])
def test_class_weights_scale_the_losses_and_sample_weights_the_mean(mode):
    gen = torch.Generator().manual_seed(12)
    c = 3
    scores, classes = _scores(gen, 24, c, 2), torch.randint(0, c, (24, 2), generator=gen)
    sample_weight = torch.rand(24, generator=gen, dtype=torch.float64)
    class_weight = (2.0, 0.0, 0.5)
    expected = ref.multiclass_hinge(
        scores.numpy(),
        classes.numpy(),
        mode=mode,
        weight=sample_weight[:, None].expand(24, 2).numpy(),
        class_weight=class_weight,
    )
    ours = multiclass_hinge_loss(
        scores, classes, c, multiclass_mode=mode, sample_weight=sample_weight, class_weight=class_weight
    )
    torch.testing.assert_close(ours, torch.as_tensor(expected, dtype=torch.float64), rtol=1e-12, atol=1e-15)
    plain = multiclass_hinge_loss(scores, classes, c, multiclass_mode=mode, sample_weight=sample_weight)
    ones = multiclass_hinge_loss(
        scores, classes, c, multiclass_mode=mode, sample_weight=sample_weight, class_weight=torch.ones(c)
    )
    torch.testing.assert_close(ones, plain, rtol=0, atol=0)  # unit class weights change nothing
    metric = hm.MulticlassHingeLoss(c, multiclass_mode=mode, class_weight=class_weight)
    metric.update(scores, classes, sample_weight)
    assert metric.weight_sum == pytest.approx(2 * float(sample_weight.sum()), rel=1e-12)  # not the class weights
    torch.testing.assert_close(metric.compute(), ours, rtol=1e-12, atol=1e-15)


def test_class_weights_are_part_of_the_configuration():
    a = hm.MulticlassHingeLoss(3, class_weight=[1.0, 2.0, 1.0])
    same = hm.MulticlassHingeLoss(3, class_weight=torch.tensor([1, 2, 1]))
    other = hm.MulticlassHingeLoss(3, class_weight=[1.0, 3.0, 1.0])
    plain = hm.MulticlassHingeLoss(3)
    assert a._config() == same._config() and a._config_key == same._config_key
    assert a._config_key not in (other._config_key, plain._config_key)
    a.merge_state(same)
    with pytest.raises(ValueError, match=r"`class_weight` differs: \(1.0, 2.0, 1.0\) \(this metric\) vs \(1.0, 3.0"):
        a.merge_state(other)
    with pytest.raises(ValueError, match=r"`class_weight` differs: \(1.0, 2.0, 1.0\) \(this metric\) vs '\(not set\)'"):
        a.merge_state(plain)
    # (checkpoints of other class weights are refused in tests/test_checkpoints.py)
    # the configuration without class weights is the one it always was: older checkpoints still load
    assert "class_weight" not in plain._config()


def test_class_weights_move_with_the_metric_and_stay_float64():
    metric = hm.MulticlassHingeLoss(3, multiclass_mode="weston-watkins", class_weight=[0.5, 1.0, 2.0])
    assert metric.class_weight is not None and metric.class_weight.dtype == torch.float64
    assert "class_weight" not in metric.state_dict()  # a buffer of the configuration, not a saved state
    with pytest.warns(hm.StatePrecisionWarning):
        metric.set_dtype(torch.float32)
    assert metric.class_weight.dtype == torch.float64
    metric.to("meta")
    assert metric.class_weight.device.type == "meta"
    metric.to_empty(device="cpu")  # the meta buffer held no values: they come back from the configuration
    torch.testing.assert_close(metric.class_weight, torch.tensor([0.5, 1.0, 2.0], dtype=torch.float64))
    with torch.device("meta"):
        made_on_meta = hm.MulticlassHingeLoss(3, class_weight=[0.5, 1.0, 2.0])
    assert made_on_meta.class_weight.device.type == "meta"
    made_on_meta.to_empty(device="cpu")
    torch.testing.assert_close(made_on_meta.class_weight, metric.class_weight)


def _error(call) -> str:
    with pytest.raises(ValueError) as info:
        call()
    return str(info.value)


def test_functional_class_weights_follow_validate_args_and_the_device():
    scores, classes = torch.randn(6, 3), torch.tensor([0, 1, 2, 0, 1, 2])
    negative = torch.tensor([1.0, -1.0, 1.0])
    assert _error(lambda: multiclass_hinge_loss(scores, classes, 3, class_weight=negative)) == (
        "Expected `class_weight` to be non-negative, but found -1.0."
    )
    # without validation a tensor's values are not read (reading a GPU tensor synchronises): a number comes back
    assert multiclass_hinge_loss(scores, classes, 3, class_weight=negative, validate_args=False).dtype == torch.float64
    meta = torch.ones(3, device="meta")
    no_values = "Expected `class_weight` to hold values to check, but got a meta tensor."
    assert _error(lambda: multiclass_hinge_loss(scores, classes, 3, class_weight=meta)) == no_values
    assert _error(lambda: multiclass_hinge_loss(scores, classes, 3, class_weight=meta, validate_args=False)) == (
        "Expected all inputs on the same device, but got `preds` on cpu, `class_weight` on meta."
    )
    value = multiclass_hinge_loss(scores.to("meta"), classes.to("meta"), 3, class_weight=meta, validate_args=False)
    assert value.device.type == "meta"
    # a metric records the values in its configuration, so it reads them whatever `validate_args` says
    assert _error(lambda: hm.MulticlassHingeLoss(3, class_weight=meta, validate_args=False)) == no_values

"""Defined edge cases: empty batches, compute before any data, 0-d inputs, and inputs that require grad."""

from __future__ import annotations

import warnings

import numpy as np
import pytest
import torch

import hingemetrics as hm
import hingemetrics.functional as F
from tests import reference as ref
from tests.cases import CASES, Case, cat_batches, feed, map_inputs


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _states(metric) -> dict[str, torch.Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


# ---------------------------------------------------------------------------------------------- empty batches
def test_an_empty_batch_is_a_no_op_for_update_and_forward(case):
    gen = torch.Generator().manual_seed(0)
    batches = [case.draw(gen, 5), case.draw(gen, 3)]
    metric = feed(case.make(), batches)
    before = _states(metric)
    empty = case.draw(gen, 0)
    metric.update(**empty)
    batch_value = metric(**empty)
    np.testing.assert_array_equal(batch_value.numpy(), case.oracle(empty))  # nan for a mean, 0 for a sum
    for name, value in before.items():
        assert torch.equal(getattr(metric, name), value), name
    np.testing.assert_allclose(metric.compute().numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)


@pytest.mark.parametrize(
    ("call", "expected"),
    [
        (lambda: F.binary_hinge_loss(torch.empty(0), torch.empty(0, dtype=torch.long)), float("nan")),
        (lambda: F.multiclass_hinge_loss(torch.empty(0, 3), torch.empty(0, dtype=torch.long), 3), float("nan")),
        (lambda: F.multilabel_hinge_loss(torch.empty(0, 2), torch.empty(0, 2), 2, average="micro"), float("nan")),
        (lambda: F.hinge_embedding_loss(torch.empty(0), torch.empty(0)), float("nan")),
        (lambda: F.hinge_embedding_loss(torch.empty(0), torch.empty(0), reduction="sum"), 0.0),
    ],
)
def test_the_functional_forms_of_an_empty_batch(call, expected):
    np.testing.assert_array_equal(call().numpy(), expected)


# ---------------------------------------------------------------------------------------- compute before data
def test_compute_before_any_update_returns_nan_without_raising(case):
    metric = case.make()
    with pytest.warns(UserWarning, match="before the ``update``"):
        value = metric.compute()  # torchmetrics warns; it must not raise
    empty = case.draw(torch.Generator(), 0)
    assert value.dtype == torch.float64
    np.testing.assert_array_equal(value.numpy(), case.oracle(empty))  # nan, a vector of nan, or 0 for a sum
    # and again after a reset
    feed(metric, [case.draw(torch.Generator().manual_seed(1), 4)])
    metric.reset()
    with pytest.warns(UserWarning):
        np.testing.assert_array_equal(metric.compute().numpy(), case.oracle(empty))


# --------------------------------------------------------------------------------------------------- 0-d inputs
def test_a_0d_binary_input_is_one_sample():
    # hand-worked: score 0.25 for a positive, margin 1: max(0, 1 - 0.25) = 0.75; weight 2 counts it twice
    metric = hm.BinaryHingeLoss()
    metric.update(torch.tensor(0.25), torch.tensor(1), sample_weight=torch.tensor(2.0))
    assert metric.weight_sum.item() == 2.0
    assert metric.compute().item() == 0.75
    # then a (2,) batch: s = [0.5, -3.0] with y = [-1, -1] gives [1.5, 0.0]; (2 * 0.75 + 1.5 + 0) / 4 = 0.75
    metric.update(torch.tensor([0.5, -3.0]), torch.tensor([0, 0]))
    assert metric.weight_sum.item() == 3.0 + 1.0
    assert metric.compute().item() == 0.75
    assert F.binary_hinge_loss(torch.tensor(-0.5), torch.tensor(0)).item() == 0.5


def test_a_0d_embedding_input_is_one_sample():
    # x = 0.25 for a dissimilar pair, margin 1: max(0, 1 - 0.25) = 0.75; then x = 0.5 for a similar pair: 0.5
    metric = hm.HingeEmbeddingLoss()
    metric.update(torch.tensor(0.25), torch.tensor(-1))
    metric.update(torch.tensor(0.5), torch.tensor(1))
    assert metric.count.item() == 2
    assert metric.compute().item() == (0.75 + 0.5) / 2
    assert F.hinge_embedding_loss(torch.tensor(0.25), torch.tensor(-1)).item() == 0.75


@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins"])
@pytest.mark.parametrize("one_hot", [False, True], ids=["0d-index", "1d-one-hot"])
def test_one_sample_of_multiclass_scores_is_one_sample(mode, one_hot):
    scores = torch.tensor([0.5, 1.75, -0.25])
    target = torch.tensor([0, 1, 0]) if one_hot else torch.tensor(1)
    weight = torch.tensor(3.0)
    rest = (torch.tensor([[0.0, 1.0, 2.0], [1.5, 0.0, -1.0]]), torch.tensor([2, 0]))
    metric = hm.MulticlassHingeLoss(3, multiclass_mode=mode)
    metric.update(scores, target, sample_weight=weight)
    assert metric.weight_sum.item() == 3.0
    metric.update(*rest)
    expected = ref.multiclass_hinge(
        np.vstack([scores.numpy()[None], rest[0].numpy()]),
        np.array([1, 2, 0]),
        mode=mode,
        weight=np.array([3.0, 1.0, 1.0]),
    )
    np.testing.assert_allclose(metric.compute().numpy(), expected, rtol=1e-6)
    single = ref.multiclass_hinge(scores.numpy()[None], np.array([1]), mode=mode)
    np.testing.assert_allclose(F.multiclass_hinge_loss(scores, target, 3, multiclass_mode=mode).numpy(), single)


def test_crammer_singer_on_one_sample_by_hand():
    # s = [1.0, 1.75, -0.25], y = 1: the best rival is 1.0, so max(0, 1 - 1.75 + 1.0) = 0.25
    value = F.multiclass_hinge_loss(torch.tensor([1.0, 1.75, -0.25]), torch.tensor(1), 3)
    assert value.item() == 0.25


# ---------------------------------------------------------------------------------------------- requires_grad
def _no_graph(metric) -> None:
    for name in metric._defaults:
        state = getattr(metric, name)
        assert state.grad_fn is None and not state.requires_grad, name


def test_states_keep_no_autograd_graph_and_forward_is_differentiable(case):
    gen = torch.Generator().manual_seed(0)
    metric = case.make()
    grads = []
    for step in range(4):
        batch = map_inputs(case, case.draw(gen, 6), lambda x: x.double().requires_grad_(True))
        inputs = [batch[k] for k in case.inputs]
        if step % 2:
            metric.update(**batch)
            _no_graph(metric)
            continue
        value = metric(**batch)  # forward: the batch value carries a graph, the state does not
        _no_graph(metric)
        assert value.requires_grad
        grad = torch.autograd.grad(value.sum(), inputs)
        fresh = case.make()
        again = fresh(**batch)
        expected = torch.autograd.grad(again.sum(), inputs)
        torch.testing.assert_close(grad, expected)
        grads.extend(grad)
    assert any(bool(g.abs().sum() > 0) for g in grads)  # the gradient is not trivially zero
    assert metric.update_count == 4


def _away_from_kinks(margin_terms: torch.Tensor, gap: float = 0.05) -> bool:
    return bool((margin_terms.abs() > gap).all())


def _scores(*shape: int, seed: int = 0) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return (torch.randn(shape, generator=gen, dtype=torch.float64) * 1.5).requires_grad_(True)


@pytest.mark.parametrize("squared", [False, True])
@pytest.mark.parametrize("normalization", [None, "sigmoid"])
def test_binary_hinge_loss_is_differentiable(squared, normalization):
    preds, target = _scores(6), torch.tensor([1, 0, 1, 1, 0, 0])
    weight = torch.rand(6, generator=torch.Generator().manual_seed(1), dtype=torch.float64).requires_grad_(True)
    squashed = preds.detach().sigmoid() if normalization else preds.detach()
    assert _away_from_kinks(0.6 - torch.where(target == 1, squashed, -squashed))

    def loss(p, w):
        return F.binary_hinge_loss(p, target, squared, margin=0.6, normalization=normalization, sample_weight=w)

    assert torch.autograd.gradcheck(loss, (preds, weight))


@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins"])
@pytest.mark.parametrize("squared", [False, True])
def test_multiclass_hinge_loss_is_differentiable(mode, squared):
    preds, target = _scores(5, 4, seed=2), torch.tensor([0, 3, 1, 1, 2])
    s = preds.detach()
    true = s.gather(1, target[:, None])
    rivals = s.scatter(1, target[:, None], float("-inf"))
    top2 = rivals.topk(2, dim=1).values
    assert _away_from_kinks(top2[:, 0] - top2[:, 1])  # the best rival is unique
    assert _away_from_kinks(1 - true[:, 0] + top2[:, 0])
    assert _away_from_kinks((1 - true + s).scatter(1, target[:, None], 1.0))
    assert _away_from_kinks(1 - torch.where(torch.arange(4) == target[:, None], s, -s))

    def loss(p):
        return F.multiclass_hinge_loss(p, target, 4, squared, mode)

    assert torch.autograd.gradcheck(loss, (preds,))


@pytest.mark.parametrize("average", ["micro", "macro", "none"])
def test_multilabel_hinge_loss_is_differentiable(average):
    preds, target = _scores(4, 3, seed=3), torch.tensor([[1, 0, 1], [0, 0, 1], [1, 1, 0], [0, 1, 1]])
    assert _away_from_kinks(1 - torch.where(target == 1, preds.detach(), -preds.detach()))
    assert torch.autograd.gradcheck(lambda p: F.multilabel_hinge_loss(p, target, 3, average=average), (preds,))


def test_hinge_embedding_loss_is_differentiable():
    preds, target = _scores(6, seed=4).abs().detach().requires_grad_(True), torch.tensor([1, -1, 1, -1, -1, 1])
    assert _away_from_kinks(1.5 - preds.detach())
    assert torch.autograd.gradcheck(lambda p: F.hinge_embedding_loss(p, target, margin=1.5), (preds,))


def test_validation_reads_inputs_that_require_grad_without_complaint():
    preds = torch.tensor([0.5, -0.5, 2.0], requires_grad=True)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        value = F.binary_hinge_loss(preds, torch.tensor([1, 0, 1]))
    value.backward()
    # the mean of max(0, 1 - y*s): 1 - 0.5 = 0.5 (y = 1) and 1 - 0.5 = 0.5 (y = -1, s = -0.5) are active, with
    # slopes -y/3; s = 2 with y = 1 is beyond the margin and gets no gradient
    torch.testing.assert_close(preds.grad, torch.tensor([-1 / 3, 1 / 3, 0.0]))

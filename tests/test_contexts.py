"""Every metric class and functional form in the contexts users run them in, checked against the references.

The scores are made the way a user's model makes them: under ``torch.inference_mode()`` (how Lightning validates
and tests by default), under ``torch.no_grad()``, with autograd on, under CPU autocast to bfloat16, and by a
``torch.compile``d model. The metric is then updated in the same context, as a validation loop does. Each value
is compared with the plain reference on the very numbers the metric saw.
"""

from __future__ import annotations

import contextlib
from collections.abc import Callable, Iterator

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests.cases import CASES, Batch, Case, cat_batches, draw_batches
from tests.test_margin_distribution import assert_matches, reference


class Scale(torch.nn.Module):
    """A model with a parameter whose output is its input: ``x * 1 + 0``, made by real autograd-tracked layers."""

    def __init__(self) -> None:
        super().__init__()
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.bias = torch.nn.Parameter(torch.zeros(()))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        return x * self.weight + self.bias


@contextlib.contextmanager
def _autocast() -> Iterator[None]:
    with torch.autocast("cpu", dtype=torch.bfloat16):
        yield


class _BF16Linear(torch.nn.Module):
    """A linear layer under autocast gives bfloat16 scores; this one keeps the values (identity weights)."""

    def __init__(self, width: int) -> None:
        super().__init__()
        self.linear = torch.nn.Linear(width, width, bias=False)
        with torch.no_grad():
            self.linear.weight.copy_(torch.eye(width))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        flat = x.reshape(-1, x.shape[-1]) if x.dim() > 1 else x.reshape(1, -1)
        return self.linear(flat).reshape(x.shape)


_COMPILED: dict[str, Callable[[torch.Tensor], torch.Tensor]] = {}


def _compiled_model() -> Callable[[torch.Tensor], torch.Tensor]:
    if "model" not in _COMPILED:
        _COMPILED["model"] = torch.compile(Scale(), dynamic=True)
    return _COMPILED["model"]


CONTEXTS: dict[str, Callable[[], tuple[Callable, contextlib.AbstractContextManager]]] = {
    "inference_mode": lambda: (Scale(), torch.inference_mode()),
    "no_grad": lambda: (Scale(), torch.no_grad()),
    "autograd": lambda: (Scale(), torch.enable_grad()),
    "autocast_bf16": lambda: ("bf16", _autocast()),
    "compiled_model": lambda: (_compiled_model(), contextlib.nullcontext()),
}


def _scored(
    batches: list[Batch], context: str, inputs: tuple[str, ...] = ("preds",)
) -> tuple[list[Batch], contextlib.AbstractContextManager]:
    """The batches with their float ``inputs`` (scores, embeddings) replaced by a model's output made in ``context``."""
    model, ctx = CONTEXTS[context]()

    def run(x: torch.Tensor) -> torch.Tensor:
        return _BF16Linear(x.shape[-1])(x) if model == "bf16" else model(x)

    with ctx:
        out = [{k: run(v) if k in inputs else v for k, v in batch.items()} for batch in batches]
    return out, CONTEXTS[context]()[1]


def _batches(case: Case, sizes=(7, 12), seed=0) -> list[Batch]:
    return draw_batches(case, sizes, seed)


def _reference_numbers(batches: list[Batch]) -> Batch:
    with torch.inference_mode(False):
        plain = [
            {k: torch.tensor(v.detach().float().numpy() if v.is_floating_point() else v.numpy()) for k, v in b.items()}
            for b in batches
        ]
    return cat_batches(plain)


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_metric_class_in_context(case, context):
    batches, ctx = _scored(_batches(case), context, case.inputs)
    first_input = batches[0][case.inputs[0]]
    if context == "autocast_bf16":
        assert first_input.dtype == torch.bfloat16  # the context did what it is for
    if context == "autograd":
        assert first_input.requires_grad
    metric = case.make()
    with ctx:
        first = metric(**batches[0])  # forward, as a training or validation step calls it
        for batch in batches[1:]:
            metric.update(**batch)
        value = metric.compute()
    expected_first = case.oracle(_reference_numbers(batches[:1]))
    expected = case.oracle(_reference_numbers(batches))
    np.testing.assert_allclose(first.detach().float().numpy(), expected_first, rtol=1e-5)
    np.testing.assert_allclose(value.detach().numpy(), expected, rtol=1e-5)
    for name in metric._defaults:  # the summed states keep no graph and stay float64
        state = getattr(metric, name)
        assert state.dtype == torch.float64 and not state.requires_grad


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_functional_form_in_context(case, context):
    assert case.functional is not None
    batches, ctx = _scored(_batches(case, sizes=(11,)), context, case.inputs)
    with ctx:
        value = case.functional(**batches[0])
    np.testing.assert_allclose(value.detach().numpy(), case.oracle(_reference_numbers(batches)), rtol=1e-5)


def test_forward_under_autograd_is_differentiable_and_its_gradient_is_right():
    model = Scale()
    preds, target = torch.tensor([0.5, -0.3, 2.0]), torch.tensor([1, 1, 0])
    loss = hm.BinaryHingeLoss()(model(preds), target)
    loss.backward()
    # d/dw mean(max(0, 1 - y*(w*s + b))) at w=1, b=0: the mean of -y*s over the elements inside the margin
    y = np.array([1.0, 1.0, -1.0])
    s = preds.numpy().astype(np.float64)
    inside = 1 - y * s > 0
    assert model.weight.grad.item() == pytest.approx(float(np.sum(-y * s * inside) / 3), rel=1e-6)


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize("task", ["binary", "multiclass"])
def test_margin_distribution_in_context(task, context):
    gen = torch.Generator().manual_seed(3)
    if task == "binary":
        raw = [
            {"preds": torch.randn(n, generator=gen) * 2, "target": torch.randint(0, 2, (n,), generator=gen)}
            for n in (9, 5)
        ]
        metric = hm.MarginDistribution(task="binary")
    else:
        raw = [
            {"preds": torch.randn(n, 4, generator=gen) * 2, "target": torch.randint(0, 4, (n,), generator=gen)}
            for n in (9, 5)
        ]
        metric = hm.MarginDistribution(task="multiclass", num_classes=4)
    batches, ctx = _scored(raw, context)
    with ctx:
        for batch in batches:
            metric.update(**batch)
        result = metric.compute()
    numbers = _reference_numbers(batches)
    assert_matches(result, reference(numbers["preds"], numbers["target"], task=task))


@pytest.mark.parametrize("context", list(CONTEXTS))
@pytest.mark.parametrize(
    ("case_name", "task_kwargs"),
    [
        ("binary", {"task": "binary"}),
        ("multiclass-ova", {"task": "multiclass", "num_classes": 3, "multiclass_mode": "one-vs-all"}),
        ("multilabel-macro", {"task": "multilabel", "num_labels": 3}),
    ],
)
def test_the_task_dispatchers_in_context(case_name, task_kwargs, context):
    (case,) = [c for c in CASES if c.name == case_name]
    batches, ctx = _scored(_batches(case), context, case.inputs)
    metric = hm.HingeLoss(**task_kwargs)
    with ctx:
        for batch in batches:
            metric.update(**batch)
        value = metric.compute()
        functional = hm.functional.hinge_loss(**batches[0], **task_kwargs)
    np.testing.assert_allclose(value.detach().numpy(), case.oracle(_reference_numbers(batches)), rtol=1e-5)
    np.testing.assert_allclose(functional.detach().numpy(), case.oracle(_reference_numbers(batches[:1])), rtol=1e-5)

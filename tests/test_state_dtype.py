"""The summed states stay float64: through module casts (on the metric or on a parent module), checkpoint loads and
torchmetrics' containers. Only ``set_dtype`` lowers them, and it warns what that costs.

Every case of the registry runs through each cast. The expected values come from the plain references of
``tests/reference.py`` and, for bit-for-bit comparisons, from a twin of the metric that was never cast.
"""

from __future__ import annotations

import math
import warnings
from collections.abc import Callable

import numpy as np
import pytest
import torch
from torchmetrics import Metric, MetricCollection, MetricTracker
from torchmetrics.wrappers import ClasswiseWrapper

import hingemetrics as hm
from hingemetrics import _precision as P
from tests.cases import CASES, Case, cat_batches, draw_batches, feed


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _stream(case: Case, sizes=(6, 5, 7), seed=0):
    return draw_batches(case, sizes, seed)


def _states(metric: Metric) -> dict[str, torch.Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


def _assert_float64_and_equal(metric: Metric, before: dict[str, torch.Tensor]) -> None:
    for name, old in before.items():
        now = getattr(metric, name)
        assert now.dtype == torch.float64, name
        assert torch.equal(now, old), name
    for name, default in metric._defaults.items():
        assert default.dtype == torch.float64, name


@pytest.fixture
def no_precision_warning():
    with warnings.catch_warnings():
        warnings.simplefilter("error", hm.StatePrecisionWarning)
        yield


# Each cast, and the dtype it gives a float parameter of an ordinary module.
CASTS: dict[str, tuple[Callable[[torch.nn.Module], object], torch.dtype]] = {
    "to-bfloat16": (lambda m: m.to(torch.bfloat16), torch.bfloat16),
    "to-float16": (lambda m: m.to(torch.float16), torch.float16),
    "to-cpu-float16": (lambda m: m.to("cpu", torch.float16), torch.float16),
    "to-dtype-float32": (lambda m: m.to(dtype=torch.float32), torch.float32),
    "half": (lambda m: m.half(), torch.float16),
    "bfloat16": (lambda m: m.bfloat16(), torch.bfloat16),
    "float": (lambda m: m.float(), torch.float32),
    "double": (lambda m: m.double(), torch.float64),
    "type-float16": (lambda m: m.type(torch.float16), torch.float16),
}


# ------------------------------------------------------------------------------------------ parent-module casts
@pytest.mark.parametrize("cast", list(CASTS))
def test_a_parent_module_cast_leaves_the_sums_float64(case, cast, no_precision_warning):
    apply, dtype = CASTS[cast]
    first, second = _stream(case)[:2], _stream(case)[2:]
    model = torch.nn.Module()
    model.linear = torch.nn.Linear(2, 2)
    model.metric = feed(case.make(), first)
    twin = feed(case.make(), first)
    model.metric.compute()  # a cached result goes through the cast too
    before = _states(model.metric)
    apply(model)  # a parent's cast warns nothing: casting a model with metrics inside is the ordinary case
    assert model.linear.weight.dtype == dtype  # the cast did reach the module's parameters
    _assert_float64_and_equal(model.metric, before)
    assert torch.equal(model.metric.compute(), twin.compute())
    feed(model.metric, second)
    feed(twin, second)
    assert torch.equal(model.metric.compute(), twin.compute())
    np.testing.assert_allclose(model.metric.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=1e-6)
    model.metric.reset()
    for name in model.metric._defaults:
        assert getattr(model.metric, name).dtype == torch.float64


def test_a_stream_of_equal_losses_keeps_its_mean_after_the_parent_goes_bfloat16():
    """Scores of 0.7 with target 1 lose 1 - 0.7 each (0.7 as float32 holds it); bfloat16 sums would read 0.25."""
    model = torch.nn.Module()
    model.metric = hm.BinaryHingeLoss()
    model.to(torch.bfloat16)
    preds, target = torch.full((10,), 0.7), torch.ones(10, dtype=torch.long)
    for _ in range(500):
        model.metric.update(preds, target)
    assert model.metric.compute().item() == pytest.approx(1 - float(np.float32(0.7)), rel=1e-12)
    assert model.metric.weight_sum.item() == 5000


# ------------------------------------------------------------------------------------------- casts on the metric
@pytest.mark.parametrize("cast", [name for name, (_, dtype) in CASTS.items() if dtype != torch.float64])
def test_a_cast_called_on_the_metric_keeps_float64_and_says_so(case, cast):
    apply, dtype = CASTS[cast]
    first, second = _stream(case)[:2], _stream(case)[2:]
    metric = feed(case.make(), first)
    before = _states(metric)
    with pytest.warns(hm.StatePrecisionWarning) as caught:
        returned = apply(metric)
    assert returned is metric
    message = str(caught[0].message)
    assert "leaves the torch.float64 states as they are" in message
    assert f"Call `metric.set_dtype({dtype})` to change it." in message
    _assert_float64_and_equal(metric, before)
    feed(metric, second)
    np.testing.assert_allclose(metric.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=1e-6)


@pytest.mark.parametrize(
    "apply",
    [lambda m: m.double(), lambda m: m.to("cpu"), lambda m: m.cpu(), lambda m: m.to("cpu", torch.float64)],
    ids=["double", "to-cpu", "cpu", "to-cpu-float64"],
)
def test_a_cast_that_changes_nothing_and_a_device_move_warn_nothing(case, apply, no_precision_warning):
    metric = feed(case.make(), _stream(case)[:1])
    before = _states(metric)
    assert apply(metric) is metric
    _assert_float64_and_equal(metric, before)


# --------------------------------------------------------------------------------------------------- set_dtype
@pytest.mark.parametrize(
    ("dtype", "cost"),
    [
        (torch.float32, "float32 keeps 24 significant bits"),
        (torch.float16, "float16 keeps 11 significant bits (about 3 decimal digits) and overflows to inf past 65504"),
        (torch.bfloat16, "bfloat16 keeps 8 significant bits"),
    ],
)
def test_set_dtype_lowers_the_sums_and_warns_what_it_costs(case, dtype, cost):
    metric = feed(case.make(), _stream(case)[:1])
    with pytest.warns(hm.StatePrecisionWarning, match=f"set_dtype\\({dtype}\\) keeps the summed states") as caught:
        assert metric.set_dtype(dtype) is metric
    assert cost in str(caught[0].message)
    for name in metric._defaults:
        assert getattr(metric, name).dtype == dtype
        assert metric._defaults[name].dtype == dtype
    # a later module cast leaves the chosen dtype alone too
    model = torch.nn.Module()
    model.metric = metric
    model.double()
    assert all(getattr(metric, name).dtype == dtype for name in metric._defaults)


def test_the_float16_warning_is_what_happens_and_float64_does_not():
    """1e5 unit losses (score 0, target 1) in batches of 1000: float16 sums pass 65504 and turn inf."""
    preds, target = torch.zeros(1000), torch.ones(1000, dtype=torch.long)
    low = hm.BinaryHingeLoss()
    with pytest.warns(hm.StatePrecisionWarning, match="overflows to inf past 65504"):
        low.set_dtype(torch.float16)
    wide = hm.BinaryHingeLoss()
    for _ in range(100):
        low.update(preds, target)
        wide.update(preds, target)
    assert math.isinf(low.weight_sum.item())
    assert wide.weight_sum.item() == 100_000 and wide.compute().item() == 1.0


def test_set_dtype_back_to_float64_warns_nothing_and_names_are_understood(no_precision_warning):
    metric = hm.BinaryHingeLoss()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", hm.StatePrecisionWarning)
        metric.set_dtype("torch.HalfTensor")
    assert metric.loss_sum.dtype == torch.float16
    metric.set_dtype(torch.float64)
    assert metric.loss_sum.dtype == torch.float64 and metric.weight_sum.dtype == torch.float64


@pytest.mark.parametrize("dtype", [torch.int64, torch.bool, torch.complex64])
def test_set_dtype_refuses_a_dtype_that_is_not_floating(dtype):
    metric = hm.BinaryHingeLoss()
    with pytest.raises(TypeError) as info:
        metric.set_dtype(dtype)
    assert str(info.value) == (
        f"Expected `dst_type` to be a floating-point dtype for the summed states, but got {dtype}."
    )
    assert metric.loss_sum.dtype == torch.float64


# ------------------------------------------------------------------------------------------------- checkpoints
def test_a_checkpoint_loads_in_float64_after_the_parent_was_cast(case):
    writer = feed(case.make(), _stream(case)[:2])
    writer.persistent(True)
    model = torch.nn.Module()
    model.metric = case.make()
    model.metric.persistent(True)
    model.to(torch.bfloat16)
    model.load_state_dict({f"metric.{key}": value for key, value in writer.state_dict().items()})
    for name in writer._defaults:
        assert getattr(model.metric, name).dtype == torch.float64, name
        assert torch.equal(getattr(model.metric, name), getattr(writer, name)), name


# ------------------------------------------------------------------------------------- torchmetrics' containers
def _members() -> dict[str, Metric]:
    return {"hinge": hm.BinaryHingeLoss(), "squared": hm.BinaryHingeLoss(squared=True)}


CONTAINERS: dict[str, Callable[[], Metric | MetricCollection]] = {
    "collection": lambda: MetricCollection(_members()),
    "collection-no-groups": lambda: MetricCollection(_members(), compute_groups=False),
    "tracker": lambda: MetricTracker(hm.BinaryHingeLoss()),
    "classwise": lambda: ClasswiseWrapper(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")),
}


def _container_batches(name: str, seed: int):
    gen = torch.Generator().manual_seed(seed)
    if name == "classwise":
        return [(torch.randn(n, 3, generator=gen), torch.randint(0, 3, (n,), generator=gen)) for n in (5, 8)]
    return [(torch.randn(n, generator=gen) * 2, torch.randint(0, 2, (n,), generator=gen)) for n in (5, 8)]


def _hinge_metrics(module: torch.nn.Module) -> list[Metric]:
    return [m for m in module.modules() if isinstance(m, (hm.BinaryHingeLoss, hm.MulticlassHingeLoss))]


@pytest.mark.parametrize("name", list(CONTAINERS))
def test_containers_inside_a_cast_parent_keep_float64(name, no_precision_warning):
    model, twin = torch.nn.Module(), CONTAINERS[name]()
    model.container = CONTAINERS[name]()
    if name == "tracker":
        model.container.increment()
        twin.increment()
    first, second = _container_batches(name, 0), _container_batches(name, 1)
    for preds, target in first:
        model.container.update(preds, target)
        twin.update(preds, target)
    model.to(torch.bfloat16)
    assert _hinge_metrics(model)
    for metric in _hinge_metrics(model):
        for state in metric._defaults:
            assert getattr(metric, state).dtype == torch.float64, state
    for preds, target in second:
        model.container.update(preds, target)
        twin.update(preds, target)
    got, want = model.container.compute(), twin.compute()
    if isinstance(want, dict):
        assert got.keys() == want.keys()
        for key in want:
            assert torch.equal(got[key], want[key]), key
    else:
        assert torch.equal(got, want)


# ---------------------------------------------------------------------------------- devices without float64
@pytest.mark.parametrize(
    ("device", "asked", "kept"),
    [
        ("cpu", torch.float64, torch.float64),
        ("cuda", torch.float64, torch.float64),
        (torch.device("cuda", 1), torch.float64, torch.float64),
        ("meta", torch.float64, torch.float64),
        ("mps", torch.float64, torch.float32),
        (torch.device("mps"), torch.float64, torch.float32),
        ("mps", torch.float32, torch.float32),
        ("mps", torch.float16, torch.float16),
        ("cpu", torch.bfloat16, torch.bfloat16),
    ],
)
def test_the_state_dtype_is_a_function_of_the_device(device, asked, kept):
    assert hm._precision.state_dtype_for(device, asked) == kept


def test_a_move_to_a_device_without_float64_narrows_first_and_a_move_back_widens():
    """The move itself is the identity here (no MPS on this machine); the plan says where the tensor goes."""
    state = torch.tensor([0.1, 1e-9], dtype=torch.float64)
    to_mps = P.state_fn(lambda t: t, P.CastPlan(torch.device("mps"), None), torch.float64)
    narrowed = to_mps(state)
    assert narrowed.dtype == torch.float32 and torch.equal(narrowed, state.float())
    back = P.state_fn(lambda t: t, P.CastPlan(torch.device("cpu"), None), torch.float64)(narrowed)
    assert back.dtype == torch.float64 and torch.equal(back, state.float().double())
    # the cached results (no wanted dtype) keep theirs where the device has it
    assert P.state_fn(lambda t: t, P.CastPlan(torch.device("cpu"), None), None)(narrowed).dtype == torch.float32


def test_a_metric_warns_once_when_its_device_has_no_float64(monkeypatch):
    """The meta device stands in for MPS: the policy says it has no float64."""
    monkeypatch.setattr(P, "NO_FLOAT64_DEVICES", frozenset({"meta"}))
    metric = hm.BinaryHingeLoss()
    with pytest.warns(hm.StatePrecisionWarning) as caught:
        metric.to("meta")
    assert len(caught) == 1
    assert str(caught[0].message).startswith(
        "BinaryHingeLoss keeps its states in float32 on meta, which has no float64: float32 keeps 24 significant bits"
    )
    assert metric.loss_sum.dtype == torch.float32 and metric.loss_sum.device.type == "meta"
    with warnings.catch_warnings():
        warnings.simplefilter("error", hm.StatePrecisionWarning)
        metric.to("meta")  # once per metric
    other = hm.BinaryHingeLoss()
    with pytest.warns(hm.StatePrecisionWarning):
        other.to("meta")  # and for each metric


# ---------------------------------------------------------------------------------------------- meta and back
def test_a_metric_made_on_meta_is_empty_after_to_empty(case):
    batches = _stream(case)
    with torch.device("meta"):
        model = torch.nn.Module()
        model.metric = case.make()
    assert model.metric.loss_sum.device.type == "meta"
    model.to_empty(device="cpu")
    for name, default in model.metric._defaults.items():
        assert torch.equal(getattr(model.metric, name), torch.zeros_like(default)), name
        assert getattr(model.metric, name).dtype == torch.float64
    feed(model.metric, batches)
    np.testing.assert_allclose(model.metric.compute().numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)


def test_to_empty_on_the_metric_itself_keeps_what_it_holds(case):
    batches = _stream(case)
    metric = feed(case.make(), batches[:1])
    before = _states(metric)
    assert metric.to_empty(device="cpu") is metric
    _assert_float64_and_equal(metric, before)
    feed(metric, batches[1:])
    np.testing.assert_allclose(metric.compute().numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)

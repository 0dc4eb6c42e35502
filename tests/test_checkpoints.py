"""Checkpoints: state_dict round trips (on CPU, across dtypes), refused wrong shapes, pickle and deepcopy."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests.cases import CASES, Case, cat_batches, draw_batches, feed


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _stream(case: Case, sizes=(6, 0, 5, 7), seed=0):
    return draw_batches(case, sizes, seed)


def _saved(state_dict) -> dict:
    """The state dict through ``torch.save`` and ``torch.load`` (tensors only, so ``weights_only`` loading works)."""
    buffer = io.BytesIO()
    torch.save(state_dict, buffer)
    buffer.seek(0)
    return torch.load(buffer, map_location="cpu", weights_only=True)


def _persistent(metric):
    metric.persistent(True)
    return metric


def test_state_dict_round_trip_into_a_fresh_metric(case):
    first, second = _stream(case)[:2], _stream(case)[2:]
    metric = _persistent(feed(case.make(), first))
    checkpoint = _saved(metric.state_dict())
    assert set(metric._defaults) <= set(checkpoint)
    fresh = _persistent(case.make())
    fresh.load_state_dict(checkpoint)
    for name in metric._defaults:
        assert torch.equal(getattr(fresh, name), getattr(metric, name)), name
        assert getattr(fresh, name).dtype == torch.float64
    feed(fresh, second)
    feed(metric, second)
    np.testing.assert_array_equal(fresh.compute().numpy(), metric.compute().numpy())
    np.testing.assert_allclose(fresh.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=1e-6)


def test_compute_after_loading_a_checkpoint_with_data_does_not_warn(case, recwarn):
    batches = _stream(case)[:1]
    fresh = _persistent(case.make())
    fresh.load_state_dict(_saved(_persistent(feed(case.make(), batches)).state_dict()))
    value = fresh.compute()
    assert not [w for w in recwarn if "before the ``update``" in str(w.message)], [str(w.message) for w in recwarn]
    np.testing.assert_allclose(value.numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)


def test_compute_after_loading_an_empty_checkpoint_still_warns(case):
    fresh = _persistent(case.make())
    fresh.load_state_dict(_saved(_persistent(case.make()).state_dict()))
    with pytest.warns(UserWarning, match="before the ``update``"):
        fresh.compute()


@pytest.mark.parametrize("dtype", [torch.float32, torch.float16, torch.bfloat16])
def test_a_lower_precision_checkpoint_loads_into_float64_states(case, dtype):
    first, second = _stream(case)[:2], _stream(case)[2:]
    writer = feed(case.make(), first)
    with pytest.warns(hm.StatePrecisionWarning, match="significant bits"):
        writer.set_dtype(dtype)  # a metric that keeps its states in `dtype` writes this checkpoint
    writer.persistent(True)
    checkpoint = _saved(writer.state_dict())
    assert all(checkpoint[name].dtype == dtype for name in writer._sum_states)
    fresh = _persistent(case.make())
    fresh.load_state_dict(checkpoint)
    for name in fresh._sum_states:
        state = getattr(fresh, name)
        assert state.dtype == torch.float64, name
        assert torch.equal(state, checkpoint[name].double()), name
    feed(fresh, second)
    for name in fresh._sum_states:
        assert getattr(fresh, name).dtype == torch.float64
    # the first batches were rounded to `dtype` once, in the checkpoint; the rest is exact
    rtol = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    np.testing.assert_allclose(fresh.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=rtol)


def test_a_float64_checkpoint_loads_into_a_metric_at_its_own_dtype():
    metric = _persistent(hm.BinaryHingeLoss())
    metric.update(torch.tensor([0.5, -1.0]), torch.tensor([1, 1]))  # losses 0.5 and 2.0
    reader = _persistent(hm.BinaryHingeLoss())
    with pytest.warns(hm.StatePrecisionWarning, match="float32 keeps 24 significant bits"):
        reader.set_dtype(torch.float32)
    reader.load_state_dict(metric.state_dict())
    assert reader.loss_sum.dtype == torch.float32
    assert reader.loss_sum.item() == 2.5 and reader.weight_sum.item() == 2.0


def _wrong_shape(state: torch.Tensor) -> torch.Tensor:
    return torch.zeros(state.numel() + 2, dtype=state.dtype) if state.dim() else torch.zeros(3, dtype=state.dtype)


def test_a_wrong_shaped_state_is_refused_and_nothing_is_loaded(case):
    metric = _persistent(feed(case.make(), _stream(case)[:1]))
    before = {name: getattr(metric, name).clone() for name in metric._defaults}
    other = _persistent(feed(case.make(), _stream(case, seed=1)[:1]))
    checkpoint = other.state_dict()
    first, last = metric._sum_states[0], metric._sum_states[-1]
    checkpoint[last] = _wrong_shape(checkpoint[last])
    with pytest.raises(RuntimeError) as info:
        metric.load_state_dict(checkpoint)
    want = (
        f"Expected state `{last}` (key '{last}') of {type(metric).__name__} to be a tensor of shape "
        f"{tuple(before[last].shape)}, but got shape {tuple(checkpoint[last].shape)}."
    )
    assert want in str(info.value)
    assert f"`{first}`" not in str(info.value)  # the good state is not reported ...
    for name, value in before.items():  # ... and not loaded either: the metric is as it was
        assert torch.equal(getattr(metric, name), value), name
    second = _stream(case)[1:]
    feed(metric, second)
    np.testing.assert_allclose(metric.compute().numpy(), case.oracle(cat_batches(_stream(case))), rtol=1e-6)


def test_a_checkpoint_state_that_is_not_a_tensor_is_refused():
    metric = _persistent(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"))
    with pytest.raises(RuntimeError) as info:
        metric.load_state_dict({"loss_sum": [0.0, 0.0, 0.0], "weight_sum": torch.tensor(0.0)})
    assert (
        "Expected state `loss_sum` (key 'loss_sum') of MulticlassHingeLoss to be a tensor of shape (3,), "
        "but got a list."
    ) in str(info.value)


def test_the_error_names_the_prefixed_key_inside_a_module():
    model = torch.nn.Module()
    model.metric = _persistent(hm.MultilabelHingeLoss(num_labels=2))
    checkpoint = model.state_dict()
    checkpoint["metric.weight_sum"] = torch.zeros(3, dtype=torch.float64)
    with pytest.raises(RuntimeError, match="Error\\(s\\) in loading state_dict for Module") as info:
        model.load_state_dict(checkpoint)
    assert (
        "Expected state `weight_sum` (key 'metric.weight_sum') of MultilabelHingeLoss to be a tensor of shape (2,), "
        "but got shape (3,)."
    ) in str(info.value)


def test_loading_drops_a_cached_result():
    metric = _persistent(hm.BinaryHingeLoss())
    metric.update(torch.tensor([0.5]), torch.tensor([1]))  # loss 0.5
    assert metric.compute().item() == 0.5  # now cached
    other = _persistent(hm.BinaryHingeLoss())
    other.update(torch.tensor([-1.0]), torch.tensor([1]))  # loss 2.0
    metric.load_state_dict(other.state_dict())
    assert metric.compute().item() == 2.0


@pytest.mark.parametrize("how", ["pickle", "deepcopy"])
def test_a_copy_in_the_middle_of_a_stream_ends_at_the_same_value(case, how):
    batches = _stream(case)
    metric = feed(case.make(), batches[:2])
    clone = pickle.loads(pickle.dumps(metric)) if how == "pickle" else copy.deepcopy(metric)
    assert clone is not metric
    for batch in batches[2:]:
        metric.update(**batch)
        clone(**batch)  # forward on the copy: the same accumulation through the other entry point
    np.testing.assert_array_equal(clone.compute().numpy(), metric.compute().numpy())
    np.testing.assert_allclose(clone.compute().numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)
    assert clone.update_count == metric.update_count


# ------------------------------------------------------------------------ a checkpoint of another configuration
# (metric, the same class built otherwise, the argument that differs, its value here, its value in the other)
OTHER_CONFIGURATIONS = [
    (lambda: hm.BinaryHingeLoss(margin=1), lambda: hm.BinaryHingeLoss(margin=2), "margin", 1.0, 2.0),
    (lambda: hm.BinaryHingeLoss(), lambda: hm.BinaryHingeLoss(squared=True), "squared", False, True),
    (
        lambda: hm.MulticlassHingeLoss(3),
        lambda: hm.MulticlassHingeLoss(3, multiclass_mode="weston-watkins"),
        "multiclass_mode",
        "crammer-singer",
        "weston-watkins",
    ),
    (
        lambda: hm.MultilabelHingeLoss(3, ignore_index=-1),
        lambda: hm.MultilabelHingeLoss(3, ignore_index=-100),
        "ignore_index",
        -1,
        -100,
    ),
    (lambda: hm.HingeEmbeddingLoss(margin=0.5), lambda: hm.HingeEmbeddingLoss(margin=1.5), "margin", 0.5, 1.5),
    (lambda: hm.MarginDistribution(bins=8), lambda: hm.MarginDistribution(bins=8, margin=0.5), "margin", 1.0, 0.5),
    (
        lambda: hm.MulticlassHingeLoss(3, class_weight=[1.0, 2.0, 1.0]),
        lambda: hm.MulticlassHingeLoss(3, class_weight=torch.tensor([1.0, 3.0, 1.0])),
        "class_weight",
        (1.0, 2.0, 1.0),
        (1.0, 3.0, 1.0),
    ),
    (lambda: hm.BinaryHingeLoss(), lambda: hm.BinaryHingeLoss(margin=0), "margin", 1.0, 0.0),
]
IDS = [
    "binary-margin",
    "binary-squared",
    "multiclass-mode",
    "multilabel-ignore",
    "embedding-margin",
    "margins",
    "multiclass-class-weight",
    "binary-perceptron",
]


def _describe(metric) -> str:
    args = ", ".join(f"{name}={value!r}" for name, value in metric._config_args.items())
    return f"{type(metric).__name__}({args})"


@pytest.mark.parametrize(("make", "make_other", "arg", "ours", "theirs"), OTHER_CONFIGURATIONS, ids=IDS)
def test_merge_state_names_the_argument_that_differs(make, make_other, arg, ours, theirs):
    metric, other = make(), make_other()
    with pytest.raises(ValueError) as info:
        metric.merge_state(other)
    assert str(info.value) == (
        f"Expected the incoming {type(metric).__name__} to have this metric's configuration, but `{arg}` differs: "
        f"{ours!r} (this metric) vs {theirs!r} (incoming)."
    )
    with pytest.raises(ValueError) as info:
        metric.merge_state(other.metric_state)
    assert str(info.value) == (
        f"Expected an incoming state of a {type(metric).__name__} with this metric's configuration "
        f"({_describe(metric)}), but it carries the key {other._config_key!r} of another one (this metric's is "
        f"{metric._config_key!r})."
    )


def test_merge_state_refuses_another_class():
    with pytest.raises(ValueError) as info:
        hm.BinaryHingeLoss().merge_state(hm.HingeEmbeddingLoss())
    assert str(info.value) == "Expected the incoming metric to be a BinaryHingeLoss, but got a HingeEmbeddingLoss."


@pytest.mark.parametrize("strict", [True, False])
@pytest.mark.parametrize(("make", "make_other", "arg", "ours", "theirs"), OTHER_CONFIGURATIONS, ids=IDS)
def test_a_checkpoint_of_another_configuration_is_refused_naming_the_argument(
    make, make_other, arg, ours, theirs, strict
):
    model, writer = torch.nn.Module(), torch.nn.Module()
    model.metric, writer.metric = _persistent(make()), _persistent(make_other())
    before = {name: getattr(model.metric, name).clone() for name in model.metric._defaults}
    for name in writer.metric._sum_states:  # the writer holds data, which must not be loaded
        setattr(writer.metric, name, getattr(writer.metric, name) + 1)
    checkpoint = _saved(writer.state_dict())
    with pytest.raises(RuntimeError) as info:
        model.load_state_dict(checkpoint, strict=strict)
    message = str(info.value)
    assert (
        f"Expected the checkpoint of {type(model.metric).__name__} at 'metric' to be saved with this metric's "
        f"configuration, but `{arg}` differs: {ours!r} (here) vs {theirs!r} (in the checkpoint). Build the metric "
        "with the arguments it was saved with; no state was loaded."
    ) in message
    assert "Unexpected key" not in message
    for name, value in before.items():
        assert torch.equal(getattr(model.metric, name), value), name


def test_a_checkpoint_without_the_recorded_configuration_lists_this_metrics():
    writer = _persistent(hm.BinaryHingeLoss(margin=2.0))
    checkpoint = dict(writer.state_dict())  # a plain dict: the metadata that records the configuration is gone
    reader = _persistent(hm.BinaryHingeLoss())
    with pytest.raises(RuntimeError) as info:
        reader.load_state_dict(checkpoint)
    assert (
        "Expected the checkpoint of BinaryHingeLoss to be saved with this metric's configuration (BinaryHingeLoss("
        "margin=1.0, squared=False, ignore_index=None, normalization=None)), but it was saved with a different one "
        f"(key {writer._config_key!r}, this metric's is {reader._config_key!r}); the checkpoint does not record "
        "which arguments differ. Build the metric with the arguments it was saved with; no state was loaded."
    ) in str(info.value)


def test_an_int_margin_and_the_same_float_margin_are_one_configuration():
    a, b = hm.BinaryHingeLoss(margin=1), hm.BinaryHingeLoss(margin=1.0)
    a.update(torch.tensor([0.5]), torch.tensor([1]))
    b.update(torch.tensor([-1.0]), torch.tensor([1]))
    assert a._config_key == b._config_key
    a.merge_state(b)
    assert a.compute().item() == 1.25  # losses 0.5 and 2.0
    reader = _persistent(hm.BinaryHingeLoss(margin=1))
    reader.load_state_dict(_saved(_persistent(b).state_dict()))
    assert reader.compute().item() == 2.0

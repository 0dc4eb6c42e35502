"""Checkpoints: state_dict round trips (on CPU, across dtypes), refused wrong shapes, pickle and deepcopy."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests.cases import CASES, Case, cat_batches


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _stream(case: Case, sizes=(6, 0, 5, 7), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [case.draw(gen, n) for n in sizes]


def _feed(metric, batches):
    for batch in batches:
        metric.update(**batch)
    return metric


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
    metric = _persistent(_feed(case.make(), first))
    checkpoint = _saved(metric.state_dict())
    assert set(metric._defaults) <= set(checkpoint)
    fresh = _persistent(case.make())
    fresh.load_state_dict(checkpoint)
    for name in metric._defaults:
        assert torch.equal(getattr(fresh, name), getattr(metric, name)), name
        assert getattr(fresh, name).dtype == torch.float64
    _feed(fresh, second)
    _feed(metric, second)
    np.testing.assert_array_equal(fresh.compute().numpy(), metric.compute().numpy())
    np.testing.assert_allclose(fresh.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=1e-6)


def test_compute_after_loading_a_checkpoint_with_data_does_not_warn(case, recwarn):
    batches = _stream(case)[:1]
    fresh = _persistent(case.make())
    fresh.load_state_dict(_saved(_persistent(_feed(case.make(), batches)).state_dict()))
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
    writer = _feed(case.make(), first)
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
    _feed(fresh, second)
    for name in fresh._sum_states:
        assert getattr(fresh, name).dtype == torch.float64
    # the first batches were rounded to `dtype` once, in the checkpoint; the rest is exact
    rtol = {torch.float32: 1e-6, torch.float16: 2e-3, torch.bfloat16: 2e-2}[dtype]
    np.testing.assert_allclose(fresh.compute().numpy(), case.oracle(cat_batches(first + second)), rtol=rtol)


def test_a_float64_checkpoint_loads_into_a_metric_at_its_own_dtype():
    metric = _persistent(hm.BinaryHingeLoss())
    metric.update(torch.tensor([0.5, -1.0]), torch.tensor([1, 1]))  # losses 0.5 and 2.0
    reader = _persistent(hm.BinaryHingeLoss())
    reader.set_dtype(torch.float32)
    reader.load_state_dict(metric.state_dict())
    assert reader.loss_sum.dtype == torch.float32
    assert reader.loss_sum.item() == 2.5 and reader.weight_sum.item() == 2.0


def _wrong_shape(state: torch.Tensor) -> torch.Tensor:
    return torch.zeros(state.numel() + 2, dtype=state.dtype) if state.dim() else torch.zeros(3, dtype=state.dtype)


def test_a_wrong_shaped_state_is_refused_and_nothing_is_loaded(case):
    metric = _persistent(_feed(case.make(), _stream(case)[:1]))
    before = {name: getattr(metric, name).clone() for name in metric._defaults}
    other = _persistent(_feed(case.make(), _stream(case, seed=1)[:1]))
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
    _feed(metric, second)
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
    metric = _feed(case.make(), batches[:2])
    clone = pickle.loads(pickle.dumps(metric)) if how == "pickle" else copy.deepcopy(metric)
    assert clone is not metric
    for batch in batches[2:]:
        metric.update(**batch)
        clone(**batch)  # forward on the copy: the same accumulation through the other entry point
    np.testing.assert_array_equal(clone.compute().numpy(), metric.compute().numpy())
    np.testing.assert_allclose(clone.compute().numpy(), case.oracle(cat_batches(batches)), rtol=1e-6)
    assert clone.update_count == metric.update_count

"""The contract every hingemetrics metric class keeps, run over the case registry in ``tests/cases.py``."""

from __future__ import annotations

import copy
import io
import pickle

import numpy as np
import pytest
import torch

from tests.cases import CASES, Case, cat_batches, draw_batches, feed


def _batches(case: Case, sizes=(7, 1, 12), seed=0):
    return draw_batches(case, sizes, seed)


def _value(metric) -> np.ndarray:
    return metric.compute().detach().numpy()


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def test_matches_plain_reference(case):
    batches = _batches(case)
    np.testing.assert_allclose(_value(feed(case.make(), batches)), case.oracle(cat_batches(batches)), rtol=1e-6)


def test_state_is_float64_sums(case):
    metric = feed(case.make(), _batches(case))
    for name in metric._defaults:
        assert getattr(metric, name).dtype == torch.float64
        assert not isinstance(getattr(metric, name), list)
        assert metric._reductions[name].__name__ == "dim_zero_sum"


def test_update_split_equals_update_concatenated(case):
    a, b = _batches(case, sizes=(9, 5))
    split = feed(case.make(), [a, b])
    whole = feed(case.make(), [cat_batches([a, b])])
    # float64 sums of the same float32 losses: equal to float64 rounding. A softmax or sigmoid is float32 work whose
    # vectorised kernels may round a row differently in a batch of another size: equal to float32 rounding.
    rtol = 1e-6 if case.kwargs.get("normalization") else 1e-12
    np.testing.assert_allclose(_value(split), _value(whole), rtol=rtol)


def test_forward_returns_batch_value_and_accumulates(case):
    batches = _batches(case)
    metric = case.make()
    for b in batches:
        np.testing.assert_allclose(metric(**b).numpy(), case.oracle(b), rtol=1e-6)
    np.testing.assert_allclose(_value(metric), case.oracle(cat_batches(batches)), rtol=1e-6)


def test_compute_twice_is_the_same_and_reset_clears(case):
    metric = feed(case.make(), _batches(case))
    first, second = _value(metric), _value(metric)
    np.testing.assert_array_equal(first, second)
    metric.reset()
    for name, default in metric._defaults.items():
        assert torch.equal(getattr(metric, name), default)
    empty = case.draw(torch.Generator().manual_seed(0), 0)
    with pytest.warns(UserWarning, match="before the ``update``"):
        np.testing.assert_array_equal(_value(metric), case.oracle(empty))  # nan for a mean, 0 for a sum


def test_empty_batch_is_a_no_op(case):
    batches = _batches(case)
    metric = feed(case.make(), batches)
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    metric.update(**case.draw(torch.Generator().manual_seed(1), 0))
    for k, v in before.items():
        assert torch.equal(getattr(metric, k), v)


def test_pickle_and_deepcopy_mid_stream(case):
    a, b = _batches(case, sizes=(6, 8))
    metric = feed(case.make(), [a])
    for clone in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric)):
        feed(clone, [b])
        np.testing.assert_allclose(_value(clone), case.oracle(cat_batches([a, b])), rtol=1e-6)
    # the original was not touched by its clones
    np.testing.assert_allclose(_value(metric), case.oracle(a), rtol=1e-6)


def test_state_dict_round_trip(case):
    a, b = _batches(case, sizes=(6, 8))
    metric = feed(case.make(), [a])
    metric.persistent(True)
    buffer = io.BytesIO()
    torch.save(metric.state_dict(), buffer)
    buffer.seek(0)
    fresh = case.make()
    fresh.persistent(True)
    fresh.load_state_dict(torch.load(buffer))
    feed(fresh, [b])
    np.testing.assert_allclose(_value(fresh), case.oracle(cat_batches([a, b])), rtol=1e-6)


def test_failed_update_leaves_state_untouched(case):
    metric = feed(case.make(), _batches(case))
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    count = metric._update_count
    good = case.draw(torch.Generator().manual_seed(3), 4)
    first = case.inputs[0]
    bad = dict(good, **{first: good[first].long()})  # integer scores (or embeddings) are refused
    with pytest.raises(TypeError, match=f"`{first}`"):
        metric.update(**bad)
    for k, v in before.items():
        assert torch.equal(getattr(metric, k), v)
    assert metric._update_count == count


def _interrupted(self, *args, **kwargs):
    raise KeyboardInterrupt


@pytest.mark.parametrize("call", ["update", "forward"])
def test_an_interrupted_batch_leaves_state_and_count_as_they_were(case, call, monkeypatch):
    """A KeyboardInterrupt (any BaseException) inside the kernel: the state, the count and the metric survive."""
    first, second = _batches(case, sizes=(6, 5))
    metric = feed(case.make(), [first])
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    count = metric._update_count
    monkeypatch.setattr(type(metric), "_batch_statistics", _interrupted)
    with pytest.raises(KeyboardInterrupt):
        metric.update(**second) if call == "update" else metric(**second)
    assert metric._update_count == count
    for k, v in before.items():
        assert torch.equal(getattr(metric, k), v), k
    monkeypatch.undo()
    feed(metric, [second])
    np.testing.assert_allclose(_value(metric), case.oracle(cat_batches([first, second])), rtol=1e-6)
    assert metric._update_count == count + 1


@pytest.mark.parametrize("how", ["metric", "metric_state"])
def test_merge_state_adds_the_other_stream_and_drops_a_cached_result(case, how):
    a, b = _batches(case, sizes=(6, 8))
    metric, other = feed(case.make(), [a]), feed(case.make(), [b])
    np.testing.assert_allclose(_value(metric), case.oracle(a), rtol=1e-6)  # now cached
    metric.merge_state(other if how == "metric" else other.metric_state)
    np.testing.assert_allclose(_value(metric), case.oracle(cat_batches([a, b])), rtol=1e-6)
    assert metric.update_count == (2 if how == "metric" else 1)
    np.testing.assert_allclose(_value(other), case.oracle(b), rtol=1e-6)  # the other one is untouched


def test_merge_state_refuses_a_wrong_shaped_state_and_adds_nothing(case):
    metric = feed(case.make(), _batches(case, sizes=(5,)))
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    state = dict(feed(case.make(), _batches(case, sizes=(4,), seed=1)).metric_state)
    last = metric._sum_states[-1]
    state[last] = torch.zeros(state[last].numel() + 2, dtype=torch.float64)
    with pytest.raises(ValueError) as info:
        metric.merge_state(state)
    assert str(info.value) == (
        f"Expected incoming state `{last}` of {type(metric).__name__} to be a tensor of shape "
        f"{tuple(before[last].shape)}, but got shape {tuple(state[last].shape)}."
    )
    for k, v in before.items():  # the good state before it was not added either
        assert torch.equal(getattr(metric, k), v), k

"""Property tests: every metric class and functional form against the plain references, and the invariances.

The data come from ``tests/strategies.py``; the expected values from ``tests/reference.py``, which shares no code
with the package. Each test runs once per metric family (binary, each multiclass mode, multilabel, embedding) with
the Hypothesis profile chosen in ``tests/conftest.py`` (``ci``: 200 examples per family and test).
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial

import numpy as np
import pytest
import torch
from hypothesis import given
from hypothesis import strategies as st
from torchmetrics import Metric

import hingemetrics as hm
import hingemetrics.functional as F
from tests import reference as ref
from tests import strategies as S
from tests.strategies import Problem

PROBLEMS: dict[str, Callable[..., st.SearchStrategy[Problem]]] = {
    "binary": S.binary_problems,
    **{f"multiclass-{mode}": partial(S.multiclass_problems, mode) for mode in S.MODES},
    "multilabel": S.multilabel_problems,
    "embedding": lambda **_: S.embedding_problems(),
}
WEIGHTED = [name for name in PROBLEMS if name != "embedding"]  # HingeEmbeddingLoss takes no weights
BEYOND_MARGIN: dict[str, Callable[[], st.SearchStrategy[Problem]]] = {
    "binary": S.binary_beyond_margin,
    **{f"multiclass-{mode}": partial(S.multiclass_beyond_margin, mode) for mode in S.MODES},
    "multilabel": S.multilabel_beyond_margin,
    "embedding": S.embedding_beyond_margin,
}
CLASSES = {
    "binary": hm.BinaryHingeLoss,
    "multiclass": hm.MulticlassHingeLoss,
    "multilabel": hm.MultilabelHingeLoss,
    "embedding": hm.HingeEmbeddingLoss,
}


# -------------------------------------------------------------------------------------------------- helpers
def make_metric(p: Problem) -> Metric:
    return CLASSES[p.family](**p.kwargs)


def streamed(p: Problem) -> torch.Tensor:
    """The metric fed the stream batch by batch."""
    metric = make_metric(p)
    for batch in p.batches():
        metric.update(**batch)
    return metric.compute()


def whole(p: Problem) -> torch.Tensor:
    """The metric fed the whole stream as one batch."""
    metric = make_metric(p)
    metric.update(**p.inputs())
    return metric.compute()


def functional(p: Problem) -> torch.Tensor:
    call = {
        "binary": F.binary_hinge_loss,
        "multiclass": F.multiclass_hinge_loss,
        "multilabel": F.multilabel_hinge_loss,
        "embedding": F.hinge_embedding_loss,
    }[p.family]
    return call(**p.inputs(), **p.kwargs)


def _spread(weight: torch.Tensor | None, shape: tuple[int, ...]) -> np.ndarray | None:
    """Weights broadcast to ``shape``: per-sample ``(N,)`` weights cover the sample's other dimensions."""
    if weight is None:
        return None
    w = weight.double().numpy()
    return np.broadcast_to(w.reshape(w.shape + (1,) * (len(shape) - w.ndim)), shape)


def expected(p: Problem) -> float | np.ndarray:
    """The plain reference's value for the whole stream."""
    kw = dict(p.kwargs)
    scores, target = p.preds.double().numpy(), p.target.numpy()
    if p.family == "binary":
        return ref.binary_hinge(scores, target, weight=_spread(p.sample_weight, target.shape), **kw)
    if p.family == "multilabel":
        del kw["num_labels"]  # the reference reads it off the scores' shape
        return ref.multilabel_hinge(scores, target, weight=_spread(p.sample_weight, target.shape), **kw)
    if p.family == "embedding":
        return ref.hinge_embedding(scores, target, **kw)
    if target.ndim == scores.ndim:  # one-hot: the class is where the 1 is; ignore_index does not apply
        target, kw["ignore_index"] = target.astype(np.int64).argmax(1), None
    del kw["num_classes"]
    kw["mode"] = kw.pop("multiclass_mode")
    return ref.multiclass_hinge(scores, target, weight=_spread(p.sample_weight, target.shape), **kw)


def assert_close(actual: torch.Tensor, wanted, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    """Float64 result against a reference computed in float64 from the same float32 inputs."""
    assert actual.dtype == torch.float64
    np.testing.assert_allclose(actual.detach().numpy(), wanted, rtol=rtol, atol=atol)


def assert_same(a: torch.Tensor, b: torch.Tensor, p: Problem, float32_terms: bool = False) -> None:
    """Two results of one metric that may differ only by the order of float64 additions.

    Sigmoid and softmax may round differently in vectorised and scalar code paths, and terms added in float32 in
    another order (``float32_terms``) round differently, so those get float32 slack.
    """
    exact = p.kwargs.get("normalization") is None and not float32_terms
    assert a.shape == b.shape
    np.testing.assert_allclose(a.numpy(), b.numpy(), rtol=1e-9 if exact else 1e-6, atol=1e-12 if exact else 1e-6)


families = pytest.mark.parametrize("name", list(PROBLEMS))
weighted_families = pytest.mark.parametrize("name", WEIGHTED)


# -------------------------------------------------------------------------------------- against the references
@families
@given(data=st.data())
def test_metric_and_functional_match_the_reference(name, data):
    p = data.draw(PROBLEMS[name]())
    want = expected(p)
    assert_close(streamed(p), want)
    assert_close(functional(p), want)


@given(
    p=st.one_of(
        S.binary_problems(),
        *[S.multiclass_problems(mode) for mode in S.MODES],
        S.multilabel_problems(),
    )
)
def test_hinge_loss_task_dispatch_matches_the_reference(p):
    metric = hm.HingeLoss(task=p.family, **p.kwargs)
    assert type(metric) is CLASSES[p.family]
    for batch in p.batches():
        metric.update(**batch)
    want = expected(p)
    assert_close(metric.compute(), want)
    assert_close(F.hinge_loss(**p.inputs(), task=p.family, **p.kwargs), want)


# ------------------------------------------------------------------------------------------------- invariances
@families
@given(data=st.data())
def test_splitting_into_batches_does_not_change_the_result(name, data):
    p = data.draw(PROBLEMS[name]())
    assert_same(streamed(p), whole(p), p)


@families
@given(data=st.data())
def test_permuting_the_samples_does_not_change_the_result(name, data):
    p = data.draw(PROBLEMS[name]())
    order = torch.tensor(data.draw(st.permutations(range(p.preds.shape[0]))), dtype=torch.int64)
    weight = None if p.sample_weight is None else p.sample_weight[order]
    permuted = p.with_(preds=p.preds[order], target=p.target[order], sample_weight=weight)
    assert_same(whole(permuted), whole(p), p)


@weighted_families
@given(data=st.data())
def test_unit_weights_equal_no_weights(name, data):
    p = data.draw(PROBLEMS[name](weighted=False))
    shape = p.target.shape
    if p.family == "multiclass" and p.target.dim() == p.preds.dim():  # one-hot: weights have the index shape
        shape = shape[:1] + shape[2:]
    ones = torch.ones(shape[:1] if data.draw(st.booleans(), label="per_sample") else shape)
    assert_same(streamed(p.with_(sample_weight=ones)), streamed(p), p)


@weighted_families
@given(data=st.data())
def test_scaling_every_weight_by_a_power_of_two_changes_nothing(name, data):
    p = data.draw(PROBLEMS[name]())
    if p.sample_weight is None:
        p = p.with_(sample_weight=torch.ones(p.target.shape[:1]))
    assert_same(streamed(p.with_(sample_weight=p.sample_weight * 4)), streamed(p), p)


def _index_shape(p: Problem) -> tuple[int, ...]:
    """The shape weights take: the target's, or for one-hot multiclass targets the class-index shape."""
    shape = tuple(p.target.shape)
    if p.family == "multiclass" and p.target.dim() == p.preds.dim():
        shape = shape[:1] + shape[2:]
    return shape


@weighted_families
@given(data=st.data())
def test_the_weighted_mean_does_not_depend_on_the_scale_of_the_weights(name, data):
    """Weights k * 2**e with k in [0, 15], for every exponent e their dtype scales exactly: float32 from the smallest
    subnormal (1.4e-45) to 3.2e38, float64 from 1e-300 to 1e301. Scaling every weight scales both float64 sums
    exactly, so the result must be the unscaled one, with or without ``ignore_index``: to the last bit, but for a
    product ``w * loss`` below float64's normal range (a tiny loss times a weight near 1e-300), which float64 keeps
    only to its subnormal spacing, 2**-1074."""
    p = data.draw(PROBLEMS[name]())
    dtype = data.draw(st.sampled_from([torch.float32, torch.float64]), label="dtype")
    shape = _index_shape(p)
    if data.draw(st.booleans(), label="per_sample"):
        shape = shape[:1]
    weight = data.draw(S.integer_weights(shape, dtype), label="weight")
    exponent = data.draw(S.weight_exponents(dtype), label="exponent")
    scaled = weight * 2.0**exponent
    assert torch.equal(scaled / 2.0**exponent, weight)  # the scaling is exact: the premise of the test
    base = streamed(p.with_(sample_weight=weight))
    positive = scaled[scaled > 0]
    subnormal_spacing = p.preds.numel() * 2.0**-1074 / float(positive.min()) if positive.numel() else 0.0
    np.testing.assert_allclose(
        streamed(p.with_(sample_weight=scaled)).numpy(), base.numpy(), rtol=1e-12, atol=subnormal_spacing
    )


EXTREME_PROBLEMS: dict[str, Callable[..., st.SearchStrategy[Problem]]] = {
    "binary": partial(S.binary_problems, values=S.EXTREME),
    **{f"multiclass-{mode}": partial(S.multiclass_problems, mode, values=S.EXTREME) for mode in S.MODES},
    "multilabel": partial(S.multilabel_problems, values=S.EXTREME),
}


def float32_tolerance(p: Problem) -> float:
    """What float32 arithmetic on float32 scores may lose, next to the exact float64 value of the same inputs.

    A float32 loss is one rounding of ``m - y s`` (the margin rounded to float32 first), so it is within a few
    float32 units of the largest term involved, ``|m| + 2 max |s|``; squared, within a few units of its square.
    A sigmoid or softmax (at most 1) moves by as much as its inputs' own rounding moves it, a few units of
    ``max |s|``: hence ``|m| + 2 (max |s| + 1)``. 2**-20 is eight float32 units.
    """
    top = float(p.preds.double().abs().max()) if p.preds.numel() else 0.0
    scale = abs(p.kwargs["margin"]) + 2 * (top + 1)
    return 2.0**-20 * scale ** (2 if p.kwargs["squared"] else 1)


@pytest.mark.parametrize("name", list(EXTREME_PROBLEMS))
@given(data=st.data())
def test_extreme_but_finite_inputs_agree_with_the_float64_reference(name, data):
    """Any finite float32 score (subnormal to 3.4e38, either sign), margins from 1e-40 to 1e39, float32 weights from
    1.4e-45 to 3.4e38, squared or not, with and without ``ignore_index``: no overflow to inf, no product flushed
    to zero, no error up front; the value is the float64 reference's within float32's own rounding of the inputs."""
    p = data.draw(EXTREME_PROBLEMS[name]())
    want = expected(p)
    atol = float32_tolerance(p)
    for got in (streamed(p), functional(p)):
        assert got.dtype == torch.float64
        np.testing.assert_allclose(got.numpy(), want, rtol=1e-6, atol=atol)


@families
@given(data=st.data())
def test_zero_loss_beyond_the_margin(name, data):
    p = data.draw(BEYOND_MARGIN[name]())
    for value in (streamed(p), functional(p)):
        assert torch.equal(value, torch.zeros_like(value)), value


@pytest.mark.parametrize("family", ["binary", "multilabel"])
@given(data=st.data())
def test_label_conventions_agree(family, data):
    """{0, 1}, {-1, 1} and bool targets, as ints or whole-number floats, give one result."""
    strategy = S.binary_problems if family == "binary" else S.multilabel_problems
    p = data.draw(strategy(allow_ignore=False))
    positive = p.target == 1
    forms = [
        positive.long(),
        torch.where(positive, 1, -1).int(),
        torch.where(positive, 1.0, -1.0),
        positive,
    ]
    first = streamed(p.with_(target=forms[0]))
    for target in forms[1:]:
        assert_same(streamed(p.with_(target=target)), first, p)


@pytest.mark.parametrize("mode", S.MODES)
@given(data=st.data())
def test_index_and_one_hot_targets_agree(mode, data):
    p = data.draw(S.multiclass_problems(mode, allow_ignore=False, one_hot=False))
    c = p.kwargs["num_classes"]
    one_hot = torch.nn.functional.one_hot(p.target.long(), c).movedim(-1, 1)
    dtype = data.draw(st.sampled_from([torch.int64, torch.float32, torch.bool]))
    assert_same(streamed(p.with_(target=one_hot.to(dtype))), streamed(p), p)


@pytest.mark.parametrize("mode", S.MODES)
@given(data=st.data())
def test_renaming_the_classes_permutes_only_the_per_class_result(mode, data):
    p = data.draw(S.multiclass_problems(mode, allow_ignore=False, one_hot=False))
    c = p.kwargs["num_classes"]
    rename = torch.tensor(data.draw(st.permutations(range(c))), dtype=torch.int64)  # class j becomes rename[j]
    preds = torch.empty_like(p.preds)
    preds[:, rename] = p.preds
    renamed = streamed(p.with_(preds=preds, target=rename[p.target.long()]))
    original = streamed(p)
    if mode == "one-vs-all":
        moved = torch.empty_like(original)
        moved[rename] = original
        original = moved
    assert_same(renamed, original, p, float32_terms=mode == "weston-watkins")  # a sample's terms, in new order


@pytest.mark.parametrize("name", WEIGHTED)
@given(data=st.data())
def test_ignored_elements_count_as_zero_weight(name, data):
    """``ignore_index`` gives what weight 0 on those elements (and any valid label there) gives."""
    extra = {"one_hot": False} if name.startswith("multiclass") else {}
    p = data.draw(PROBLEMS[name](**extra).filter(lambda p: p.kwargs["ignore_index"] is not None))
    ignored = p.target == p.kwargs["ignore_index"]
    spread = _spread(p.sample_weight, tuple(p.target.shape))
    weight = torch.ones(p.target.shape) if spread is None else torch.from_numpy(spread.astype(np.float32))
    fill = 0 if p.family == "multiclass" else 1
    dropped = p.with_(
        target=torch.where(ignored, torch.tensor(fill, dtype=p.target.dtype), p.target),
        sample_weight=torch.where(ignored, 0.0, weight),
        kwargs={**p.kwargs, "ignore_index": None},
    )
    assert_same(streamed(dropped), streamed(p), p)


# ------------------------------------------------------------------ newer options: margins, categorical, weights
@given(p=S.option_problems())
def test_any_margin_the_categorical_mode_and_class_weights_match_the_reference(p):
    want = expected(p)
    assert_close(streamed(p), want)
    assert_close(functional(p), want)


@given(p=S.option_problems(modes=("crammer-singer",)))
def test_categorical_is_never_below_crammer_singer(p):
    """Keras' rival is max(0, best rival) >= the best rival, so its loss is at least Crammer-Singer's, equal
    wherever the best rival is >= 0 (always on probabilities)."""
    categorical = functional(p.with_(kwargs={**p.kwargs, "multiclass_mode": "categorical"}))
    crammer_singer = functional(p)
    if p.kwargs["normalization"] == "softmax":
        assert_same(categorical, crammer_singer, p)
    else:
        assert bool(torch.isnan(crammer_singer)) or categorical >= crammer_singer


@given(p=S.option_problems(), exponent=st.integers(-20, 20))
def test_scaling_the_class_weights_scales_the_loss(p, exponent):
    """A power of two scales every product exactly, and the denominator holds no class weight."""
    weights = p.kwargs["class_weight"] or (1.0,) * p.kwargs["num_classes"]
    scaled = p.with_(kwargs={**p.kwargs, "class_weight": tuple(w * 2.0**exponent for w in weights)})
    ratio = functional(scaled) / functional(p.with_(kwargs={**p.kwargs, "class_weight": weights}))
    finite = ratio[torch.isfinite(ratio)]
    np.testing.assert_allclose(finite.numpy(), 2.0**exponent, rtol=1e-12)

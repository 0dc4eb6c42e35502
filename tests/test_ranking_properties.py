"""Property tests of the ranking and embedding family against the plain references, and their invariances.

The data come from the ``*_problems`` strategies of ``tests/strategies.py`` (tiny float32 streams, cut into
batches); the expected values from ``tests/reference.py``. Each test runs once per loss under the Hypothesis
profile of ``tests/conftest.py``.
"""

from __future__ import annotations

from collections.abc import Callable

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import hingemetrics as hm
import hingemetrics.functional as F
from tests import reference as ref
from tests import strategies as S
from tests.strategies import FamilyProblem

PROBLEMS: dict[str, Callable[[], st.SearchStrategy[FamilyProblem]]] = {
    "ranking": S.ranking_problems,
    "triplet": S.triplet_problems,
    "cosine": S.cosine_problems,
    "multilabel-margin": S.multilabel_margin_problems,
}
CLASSES = {
    "ranking": hm.MarginRankingLoss,
    "triplet": hm.TripletMarginLoss,
    "cosine": hm.CosineEmbeddingLoss,
    "multilabel-margin": hm.MultilabelMarginLoss,
}
FUNCTIONS = {
    "ranking": F.margin_ranking_loss,
    "triplet": F.triplet_margin_loss,
    "cosine": F.cosine_embedding_loss,
    "multilabel-margin": F.multilabel_margin_loss,
}
families = pytest.mark.parametrize("name", list(PROBLEMS))
#: An eighth of the profile's examples (25 under ``ci``, 250 under ``deep``): these losses are simple, and each
#: example runs several metrics, so a few dozen per loss and test cover the strategies' corners.
FEW = settings(max_examples=max(10, settings.default.max_examples // 8))


def _np(p: FamilyProblem, key: str) -> np.ndarray | None:
    value = p.data.get(key)
    return None if value is None else value.double().numpy()


def expected(p: FamilyProblem) -> float:
    kw = dict(p.kwargs)
    weight, target = _np(p, "sample_weight"), p.data.get("target")
    if p.family == "ranking":
        if weight is not None and weight.shape != target.shape:  # one weight per sample covers its positions
            weight = np.broadcast_to(weight.reshape((-1,) + (1,) * (target.dim() - 1)), tuple(target.shape))
        return ref.margin_ranking(_np(p, "preds1"), _np(p, "preds2"), target.numpy(), weight=weight, **kw)
    if p.family == "triplet":
        embeddings = [_np(p, k) for k in ("anchor", "positive", "negative")]
        return ref.triplet_margin(*embeddings, weight=weight, **kw)
    if p.family == "cosine":
        return ref.cosine_embedding(_np(p, "preds1"), _np(p, "preds2"), target.numpy(), weight=weight, **kw)
    kw = {k: kw[k] for k in ("margin", "reduction")}
    return ref.multilabel_margin(_np(p, "preds"), target.long().numpy(), fmt=p.fmt, weight=weight, **kw)


def make(p: FamilyProblem) -> hm.MarginRankingLoss:
    return CLASSES[p.family](**p.kwargs)


def streamed(p: FamilyProblem) -> torch.Tensor:
    metric = make(p)
    for batch in p.batches():
        metric.update(**batch)
    return metric.compute()


def whole(p: FamilyProblem) -> torch.Tensor:
    metric = make(p)
    metric.update(**p.inputs())
    return metric.compute()


def _close(actual: torch.Tensor, wanted, rtol: float = 1e-5, atol: float = 1e-5) -> None:
    assert actual.dtype == torch.float64
    np.testing.assert_allclose(actual.detach().numpy(), wanted, rtol=rtol, atol=atol)


@families
@FEW
@given(data=st.data())
def test_metric_and_functional_match_the_reference(name, data):
    p = data.draw(PROBLEMS[name]())
    want = expected(p)
    _close(streamed(p), want)
    _close(FUNCTIONS[name](**p.inputs(), **p.kwargs), want)


@families
@FEW
@given(data=st.data())
def test_batch_splitting_changes_only_the_order_of_float64_additions(name, data):
    p = data.draw(PROBLEMS[name]())
    np.testing.assert_allclose(streamed(p).numpy(), whole(p).numpy(), rtol=1e-9, atol=1e-12)


@families
@FEW
@given(data=st.data())
def test_unit_weights_are_no_weights_and_a_permutation_changes_nothing(name, data):
    p = data.draw(PROBLEMS[name]())
    plain = p.with_data(sample_weight=None)
    ones = torch.ones(plain.size())
    torch.testing.assert_close(whole(plain), whole(plain.with_data(sample_weight=ones)), rtol=0, atol=0, equal_nan=True)
    order = torch.tensor(data.draw(st.permutations(range(p.size()))), dtype=torch.int64)
    permuted = p.with_data(**{k: v[order] for k, v in p.data.items()})
    np.testing.assert_allclose(whole(permuted).numpy(), whole(p).numpy(), rtol=1e-9, atol=1e-12)


@families
@FEW
@given(data=st.data())
def test_per_sample_statistics_sum_to_the_batch_and_compute_per_sample(name, data):
    """The per-sample protocol: rows of ``_sample_statistics`` sum to ``_batch_statistics``, and ``_compute_from``
    on them (a leading dimension of N) is the loss of each sample alone."""
    p = data.draw(PROBLEMS[name]())
    metric = make(p)
    per_sample = metric._sample_statistics(**p.inputs())
    batch = metric._batch_statistics(**p.inputs())
    assert len(per_sample) == len(batch) == len(metric._sum_states)
    for rows, total in zip(per_sample, batch, strict=True):
        assert rows.shape == (p.size(),) and rows.dtype == torch.float64
        np.testing.assert_allclose(rows.sum(0).numpy(), total.numpy(), rtol=1e-9, atol=1e-12)
    values = metric._compute_from(*per_sample)
    assert values.shape == (p.size(),)
    for i in range(p.size()):
        alone = p.with_data(**{k: v[i : i + 1] for k, v in p.data.items()})
        np.testing.assert_allclose(values[i].numpy(), whole(alone).numpy(), rtol=1e-9, atol=1e-12)

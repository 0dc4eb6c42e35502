"""ConfidenceInterval, PerGroup and PairedComparison, and the per-sample protocol they build on.

The oracles are written here with numpy and scipy: the classic delta-method formula of a weighted mean, a
finite-difference delta method for a mixed result, a plain paired comparison of per-sample losses, G separate
metrics for PerGroup, and the coverage of the intervals on simulated streams with a known population value.
"""

from __future__ import annotations

import copy
import inspect
import math
import pickle

import numpy as np
import pytest
import torch
from scipy import stats
from torchmetrics import MetricCollection, MetricTracker

import hingemetrics as hm
from tests.cases import CASES, Case, batch_size, cat_batches, draw_batches, feed, map_inputs

Z95 = stats.norm.ppf(0.975)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _args(case: Case, batch: dict) -> tuple[list, dict]:
    """A registry batch as the positional inputs (the case's float inputs, then any target) and the keyword
    weights of ``_sample_statistics``."""
    args = [batch[key] for key in case.inputs] + ([batch["target"]] if "target" in batch else [])
    return args, ({"sample_weight": batch["sample_weight"]} if "sample_weight" in batch else {})


def _batch_sums(case: Case, metric, batch: dict) -> tuple[torch.Tensor, ...]:
    """``_batch_statistics`` of a registry batch (weighted metrics take the weight, None included)."""
    weighted = "sample_weight" in inspect.signature(metric.update).parameters
    extra = [batch.get("sample_weight")] if weighted else []
    return metric._batch_statistics(*_args(case, batch)[0], *extra)


# ------------------------------------------------------------------------------------------------- the protocol
def test_sample_statistics_rows_sum_to_the_batch_statistics(case):
    metric = case.make()
    batch = draw_batches(case, (9,), seed=3)[0]
    args, weight = _args(case, batch)
    rows = metric._sample_statistics(*args, **weight)
    sums = _batch_sums(case, metric, batch)
    assert len(rows) == len(sums) == len(metric._sum_states)
    for row, total, name in zip(rows, sums, metric._sum_states, strict=True):
        assert row.dtype == torch.float64 and row.shape == (9, *getattr(metric, name).shape), name
        np.testing.assert_allclose(row.sum(0).numpy(), torch.broadcast_to(total, row.shape[1:]).numpy(), rtol=1e-12)


def test_sample_statistics_rows_are_the_samples_alone(case):
    """Row i is what sample i adds on its own (the metric's statistics of a batch of that one sample)."""
    metric = case.make()
    batch = draw_batches(case, (4,), seed=5)[0]
    rows = metric._sample_statistics(*_args(case, batch)[0], **_args(case, batch)[1])
    for i in range(4):
        one = {key: value[i : i + 1] for key, value in batch.items()}
        for row, total in zip(rows, _batch_sums(case, metric, one), strict=True):
            np.testing.assert_allclose(row[i].numpy(), torch.broadcast_to(total, row.shape[1:]).numpy(), rtol=1e-12)


def test_compute_from_with_a_leading_dimension_is_compute_per_slice(case):
    metrics = [feed(case.make(), draw_batches(case, (6, 3), seed=seed)) for seed in range(3)]
    stacked = [torch.stack([getattr(m, name) for m in metrics]) for name in metrics[0]._sum_states]
    batched = case.make()._compute_from(*stacked)
    for i, metric in enumerate(metrics):
        np.testing.assert_array_equal(batched[i].numpy(), metric.compute().numpy())


@pytest.mark.parametrize(
    "make, preds_shape, target_of",
    [
        (lambda: hm.BinaryHingeLoss(ignore_index=-1, normalization="auto"), (3, 190, 190), lambda p: (p > 0).long()),
        (
            lambda: hm.MulticlassHingeLoss(4, multiclass_mode="one-vs-all", class_weight=[1.0, 2.0, 0.5, 1.0]),
            (3, 4, 95, 95),
            lambda p: p.argmin(1),
        ),
    ],
    ids=["binary", "one-vs-all"],
)
def test_sample_statistics_of_samples_larger_than_a_kernel_chunk(make, preds_shape, target_of):
    """Samples of more elements than one kernel chunk: each row is still that sample alone (a plain sum here)."""
    gen = torch.Generator().manual_seed(4)
    preds = torch.randn(preds_shape, generator=gen, dtype=torch.float64)
    target = target_of(preds)
    if target.dim() == preds.dim():
        target[0, :5] = -1  # some ignored elements in the first sample
    weight = torch.rand(target.shape, generator=gen, dtype=torch.float64)
    metric = make()
    rows = metric._sample_statistics(preds, target, sample_weight=weight)
    for i in range(preds.shape[0]):
        alone = metric._batch_statistics(preds[i : i + 1], target[i : i + 1], weight[i : i + 1])
        for row, total in zip(rows, alone, strict=True):
            np.testing.assert_allclose(row[i].numpy(), total.numpy(), rtol=1e-10)
    # the binary oracle, element by element: loss max(0, 1 - y s), y = +1 where the target is 1
    if isinstance(metric, hm.BinaryHingeLoss):
        scores = torch.sigmoid(preds)  # "auto": these scores leave [0, 1]
        y = target * 2.0 - 1
        keep = target != -1
        loss = torch.where(keep, (1 - y * scores).clamp_min(0) * weight, 0.0).flatten(1).sum(1)
        np.testing.assert_allclose(rows[0].numpy(), loss.numpy(), rtol=1e-10)
        np.testing.assert_allclose(
            rows[1].numpy(), torch.where(keep, weight, 0.0).flatten(1).sum(1).numpy(), rtol=1e-12
        )


def test_a_reduction_reads_the_per_sample_rows_whatever_per_sample_says():
    """A kernel given a reduction hands it the per-sample rows, with ``per_sample`` left at its default too."""
    from hingemetrics.functional._binary import binary_hinge_sums
    from hingemetrics.functional._common import RowFold

    def keep_rows(samples, device):
        kept = []

        def add(rows, piece):
            if not kept:
                kept.extend(torch.zeros((samples, *row.shape[1:]), dtype=row.dtype) for row in rows)
            for whole, row in zip(kept, rows, strict=True):
                whole[piece] = row

        return RowFold(add, lambda: tuple(kept))

    gen = torch.Generator().manual_seed(5)
    scores, labels = torch.randn(70000, generator=gen), torch.randint(2, (70000,), generator=gen)
    options = {"labels_on_dim1": False, "margin": 1.0, "squared": False, "ignore_index": None, "normalization": None}
    rows = binary_hinge_sums(scores, labels, None, per_sample=True, **options)
    for per_sample in (True, False):
        reduced = binary_hinge_sums(scores, labels, None, per_sample=per_sample, reduction=keep_rows, **options)
        for got, expected in zip(reduced, rows, strict=True):
            assert torch.equal(got, expected)


def test_sample_statistics_check_inputs_like_update():
    metric = hm.BinaryHingeLoss()
    with pytest.raises(ValueError, match="Expected `sample_weight` to have shape"):
        metric._sample_statistics(torch.zeros(3), torch.ones(3), sample_weight=torch.ones(4))
    with pytest.raises(TypeError, match="real-valued"):
        metric._sample_statistics(torch.zeros(3), torch.ones(3), sample_weight=torch.ones(3, dtype=torch.bool))
    with pytest.raises(ValueError, match="labels"):
        metric._sample_statistics(torch.zeros(3), torch.tensor([0, 1, 2]))


def test_margin_distribution_has_no_per_sample_protocol():
    metric = hm.MarginDistribution()
    with pytest.raises(NotImplementedError, match="MarginDistribution has no per-sample statistics"):
        metric._sample_statistics(torch.zeros(2), torch.ones(2))
    with pytest.raises(NotImplementedError, match="MarginDistribution has no compute from given states"):
        hm.ConfidenceInterval(metric)


# ------------------------------------------------------------------------------------------ the normal interval
def _weighted_mean_se(loss: np.ndarray, weight: np.ndarray) -> tuple[float, float]:
    """The textbook delta-method standard error of the ratio estimator sum(w l) / sum(w)."""
    n = len(loss)
    mean = (weight * loss).sum() / weight.sum()
    var = n / (n - 1) * (weight**2 * (loss - mean) ** 2).sum() / weight.sum() ** 2
    return mean, math.sqrt(var)


def test_normal_interval_of_a_weighted_mean_is_the_classic_formula():
    gen = torch.Generator().manual_seed(0)
    preds, target = torch.randn(200, generator=gen), torch.randint(2, (200,), generator=gen)
    weight = torch.rand(200, generator=gen) * 3
    metric = hm.ConfidenceInterval(hm.BinaryHingeLoss(), level=0.9)
    metric.update(preds[:120], target[:120], sample_weight=weight[:120])
    metric.update(preds[120:], target[120:], sample_weight=weight[120:])
    got = metric.compute()
    loss = np.maximum(0, 1 - np.where(target.numpy() == 1, 1, -1) * preds.double().numpy())
    mean, se = _weighted_mean_se(loss, weight.double().numpy())
    z = stats.norm.ppf(0.95)
    np.testing.assert_allclose(got["value"].item(), mean, rtol=1e-6)
    np.testing.assert_allclose(got["stderr"].item(), se, rtol=1e-6)
    np.testing.assert_allclose([got["low"].item(), got["high"].item()], [mean - z * se, mean + z * se], rtol=1e-6)


def test_normal_interval_per_class_is_the_formula_per_class():
    gen = torch.Generator().manual_seed(1)
    preds, target = torch.randn(150, 3, generator=gen), torch.randint(3, (150,), generator=gen)
    metric = hm.ConfidenceInterval(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"))
    metric.update(preds, target)
    got = metric.compute()
    sign = np.where(np.arange(3) == target.numpy()[:, None], 1.0, -1.0)
    loss = np.maximum(0, 1 - sign * preds.double().numpy())
    for c in range(3):
        mean, se = _weighted_mean_se(loss[:, c], np.ones(150))
        np.testing.assert_allclose(got["stderr"][c].item(), se, rtol=1e-6)
        np.testing.assert_allclose(got["value"][c].item(), mean, rtol=1e-6)


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
def test_normal_interval_and_per_group_over_batches_of_several_kernel_chunks(weighted):
    """Batches whose rows span several kernel chunks, and an empty one, add up like the plain formula.

    Unweighted, every sample's weight total is one value read as a row per sample, which the wrappers use without
    reading it row by row: the same formula must come out.
    """
    gen = torch.Generator().manual_seed(3)
    n, classes = 7003, 10  # the per-class rows (n, 10) span three chunks of 32767 elements
    preds, target = torch.randn(n, classes, generator=gen), torch.randint(classes, (n,), generator=gen)
    weight, groups = torch.rand(n, generator=gen) + 0.5, torch.randint(3, (n,), generator=gen)
    interval = hm.ConfidenceInterval(hm.MulticlassHingeLoss(classes, multiclass_mode="one-vs-all"))
    per_group = hm.PerGroup(hm.MulticlassHingeLoss(classes, multiclass_mode="one-vs-all"), num_groups=3)
    given = {"sample_weight": weight} if weighted else {}
    for metric, extra in ((interval, {}), (per_group, {"groups": groups[:0]})):
        metric.update(preds[:0], target[:0], **{k: v[:0] for k, v in given.items()}, **extra)
    interval.update(preds, target, **given)
    per_group.update(preds, target, **given, groups=groups)
    sign = np.where(np.arange(classes) == target.numpy()[:, None], 1.0, -1.0)
    loss = np.maximum(0, 1 - sign * preds.double().numpy())
    w, ids = (weight.double().numpy() if weighted else np.ones(n)), groups.numpy()
    got, by_group = interval.compute(), per_group.compute()
    for c in range(classes):
        mean, se = _weighted_mean_se(loss[:, c], w)
        np.testing.assert_allclose(got["value"][c].item(), mean, rtol=1e-6)
        np.testing.assert_allclose(got["stderr"][c].item(), se, rtol=1e-6)
        for g in range(3):
            mine = ids == g
            expected = (w[mine] * loss[mine, c]).sum() / w[mine].sum()
            np.testing.assert_allclose(by_group[g, c].item(), expected, rtol=1e-6)


def test_normal_interval_and_per_group_when_the_last_chunk_holds_one_sample():
    """Unweighted binary rows of one chunk plus one sample: the last chunk's weight row is a plain one-sample row.

    The other chunks' weight rows are one value expanded over their samples; the folds add both kinds of piece.
    """
    from hingemetrics.functional._common import CPU_CHUNK_ELEMENTS

    gen = torch.Generator().manual_seed(8)
    n = CPU_CHUNK_ELEMENTS + 1
    preds, target = torch.randn(n, generator=gen), torch.randint(2, (n,), generator=gen)
    groups = torch.randint(4, (n,), generator=gen)
    interval, per_group = hm.ConfidenceInterval(hm.BinaryHingeLoss()), hm.PerGroup(hm.BinaryHingeLoss(), 4)
    interval.update(preds, target)
    per_group.update(preds, target, groups=groups)
    loss = np.maximum(0, 1 - (target.double().numpy() * 2 - 1) * preds.double().numpy())
    mean, se = _weighted_mean_se(loss, np.ones(n))
    got = interval.compute()
    np.testing.assert_allclose(got["value"].item(), mean, rtol=1e-9)
    np.testing.assert_allclose(got["stderr"].item(), se, rtol=1e-9)
    ids = groups.numpy()
    np.testing.assert_allclose(per_group.compute().numpy(), [loss[ids == g].mean() for g in range(4)], rtol=1e-9)
    np.testing.assert_array_equal(per_group.group_samples.numpy(), np.bincount(ids, minlength=4))


@pytest.mark.parametrize("weighted", [True, False], ids=["weighted", "unweighted"])
def test_normal_interval_and_per_group_of_samples_larger_than_a_kernel_chunk(weighted):
    """Samples of more positions than a kernel chunk: a sample's rows are joined from several chunks first."""
    gen = torch.Generator().manual_seed(6)
    n = 5
    preds = torch.randn(n, 190, 190, generator=gen, dtype=torch.float64)  # 36100 positions per sample: two chunks
    target = torch.randint(2, preds.shape, generator=gen)
    weight = torch.rand(preds.shape, generator=gen) + 0.5
    groups = torch.tensor([0, 1, 0, 1, 1])
    given = {"sample_weight": weight} if weighted else {}
    interval, per_group = hm.ConfidenceInterval(hm.BinaryHingeLoss()), hm.PerGroup(hm.BinaryHingeLoss(), 2)
    interval.update(preds, target, **given)
    per_group.update(preds, target, **given, groups=groups)
    y = target.double().numpy() * 2 - 1
    w = weight.double().numpy() if weighted else np.ones(preds.shape)
    loss = np.maximum(0, 1 - y * preds.double().numpy())
    # each sample is one draw of (sum of w l, sum of w): the ratio estimator over the samples
    totals, weights = (w * loss).reshape(n, -1).sum(1), w.reshape(n, -1).sum(1)
    mean = totals.sum() / weights.sum()
    se = math.sqrt(n / (n - 1) * ((totals - mean * weights) ** 2).sum() / weights.sum() ** 2)
    got = interval.compute()
    np.testing.assert_allclose(got["value"].item(), mean, rtol=1e-9)
    np.testing.assert_allclose(got["stderr"].item(), se, rtol=1e-9)
    for g in range(2):
        mine = groups.numpy() == g
        np.testing.assert_allclose(per_group.compute()[g].item(), totals[mine].sum() / weights[mine].sum(), rtol=1e-9)


def test_normal_interval_of_a_total_is_for_the_total():
    gen = torch.Generator().manual_seed(2)
    x, y = torch.rand(80, 3, generator=gen) * 2, torch.randint(0, 2, (80, 3), generator=gen) * 2 - 1
    metric = hm.ConfidenceInterval(hm.HingeEmbeddingLoss(reduction="sum"))
    metric.update(x, y)
    got = metric.compute()
    rows = np.where(y.numpy() == 1, x.double().numpy(), np.maximum(0, 1 - x.double().numpy())).sum(1)
    np.testing.assert_allclose(got["value"].item(), rows.sum(), rtol=1e-6)
    np.testing.assert_allclose(got["stderr"].item(), math.sqrt(80) * rows.std(ddof=1), rtol=1e-6)


def test_normal_interval_of_a_mixed_result_is_the_finite_difference_delta_method():
    """Multilabel macro reads every state element: the full covariance, checked with a numeric gradient."""
    gen = torch.Generator().manual_seed(3)
    preds, target = torch.randn(120, 3, generator=gen), torch.randint(2, (120, 3), generator=gen)
    weight = torch.rand(120, 3, generator=gen)
    metric = hm.ConfidenceInterval(hm.MultilabelHingeLoss(3, average="macro"))
    metric.update(preds, target, sample_weight=weight)
    got = metric.compute()
    w = weight.double().numpy()
    loss = np.maximum(0, 1 - np.where(target.numpy() == 1, 1, -1) * preds.double().numpy())
    rows = np.concatenate([w * loss, w], axis=1)  # (N, 2L): the loss sums, then the weight sums

    def macro(s: np.ndarray) -> float:
        return float(np.mean(s[:3] / s[3:]))

    total = rows.sum(0)
    grad = np.array([(macro(total + h) - macro(total - h)) / 2e-6 for h in np.eye(6) * 1e-6])
    cov = 120 * np.cov(rows, rowvar=False)
    np.testing.assert_allclose(got["value"].item(), macro(total), rtol=1e-6)
    np.testing.assert_allclose(got["stderr"].item(), math.sqrt(grad @ cov @ grad), rtol=1e-5)


def test_normal_interval_of_a_macro_with_an_unseen_label_leaves_that_label_out():
    """A label that only ``ignore_index`` fills is out of the macro mean, and out of its standard error."""
    gen = torch.Generator().manual_seed(5)
    preds, target = torch.randn(80, 3, generator=gen), torch.randint(2, (80, 3), generator=gen)
    target[:, 2] = -1  # label 2: never counted
    target[:7, 1] = -1
    metric = hm.ConfidenceInterval(hm.MultilabelHingeLoss(3, average="macro", ignore_index=-1))
    metric.update(preds, target)
    got = metric.compute()
    # oracle: the influence of each sample on the mean of the two seen labels' means
    counted = target.numpy()[:, :2] != -1
    loss = np.maximum(0, 1 - np.where(target.numpy()[:, :2] == 1, 1, -1) * preds.double().numpy()[:, :2]) * counted
    totals, means = counted.sum(0), loss.sum(0) / counted.sum(0)
    influence = ((loss - means * counted) / totals).mean(1)
    np.testing.assert_allclose(got["value"].item(), means.mean(), rtol=1e-6)
    np.testing.assert_allclose(got["stderr"].item(), math.sqrt(80 / 79 * (influence**2).sum()), rtol=1e-6)


def test_normal_interval_of_nothing_counted_has_no_standard_error():
    # every label ignored: the macro mean is nan, and so must its standard error be (not the 0 of a zero gradient)
    preds, target = torch.randn(6, 3), torch.full((6, 3), -1)
    metric = hm.ConfidenceInterval(hm.MultilabelHingeLoss(3, average="macro", ignore_index=-1))
    metric.update(preds, target)
    got = metric.compute()
    assert got["value"].isnan() and got["stderr"].isnan() and got["low"].isnan()
    paired = hm.PairedComparison(hm.MultilabelHingeLoss(3, average="macro", ignore_index=-1))
    paired.update(preds, 2 * preds, target)
    result = paired.compute()
    for key in ("stderr", "stderr_a", "stderr_b", "p_value"):
        assert result[key].isnan(), key


def test_normal_interval_refuses_too_many_mixed_state_elements():
    with pytest.raises(ValueError, match=r"at most 256 state elements.*Use method='bootstrap'"):
        hm.ConfidenceInterval(hm.MultilabelHingeLoss(200, average="macro"))
    hm.ConfidenceInterval(hm.MultilabelHingeLoss(200, average="macro"), method="bootstrap", num_resamples=2)
    hm.ConfidenceInterval(hm.MultilabelHingeLoss(200, average="none"))  # per label: small blocks


# --------------------------------------------------------------------------------------------- the bootstrap
def _bootstrap(seed, batches, resamples=400):
    metric = hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="bootstrap", num_resamples=resamples, seed=seed)
    for preds, target in batches:
        metric.update(preds, target)
    return metric


def test_bootstrap_with_a_seed_is_reproducible_and_agrees_with_the_normal_interval():
    gen = torch.Generator().manual_seed(4)
    batches = [(torch.randn(300, generator=gen), torch.randint(2, (300,), generator=gen)) for _ in range(3)]
    first, again, other = _bootstrap(7, batches), _bootstrap(7, batches), _bootstrap(8, batches)
    a, b, c = first.compute(), again.compute(), other.compute()
    for key in a:
        assert torch.equal(a[key], b[key]), key
    assert not torch.equal(a["low"], c["low"])
    first.reset()
    for preds, target in batches:
        first.update(preds, target)
    assert torch.equal(first.compute()["low"], a["low"]), "reset starts the draws over"
    normal = hm.ConfidenceInterval(hm.BinaryHingeLoss())
    for preds, target in batches:
        normal.update(preds, target)
    expected = normal.compute()
    assert a["value"] == expected["value"]
    # 400 resamples: the bootstrap's stderr is within a few percent of the analytic one
    np.testing.assert_allclose(a["stderr"].item(), expected["stderr"].item(), rtol=0.12)
    np.testing.assert_allclose([a["low"].item(), a["high"].item()], [expected["low"], expected["high"]], rtol=0.05)


def test_bootstrap_through_forward_draws_fresh_weights_for_every_batch():
    # forward updates a reset state: each batch must still get its own Poisson weights, those update would draw
    preds, target = torch.randn(10, generator=torch.Generator().manual_seed(1)), torch.tensor([0, 1] * 5)
    stepped = hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="bootstrap", num_resamples=200, seed=5)
    updated = hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="bootstrap", num_resamples=200, seed=5)
    for _ in range(4):
        stepped(preds, target)
        updated.update(preds, target)
    # each resample's weight total is a sum of 40 independent Poisson(1) draws, not 4 times one draw of 10
    multiples = (stepped.boot_weight_sum % 4 == 0).double().mean().item()
    assert multiples < 0.5, multiples
    for name in stepped._sum_states:
        assert torch.equal(getattr(stepped, name), getattr(updated, name)), name


def test_bootstrap_per_group_agrees_with_the_classic_formula_per_group_and_class():
    gen = torch.Generator().manual_seed(2)
    preds, target = torch.randn(600, 3, generator=gen), torch.randint(3, (600,), generator=gen)
    groups = torch.randint(2, (600,), generator=gen)
    inner = hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all", normalization=None)
    metric = hm.ConfidenceInterval(hm.PerGroup(inner, num_groups=2), method="bootstrap", num_resamples=300, seed=1)
    metric.update(preds, target, groups=groups)
    result = metric.compute()
    assert result["low"].shape == (2, 3)
    # oracle: each group's per-class one-vs-all losses by hand, their mean and the classic standard error
    scores, sign = preds.double().numpy(), np.where(np.eye(3)[target.numpy()] == 1, 1.0, -1.0)
    losses = np.maximum(0.0, 1.0 - sign * scores)
    for g in range(2):
        rows = losses[groups.numpy() == g]
        n = len(rows)
        np.testing.assert_allclose(result["value"][g].numpy(), rows.mean(0), rtol=1e-6)
        np.testing.assert_allclose(result["stderr"][g].numpy(), rows.std(0, ddof=1) / math.sqrt(n), rtol=0.2)
        assert (result["low"][g] < result["value"][g]).all() and (result["value"][g] < result["high"][g]).all()


def test_bootstrap_state_is_one_resampled_sum_per_statistic():
    metric = hm.ConfidenceInterval(
        hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"), method="bootstrap", num_resamples=50, seed=0
    )
    assert metric.boot_loss_sum.shape == (50, 3) and metric.boot_weight_sum.shape == (50,)
    metric.update(torch.randn(20, 3), torch.randint(3, (20,)))
    draws = metric.boot_weight_sum
    assert draws.min() >= 0 and torch.equal(draws, draws.round())  # sums of integer Poisson weights
    assert abs(draws.mean().item() - 20) < 3  # Poisson(1) weights: 20 in expectation
    assert metric.compute()["low"].shape == (3,)


# --------------------------------------------------------------------------------------------------- PerGroup
def test_per_group_equals_separate_metrics_fed_their_own_samples(case):
    batches = draw_batches(case, (13, 8), seed=6)
    gen = torch.Generator().manual_seed(0)
    groups = [torch.randint(3, (batch_size(b),), generator=gen) for b in batches]
    metric = hm.PerGroup(case.make(), num_groups=4)
    for batch, ids in zip(batches, groups, strict=True):
        metric.update(*_args(case, batch)[0], groups=ids, **_args(case, batch)[1])
    got = metric.compute()
    whole, ids = cat_batches(batches), torch.cat(groups)
    for g in range(3):
        alone = case.make()
        alone.update(**{key: value[ids == g] for key, value in whole.items()})
        np.testing.assert_allclose(got[g].numpy(), alone.compute().numpy(), rtol=1e-12)
    assert got[3].isnan().all(), "a group without data is nan"


def test_per_group_state_has_a_leading_group_dimension_and_does_not_grow():
    metric = hm.PerGroup(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"), num_groups=10)
    shapes = {name: tuple(getattr(metric, name).shape) for name in metric._sum_states}
    assert shapes == {"group_loss_sum": (10, 3), "group_weight_sum": (10,), "group_samples": (10,)}
    metric.update(torch.randn(500, 3), torch.randint(3, (500,)), groups=torch.randint(10, (500,)))
    assert {name: tuple(getattr(metric, name).shape) for name in metric._sum_states} == shapes


def test_per_group_sum_reduction_is_nan_for_an_empty_group():
    metric = hm.PerGroup(hm.HingeEmbeddingLoss(reduction="sum"), num_groups=2)
    metric.update(torch.tensor([0.5, 0.2]), torch.tensor([1, 1]), groups=torch.tensor([0, 0]))
    np.testing.assert_allclose(metric.compute().numpy(), [0.7, np.nan], rtol=1e-6)


@pytest.mark.parametrize(
    ("groups", "error", "message"),
    [
        (
            torch.tensor([0, 1]),
            ValueError,
            r"Expected `groups` to have shape \(3,\), one id per sample, but got \(2,\)",
        ),
        (torch.tensor([[0], [1], [2]]), ValueError, r"shape \(3,\).*but got \(3, 1\)"),
        (torch.tensor([0.0, 1.0, 2.0]), TypeError, "integer tensor of group ids, but got dtype torch.float32"),
        (torch.tensor([0, 1, 3]), ValueError, r"every group id in \[0, 2\] \(`num_groups`=3\), but found 3"),
        (torch.tensor([0, -1, 2]), ValueError, "but found -1"),
        ([0, 1, 2], TypeError, "groups"),
    ],
)
def test_per_group_bad_groups_are_errors_and_leave_the_state(groups, error, message):
    metric = hm.PerGroup(hm.BinaryHingeLoss(), num_groups=3)
    metric.update(torch.tensor([0.5, 1.0, 2.0]), torch.tensor([1, 0, 1]), groups=torch.tensor([0, 1, 1]))
    before = {name: getattr(metric, name).clone() for name in metric._sum_states}
    with pytest.raises(error, match=message):
        metric.update(torch.tensor([0.5, 1.0, 2.0]), torch.tensor([1, 0, 1]), groups=groups)
    for name, value in before.items():
        assert torch.equal(getattr(metric, name), value), name


def test_per_group_out_of_range_ids_pass_without_validation_only_where_asked():
    metric = hm.PerGroup(hm.BinaryHingeLoss(validate_args=False), num_groups=3)
    with pytest.raises(RuntimeError, match="out of bounds"):  # index_add refuses it: never a wrong number
        metric.update(torch.tensor([0.5]), torch.tensor([1]), groups=torch.tensor([5]))


# ------------------------------------------------------------------------------------------- PairedComparison
def _paired_oracle(loss_a, loss_b, weight, level=0.95):
    """The plain paired computation: weighted means, and the ratio-estimator interval of the per-sample differences."""
    n = len(loss_a)
    mean_a, mean_b = (weight * loss_a).sum() / weight.sum(), (weight * loss_b).sum() / weight.sum()
    diff = loss_b - loss_a
    d = mean_b - mean_a
    se = math.sqrt(n / (n - 1) * (weight**2 * (diff - d) ** 2).sum() / weight.sum() ** 2)
    z = stats.norm.ppf((1 + level) / 2)
    return {"value_a": mean_a, "value_b": mean_b, "difference": d, "stderr": se, "low": d - z * se,
            "high": d + z * se, "p_value": 2 * stats.norm.sf(abs(d) / se)}  # fmt: skip


@pytest.mark.parametrize("weighted", [False, True])
def test_paired_comparison_equals_a_plain_paired_computation(weighted):
    gen = torch.Generator().manual_seed(8)
    n = 300
    target = torch.randint(2, (n,), generator=gen)
    signal = torch.where(target == 1, 1.0, -1.0)
    preds_a = signal * 0.4 + torch.randn(n, generator=gen)
    preds_b = preds_a + signal * 0.2 + 0.3 * torch.randn(n, generator=gen)  # b: a, a little better
    weight = torch.rand(n, generator=gen) * 2 if weighted else None
    metric = hm.PairedComparison(hm.BinaryHingeLoss(), level=0.9)
    for part in (slice(0, 100), slice(100, n)):
        metric.update(preds_a[part], preds_b[part], target[part], None if weight is None else weight[part])
    got = metric.compute()
    sign = signal.double().numpy()
    loss_a = np.maximum(0, 1 - sign * preds_a.double().numpy())
    loss_b = np.maximum(0, 1 - sign * preds_b.double().numpy())
    expected = _paired_oracle(loss_a, loss_b, np.ones(n) if weight is None else weight.double().numpy(), 0.9)
    for key, value in expected.items():
        np.testing.assert_allclose(got[key].item(), value, rtol=1e-5, err_msg=key)
    # the paired interval is far tighter than two independent ones
    assert got["stderr"] < 0.5 * math.hypot(got["stderr_a"], got["stderr_b"])
    # the single-model standard errors are the metric's own ConfidenceInterval's
    alone = hm.ConfidenceInterval(hm.BinaryHingeLoss())
    alone.update(preds_a, target, sample_weight=weight)
    np.testing.assert_allclose(got["stderr_a"].item(), alone.compute()["stderr"].item(), rtol=1e-10)


def test_paired_comparison_of_every_case_against_two_separate_metrics(case):
    """Model b's inputs are a's, changed: each value is a separate metric's, the difference b - a theirs, and a
    model compared with itself differs by exactly 0 with a zero standard error."""
    batches = draw_batches(case, (11, 7), seed=8)
    changed = [map_inputs(case, batch, lambda x: x * 1.3 - 0.2) for batch in batches]
    paired, same = hm.PairedComparison(case.make()), hm.PairedComparison(case.make())
    for a, b in zip(batches, changed, strict=True):

        def model(batch: dict) -> torch.Tensor | tuple[torch.Tensor, ...]:
            inputs = tuple(batch[key] for key in case.inputs)
            return inputs[0] if len(inputs) == 1 else inputs

        paired.update(model(a), model(b), a.get("target"), a.get("sample_weight"))
        same.update(model(a), model(a), a.get("target"), a.get("sample_weight"))
    result, itself = paired.compute(), same.compute()
    value_a, value_b = feed(case.make(), batches).compute(), feed(case.make(), changed).compute()
    np.testing.assert_allclose(result["value_a"].numpy(), value_a.numpy(), rtol=1e-10, err_msg=case.name)
    np.testing.assert_allclose(result["value_b"].numpy(), value_b.numpy(), rtol=1e-10, err_msg=case.name)
    np.testing.assert_allclose(result["difference"].numpy(), (value_b - value_a).numpy(), rtol=1e-9, atol=1e-12)
    assert torch.all(itself["difference"] == 0) and torch.all(itself["stderr"].abs() < 1e-9), case.name
    assert torch.all((result["low"] <= result["difference"]) & (result["difference"] <= result["high"]))


def test_paired_comparison_per_class_and_other_input_names():
    gen = torch.Generator().manual_seed(9)
    preds_a, preds_b = torch.randn(60, 3, generator=gen), torch.randn(60, 3, generator=gen)
    target = torch.randint(3, (60,), generator=gen)
    metric = hm.PairedComparison(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"))
    metric.update(preds_a, preds_b, target)
    got = metric.compute()
    assert got["difference"].shape == got["p_value"].shape == (3,)
    # a model's inputs as a tuple: the same as passing them alone
    tupled = hm.PairedComparison(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"))
    tupled.update((preds_a,), (preds_b,), target)
    for key, value in tupled.compute().items():
        assert torch.equal(value, got[key]), key
    embedding = hm.PairedComparison(hm.HingeEmbeddingLoss())  # no weights: target after the inputs
    x = torch.rand(40, generator=gen)
    y = torch.randint(0, 2, (40,), generator=gen) * 2 - 1
    embedding.update(x, x + 0.1, y)
    result = embedding.compute()
    sign = y.double().numpy()
    diff = np.where(sign == 1, 0.1, np.maximum(0, 0.9 - x.double().numpy()) - np.maximum(0, 1 - x.double().numpy()))
    np.testing.assert_allclose(result["difference"].item(), diff.mean(), rtol=1e-6)
    np.testing.assert_allclose(result["stderr"].item(), diff.std(ddof=1) / math.sqrt(40), rtol=1e-5)


def test_paired_comparison_bad_inputs_leave_the_state():
    metric = hm.PairedComparison(hm.BinaryHingeLoss())
    metric.update(torch.zeros(3), torch.ones(3), torch.ones(3, dtype=torch.long))
    before = {name: getattr(metric, name).clone() for name in metric._sum_states}
    with pytest.raises(ValueError, match="Expected `preds` and `target` to have the same shape"):
        metric.update(torch.zeros(3), torch.ones(4), torch.ones(3, dtype=torch.long))
    with pytest.raises(ValueError, match="labels"):
        metric.update(torch.zeros(3), torch.ones(3), torch.tensor([0, 1, 5]))
    for name, value in before.items():
        assert torch.equal(getattr(metric, name), value), name


def test_weights_for_a_metric_without_weights_are_refused_and_leave_the_state():
    preds, target, groups = torch.randn(4), torch.tensor([1, -1, 1, -1]), torch.tensor([0, 1, 1, 0])
    per_group, paired = hm.PerGroup(hm.HingeEmbeddingLoss(), 2), hm.PairedComparison(hm.HingeEmbeddingLoss())
    per_group.update(preds, target, groups=groups)
    paired.update(preds, preds + 1, target)
    for metric in (per_group, paired):
        before = {name: getattr(metric, name).clone() for name in metric._sum_states}
        with pytest.raises(TypeError, match="no `sample_weight` for HingeEmbeddingLoss, whose update takes none"):
            if metric is per_group:
                metric.update(preds, target, groups=groups, sample_weight=torch.ones(4))
            else:
                metric.update(preds, preds + 1, target, sample_weight=torch.ones(4))
        for name, value in before.items():
            assert torch.equal(getattr(metric, name), value), name


# ------------------------------------------------------------------------------------------- arguments
@pytest.mark.parametrize(
    ("build", "error", "message"),
    [
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), level=1.0), ValueError, r"in \(0, 1\), but got 1.0"),
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), level=0), ValueError, "but got 0"),
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), level="0.9"), TypeError, "but got str"),
        (lambda: hm.PairedComparison(hm.BinaryHingeLoss(), level=-0.5), ValueError, "but got -0.5"),
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), num_resamples=1), ValueError, "`num_resamples`"),
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="jackknife"), ValueError, "method"),
        (lambda: hm.ConfidenceInterval(hm.BinaryHingeLoss(), seed=1.5), TypeError, "`seed` to be an int or None"),
        (lambda: hm.ConfidenceInterval(torch.nn.Linear(2, 1)), TypeError, "hingemetrics metric.*Linear"),
        (lambda: hm.PerGroup(hm.BinaryHingeLoss(), num_groups=0), ValueError, "num_groups"),
        (lambda: hm.PerGroup(hm.BinaryHingeLoss(), 2, group_names=["a"]), ValueError, "2 names.*but got 1 names"),
        (lambda: hm.PerGroup(hm.PerGroup(hm.BinaryHingeLoss(), 2), 2), TypeError, "got a PerGroup"),
        (lambda: hm.PairedComparison(hm.PerGroup(hm.BinaryHingeLoss(), 2)), TypeError, "got a PerGroup"),
    ],
)  # fmt: skip
def test_bad_arguments(build, error, message):
    with pytest.raises(error, match=message):
        build()


# ------------------------------------------------------------------------------- the wrappers as metrics
def _wrappers() -> dict[str, tuple]:
    """Each wrapper with a way to feed it a batch, for the metric contract."""

    def plain(metric):
        return lambda p, t, g: metric.update(p, t)

    return {
        "ci-normal": hm.ConfidenceInterval(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")),
        "ci-bootstrap": hm.ConfidenceInterval(hm.MulticlassHingeLoss(3), method="bootstrap", num_resamples=20, seed=0),
        "ci-per-group": hm.ConfidenceInterval(hm.PerGroup(hm.MulticlassHingeLoss(3), 4)),
        "per-group": hm.PerGroup(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"), 4),
        "paired": hm.PairedComparison(hm.MulticlassHingeLoss(3)),
    }


def _feed_wrapper(name, metric, seed):
    gen = torch.Generator().manual_seed(seed)
    preds, target = torch.randn(10, 3, generator=gen), torch.randint(3, (10,), generator=gen)
    groups = torch.randint(4, (10,), generator=gen)
    if name == "paired":
        metric.update(preds, preds * 0.5, target)
    elif "group" in name:
        metric.update(preds, target, groups=groups)
    else:
        metric.update(preds, target)
    return metric


def _result(metric):
    out = metric.compute()
    return {k: v.clone() for k, v in out.items()} if isinstance(out, dict) else {"": out.clone()}


def _same(a, b, exact=True):
    assert a.keys() == b.keys()
    for key in a:
        if exact:
            assert torch.equal(a[key].nan_to_num(-7), b[key].nan_to_num(-7)), key
        else:
            np.testing.assert_allclose(a[key].numpy(), b[key].numpy(), rtol=1e-10, err_msg=key)


@pytest.mark.parametrize("name", list(_wrappers()))
def test_wrapper_contract(name):
    """Pickle, deepcopy, state_dict round trip, merge, reset, split == whole, and inference mode."""
    metric = _feed_wrapper(name, _feed_wrapper(name, _wrappers()[name], 0), 1)
    expected = _result(metric)
    _same(_result(pickle.loads(pickle.dumps(metric))), expected)
    _same(_result(copy.deepcopy(metric)), expected)
    loaded = _wrappers()[name]
    loaded.persistent(True)
    metric.persistent(True)
    loaded.load_state_dict(metric.state_dict())
    _same(_result(loaded), expected)
    merged = _feed_wrapper(name, _wrappers()[name], 0)
    merged.merge_state(_feed_wrapper(name, _wrappers()[name], 1))
    if name != "ci-bootstrap":  # a merged bootstrap drew its second batch's weights as a first update
        _same(_result(merged), expected, exact=False)
    with torch.inference_mode():
        inferred = _feed_wrapper(name, _feed_wrapper(name, _wrappers()[name], 0), 1)
        _same(_result(inferred), expected)
    metric.reset()
    for state, default in metric._defaults.items():
        assert torch.equal(getattr(metric, state), default), state


def test_wrappers_in_a_metric_collection_and_a_tracker():
    gen = torch.Generator().manual_seed(3)
    collection = MetricCollection(
        {"ci": hm.ConfidenceInterval(hm.BinaryHingeLoss()), "loss": hm.BinaryHingeLoss()}, compute_groups=True
    )
    tracker = MetricTracker(hm.ConfidenceInterval(hm.BinaryHingeLoss()), maximize=False)
    alone = []
    for _ in range(3):
        tracker.increment()
        preds, target = torch.randn(30, generator=gen), torch.randint(2, (30,), generator=gen)
        collection.update(preds, target)
        tracker.update(preds, target)
        single = hm.ConfidenceInterval(hm.BinaryHingeLoss())
        single.update(preds, target)
        alone.append(single.compute())
    out = collection.compute()  # torchmetrics flattens a member's dict into the collection's result
    assert {key.removeprefix("ci_") for key in out} == {"value", "low", "high", "stderr", "loss"}
    value = out.get("ci_value", out.get("value"))
    np.testing.assert_allclose(value.item(), out["loss"].item(), rtol=1e-12)
    history = tracker.compute_all()
    for key in ("value", "low", "high", "stderr"):
        np.testing.assert_allclose(history[key].numpy(), torch.stack([a[key] for a in alone]).numpy(), rtol=1e-12)
    fig, ax = tracker[-1].plot(history)  # a history: a line with its band
    assert len(ax.collections) == 1 and len(ax.get_lines()) == 1
    import matplotlib.pyplot as plt

    plt.close(fig)


# ---------------------------------------------------------------------------------------------------- plots
def _error_segments(ax) -> list[np.ndarray]:
    """The vertical segments of the one error bar container drawn on ``ax``."""
    from matplotlib.container import ErrorbarContainer

    (bars,) = [c for c in ax.containers if isinstance(c, ErrorbarContainer)]
    return bars.lines[2][0].get_segments()


def test_plots(tmp_path):
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    gen = torch.Generator().manual_seed(5)
    preds, target = torch.randn(40, generator=gen), torch.randint(2, (40,), generator=gen)
    groups = torch.arange(40) % 3
    ci = hm.ConfidenceInterval(hm.BinaryHingeLoss())
    ci.update(preds, target)
    fig, ax = ci.plot()
    result = ci.compute()
    low, high = _error_segments(ax)[0][:, 1]
    np.testing.assert_allclose([low, high], [result["low"], result["high"]], rtol=1e-6)
    plt.close(fig)

    names = ["near", "middle", "far"]
    per_group = hm.PerGroup(hm.BinaryHingeLoss(), 3, group_names=names)
    per_group.update(preds, target, groups=groups)
    fig, ax = per_group.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    np.testing.assert_allclose([p.get_height() for p in ax.patches], per_group.compute().numpy(), rtol=1e-6)
    plt.close(fig)

    composed = hm.ConfidenceInterval(hm.PerGroup(hm.BinaryHingeLoss(), 3, group_names=names))
    composed.update(preds, target, groups=groups)
    fig, ax = composed.plot()
    assert [t.get_text() for t in ax.get_xticklabels()] == names
    segments = _error_segments(ax)
    result = composed.compute()
    np.testing.assert_allclose([s[:, 1] for s in segments], torch.stack([result["low"], result["high"]], 1), rtol=1e-6)
    for g in range(3):  # the interval of group g is that of a ConfidenceInterval fed group g alone
        alone = hm.ConfidenceInterval(hm.BinaryHingeLoss())
        alone.update(preds[groups == g], target[groups == g])
        np.testing.assert_allclose(result["stderr"][g].item(), alone.compute()["stderr"].item(), rtol=1e-10)
    plt.close(fig)

    paired = hm.PairedComparison(hm.BinaryHingeLoss())
    paired.update(preds, preds * 2, target)
    fig, ax = paired.plot()
    assert ax.containers and ax.get_ylabel() == "BinaryHingeLoss: b - a"
    plt.close(fig)


# ------------------------------------------------------------------------------------------------ Lightning
@pytest.mark.filterwarnings("ignore::UserWarning")
def test_logged_from_a_lightning_trainer(tmp_path):
    """A real one-process Trainer (validation under inference mode) logs each wrapper's parts with log_dict."""
    import lightning as L
    from torch.utils.data import DataLoader, TensorDataset

    gen = torch.Generator().manual_seed(12)
    preds, target = torch.randn(24, generator=gen), torch.randint(2, (24,), generator=gen)
    groups = torch.arange(24) % 2

    class Evaluated(L.LightningModule):
        def __init__(self) -> None:
            super().__init__()
            self.weight = torch.nn.Parameter(torch.ones(()))
            self.interval = hm.ConfidenceInterval(hm.BinaryHingeLoss())
            self.per_group = hm.ConfidenceInterval(hm.PerGroup(hm.BinaryHingeLoss(), 2))
            self.paired = hm.PairedComparison(hm.BinaryHingeLoss())

        def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
            (index,) = batch
            scores = preds[index] * self.weight
            self.interval.update(scores, target[index])
            self.per_group.update(scores, target[index], groups=groups[index])
            self.paired.update(scores, scores * 2, target[index])

        def on_validation_epoch_end(self) -> None:
            self.log_dict({f"ci/{k}": v.float() for k, v in self.interval.compute().items()})
            per_group = self.per_group.compute()
            self.log_dict({f"group{g}/{k}": v[g].float() for k, v in per_group.items() for g in range(2)})
            self.log_dict({f"paired/{k}": v.float() for k, v in self.paired.compute().items()})

    module = Evaluated()
    trainer = L.Trainer(default_root_dir=tmp_path, logger=False, enable_progress_bar=False)
    (logged,) = trainer.validate(module, DataLoader(TensorDataset(torch.arange(24)), batch_size=6), verbose=False)
    alone = hm.ConfidenceInterval(hm.BinaryHingeLoss())
    alone.update(preds, target)
    for key, value in alone.compute().items():
        assert logged[f"ci/{key}"] == pytest.approx(value.item(), rel=1e-6), key
    first = hm.ConfidenceInterval(hm.BinaryHingeLoss())
    first.update(preds[groups == 1], target[groups == 1])
    assert logged["group1/stderr"] == pytest.approx(first.compute()["stderr"].item(), rel=1e-6)
    paired = hm.PairedComparison(hm.BinaryHingeLoss())
    paired.update(preds, preds * 2, target)
    assert logged["paired/p_value"] == pytest.approx(paired.compute()["p_value"].item(), rel=1e-5, abs=1e-30)


# ----------------------------------------------------------------------------- every case, in every context
@pytest.mark.parametrize("context", ["inference_mode", "no_grad", "autograd", "autocast_bf16", "compiled_model"])
def test_every_case_wrapped_in_every_context(context, monkeypatch):
    """Each registry metric in a ConfidenceInterval and a PerGroup, fed model outputs made in a context.

    The value is the registry's plain reference; no process-wide torch setting is called on the way.
    """
    from tests.test_contexts import _reference_numbers, _scored
    from tests.test_threads import PROCESS_SETTERS

    scored = {case.name: _scored(draw_batches(case, (6, 9), seed=1), context) for case in CASES}
    calls: list[str] = []
    for setter in PROCESS_SETTERS:  # after the model scored the batches: torch.compile may set what it likes
        if hasattr(torch, setter):
            monkeypatch.setattr(torch, setter, lambda *a, _name=setter, **k: calls.append(_name))
    for case in CASES:
        batches, ctx = scored[case.name]
        interval, per_group = hm.ConfidenceInterval(case.make()), hm.PerGroup(case.make(), 2)
        with ctx:
            for batch in batches:
                interval.update(**batch)
                per_group.update(**batch, groups=torch.zeros(batch_size(batch), dtype=torch.long))
            result, grouped = interval.compute(), per_group.compute()
        expected = case.oracle(_reference_numbers(batches))
        np.testing.assert_allclose(result["value"].numpy(), expected, rtol=1e-5, err_msg=case.name)
        np.testing.assert_allclose(grouped[0].numpy(), expected, rtol=1e-5, err_msg=case.name)
        assert grouped[1].isnan().all() and (result["stderr"].isfinite() | result["value"].isnan()).all()
    assert calls == []


def test_the_readme_example_runs_and_says_what_it_gives():
    import re
    from pathlib import Path

    import matplotlib.pyplot as plt

    text = (Path(__file__).resolve().parents[1] / "README.md").read_text()
    section = text.split("\n## Error bars: `ConfidenceInterval`, `PerGroup`, `PairedComparison`\n", 1)[1]
    (block,) = re.findall(r"```python\n(.*?)```", section.split("\n## ", 1)[0], re.DOTALL)
    namespace: dict = {}
    exec(compile(block, "README.md", "exec"), namespace)
    result = namespace["interval"].compute()
    stated = dict(re.findall(r'"(\w+)": ([-\d.]+)', block.split("interval.compute()", 1)[1].split("\n", 1)[0]))
    for key, value in stated.items():
        assert result[key].item() == pytest.approx(float(value), abs=5e-4), key
    assert namespace["paired"].compute()["difference"].item() == pytest.approx(-0.62)
    assert len(namespace["ax"].containers) > 0
    plt.close("all")

"""Coverage of the 95% intervals on simulated streams drawn from a population whose value is known.

1,000 streams of 2,000 samples each. The ConfidenceInterval streams run through the real code path at once: a
``ConfidenceInterval(PerGroup(metric, 1000))`` whose groups are the streams, so each stream gets the interval that a
ConfidenceInterval fed that stream alone gives (``test_uncertainty.test_plots`` checks that equality). The paired
comparison's streams go through the same per-sample rows and the pure function ``paired_result`` that
``PairedComparison.compute`` calls. With a fixed seed the outcome is deterministic, and a real check: a 95% interval
whose standard error is 15% too small or too large leaves [93%, 97%] on these streams.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch
from scipy import stats

import hingemetrics as hm
from hingemetrics._uncertainty import _flatten, _pairs_of, _sum_rows, paired_result

STREAMS, SAMPLES, PIECES = 1000, 2000, 4
COVERAGE = (0.93, 0.97)


def _expected_hinge(mean: float, scale: float = 1.0) -> float:
    """E[max(0, 1 - X)] for X ~ N(mean, scale^2): the expected binary hinge loss at margin y*s ~ N(mean, scale^2)."""
    a = (1 - mean) / scale
    return (1 - mean) * stats.norm.cdf(a) + scale * stats.norm.pdf(a)


def _binary(gen: torch.Generator, n: int, weighted: bool) -> dict[str, torch.Tensor]:
    """Labels +-1 in equal parts; y*s ~ N(1.0, 1) for positives and N(0.3, 1) for negatives; weights 2:1 by class."""
    target = torch.randint(2, (n,), generator=gen)
    sign = target * 2.0 - 1
    mean = torch.where(target == 1, 1.0, 0.3)
    batch = {"preds": sign * (mean + torch.randn(n, generator=gen)), "target": target}
    if weighted:
        batch["sample_weight"] = (1.0 + target) * (0.5 + torch.rand(n, generator=gen))  # 2:1 on average
    return batch


def _multiclass(gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    """Three classes in equal parts; scores N(1, 1) for the true class and N(0, 1) for the others."""
    target = torch.randint(3, (n,), generator=gen)
    preds = torch.nn.functional.one_hot(target, 3).float() + torch.randn(n, 3, generator=gen)
    return {"preds": preds, "target": target}


def _crammer_singer_population() -> float:
    """E[max(0, 1 - s_y + max_{j != y} s_j)] by a large independent sample in numpy (4 million draws)."""
    rng = np.random.default_rng(12345)
    true = 1 + rng.standard_normal(4_000_000)
    rival = rng.standard_normal((4_000_000, 2)).max(1)
    return float(np.maximum(0, 1 - true + rival).mean())


def _population(name: str) -> np.ndarray:
    one_vs_all = stats.norm.pdf(0) / 3 + 2 / 3 * _expected_hinge(0.0)  # true class: N(1,1); others: -N(0,1)
    return {
        "binary": np.array((_expected_hinge(1.0) + _expected_hinge(0.3)) / 2),
        "binary-weighted": np.array((2 * _expected_hinge(1.0) + _expected_hinge(0.3)) / 3),
        "crammer-singer": np.array(_crammer_singer_population()),
        "one-vs-all": np.full(3, one_vs_all),
    }[name]


def _metric(name: str) -> hm.MulticlassHingeLoss | hm.BinaryHingeLoss:
    if name.startswith("binary"):
        return hm.BinaryHingeLoss()
    return hm.MulticlassHingeLoss(3, multiclass_mode=name)


def _draw(name: str, gen: torch.Generator, n: int) -> dict[str, torch.Tensor]:
    return _binary(gen, n, name == "binary-weighted") if name.startswith("binary") else _multiclass(gen, n)


@pytest.mark.parametrize("name", ["binary", "binary-weighted", "crammer-singer", "one-vs-all"])
def test_normal_intervals_cover_the_population_value(name):
    metric = hm.ConfidenceInterval(hm.PerGroup(_metric(name), STREAMS))
    gen = torch.Generator().manual_seed(2024)
    per_piece = STREAMS * SAMPLES // PIECES
    for _ in range(PIECES):  # each stream's samples arrive in several batches, as in an evaluation loop
        streams = torch.arange(STREAMS).repeat_interleave(SAMPLES // PIECES)
        metric.update(**_draw(name, gen, per_piece), groups=streams)
    result = metric.compute()
    population = _population(name)
    covered = ((result["low"].numpy() <= population) & (population <= result["high"].numpy())).mean(0)
    assert result["low"].shape == (STREAMS, *population.shape)
    for rate in np.atleast_1d(covered):  # per class for one-vs-all
        assert COVERAGE[0] <= rate <= COVERAGE[1], f"{name}: {rate:.3f} of the streams covered"


def test_paired_intervals_cover_the_true_difference():
    """Two correlated models: y*s_a ~ N(0.5, 1), y*s_b ~ N(0.8, 1), corr 0.8; the true difference is analytic."""
    metric = hm.BinaryHingeLoss()
    gen = torch.Generator().manual_seed(99)
    n = STREAMS * SAMPLES
    target = torch.randint(2, (n,), generator=gen)
    sign = target * 2.0 - 1
    shared, own = torch.randn(n, generator=gen), torch.randn(n, generator=gen)
    rows_a = metric._sample_statistics(sign * (0.5 + shared), target)
    rows_b = metric._sample_statistics(sign * (0.8 + 0.8 * shared + 0.6 * own), target)
    comparison = hm.PairedComparison(metric)
    joint = torch.cat([_flatten(rows_a, 1), _flatten(rows_b, 1)], dim=1)
    streams = torch.arange(STREAMS).repeat_interleave(SAMPLES)
    members = comparison._layout.members
    summed = _sum_rows(
        lambda piece: joint[piece].T, n, 4, joint.device, groups=streams, num_groups=STREAMS, pairs=_pairs_of(members)
    )
    sums, count, moments = summed.sums, summed.samples, summed.moments
    assert moments is not None and torch.equal(count, torch.full((STREAMS,), SAMPLES, dtype=torch.float64))
    result = paired_result(metric, comparison._single, sums[:, :2], sums[:, 2:], count, moments, 0.95)
    truth = _expected_hinge(0.8) - _expected_hinge(0.5)
    covered = ((result["low"] <= truth) & (truth <= result["high"])).double().mean().item()
    assert COVERAGE[0] <= covered <= COVERAGE[1], f"{covered:.3f} of the streams covered"
    # the paired intervals are far tighter than independent ones would be
    independent = torch.hypot(result["stderr_a"], result["stderr_b"])
    assert (result["stderr"] < 0.75 * independent).all()
    assert math.isclose(result["difference"].mean().item(), truth, abs_tol=4 * result["stderr"].mean().item() / 30)

"""MarginDistribution against a plain numpy reference, its own contract, its argument and tensor checks, its plot."""

from __future__ import annotations

import copy
import io
import pickle

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torchmetrics import MetricCollection

from hingemetrics import MarginDistribution, MarginHistogram


# ------------------------------------------------------------------------------------------- the reference
def reference_margins(preds: torch.Tensor, target: torch.Tensor, task: str) -> np.ndarray:
    """Margins the long way: y*s element by element, or s_y minus the best other class, row by row."""
    s = preds.double().numpy()
    t = target.numpy()
    if task == "binary":
        return np.array([(1.0 if label == 1 else -1.0) * score for score, label in zip(s.ravel(), t.ravel())])
    if t.ndim == s.ndim:  # one-hot
        t = t.argmax(1)
    rows = np.moveaxis(s, 1, -1).reshape(-1, s.shape[1])
    margins = []
    for row, label in zip(rows, t.ravel()):
        others = [row[j] for j in range(len(row)) if j != label]
        margins.append(row[label] - max(others))
    return np.array(margins)


def reference(preds, target, *, task="binary", bins=40, range=(-2.0, 2.0), margin=1.0) -> dict[str, np.ndarray]:
    m = reference_margins(preds, target, task)
    low, high = range
    counts, edges = np.histogram(np.clip(m, low, high), bins=bins, range=(low, high))
    return {
        "counts": counts.astype(np.float64),
        "edges": edges,
        "misclassified": np.mean(m < 0) if m.size else np.nan,
        "inside_margin": np.mean(m < margin) if m.size else np.nan,
        "total": float(m.size),
    }


def assert_matches(result: MarginHistogram, expected: dict[str, np.ndarray]) -> None:
    assert isinstance(result, MarginHistogram)
    np.testing.assert_array_equal(result.counts.numpy(), expected["counts"])
    np.testing.assert_allclose(result.edges.numpy(), expected["edges"], rtol=0, atol=1e-12)
    np.testing.assert_allclose(result.misclassified.item(), expected["misclassified"], rtol=1e-15)
    np.testing.assert_allclose(result.inside_margin.item(), expected["inside_margin"], rtol=1e-15)
    assert result.total.item() == expected["total"]


# ------------------------------------------------------------------------------------------------- batches
def binary_batch(gen: torch.Generator, n: int, labels=(0, 1), extra=()) -> tuple[torch.Tensor, torch.Tensor]:
    shape = (n, *extra)
    target = torch.tensor(labels)[torch.randint(len(labels), shape, generator=gen)]
    return torch.randn(shape, generator=gen) * 1.5, target


def multiclass_batch(gen: torch.Generator, n: int, c: int = 4, extra=(), one_hot=False):
    preds = torch.randn((n, c, *extra), generator=gen) * 1.5
    target = torch.randint(c, (n, *extra), generator=gen)
    if one_hot:
        target = torch.nn.functional.one_hot(target, c).movedim(-1, 1)
    return preds, target


CONFIGS = {
    "binary-01": ({"task": "binary"}, lambda g, n: binary_batch(g, n)),
    "binary-pm1-extra-dims": (
        {"task": "binary", "bins": 7, "range": (-1.5, 2.5), "margin": 0.5},
        lambda g, n: binary_batch(g, n, labels=(-1, 1), extra=(3,)),
    ),
    "binary-bool": ({"task": "binary", "bins": 2, "range": (0.0, 1.0)}, lambda g, n: binary_batch(g, n, (False, True))),
    "multiclass": ({"task": "multiclass", "num_classes": 4, "bins": 25, "range": (-3.0, 2.0)}, multiclass_batch),
    "multiclass-one-hot-extra-dims": (
        {"task": "multiclass", "num_classes": 3, "margin": 2.0},
        lambda g, n: multiclass_batch(g, n, c=3, extra=(2,), one_hot=True),
    ),
}


@pytest.fixture(params=list(CONFIGS), ids=list(CONFIGS))
def config(request):
    return CONFIGS[request.param]


def batches(draw, sizes=(9, 1, 14), seed=0):
    gen = torch.Generator().manual_seed(seed)
    return [draw(gen, n) for n in sizes]


def cat(parts):
    return torch.cat([p for p, _ in parts]), torch.cat([t for _, t in parts])


def ref_kwargs(kwargs):
    return {k: v for k, v in kwargs.items() if k in ("task", "bins", "range", "margin")}


def feed(metric, parts):
    for preds, target in parts:
        metric.update(preds, target)
    return metric


# --------------------------------------------------------------------------------------------------- values
def test_matches_numpy_reference(config):
    kwargs, draw = config
    parts = batches(draw)
    assert_matches(feed(MarginDistribution(**kwargs), parts).compute(), reference(*cat(parts), **ref_kwargs(kwargs)))


def test_hand_worked_example_with_values_on_edges_and_outside_the_range():
    metric = MarginDistribution(task="binary", bins=4, range=(-2.0, 2.0), margin=1.0)
    # margins y*s: -7 (below the range), -1 (on an edge), 0 (on an edge), 1 (= m), 2 (the top edge), 9 (above)
    metric.update(torch.tensor([7.0, 1.0, 0.0, 1.0, 2.0, 9.0]), torch.tensor([0, 0, 1, 1, 1, 1]))
    result = metric.compute()
    assert result.counts.tolist() == [1.0, 1.0, 1.0, 3.0]  # [-2,-1): -7; [-1,0): -1; [0,1): 0; [1,2]: 1, 2, 9
    assert result.edges.tolist() == [-2.0, -1.0, 0.0, 1.0, 2.0]
    assert result.misclassified.item() == 2 / 6  # -7 and -1; a margin of exactly 0 is not below 0
    assert result.inside_margin.item() == 3 / 6  # -7, -1, 0; a margin of exactly m is not inside
    assert result.total.item() == 6


def test_multiclass_hand_worked_margins():
    preds = torch.tensor([[0.25, 0.20, 0.55], [0.55, 0.05, 0.40], [0.10, 0.30, 0.60], [0.90, 0.05, 0.05]])
    metric = MarginDistribution(task="multiclass", num_classes=3, bins=2, range=(-1.0, 1.0), margin=0.5)
    metric.update(preds, torch.tensor([0, 1, 2, 0]))
    # margins: 0.25-0.55 = -0.30, 0.05-0.55 = -0.50, 0.60-0.30 = 0.30, 0.90-0.05 = 0.85
    result = metric.compute()
    assert result.counts.tolist() == [2.0, 2.0]
    assert result.misclassified.item() == 0.5
    assert result.inside_margin.item() == 0.75


def test_forward_gives_the_batch_histogram_and_accumulates(config):
    kwargs, draw = config
    parts = batches(draw)
    metric = MarginDistribution(**kwargs)
    for preds, target in parts:
        assert_matches(metric(preds, target), reference(preds, target, **ref_kwargs(kwargs)))
    assert_matches(metric.compute(), reference(*cat(parts), **ref_kwargs(kwargs)))


# ------------------------------------------------------------------------------------------------- contract
def test_state_is_float64_sums():
    metric = feed(MarginDistribution(task="multiclass", num_classes=4, bins=9), batches(multiclass_batch))
    summed = {name for name in metric._defaults if not name.startswith("config_")}  # config_*: an empty key
    assert summed == {"counts", "misclassified", "inside_margin", "total"}
    for name in metric._defaults:
        assert getattr(metric, name).dtype == torch.float64
        assert metric._reductions[name].__name__ == "dim_zero_sum"
    assert metric.counts.shape == (9,)


def test_split_equals_concatenated(config):
    kwargs, draw = config
    a, b = batches(draw, sizes=(11, 6))
    split = feed(MarginDistribution(**kwargs), [a, b]).compute()
    whole = feed(MarginDistribution(**kwargs), [cat([a, b])]).compute()
    for x, y in zip(split, whole):
        assert torch.equal(x, y)


def test_compute_twice_reset_and_nan_before_data(config):
    kwargs, draw = config
    metric = feed(MarginDistribution(**kwargs), batches(draw))
    first, second = metric.compute(), metric.compute()
    for x, y in zip(first, second):
        assert torch.equal(x, y)
    metric.reset()
    for name, default in metric._defaults.items():
        assert torch.equal(getattr(metric, name), default)
    with pytest.warns(UserWarning, match="before the ``update``"):
        empty = metric.compute()
    assert empty.total.item() == 0 and empty.counts.sum().item() == 0
    assert np.isnan(empty.misclassified.item()) and np.isnan(empty.inside_margin.item())


def test_empty_batch_is_a_no_op(config):
    kwargs, draw = config
    metric = feed(MarginDistribution(**kwargs), batches(draw))
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    metric.update(*draw(torch.Generator().manual_seed(5), 0))
    for k, v in before.items():
        assert torch.equal(getattr(metric, k), v)


def test_pickle_and_deepcopy_mid_stream(config):
    kwargs, draw = config
    a, b = batches(draw, sizes=(8, 5))
    metric = feed(MarginDistribution(**kwargs), [a])
    for clone in (pickle.loads(pickle.dumps(metric)), copy.deepcopy(metric)):
        assert_matches(feed(clone, [b]).compute(), reference(*cat([a, b]), **ref_kwargs(kwargs)))
    assert_matches(metric.compute(), reference(*a, **ref_kwargs(kwargs)))


def test_state_dict_round_trip(config):
    kwargs, draw = config
    a, b = batches(draw, sizes=(8, 5))
    metric = feed(MarginDistribution(**kwargs), [a])
    metric.persistent(True)
    buffer = io.BytesIO()
    torch.save(metric.state_dict(), buffer)
    buffer.seek(0)
    fresh = MarginDistribution(**kwargs)
    fresh.persistent(True)
    fresh.load_state_dict(torch.load(buffer))
    assert_matches(feed(fresh, [b]).compute(), reference(*cat([a, b]), **ref_kwargs(kwargs)))


def test_works_in_a_metric_collection():
    collection = MetricCollection({"margins": MarginDistribution(bins=5)})
    parts = batches(binary_batch)
    for preds, target in parts:
        collection.update(preds, target)
    assert_matches(collection.compute()["margins"], reference(*cat(parts), bins=5))
    ((fig, ax),) = collection.plot()  # the collection hands each metric its own result to plot
    try:
        assert len(ax.patches) == 5 and len(ax.get_lines()) == 2
    finally:
        plt.close(fig)


def test_nan_margins_are_counted_nowhere_without_validation():
    metric = MarginDistribution(bins=4, validate_args=False)
    metric.update(torch.tensor([0.5, float("nan"), -3.0]), torch.tensor([1, 1, 1]))
    result = metric.compute()
    assert result.counts.sum().item() == 2 and result.total.item() == 2
    assert result.misclassified.item() == 0.5


# ------------------------------------------------------------------------------------------------- checks
RANGE_VALUE = "Expected `range` to be a pair (low, high) of finite floats with low < high, but got "
RANGE_TYPE = "Expected `range` to be a pair (low, high) of floats, but got "
MULTICLASS = {"task": "multiclass", "num_classes": 3}


@pytest.mark.parametrize(
    ("kwargs", "error", "message"),
    [
        ({"task": "x"}, ValueError, "Expected `task` to be one of ('binary', 'multiclass'), but got 'x'."),
        (
            {"task": "multiclass"},
            ValueError,
            "Expected `num_classes` (an int >= 2) for task='multiclass', but got None.",
        ),
        ({"task": "multiclass", "num_classes": 1}, ValueError, "Expected `num_classes` to be an int >= 2, but got 1."),
        ({"bins": 1}, ValueError, "Expected `bins` to be an int >= 2, but got 1."),
        ({"bins": 2.5}, TypeError, "Expected `bins` to be an int >= 2, but got 2.5 of type float."),
        ({"range": (1.0, -1.0)}, ValueError, RANGE_VALUE + "(1.0, -1.0)."),
        ({"range": (0.0, float("inf"))}, ValueError, RANGE_VALUE + "(0.0, inf)."),
        ({"range": (0.0,)}, TypeError, RANGE_TYPE + "(0.0,)."),
        ({"range": "ab"}, TypeError, RANGE_TYPE + "'ab'."),
        ({"margin": 0.0}, ValueError, "Expected `margin` to be a finite float > 0, but got 0.0."),
        ({"validate_args": 1}, TypeError, "Expected `validate_args` to be a bool, but got 1 of type int."),
    ],
)
def test_constructor_errors_name_the_argument(kwargs, error, message):
    with pytest.raises(error) as info:
        MarginDistribution(**kwargs)
    assert str(info.value) == message


@pytest.mark.parametrize(
    ("kwargs", "preds", "target", "error", "match"),
    [
        ({}, torch.tensor([1, 2]), torch.tensor([0, 1]), TypeError, "Expected `preds` to be a floating-point tensor"),
        ({}, torch.tensor([0.5, 0.1]), torch.tensor([0, 2]), ValueError, "labels in {0, 1} or {-1, 1}, but found 2"),
        ({}, torch.tensor([0.5, 0.1]), torch.tensor([0, 1, 1]), ValueError, "the same shape, but got (2,) and (3,)"),
        ({}, torch.tensor([0.5, float("nan")]), torch.tensor([0, 1]), ValueError, "only finite values, but found nan"),
        (MULTICLASS, torch.randn(4, 2), torch.tensor([0, 1, 0, 1]), ValueError, "shape (N, 3, ...)"),
        (MULTICLASS, torch.randn(2, 3), torch.tensor([0, 3]), ValueError, "class indices in [0, 2], but found 3"),
    ],
)
def test_failed_update_raises_and_leaves_state_untouched(kwargs, preds, target, error, match):
    draw = multiclass_batch if kwargs.get("task") == "multiclass" else binary_batch
    metric = MarginDistribution(**kwargs)
    good_preds, good_target = draw(torch.Generator().manual_seed(0), 10, **({"c": 3} if kwargs else {}))
    metric.update(good_preds, good_target)
    before = {k: getattr(metric, k).clone() for k in metric._defaults}
    count = metric._update_count
    with pytest.raises(error) as info:
        metric.update(preds, target)
    assert match in str(info.value)
    for k, v in before.items():
        assert torch.equal(getattr(metric, k), v)
    assert metric._update_count == count


# --------------------------------------------------------------------------------------------------- plot
def test_plot_draws_one_bar_per_bin_and_lines_at_zero_and_m(tmp_path):
    metric = MarginDistribution(task="binary", bins=12, range=(-1.5, 1.5), margin=0.75)
    preds, target = binary_batch(torch.Generator().manual_seed(2), 200)
    metric.update(preds, target)
    expected = reference(preds, target, bins=12, range=(-1.5, 1.5), margin=0.75)
    fig, ax = metric.plot()
    try:
        assert len(ax.patches) == 12
        assert [p.get_height() for p in ax.patches] == expected["counts"].tolist()
        np.testing.assert_allclose([p.get_x() for p in ax.patches], expected["edges"][:-1], atol=1e-12)
        assert [line.get_xdata()[0] for line in ax.get_lines()] == [0.0, 0.75]
        legend = [t.get_text() for t in ax.get_legend().get_texts()]
        assert legend[0].endswith(f"{expected['misclassified']:.1%}")
        assert legend[1].endswith(f"{expected['inside_margin']:.1%}")
        assert ax.get_ylabel() == "count" and ax.get_xlabel().startswith("margin")
        assert ax.get_ylim()[0] == 0 and ax.get_ylim()[1] > expected["counts"].max()
        path = tmp_path / "margins.png"
        fig.savefig(path)
        image = plt.imread(path)
        assert image.shape[0] > 100 and image.shape[1] > 100 and image.std() > 0
    finally:
        plt.close(fig)


def test_plot_into_a_given_axis_and_of_a_given_result():
    metric = MarginDistribution(bins=6)
    result = metric(*binary_batch(torch.Generator().manual_seed(3), 30))
    fig, ax = plt.subplots()
    try:
        out_fig, out_ax = metric.plot(result, ax=ax)
        assert out_ax is ax and out_fig is fig
        assert [p.get_height() for p in ax.patches] == result.counts.tolist()
    finally:
        plt.close(fig)


def test_plot_refuses_what_it_cannot_draw():
    metric = MarginDistribution()
    with pytest.raises(TypeError, match="Expected `val` to be a MarginHistogram"):
        metric.plot(torch.tensor(0.5))
    with pytest.raises(ValueError, match="Expected `labels` to be None"):
        metric.plot(labels=["a"])


# ------------------------------------------------------------------------------------------------ two ranks
def _margin_rank(rank: int, world: int, runs: list) -> list[dict]:
    """Feed this rank's shard of each run, then compute (which syncs) and report the result and the local total."""
    out = []
    for kwargs, shards in runs:
        metric = MarginDistribution(**kwargs)
        for preds, target in shards[rank]:
            metric.update(preds, target)
        out.append({"result": metric.compute()._asdict(), "local_total": metric.total.item()})
    return out


@pytest.mark.timeout(300)
def test_two_gloo_ranks_sync_to_the_histogram_of_all_the_data():
    from tests.ddp.launch import run_ranks

    runs = []
    for name in ("binary-pm1-extra-dims", "multiclass"):
        kwargs, draw = CONFIGS[name]
        runs.append((kwargs, [[], batches(draw, sizes=(9, 1, 14), seed=7)]))  # rank 0 sees nothing
    per_rank = run_ranks(_margin_rank, 2, runs)
    for index, (kwargs, shards) in enumerate(runs):
        expected = reference(*cat(shards[1]), **ref_kwargs(kwargs))
        for rank, results in enumerate(per_rank):
            result = MarginHistogram(**results[index]["result"])
            assert_matches(result, expected)
            # compute() syncs inside a context: afterwards each rank holds its own state again
            assert results[index]["local_total"] == sum(target.numel() for _, target in shards[rank])


@pytest.mark.parametrize(
    ("low", "high", "bins"), [(-2.0, 2.0, 40), (-0.3, 0.7, 7), (1e8, 1e8 + 1, 10), (-5e-3, 1e-3, 3)]
)
def test_every_margin_falls_in_the_bin_that_bucketize_gives(low, high, bins):
    """Margins on every edge, one float64 step either side of it, beyond the range and in between: the bin is
    torch.bucketize's on the inner edges (right=True), the rule the class documents."""
    metric = MarginDistribution(bins=bins, range=(low, high))
    edges = metric._edges()
    around = torch.cat([edges, edges.nextafter(edges - 1), edges.nextafter(edges + 1)])
    spread = torch.linspace(low - (high - low), high + (high - low), 1001, dtype=torch.float64)
    margins = torch.cat([around, spread, torch.tensor([-1e300, 1e300, float("nan")], dtype=torch.float64)])
    ours = metric._bin_index(margins, metric._bin_bounds(margins.device))
    expected = torch.bucketize(margins, edges[1:-1], right=True)
    finite = ~margins.isnan()
    assert torch.equal(ours[finite], expected[finite])
    assert ours[~finite].tolist() == [0]

"""``.plot()`` of every metric class: rendered with Agg, saved, and checked artist by artist."""

from __future__ import annotations

import re
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch
from torchmetrics import MetricCollection
from torchmetrics.wrappers import MetricTracker

import hingemetrics as hm


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def saved_picture(fig, path) -> np.ndarray:
    """Save ``fig`` as PNG, read it back, and check it is a picture with something drawn on it."""
    fig.savefig(path)
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.ndim == 3 and image.shape[0] >= 200 and image.shape[1] >= 200
    assert image[..., :3].std() > 0.01, "the picture is blank"
    return image


def gen(seed=0):
    return torch.Generator().manual_seed(seed)


def scores_and_labels(shape, classes, scale=2.0, label_shape=None):
    """A batch drawer: random scores of ``shape`` and random labels in ``range(classes)``."""

    def draw(g):
        labels = torch.randint(classes, label_shape or shape, generator=g)
        return torch.randn(shape, generator=g) * scale, labels

    return draw


def pm_one(draw):
    """Map the {0, 1} labels of ``draw`` to {-1, 1}."""

    def signed(g):
        preds, labels = draw(g)
        return preds, labels * 2 - 1

    return signed


# Each entry: a metric factory and a batch drawer; the vector ones give one value per class or label.
SCALAR = {
    "binary": (lambda: hm.BinaryHingeLoss(), scores_and_labels((16,), 2)),
    "binary-squared": (lambda: hm.BinaryHingeLoss(squared=True), scores_and_labels((16,), 2)),
    "multiclass-cs": (lambda: hm.MulticlassHingeLoss(4), scores_and_labels((16, 4), 4, 1.0, (16,))),
    "multiclass-ww": (
        lambda: hm.MulticlassHingeLoss(4, multiclass_mode="weston-watkins"),
        scores_and_labels((16, 4), 4, 1.0, (16,)),
    ),
    "multilabel-macro": (lambda: hm.MultilabelHingeLoss(3), scores_and_labels((16, 3), 2, 1.0)),
    "task-binary": (lambda: hm.HingeLoss(task="binary"), scores_and_labels((16,), 2, 1.0)),
    "embedding": (lambda: hm.HingeEmbeddingLoss(), pm_one(scores_and_labels((16,), 2, 1.0))),
}
VECTOR = {
    "multiclass-ova": (
        lambda: hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"),
        scores_and_labels((16, 3), 3, 2.0, (16,)),
        "Class",
    ),
    "multilabel-none": (lambda: hm.MultilabelHingeLoss(4, average="none"), scores_and_labels((16, 4), 2), "Label"),
}


def history_of(make, draw, steps=6):
    metric = make()
    g = gen()
    values = [metric(*draw(g)) for _ in range(steps)]
    return metric, values


# ---------------------------------------------------------------------------------------------- scalar metrics
@pytest.mark.parametrize("name", list(SCALAR))
def test_single_value_is_one_marker_at_the_value(name, tmp_path):
    make, draw = SCALAR[name]
    metric = make()
    metric.update(*draw(gen()))
    value = metric.compute().item()
    fig, ax = metric.plot()
    (line,) = ax.get_lines()
    assert line.get_ydata().tolist() == [value]
    assert ax.get_ylabel() == type(metric).__name__
    assert any(f"{value:.4f}" == t.get_text() for t in ax.texts)
    low, high = ax.get_ylim()
    assert high > value
    if metric.plot_lower_bound is None:
        assert low < value
    else:
        assert low == metric.plot_lower_bound
    saved_picture(fig, tmp_path / f"{name}.png")


@pytest.mark.parametrize("name", list(SCALAR))
def test_history_is_one_line_over_the_steps(name, tmp_path):
    make, draw = SCALAR[name]
    metric, values = history_of(make, draw)
    fig, ax = metric.plot(values)
    (line,) = ax.get_lines()
    np.testing.assert_array_equal(line.get_xdata(), np.arange(len(values)))
    np.testing.assert_allclose(line.get_ydata(), [v.item() for v in values])
    assert ax.get_xlabel() == "step" and ax.get_ylabel() == type(metric).__name__
    assert ax.get_legend() is None  # one unnamed series needs no legend
    low, high = ax.get_ylim()
    assert high > max(v.item() for v in values)
    assert low == metric.plot_lower_bound if metric.plot_lower_bound is not None else low < min(map(float, values))
    saved_picture(fig, tmp_path / f"{name}-history.png")


def test_a_loss_above_one_is_not_cut_at_one():
    metric = hm.BinaryHingeLoss()
    _, ax = metric.plot([torch.tensor(2.7, dtype=torch.float64), torch.tensor(1.9, dtype=torch.float64)])
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] > 2.7


def test_a_stacked_history_tensor_is_a_history():
    metric = hm.BinaryHingeLoss()
    _, ax = metric.plot(torch.tensor([0.9, 0.7, 0.4]))
    assert ax.get_lines()[0].get_ydata().tolist() == pytest.approx([0.9, 0.7, 0.4])


def test_negative_values_of_the_embedding_loss_stay_in_view():
    metric = hm.HingeEmbeddingLoss()  # x for y = 1 may be negative: no lower bound
    _, ax = metric.plot([torch.tensor(-0.6), torch.tensor(0.3)])
    low, high = ax.get_ylim()
    assert low < -0.6 and high > 0.3


def test_a_metric_that_saw_nothing_still_plots(tmp_path):
    metric = hm.BinaryHingeLoss()
    with pytest.warns(UserWarning, match="before the ``update``"):
        fig, ax = metric.plot()
    assert np.isnan(ax.get_lines()[0].get_ydata()[0])
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] > 0.0
    fig.savefig(tmp_path / "empty.png")


# ---------------------------------------------------------------------------------------------- vector metrics
@pytest.mark.parametrize("name", list(VECTOR))
def test_vector_value_is_one_named_bar_per_class(name, tmp_path):
    make, draw, prefix = VECTOR[name]
    metric = make()
    metric.update(*draw(gen()))
    value = metric.compute()
    fig, ax = metric.plot()
    assert [p.get_height() for p in ax.patches] == pytest.approx(value.tolist())
    expected = [f"{prefix} {i}" for i in range(len(value))]
    assert [t.get_text() for t in ax.get_xticklabels()] == expected
    assert [t.get_text() for t in ax.get_legend().get_texts()] == expected
    assert ax.get_ylim()[0] == 0.0 and ax.get_ylim()[1] > value.max().item()
    saved_picture(fig, tmp_path / f"{name}.png")


@pytest.mark.parametrize("name", list(VECTOR))
def test_vector_history_is_one_named_line_per_class(name, tmp_path):
    make, draw, _ = VECTOR[name]
    metric, values = history_of(make, draw)
    names = [f"n{i}" for i in range(len(values[0]))]
    fig, ax = metric.plot(values, labels=names)
    lines = ax.get_lines()
    assert len(lines) == len(names)
    stacked = torch.stack(values).numpy()
    for k, line in enumerate(lines):
        np.testing.assert_allclose(line.get_ydata(), stacked[:, k])
        assert line.get_label() == names[k]
    assert [t.get_text() for t in ax.get_legend().get_texts()] == names
    saved_picture(fig, tmp_path / f"{name}-history.png")


def test_multilabel_label_names_in_the_legend():
    metric = hm.MultilabelHingeLoss(num_labels=3, average="none")
    metric.update(torch.randn(10, 3), torch.randint(2, (10, 3)))
    _, ax = metric.plot(labels=["sky", "tree", "car"])
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["sky", "tree", "car"]
    assert [t.get_text() for t in ax.get_xticklabels()] == ["sky", "tree", "car"]


def test_plot_labels_attribute_names_the_classes_without_an_argument():
    metric = hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")
    metric.plot_labels = ["cat", "dog", "bird"]
    metric.update(torch.randn(10, 3), torch.randint(3, (10,)))
    _, ax = metric.plot()
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["cat", "dog", "bird"]
    _, ax = metric.plot(labels=["a", "b", "c"])  # the argument wins
    assert [t.get_text() for t in ax.get_legend().get_texts()] == ["a", "b", "c"]


def test_wrong_number_of_labels_is_an_error():
    metric = hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")
    metric.update(torch.randn(10, 3), torch.randint(3, (10,)))
    with pytest.raises(ValueError) as info:
        metric.plot(labels=["cat", "dog"])
    assert str(info.value) == ("Expected `labels` to be a sequence of 3 names (one per plotted series), but got 2.")


def test_a_value_of_the_wrong_shape_is_an_error():
    metric = hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")
    with pytest.raises(ValueError) as info:
        metric.plot(torch.zeros(4))
    assert str(info.value) == (
        "Expected `val` to be one result of shape (3,) or a history of them, but got a tensor of shape (4,)."
    )
    with pytest.raises(ValueError, match="but got an empty sequence"):
        metric.plot([])
    with pytest.raises(TypeError, match="Expected `val` to be a tensor or a sequence of tensors, but got dict"):
        metric.plot({"a": torch.zeros(3)})


# ---------------------------------------------------------------------------------------------- given axes
def test_draws_into_a_given_axis_and_curves_accumulate(tmp_path):
    fig, (top, bottom) = plt.subplots(2, 1)
    metric = hm.BinaryHingeLoss()
    out_fig, out_ax = metric.plot([torch.tensor(0.8), torch.tensor(0.5)], ax=bottom, labels=["train"])
    assert out_ax is bottom and out_fig is fig
    metric.plot([torch.tensor(1.6), torch.tensor(1.2)], ax=bottom, labels=["test"])
    assert [line.get_label() for line in bottom.get_lines()] == ["train", "test"]
    assert [t.get_text() for t in bottom.get_legend().get_texts()] == ["train", "test"]
    assert bottom.get_ylim()[1] > 1.6  # the limits follow both curves
    assert not top.get_lines()
    saved_picture(fig, tmp_path / "two.png")


# ---------------------------------------------------------------------------------------------- torchmetrics
def test_metric_tracker_history_plots_through_the_metric_and_the_tracker(tmp_path):
    tracker = MetricTracker(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"), maximize=False)
    g = gen()
    for _ in range(4):
        tracker.increment()
        for _ in range(3):
            tracker.update(torch.randn(8, 3, generator=g), torch.randint(3, (8,), generator=g))
    history = tracker.compute_all()
    assert history.shape == (4, 3)
    fig, ax = tracker[-1].plot(history, labels=["a", "b", "c"])
    assert len(ax.get_lines()) == 3
    for k, line in enumerate(ax.get_lines()):
        np.testing.assert_allclose(line.get_ydata(), history[:, k].numpy())
    saved_picture(fig, tmp_path / "tracker-metric.png")

    scalar = MetricTracker(hm.BinaryHingeLoss(), maximize=False)
    for _ in range(5):
        scalar.increment()
        scalar.update(torch.randn(8, generator=g), torch.randint(2, (8,), generator=g))
    fig, ax = scalar.plot()  # torchmetrics' own plotting of the stacked values
    assert len(ax.get_lines()) >= 1
    fig, ax = scalar[-1].plot(scalar.compute_all())
    (line,) = ax.get_lines()
    assert len(line.get_ydata()) == 5
    saved_picture(fig, tmp_path / "tracker.png")


def test_metric_collection_plots_each_metric_and_together(tmp_path):
    collection = MetricCollection({"hinge": hm.BinaryHingeLoss(), "squared": hm.BinaryHingeLoss(squared=True)})
    g = gen()
    values = [collection(torch.randn(8, generator=g), torch.randint(2, (8,), generator=g)) for _ in range(5)]
    pairs = collection.plot(values)
    assert len(pairs) == 2
    for (fig, ax), key in zip(pairs, ["hinge", "squared"]):
        (line,) = ax.get_lines()
        np.testing.assert_allclose(line.get_ydata(), [v[key].item() for v in values])
        saved_picture(fig, tmp_path / f"collection-{key}.png")
    fig, ax = collection.plot(values, together=True)
    assert len(ax.get_lines()) >= 2


def test_metric_collection_passes_plot_labels_through():
    metric = hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")
    metric.plot_labels = ["cat", "dog", "bird"]
    collection = MetricCollection({"ova": metric, "cs": hm.MulticlassHingeLoss(3)})
    collection.update(torch.randn(8, 3), torch.randint(3, (8,)))
    axes = {key: ax for key, (_, ax) in zip(collection.keys(), collection.plot())}
    assert [t.get_text() for t in axes["ova"].get_legend().get_texts()] == ["cat", "dog", "bird"]
    assert len(axes["cs"].get_lines()) == 1 and axes["cs"].get_legend() is None


def test_the_plotting_guide_examples_run(tmp_path, monkeypatch):
    guide = Path(__file__).resolve().parents[1] / "docs" / "guides" / "plotting.md"
    blocks = re.findall(r"```python\n(.*?)```", guide.read_text(), re.DOTALL)
    assert len(blocks) == 2
    monkeypatch.chdir(tmp_path)
    spaces = []
    for block in blocks:
        namespace: dict = {}
        exec(compile(block, str(guide), "exec"), namespace)
        assert namespace["ax"].get_figure() is namespace["fig"]
        spaces.append(namespace)
    history, margins = spaces
    assert (tmp_path / "one-vs-all.png").is_file()
    assert [t.get_text() for t in history["ax"].get_legend().get_texts()] == ["cat", "dog", "bird"]
    assert len(history["ax"].get_lines()) == 3
    assert margins["result"].counts.tolist() == [0.0, 2.0, 1.0, 1.0]
    assert margins["result"].misclassified.item() == 0.5 and margins["result"].inside_margin.item() == 0.75
    assert len(margins["ax"].patches) == 4

"""hingemetrics inside the tools users already have: Lightning, MetricCollection, MetricTracker, wrappers."""

from __future__ import annotations

import inspect
import json
import os
import subprocess
import sys
from pathlib import Path

import numpy as np
import pytest
import torch
import torchmetrics
from torchmetrics import MetricCollection, MetricTracker
from torchmetrics.wrappers import ClasswiseWrapper

import hingemetrics as hm
from tests import reference as ref

ROOT = Path(__file__).resolve().parents[1]


def _binary_batches(seed: int, sizes=(6, 9, 4)):
    gen = torch.Generator().manual_seed(seed)
    return [(torch.randn(n, generator=gen) * 2, torch.randint(0, 2, (n,), generator=gen)) for n in sizes]


# ------------------------------------------------------------------------------------------- MetricCollection
@pytest.mark.parametrize("compute_groups", [True, False])
def test_collection_equals_metrics_used_alone(compute_groups):
    def members():
        return {
            "hinge": hm.BinaryHingeLoss(),
            "squared": hm.BinaryHingeLoss(squared=True),
            "wide": hm.BinaryHingeLoss(margin=2.0),
            "auto": hm.BinaryHingeLoss(normalization="auto"),
        }

    collection = MetricCollection(members(), compute_groups=compute_groups)
    alone = members()
    # first batch: every score is beyond every margin, so all four states are equal (zero loss, weight 2).
    # A compute group formed on that batch would then wrongly share one state between different metrics.
    batches = [(torch.tensor([5.0, -5.0]), torch.tensor([1, 0])), *_binary_batches(0)]
    for preds, target in batches:
        collection.update(preds, target)
        for metric in alone.values():
            metric.update(preds, target)
    values = collection.compute()
    for name, metric in alone.items():
        torch.testing.assert_close(values[name], metric.compute(), rtol=0, atol=0)
    if compute_groups:
        assert sorted(len(group) for group in collection.compute_groups.values()) == [1, 1, 1, 1]
    scores = torch.cat([b[0] for b in batches]).numpy()
    labels = torch.cat([b[1] for b in batches]).numpy()
    assert values["wide"].item() == pytest.approx(ref.binary_hinge(scores, labels, margin=2.0), rel=1e-6)
    assert values["squared"].item() == pytest.approx(ref.binary_hinge(scores, labels, squared=True), rel=1e-6)


@pytest.mark.parametrize("compute_groups", [True, False])
def test_collection_shares_state_only_where_the_sums_are_the_same(compute_groups):
    averages = ("macro", "micro", "none")
    collection = MetricCollection(
        {a: hm.MultilabelHingeLoss(3, average=a) for a in averages}, compute_groups=compute_groups
    )
    gen = torch.Generator().manual_seed(3)
    preds = torch.randn(12, 3, generator=gen)
    target = torch.randint(0, 2, (12, 3), generator=gen)
    collection.update(preds[:5], target[:5])  # torchmetrics forms compute groups in `update`
    collection(preds[5:], target[5:])
    values = collection.compute()
    for a in averages:
        expected = ref.multilabel_hinge(preds.numpy(), target.numpy(), average=a)
        np.testing.assert_allclose(values[a].numpy(), expected, rtol=1e-6)
    if compute_groups:  # same update arguments: one shared state is correct, and saves work
        assert list(collection.compute_groups.values()) == [list(averages)]


# ------------------------------------------------------------------------------------- MetricTracker, wrappers
def test_synced_without_a_process_group_leaves_every_value_local():
    collection = MetricCollection({"hinge": hm.BinaryHingeLoss(), "squared": hm.BinaryHingeLoss(squared=True)})
    batches = _binary_batches(3)
    for preds, target in batches:
        collection.update(preds, target)
    states = {name: metric.metric_state for name, metric in collection.items()}
    with hm.synced(collection, hm.BinaryHingeLoss()):
        values = collection.compute()
    scores = torch.cat([b[0] for b in batches]).numpy()
    labels = torch.cat([b[1] for b in batches]).numpy()
    assert values["hinge"].item() == pytest.approx(ref.binary_hinge(scores, labels), rel=1e-6)
    assert values["squared"].item() == pytest.approx(ref.binary_hinge(scores, labels, squared=True), rel=1e-6)
    for name, metric in collection.items():
        assert not metric._is_synced
        for key, value in metric.metric_state.items():
            assert torch.equal(value, states[name][key]), (name, key)


@pytest.mark.parametrize("bad", [42, [hm.BinaryHingeLoss()]], ids=["int", "list"])
def test_synced_refuses_what_is_not_a_metric(bad):
    with pytest.raises(TypeError) as info, hm.synced(hm.BinaryHingeLoss(), bad):
        pass
    assert str(info.value) == (
        "Expected each argument of `synced` to be a torchmetrics Metric or MetricCollection, but got "
        f"{type(bad).__name__}."
    )


# torchmetrics reads `higher_is_better` when `maximize` is None, the default in recent releases; 1.4's default is
# maximize=True (None is refused there), so a loss needs maximize=False, which every release honours.
TRACKER_DEFAULTS_TO_HIGHER_IS_BETTER = inspect.signature(MetricTracker).parameters["maximize"].default is None


@pytest.mark.parametrize(
    "maximize",
    [
        pytest.param(
            "default",
            marks=pytest.mark.skipif(
                not TRACKER_DEFAULTS_TO_HIGHER_IS_BETTER,
                reason=f"torchmetrics {torchmetrics.__version__}'s MetricTracker defaults to maximize=True",
            ),
        ),
        False,
    ],
)
def test_tracker_finds_the_best_epoch(maximize):
    metric = hm.BinaryHingeLoss()
    tracker = MetricTracker(metric) if maximize == "default" else MetricTracker(metric, maximize=maximize)
    expected = []
    for epoch in range(4):
        tracker.increment()
        batches = _binary_batches(10 + epoch)
        for preds, target in batches:
            tracker.update(preds, target)
        scores = torch.cat([b[0] for b in batches]).numpy()
        expected.append(ref.binary_hinge(scores, torch.cat([b[1] for b in batches]).numpy()))
    np.testing.assert_allclose(tracker.compute_all().numpy(), expected, rtol=1e-6)
    best, step = tracker.best_metric(return_step=True)
    assert step == int(np.argmin(expected))  # lower is better for a loss
    assert best == pytest.approx(min(expected), rel=1e-6)


def test_classwise_wrapper_on_one_vs_all_and_multilabel():
    gen = torch.Generator().manual_seed(4)
    preds, target = torch.randn(10, 3, generator=gen), torch.randint(0, 3, (10,), generator=gen)
    names = ["cat", "dog", "bird"]
    wrapped = ClasswiseWrapper(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all"), labels=names)
    values = wrapped(preds, target)
    expected = ref.multiclass_hinge(preds.numpy(), target.numpy(), mode="one-vs-all")
    assert sorted(values) == sorted(f"multiclasshingeloss_{n}" for n in names)
    for i, n in enumerate(names):
        assert values[f"multiclasshingeloss_{n}"].item() == pytest.approx(expected[i], rel=1e-6)

    multi_hot = torch.randint(0, 2, (10, 3), generator=gen)
    wrapped = ClasswiseWrapper(hm.MultilabelHingeLoss(3, average="none"), labels=names, prefix="hinge/")
    values = wrapped(preds, multi_hot)
    expected = ref.multilabel_hinge(preds.numpy(), multi_hot.numpy(), average="none")
    for i, n in enumerate(names):
        assert values[f"hinge/{n}"].item() == pytest.approx(expected[i], rel=1e-6)


def test_arithmetic_composition():
    a, b = hm.BinaryHingeLoss(), hm.BinaryHingeLoss(squared=True)
    doubled, total = a * 2, a + b
    expected_a, expected_b = [], []
    for preds, target in _binary_batches(5):
        doubled.update(preds, target)
        total.update(preds, target)
    batches = _binary_batches(5)
    scores = torch.cat([x[0] for x in batches]).numpy()
    labels = torch.cat([x[1] for x in batches]).numpy()
    expected_a = ref.binary_hinge(scores, labels)
    expected_b = ref.binary_hinge(scores, labels, squared=True)
    assert doubled.compute().item() == pytest.approx(2 * expected_a, rel=1e-6)
    assert total.compute().item() == pytest.approx(expected_a + expected_b, rel=1e-6)


# -------------------------------------------------------------------------------------------------- Lightning
@pytest.mark.timeout(240)
def test_lightning_ddp_logs_the_global_value(tmp_path):
    out = tmp_path / "logged.json"
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    proc = subprocess.run(
        [sys.executable, str(ROOT / "tests" / "integration" / "lightning_ddp_eval.py"), str(out)],
        cwd=tmp_path,
        env=env,
        capture_output=True,
        text=True,
        timeout=200,
    )
    assert proc.returncode == 0, proc.stderr[-3000:]
    result = json.loads(out.read_text())
    assert result["world_size"] == 2
    logged = result["logged"]

    sys.path.insert(0, str(ROOT / "tests" / "integration"))
    try:
        import lightning_ddp_eval as script
    finally:
        sys.path.pop(0)
    scores, classes, is_first = script.dataset().tensors  # the whole validation set, in one process
    assert logged["val/binary"] == pytest.approx(ref.binary_hinge(scores[:, 0].numpy(), is_first.numpy()), rel=1e-6)
    assert logged["val/crammer_singer"] == pytest.approx(
        ref.multiclass_hinge(scores.numpy(), classes.numpy()), rel=1e-6
    )
    per_class = ref.multiclass_hinge(scores.numpy(), classes.numpy(), mode="one-vs-all")
    for c in range(script.C):
        assert logged[f"val/one_vs_all_{c}"] == pytest.approx(per_class[c], rel=1e-6)

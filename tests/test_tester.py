"""Every metric class through the metric tester in ``tests/tester.py`` (torchmetrics' ``MetricTester``, our words)."""

from __future__ import annotations

import warnings

import pytest
import torch
import torchmetrics

import hingemetrics as hm
from tests.cases import CASES, Case
from tests.ddp.launch import run_ranks
from tests.tester import WORLD, check_class_contract, check_rank_results, rank_run


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_every_case_passes_the_single_process_tester(case: Case):
    check_class_contract(case)


def test_every_case_passes_the_two_process_tester_with_dist_sync_on_step_off_and_on():
    check_rank_results(run_ranks(rank_run, WORLD))


@pytest.mark.parametrize(
    "metric",
    [
        hm.MarginDistribution(),
        hm.MarginDistribution(task="multiclass", num_classes=3),
        hm.HingeLoss(task="binary"),
        hm.HingeLoss("multiclass", 4, multiclass_mode="one-vs-all"),
        hm.HingeLoss("multilabel", num_labels=3),
    ],
    ids=["margins-binary", "margins-multiclass", "task-binary", "task-multiclass", "task-multilabel"],
)
def test_the_classes_outside_the_registry_script_and_start_with_an_empty_state_dict(metric):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)
        assert isinstance(torch.jit.script(metric), torch.jit.ScriptModule)
    assert metric.state_dict() == {}


def test_hinge_loss_is_a_torchmetrics_metric_that_builds_the_tasks_class():
    assert issubclass(hm.HingeLoss, torchmetrics.Metric)
    assert issubclass(torchmetrics.HingeLoss, torchmetrics.Metric)  # the neighbour we mirror
    assert type(hm.HingeLoss(task="binary")) is hm.BinaryHingeLoss
    assert type(hm.HingeLoss("multiclass", 3)) is hm.MulticlassHingeLoss
    assert type(hm.HingeLoss("multilabel", num_labels=2)) is hm.MultilabelHingeLoss

"""Ranks that disagree: every rank raises the same clear error, or the ranks pair their metrics up correctly.

Each scenario of ``tests/ddp/agreement.py`` runs on 2 and 3 gloo ranks, one spawned run per world size, with the
group's 60 s collective timeout and the launcher's own deadline: a rank that aborts or hangs fails the run. Where
the ranks' metrics differ (class, argument, number of metrics), every rank must raise ``hm.SyncMismatchError``
with a message naming the difference and keep its local state; where only the order differs, every rank must get
the value over the union of the data. A batch that fails on one rank in a ``dist_sync_on_step`` forward must make
every rank raise and leave the later steps right.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests import reference as ref
from tests.cases import cat_batches
from tests.ddp.agreement import FAILURES, STEPS, make_agreement_plan, run_agreement
from tests.ddp.launch import run_ranks

pytestmark = pytest.mark.timeout(300)

ALL_REDUCE = "c10d.allreduce_.default"
ALL_GATHER = "c10d.allgather_.default"

START = "Expected every rank of the process group to sync the same metrics, configured alike, but "
END = ". No state was summed: every rank raises this error and keeps its local state."

#: The difference each mismatch scenario must name, per world size (ranks 0, 1[, 2]).
MISMATCHES = {
    "one-vs-all num_classes": {
        2: "MulticlassHingeLoss `num_classes` is 3 on rank 0, 4 on rank 1",
        3: "MulticlassHingeLoss `num_classes` is 3 on rank 0, 4 on rank 1, 5 on rank 2",
    },
    "crammer-singer num_classes": {
        2: "MulticlassHingeLoss `num_classes` is 3 on rank 0, 4 on rank 1",
        3: "MulticlassHingeLoss `num_classes` is 3 on rank 0, 4 on rank 1, 5 on rank 2",
    },
    "binary margin": {
        2: "BinaryHingeLoss `margin` is 1.0 on rank 0, 2.0 on rank 1",
        3: "BinaryHingeLoss `margin` is 1.0 on rank 0, 2.0 on ranks 1 and 2",
    },
    "binary vs embedding": {
        2: "the metric is BinaryHingeLoss on rank 0, HingeEmbeddingLoss on rank 1",
        3: "the metric is BinaryHingeLoss on ranks 0 and 2, HingeEmbeddingLoss on rank 1",
    },
    "synced lists": {
        2: "they sync different numbers of metrics: 2 metrics (BinaryHingeLoss, MulticlassHingeLoss; 4 state "
        "elements) on rank 0, 1 metric (BinaryHingeLoss; 2 state elements) on rank 1",
        3: "they sync different numbers of metrics: 2 metrics (BinaryHingeLoss, MulticlassHingeLoss; 4 state "
        "elements) on rank 0, 1 metric (BinaryHingeLoss; 2 state elements) on ranks 1 and 2",
    },
}


@pytest.fixture(scope="module", params=[2, 3], ids=lambda world: f"world{world}")
def agreement_run(request) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """One spawned run of every scenario per world size: (world size, the plan of data, each rank's results)."""
    world = request.param
    plan = make_agreement_plan(world)
    return world, plan, run_ranks(run_agreement, world, plan)


def _union(plan: dict[str, Any], scenario: str, key: str) -> dict[str, torch.Tensor]:
    return cat_batches([rank_data[key] for rank_data in plan[scenario]])


def _same_states(left: dict[str, torch.Tensor], right: dict[str, torch.Tensor]) -> bool:
    return left.keys() == right.keys() and all(torch.equal(left[name], right[name]) for name in left)


@pytest.mark.parametrize("scenario", sorted(MISMATCHES))
def test_every_rank_raises_the_same_error_naming_the_difference(agreement_run, scenario):
    world, _, results = agreement_run
    for rank, rank_results in enumerate(results):
        outcome = rank_results[scenario]
        assert "value" not in outcome, f"rank {rank} returned a value"
        assert outcome["error"] == "SyncMismatchError", f"rank {rank}: {outcome['message']}"
        assert outcome["message"] == START + MISMATCHES[scenario][world] + END, f"rank {rank}"
        # nothing was summed: each metric keeps exactly its local state
        for before, after in zip(outcome["before"], outcome["after"], strict=True):
            assert _same_states(before, after), f"rank {rank}"


def test_synced_pairs_metrics_up_whatever_order_each_rank_gives(agreement_run):
    """Odd ranks give (multiclass, first, second), even ranks (first, multiclass, second); first and second are
    configured alike, so they keep their relative order, and every metric gets the value over its own data."""
    _, plan, results = agreement_run
    first = _union(plan, "synced order", "binary")
    multiclass = _union(plan, "synced order", "three")
    second = _union(plan, "synced order", "other")
    expected = [
        ref.binary_hinge(first["preds"].numpy(), first["target"].numpy()),
        ref.multiclass_hinge(multiclass["preds"].numpy(), multiclass["target"].numpy()),
        ref.binary_hinge(second["preds"].numpy(), second["target"].numpy()),
    ]
    for rank, rank_results in enumerate(results):
        outcome = rank_results["synced order"]
        assert "error" not in outcome, f"rank {rank}: {outcome.get('message')}"
        for value, oracle in zip(outcome["value"], expected, strict=True):
            np.testing.assert_allclose(value.numpy(), oracle, rtol=1e-6, err_msg=f"rank {rank}")
        for before, after in zip(outcome["before"], outcome["after"], strict=True):
            assert _same_states(before, after), f"rank {rank}: the local states were not put back"


def test_a_later_sync_is_one_collective_and_the_first_adds_one_small_all_gather(agreement_run):
    world, _, results = agreement_run
    check = (ALL_GATHER, ((4,),) * (world + 1))  # a 32-byte digest as 4 int64: one from each rank, and our own

    def one(size: int) -> list[Any]:
        return [(ALL_REDUCE, ((size,),))]

    expected = {
        "sync first": [check, *one(2)],  # BinaryHingeLoss: loss and weight sums
        "sync later": one(2),
        "synced pair first": [check, *one(4)],  # a new configuration of the binary metric: checked again
        "synced pair later": one(4),
        "synced one of the pair": [check, *one(2)],
        "step first": [check, *one(3)],  # a forward step also carries the failed-batch flag
        "step later": one(3),
    }
    for rank, rank_results in enumerate(results):
        assert rank_results["collectives"] == expected, f"rank {rank}"


def test_a_batch_that_fails_on_one_rank_fails_the_step_on_every_rank(agreement_run):
    """Steps 0 and 2 fail on one rank each (step 0 before any agreement); steps 1 and 3 must be right everywhere."""
    world, plan, results = agreement_run
    steps = [cat_batches([rank_data["steps"][step] for rank_data in plan["failed step"]]) for step in range(STEPS)]
    for rank, rank_results in enumerate(results):
        outcome = rank_results["failed step"]
        for step, failing_rank in FAILURES.items():
            failed = outcome["steps"][step]
            assert "value" not in failed, f"rank {rank} returned a value for failed step {step}"
            if rank == failing_rank:
                assert failed["error"] == "ValueError"
                assert failed["message"] == (
                    "Expected `target` to hold binary labels in {0, 1} or {-1, 1}, but found 2."
                )
            else:
                assert failed["error"] == "StepSyncError", f"rank {rank}: {failed.get('message')}"
                assert failed["message"] == (
                    "Expected every rank's batch of this forward step (dist_sync_on_step=True) to update its "
                    f"metric, but the batches of 1 of the {world} ranks raised. The step counts on no rank: every "
                    "rank keeps its BinaryHingeLoss state as it was before."
                )
            assert _same_states(failed["before"], failed["after"]), f"rank {rank}: failed step {step} changed it"
        # the ranks stay in step: every other step's value is over that step's batches of every rank
        kept = [step for step in range(STEPS) if step not in FAILURES]
        for step in kept:
            union = steps[step]
            oracle = ref.binary_hinge(union["preds"].numpy(), union["target"].numpy())
            value = outcome["steps"][step]["value"]
            np.testing.assert_allclose(value.numpy(), oracle, rtol=1e-6, err_msg=f"rank {rank}, step {step}")
        everything = cat_batches([steps[step] for step in kept])
        oracle = ref.binary_hinge(everything["preds"].numpy(), everything["target"].numpy())
        np.testing.assert_allclose(outcome["compute"]["value"].numpy(), oracle, rtol=1e-6, err_msg=f"rank {rank}")


def test_the_errors_are_runtime_errors_of_the_package():
    assert issubclass(hm.SyncMismatchError, RuntimeError) and hm.SyncMismatchError.__module__.startswith("hingemetrics")
    assert issubclass(hm.StepSyncError, RuntimeError) and hm.StepSyncError.__module__.startswith("hingemetrics")
    assert {"SyncMismatchError", "StepSyncError"} <= set(hm.__all__)

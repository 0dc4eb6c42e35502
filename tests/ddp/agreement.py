"""What every rank runs in the agreement tests: ranks that hold differently configured metrics, or fail a step.

The parent draws every batch (``make_agreement_plan``) and hands the whole plan to every rank. Each scenario builds
this rank's metrics, which may differ from the other ranks' on purpose, syncs them and returns what happened: the
value, or the class and message of the error, with the states before and after. The parent checks the values
against the plain references over the union of the ranks' data, and the errors against the messages it expects.
"""

from __future__ import annotations

import zlib
from collections.abc import Callable
from typing import Any

import torch
from torch import Tensor

import hingemetrics as hm
from tests.cases import Batch
from tests.ddp.scenarios import CollectiveLog

#: The scenarios in the order every rank runs them; each must leave no collective pending on any rank.
SCENARIOS = (
    "one-vs-all num_classes",
    "crammer-singer num_classes",
    "binary margin",
    "binary vs embedding",
    "synced lists",
    "synced order",
    "collectives",
    "failed step",
)

STEPS = 4
#: In the failed-step scenario, the step whose batch fails on one rank, and that rank: the first step (before the
#: ranks have agreed on anything) on rank 1, and a later one on rank 0.
FAILURES = {0: 1, 2: 0}


def binary_batch(gen: torch.Generator, n: int) -> Batch:
    """Scores and +1/-1 targets: valid for BinaryHingeLoss and HingeEmbeddingLoss alike."""
    return {"preds": torch.randn(n, generator=gen) * 2, "target": torch.randint(2, (n,), generator=gen) * 2 - 1}


def multiclass_batch(gen: torch.Generator, n: int, classes: int) -> Batch:
    return {"preds": torch.randn(n, classes, generator=gen) * 2, "target": torch.randint(classes, (n,), generator=gen)}


def num_classes(rank: int) -> int:
    """The number of classes rank ``rank`` gives its multiclass metric in the mismatch scenarios: 3, 4, 5, ..."""
    return 3 + rank


def binary_margin(rank: int) -> float:
    """Rank 0 uses margin 1, every other rank margin 2."""
    return 1.0 if rank == 0 else 2.0


def make_agreement_plan(world: int) -> dict[str, Any]:
    """Every rank's batches for every scenario, drawn reproducibly (seeded by the scenario's name)."""
    plan: dict[str, Any] = {}
    for name in SCENARIOS:
        gen = torch.Generator().manual_seed(zlib.crc32(name.encode()))
        ranks = []
        for rank in range(world):
            n = 4 + 3 * rank
            ranks.append(
                {
                    "binary": binary_batch(gen, n),
                    "multiclass": multiclass_batch(gen, n, num_classes(rank)),
                    "three": multiclass_batch(gen, n, 3),
                    "other": binary_batch(gen, n + 2),
                    "steps": [binary_batch(gen, n + step) for step in range(STEPS)],
                }
            )
        if name == "failed step":
            for step, rank in FAILURES.items():  # a label BinaryHingeLoss refuses
                ranks[rank]["steps"][step]["target"][0] = 2
        plan[name] = ranks
    return plan


def _states(metric: Any) -> dict[str, Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


def _outcome(run: Callable[[], Any]) -> dict[str, Any]:
    """The value ``run`` returns, or the class and message of what it raised."""
    try:
        return {"value": run()}
    except Exception as err:
        return {"error": type(err).__name__, "message": str(err)}


def _fed(metric: Any, batch: Batch) -> Any:
    metric.update(**batch)
    return metric


def _compute_each(metrics: list[Any]) -> dict[str, Any]:
    """``compute()`` on each metric (one sync each), with the states before and after."""
    before = [_states(metric) for metric in metrics]
    outcome = _outcome(lambda: [metric.compute() for metric in metrics])
    return {**outcome, "before": before, "after": [_states(metric) for metric in metrics]}


def _synced_compute(given: list[Any], everything: list[Any]) -> dict[str, Any]:
    """``compute()`` of every metric of ``everything`` inside ``hm.synced(*given)``, with the states around it."""

    def run() -> list[Tensor]:
        with hm.synced(*given):
            return [metric.compute() for metric in everything]

    before = [_states(metric) for metric in everything]
    outcome = _outcome(run)
    return {**outcome, "before": before, "after": [_states(metric) for metric in everything]}


def _one_vs_all(rank: int, data: Batch) -> dict[str, Any]:
    metric = hm.MulticlassHingeLoss(num_classes=num_classes(rank), multiclass_mode="one-vs-all")
    return _compute_each([_fed(metric, data["multiclass"])])


def _crammer_singer(rank: int, data: Batch) -> dict[str, Any]:
    return _compute_each([_fed(hm.MulticlassHingeLoss(num_classes=num_classes(rank)), data["multiclass"])])


def _margin(rank: int, data: Batch) -> dict[str, Any]:
    return _compute_each([_fed(hm.BinaryHingeLoss(margin=binary_margin(rank)), data["binary"])])


def _binary_vs_embedding(rank: int, data: Batch) -> dict[str, Any]:
    metric = hm.BinaryHingeLoss() if rank % 2 == 0 else hm.HingeEmbeddingLoss()
    return _compute_each([_fed(metric, data["binary"])])


def _lists(rank: int, data: Batch) -> dict[str, Any]:
    """Rank 0 syncs a binary and a multiclass metric, every other rank the binary one alone."""
    binary = _fed(hm.BinaryHingeLoss(), data["binary"])
    given = [binary, _fed(hm.MulticlassHingeLoss(num_classes=3), data["three"])] if rank == 0 else [binary]
    return _synced_compute(given, given)


def _order(rank: int, data: Batch) -> dict[str, Any]:
    """Two identical binary metrics and a multiclass one, given to ``hm.synced`` in another order on odd ranks."""
    first, multiclass, second = (
        _fed(hm.BinaryHingeLoss(), data["binary"]),
        _fed(hm.MulticlassHingeLoss(num_classes=3), data["three"]),
        _fed(hm.BinaryHingeLoss(), data["other"]),
    )
    given = [first, multiclass, second] if rank % 2 == 0 else [multiclass, first, second]
    return _synced_compute(given, [first, multiclass, second])


def _collectives(rank: int, data: Batch) -> dict[str, Any]:
    """The collectives of first and later syncs: compute(), hm.synced, forward with dist_sync_on_step."""
    calls: dict[str, Any] = {}
    metric = _fed(hm.BinaryHingeLoss(), data["binary"])
    for sync in ("first", "later"):
        with CollectiveLog() as log:
            metric.sync()
        metric.unsync()
        calls[f"sync {sync}"] = log.calls
    pair = [metric, _fed(hm.MulticlassHingeLoss(num_classes=3), data["three"])]
    for sync in ("first", "later"):
        with CollectiveLog() as log, hm.synced(*pair):
            pass
        calls[f"synced pair {sync}"] = log.calls
    with CollectiveLog() as log, hm.synced(pair[1]):  # a configuration new to the multiclass metric: checked
        pass
    calls["synced one of the pair"] = log.calls
    stepped = hm.BinaryHingeLoss(dist_sync_on_step=True)
    for step in ("first", "later"):
        with CollectiveLog() as log:
            stepped(**data["steps"][0])
        calls[f"step {step}"] = log.calls
    return calls


def _failed_step(rank: int, data: Batch) -> dict[str, Any]:
    """dist_sync_on_step=True, and one rank's batch of some steps fails validation; every rank goes on."""
    metric = hm.BinaryHingeLoss(dist_sync_on_step=True)
    steps = []
    for batch in data["steps"]:
        before = _states(metric)
        outcome = _outcome(lambda batch=batch: metric(**batch))
        steps.append({**outcome, "before": before, "after": _states(metric)})
    return {"steps": steps, "compute": _outcome(metric.compute)}


_RUN: dict[str, Callable[[int, Batch], dict[str, Any]]] = {
    "one-vs-all num_classes": _one_vs_all,
    "crammer-singer num_classes": _crammer_singer,
    "binary margin": _margin,
    "binary vs embedding": _binary_vs_embedding,
    "synced lists": _lists,
    "synced order": _order,
    "collectives": _collectives,
    "failed step": _failed_step,
}


def run_agreement(rank: int, world: int, plan: dict[str, Any], names: tuple[str, ...] = SCENARIOS) -> dict[str, Any]:
    """Run the scenarios ``names`` in order on this rank; the same sequence of collectives on every rank."""
    return {name: _RUN[name](rank, plan[name][rank]) for name in names}

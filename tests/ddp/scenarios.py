"""What every rank runs in the multi-process tests, and the plan of data that tells it what to feed.

The parent process draws all the data (``make_plan``) and hands the whole plan to every rank; a rank feeds only its
own part and returns what it saw: values, states and the collectives it issued. The parent then checks them
against single-process metrics over the union of the data, and against the plain references.
"""

from __future__ import annotations

import gc
import inspect
import sys
import warnings
import zlib
from dataclasses import dataclass
from typing import Any

import torch
import torch.distributed as dist
import torchmetrics
from torch import Tensor
from torch.utils import _pytree as pytree
from torch.utils._python_dispatch import TorchDispatchMode
from torch.utils.data import DataLoader, DistributedSampler
from torchmetrics import MetricCollection
from torchmetrics.utilities.distributed import gather_all_tensors

import hingemetrics as hm
from tests.cases import CASES, Batch, Case, batch_size, map_inputs

Call = tuple[str, tuple[tuple[int, ...], ...]]


@dataclass(frozen=True)
class Layout:
    """How the data of one test run is spread over the ranks (batch sizes, one list per rank)."""

    shards: list[list[int]]  # the batches each rank updates with; an empty list is a rank that sees no data
    extra: list[list[int]]  # more batches after a sync()/unsync() round trip
    steps: list[list[int]]  # one batch per forward() step with dist_sync_on_step=True (0 = an empty batch)
    groups: list[list[int]]  # a partition of the ranks into process groups
    padded_size: int  # dataset size for the DistributedSampler runs; not a multiple of the world size


LAYOUTS = {
    2: Layout(
        shards=[[], [7, 1, 12]],
        extra=[[3], []],
        steps=[[0, 4, 2], [3, 0, 5]],
        groups=[[0], [1]],
        padded_size=11,
    ),
    4: Layout(
        shards=[[5], [7, 1, 12], [], [3, 9]],
        extra=[[2], [], [4], []],
        steps=[[2, 0, 1], [0, 0, 3], [0, 0, 0], [4, 1, 0]],
        groups=[[0, 1], [2, 3]],
        padded_size=17,
    ),
}


def case_named(name: str) -> Case:
    """The registry case called ``name``."""
    return next(case for case in CASES if case.name == name)


def accepts_weights(case: Case) -> bool:
    """Whether the case's metric takes ``sample_weight`` in ``update``."""
    return "sample_weight" in inspect.signature(case.make().update).parameters


def make_plan(world: int) -> dict[str, Any]:
    """Draw every batch of every case for every rank, reproducibly (seeded by the case name)."""
    layout = LAYOUTS[world]
    plan: dict[str, Any] = {"layout": layout, "cases": {}}
    for case in CASES:
        gen = torch.Generator().manual_seed(zlib.crc32(case.name.encode()))

        def draw(sizes: list[list[int]], case: Case = case, gen: torch.Generator = gen) -> list[list[Batch]]:
            return [[case.draw(gen, n) for n in rank_sizes] for rank_sizes in sizes]

        plan["cases"][case.name] = {
            "shards": draw(layout.shards),
            "extra": draw(layout.extra),
            "steps": draw(layout.steps),
            "dataset": case.draw(gen, layout.padded_size),
        }
    return plan


class CollectiveLog(TorchDispatchMode):
    """Record every c10d collective issued while active, on any process group: op name and tensor shapes.

    It listens at the dispatcher, below ``torch.distributed``'s Python functions, so it sees a collective however
    it is issued (all_reduce, all_gather, barrier, broadcast, object collectives, ...).
    """

    def __init__(self) -> None:
        super().__init__()
        self.calls: list[Call] = []

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        kwargs = kwargs or {}
        if func.namespace == "c10d":
            leaves, _ = pytree.tree_flatten((args, kwargs))  # tree_leaves is newer than torch 2.1
            self.calls.append((str(func), tuple(tuple(t.shape) for t in leaves if isinstance(t, Tensor))))
        return func(*args, **kwargs)


class CountingGather:
    """A user ``dist_sync_fn``: torchmetrics' own gather, counting its calls."""

    def __init__(self) -> None:
        self.calls = 0

    def __call__(self, result: Tensor, group: Any = None) -> list[Tensor]:
        self.calls += 1
        return gather_all_tensors(result, group)


def _feed(metric: Any, batches: list[Batch]) -> Any:
    for batch in batches:
        metric.update(**batch)
    return metric


def _states(metric: Any) -> dict[str, Tensor]:
    return {name: getattr(metric, name).clone() for name in metric._defaults}


def _logged(fn: Any) -> tuple[Any, list[Call]]:
    with CollectiveLog() as log:
        value = fn()
    return value, log.calls


def _sync_paths(case: Case, data: dict[str, Any], rank: int, group: Any) -> dict[str, Any]:
    """Run one case through every way of syncing; returns values, states and the collectives of each."""
    mine = data["shards"][rank]
    out: dict[str, Any] = {}

    metric = _feed(case.make(), mine)
    out["compute"], out["compute_calls"] = _logged(metric.compute)
    _, out["cached_compute_calls"] = _logged(metric.compute)

    forwarded = case.make()
    for batch in mine:
        forwarded(**batch)
    out["forward_then_compute"] = forwarded.compute()

    # sync() / unsync(): the summed states, compute() on them, the local states back, accumulation going on
    metric = _feed(case.make(), mine)
    out["local_states"] = _states(metric)
    _, out["sync_calls"] = _logged(metric.sync)
    out["synced_states"] = _states(metric)
    out["synced_compute"], out["synced_compute_calls"] = _logged(metric.compute)
    metric.unsync()
    out["unsynced_states"] = _states(metric)
    with CollectiveLog() as log, metric.sync_context():
        out["context_compute"] = metric.compute()
    out["context_calls"] = log.calls
    out["after_context_states"] = _states(metric)
    _feed(metric, data["extra"][rank])
    out["compute_with_extra"] = metric.compute()

    # dist_sync_on_step=True: each forward() returns the value of that step's batches over all ranks
    stepped = case.make()
    stepped.dist_sync_on_step = True  # exactly what the constructor keyword sets
    steps = [_logged(lambda batch=batch: stepped(**batch)) for batch in data["steps"][rank]]
    out["step_values"] = [value.detach() for value, _ in steps]
    out["step_calls"] = [calls for _, calls in steps]
    out["step_compute"] = stepped.compute()
    out["step_grads"], out["step_backward_warnings"] = _step_gradients(case, data["steps"][rank])

    # a process group, given as the metric's attribute (the constructor keyword) and as sync_context's argument
    grouped = _feed(case.make(), mine)
    grouped.process_group = group
    out["group_compute"], out["group_calls"] = _logged(grouped.compute)
    metric = _feed(case.make(), mine)
    with CollectiveLog() as log, metric.sync_context(process_group=group):
        out["group_context_compute"] = metric.compute()
    out["group_context_calls"] = log.calls

    # a user dist_sync_fn, as the metric's attribute (the constructor keyword) and as sync_context's argument
    gather, context_gather = CountingGather(), CountingGather()
    metric = _feed(case.make(), mine)
    metric.dist_sync_fn = gather
    out["user_fn_compute"] = metric.compute()
    metric = _feed(case.make(), mine)
    with metric.sync_context(dist_sync_fn=context_gather):
        out["user_fn_context_compute"] = metric.compute()
    out["user_fn_calls"] = (gather.calls, context_gather.calls)
    out["state_count"] = len(metric._defaults)
    return out


def _step_gradients(case: Case, batches: list[Batch]) -> tuple[list[list[Tensor]], list[str]]:
    """The gradient of each synced step value (summed if a vector) with respect to each of this rank's float inputs
    (scores or embeddings), one list per step in the order of ``case.inputs``."""
    metric = case.make()
    metric.dist_sync_on_step = True
    grads = []
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        for batch in batches:
            batch = map_inputs(case, batch, lambda x: x.clone().requires_grad_())
            value = metric(**batch)
            if value.requires_grad:  # not for an empty batch: nothing on this rank to differentiate
                value.sum().backward()
            inputs = [batch[k] for k in case.inputs]
            grads.append([x.grad if x.grad is not None else torch.zeros_like(x) for x in inputs])
    return grads, [str(w.message) for w in caught if "autograd" in str(w.message)]


def padding_weights(rank: int, world: int, seen: int, batch_size: int, dataset_size: int) -> Tensor:
    """The README recipe: weight 1 for real samples, 0 for DistributedSampler's padded duplicates.

    The ``i``-th sample a rank draws sits at ``rank + i * world`` in the padded order; past ``dataset_size`` it
    is a duplicate.
    """
    position = rank + world * torch.arange(seen, seen + batch_size)
    return (position < dataset_size).double()


def _padded_run(case: Case, dataset: Batch, rank: int, world: int) -> tuple[Tensor, Tensor]:
    """Evaluate ``dataset`` through a shuffling DistributedSampler, with and without the padding weights."""
    size = batch_size(dataset)
    items = [{key: value[i] for key, value in dataset.items()} for i in range(size)]
    sampler = DistributedSampler(items, num_replicas=world, rank=rank, shuffle=True, seed=7)
    exact, naive = case.make(), case.make()
    seen = 0
    for batch in DataLoader(items, batch_size=3, sampler=sampler):
        pad = padding_weights(rank, world, seen, batch_size(batch), size)
        seen += batch_size(batch)
        own = batch.get("sample_weight")
        weight = pad if own is None else own * pad.reshape(-1, *[1] * (own.dim() - 1)).to(own.dtype)
        exact.update(**{**batch, "sample_weight": weight})
        naive.update(**batch)
    return exact.compute(), naive.compute()


def _world_references(plan: dict[str, Any], rank: int) -> tuple[int, int]:
    """References to the default group before and after every case syncs on it, with no collective logging.

    A group that keeps references after its metrics are gone outlives ``destroy_process_group``; its gloo threads
    then run into the interpreter's teardown. Run before any ``CollectiveLog``, which itself leaves references.
    """
    world_group = dist.group.WORLD
    before = sys.getrefcount(world_group)
    for name, data in plan["cases"].items():
        metric = _feed(case_named(name).make(), data["shards"][rank])
        metric.compute()
        metric.sync()
        metric.unsync()
        with metric.sync_context():
            metric.compute()
        del metric
    gc.collect()
    return before, sys.getrefcount(world_group)


def _torchmetrics_baseline(rank: int) -> Any:
    """torchmetrics' own BinaryHingeLoss with ``rank + 1`` samples: its sync shows what torchmetrics issues."""
    baseline = torchmetrics.classification.BinaryHingeLoss()
    baseline.update(torch.rand(rank + 1), torch.ones(rank + 1, dtype=torch.long))
    return baseline


def _synced_together(plan: dict[str, Any], rank: int) -> dict[str, Any]:
    """Every case's metric in one MetricCollection, with a torchmetrics metric beside them, under ``hm.synced``."""
    metrics = {name: _feed(case_named(name).make(), data["shards"][rank]) for name, data in plan["cases"].items()}
    collection = MetricCollection({**metrics, "torchmetrics": _torchmetrics_baseline(rank)}, compute_groups=False)
    local = {name: _states(metric) for name, metric in metrics.items()}
    with CollectiveLog() as log, hm.synced(collection):
        values = collection.compute()
        inside = {name: _states(metric) for name, metric in metrics.items()}
    after = {name: _states(metric) for name, metric in metrics.items()}
    # a metric with a dist_sync_fn of its own goes through it; one already synced is refused
    gather = CountingGather()
    custom = _feed(case_named("binary").make(), plan["cases"]["binary"]["shards"][rank])
    custom.dist_sync_fn = gather
    local_only = _feed(hm.BinaryHingeLoss(sync_on_compute=False), plan["cases"]["binary"]["shards"][rank])
    with hm.synced(custom, local_only):
        custom_value = custom.compute()
        local_only_value = local_only.compute()
    custom.sync()
    try:
        with hm.synced(custom):
            refused = None
    except ValueError as err:
        refused = str(err)
    custom.unsync()
    return {
        "values": values,
        "calls": log.calls,
        "local": local,
        "inside": inside,
        "after": after,
        "custom": (custom_value, gather.calls),
        "local_only": local_only_value,
        "refused": refused,
    }


def run_rank(rank: int, world: int, plan: dict[str, Any]) -> dict[str, Any]:
    """Everything one rank of a test run does; the same sequence of collectives on every rank."""
    world_references = _world_references(plan, rank)
    layout: Layout = plan["layout"]
    groups = [dist.new_group(ranks) for ranks in layout.groups]  # every rank creates every group, in order
    group = next(g for g, ranks in zip(groups, layout.groups) if rank in ranks)
    results: dict[str, Any] = {"cases": {}, "padding": {}, "world_references": world_references}
    for name, data in plan["cases"].items():
        case = case_named(name)
        results["cases"][name] = _sync_paths(case, data, rank, group)
        if accepts_weights(case):
            results["padding"][name] = _padded_run(case, data["dataset"], rank, world)
    _, results["torchmetrics_compute_calls"] = _logged(_torchmetrics_baseline(rank).compute)
    results["synced_together"] = _synced_together(plan, rank)
    return results

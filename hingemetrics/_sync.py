"""Sync several metrics at once: the states of every hingemetrics metric given travel in one ``all_reduce``."""

from __future__ import annotations

import contextlib
from collections.abc import Iterable, Iterator
from typing import Any

import torch
from torchmetrics import Metric, MetricCollection
from torchmetrics.utilities.distributed import gather_all_tensors

from hingemetrics._agreement import order_key
from hingemetrics._base import SumStateMetric, sum_states_over_ranks

__all__ = ["synced"]


@contextlib.contextmanager
def synced(*metrics: Metric | MetricCollection, process_group: Any | None = None) -> Iterator[None]:
    """Sum the states of many metrics over the ranks with one ``all_reduce``; put the local states back on exit.

    ``metric.compute()`` syncs one metric at a time, one collective each. Inside ``with synced(...)``, every
    hingemetrics metric given (directly or as a member of a ``MetricCollection``) holds the states summed over the
    ranks, packed into one tensor and reduced by a single ``all_reduce`` per device and process group, and its
    ``compute()`` reads them without syncing again. On exit each metric gets its local states back, as after
    ``unsync()``, so accumulation can go on.

    The ranks need not give the metrics in the same order. They are summed in an order every rank works out alike
    from each metric's description (its class name, then the arguments that shape or read its state), so
    ``hm.synced(a, b)`` on one rank pairs up with ``hm.synced(b, a)`` on another, and so do the members of a set,
    whose order differs between processes. Metrics whose descriptions are identical (two
    ``BinaryHingeLoss()``, say) cannot be told apart that way and keep the relative order they were given in:
    give those in the same order on every rank (a list, a tuple or a ``MetricCollection``, not a set).

    The first time a set of configurations syncs on a process group, one small ``all_gather`` checks that every
    rank syncs the same metrics, configured alike; where they differ, every rank raises
    :class:`~hingemetrics.SyncMismatchError` naming the difference, and no state is summed. Later syncs of the
    same configurations issue the ``all_reduce`` alone.

    Other torchmetrics metrics in a collection are left alone and sync on their own in ``compute()``. A hingemetrics
    metric with a ``dist_sync_fn`` of its own is synced through that function, and one made with
    ``sync_on_compute=False`` is not synced. Outside a distributed run (``torch.distributed`` not initialised)
    nothing is synced and ``compute()`` gives the local values.

    Args:
        *metrics: hingemetrics or torchmetrics metrics, or ``MetricCollection`` objects holding them.
        process_group: the group to sum over; None uses each metric's own ``process_group`` (the default group
            unless one was given to the metric).

    Raises:
        TypeError: an argument is not a torchmetrics ``Metric`` or ``MetricCollection``.
        ValueError: a hingemetrics metric given is already synced (by ``sync()`` or another ``synced``).
        SyncMismatchError: the ranks sync different metrics or configurations (on every rank).

    Example:
        >>> import torch
        >>> from torchmetrics import MetricCollection
        >>> import hingemetrics as hm
        >>> metrics = MetricCollection({"binary": hm.BinaryHingeLoss(), "squared": hm.BinaryHingeLoss(squared=True)})
        >>> metrics.update(torch.tensor([0.5, -2.0, 1.5]), torch.tensor([1, 0, 0]))
        >>> with hm.synced(metrics):  # under torch.distributed: one all_reduce for both metrics
        ...     values = metrics.compute()
        >>> {name: round(value.item(), 4) for name, value in values.items()}
        {'binary': 1.0, 'squared': 2.1667}
    """
    members = sorted(_hinge_members(metrics), key=lambda metric: order_key(metric._sync_description()))
    for metric in members:
        if metric._is_synced:
            raise ValueError(
                f"Expected every metric given to `synced` to hold its local states, but {type(metric).__name__} is "
                "already synced: call its `unsync()` first, or leave it out."
            )
    if not (torch.distributed.is_available() and torch.distributed.is_initialized()):
        yield
        return
    done: list[SumStateMetric] = []
    packed: list[SumStateMetric] = []
    try:
        for metric in members:
            if not metric._to_sync:
                continue
            if metric.dist_sync_fn in (None, gather_all_tensors):
                packed.append(metric)
            else:
                metric.sync(metric.dist_sync_fn, process_group if process_group is not None else metric.process_group)
                done.append(metric)
        for group, bucket in _buckets(packed, process_group):
            _sync_bucket(bucket, group)
            done.extend(bucket)
        yield
    finally:
        for metric in done:
            if metric._is_synced:
                metric.unsync()


def _hinge_members(items: Iterable[Any]) -> list[SumStateMetric]:
    """The hingemetrics metrics among ``items`` and the members of the collections among them, each once.

    They come in the order given; ``synced`` then sorts them, stably, by description.
    """
    found: dict[int, SumStateMetric] = {}
    for item in items:
        if isinstance(item, MetricCollection):
            members: Iterable[Any] = item.values(copy_state=False)
        elif isinstance(item, Metric):
            members = [item]
        else:
            raise TypeError(
                "Expected each argument of `synced` to be a torchmetrics Metric or MetricCollection, but got "
                f"{type(item).__name__}."
            )
        for metric in members:
            if isinstance(metric, SumStateMetric):
                found.setdefault(id(metric), metric)
    return list(found.values())


def _buckets(metrics: list[SumStateMetric], process_group: Any | None) -> list[tuple[Any, list[SumStateMetric]]]:
    """Group the metrics by the process group they sum over and the device of their states, in order."""
    buckets: dict[tuple[int, torch.device], tuple[Any, list[SumStateMetric]]] = {}
    for metric in metrics:
        group = process_group if process_group is not None else metric.process_group
        key = (id(group), metric.device)
        buckets.setdefault(key, (group, []))[1].append(metric)
    return list(buckets.values())


def _sync_bucket(metrics: list[SumStateMetric], group: Any | None) -> None:
    """One ``all_reduce`` for the states of ``metrics``; each keeps its local states for ``unsync()``."""
    caches = [metric._copy_state_dict() for metric in metrics]
    sum_states_over_ranks(metrics, group)
    for metric, cache in zip(metrics, caches, strict=True):
        metric._cache = cache
        metric._is_synced = True

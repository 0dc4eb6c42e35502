"""Before any state is summed, the ranks agree on what they sum: checked once per configuration, then cached.

Summing packed states is only right when every rank packs the same metrics, configured alike, in the same order.
A sync is described on each rank by a :data:`SyncDescription`: what kind of sync it is and, for each metric in
order, its class, the arguments that shape its state or read it, and its states' names, shapes and dtypes. The
first time a description is synced on a process group, :func:`check_agreement` compares the ranks' descriptions
with one small ``all_gather`` of a digest; where they differ, every rank learns how (one ``all_gather_object`` of
the descriptions) and raises :class:`SyncMismatchError` with the same message, before any state is summed.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Sequence
from typing import Any

import torch
import torch.distributed as dist

from hingemetrics._compat import group_name

__all__ = ["StepSyncError", "SyncMismatchError"]

#: ``(name, shape, dtype)`` of one state.
StateDescription = tuple[str, tuple[int, ...], str]
#: ``(class name, ((argument, value), ...), (state, ...))`` of one metric.
MetricDescription = tuple[str, tuple[tuple[str, Any], ...], tuple[StateDescription, ...]]
#: ``(kind, (metric, ...))`` of one sync: ``"compute"`` for ``compute()``/``sync()``/``hm.synced``, ``"step"`` for
#: ``forward`` with ``dist_sync_on_step=True``, whose packed tensor carries one more element.
SyncDescription = tuple[str, tuple[MetricDescription, ...]]

_KINDS = {"compute": "compute(), sync() or hm.synced", "step": "forward with dist_sync_on_step=True"}
_DIGEST_BYTES = 32  # sha256


class SyncMismatchError(RuntimeError):
    """The ranks of a process group hold metrics that cannot be summed together.

    Raised on every rank of the group, with the same message, by the first sync of a configuration whose ranks
    disagree: another metric class, another argument value (``num_classes``, ``margin``, ...), another number of
    metrics in ``hm.synced``, or states of another shape. No rank has summed anything: each metric keeps its local
    state, as before the sync.
    """


class StepSyncError(RuntimeError):
    """Another rank's batch failed in this ``forward`` step (``dist_sync_on_step=True``), so the step counts nowhere.

    The rank whose ``update`` raised still takes part in the step's collective, with a flag saying so; every other
    rank raises this error instead of returning a step value, and every rank's state is as it was before the step,
    so the ranks stay in step for the next one.
    """


def describe_metric(
    name: str, arguments: Sequence[tuple[str, Any]], states: Sequence[tuple[str, torch.Tensor]]
) -> MetricDescription:
    """The description of one metric: class name, arguments (sorted by name) and ``(name, shape, dtype)`` states.

    It is hashable (a list among the values becomes a tuple, any other unhashable value its ``repr``), so that
    the cache of agreed syncs can hold it, and equal descriptions hash alike (Python's ``1 == 1.0`` included).
    """
    return (
        name,
        tuple(sorted((argument, _hashable(value)) for argument, value in arguments)),
        tuple((state, tuple(value.shape), str(value.dtype).removeprefix("torch.")) for state, value in states),
    )


_PLAIN = frozenset({bool, int, float, str, type(None)})


def _hashable(value: Any) -> Any:
    if type(value) in _PLAIN:  # the common case first: a sync describes its metrics every time
        return value
    if isinstance(value, (list, tuple)):
        return tuple(_hashable(item) for item in value)
    try:
        hash(value)
    except TypeError:
        return repr(value)
    return value


def _canonical(value: Any) -> Any:
    """``value`` with every number as a float, so ``margin=1`` and ``margin=1.0`` describe the same metric."""
    kind = type(value)
    if kind is int or kind is float:
        return float(value)
    if kind in _PLAIN:
        return value
    if isinstance(value, (int, float)) and not isinstance(value, bool):
        return float(value)
    if isinstance(value, (tuple, list)):
        return tuple(_canonical(item) for item in value)
    return value if isinstance(value, (bool, str)) else repr(value)


def canonical_key(description: Any) -> str:
    """A string that is the same on every rank exactly when the descriptions are equal (as Python compares them).

    It makes the digest that the ranks compare.
    """
    return repr(_canonical(description))


def order_key(description: MetricDescription) -> tuple[str, str]:
    """Where a metric goes in ``hm.synced``: by class name, then by its arguments (canonical, as text)."""
    name, arguments, _ = description
    return name, repr(_canonical(arguments))


def group_key(group: Any) -> tuple[str, tuple[int, ...]]:
    """The name of a process group and its global ranks: the same on every rank of the group.

    It holds no reference to the group itself, so a metric that remembers a group does not keep it alive (and
    still pickles).
    """
    return group_name(group), tuple(dist.get_process_group_ranks(group))


def check_agreement(description: SyncDescription, group: Any, device: torch.device) -> None:
    """Compare this sync's description with every other rank's; raise :class:`SyncMismatchError` if any differs.

    Every rank of ``group`` must call this at the same point (it is a collective). One ``all_gather`` of a 32-byte
    digest of the description's canonical form settles the common case; every rank then holds the same digests
    and so takes the same branch. Only where they differ does a second collective (``all_gather_object``) bring
    every rank the full descriptions, from which every rank builds the same message.
    """
    digest = hashlib.sha256(canonical_key(description).encode()).digest()
    mine = torch.frombuffer(bytearray(digest), dtype=torch.int64).to(device)
    size = dist.get_world_size(group)
    gathered = [torch.empty_like(mine) for _ in range(size)]
    dist.all_gather(gathered, mine, group=group)
    digests = torch.stack(gathered).cpu()
    if bool((digests == digests[0]).all()):
        return
    descriptions: list[Any] = [None] * size
    dist.all_gather_object(descriptions, description, group=group)
    raise SyncMismatchError(mismatch_message(descriptions, dist.get_process_group_ranks(group)))


def mismatch_message(descriptions: Sequence[SyncDescription], ranks: Sequence[int]) -> str:
    """What differs between the ranks' descriptions, in words; ``ranks[i]`` is the global rank of ``descriptions[i]``.

    The same descriptions give the same message, so every rank raises with the same text.
    """
    return (
        "Expected every rank of the process group to sync the same metrics, configured alike, but "
        + "; ".join(_differences(descriptions, ranks))
        + ". No state was summed: every rank raises this error and keeps its local state."
    )


def _by_rank(values: Sequence[str], ranks: Sequence[int]) -> str:
    """``"3 on rank 0, 4 on ranks 1 and 2"``: each distinct value, in order of first appearance, with its ranks."""
    holders: dict[str, list[int]] = {}
    for value, rank in zip(values, ranks, strict=True):
        holders.setdefault(value, []).append(rank)
    parts = []
    for value, where in holders.items():
        names = ", ".join(str(rank) for rank in where[:-1]) + f" and {where[-1]}" if len(where) > 1 else str(where[0])
        parts.append(f"{value} on rank{'s' if len(where) > 1 else ''} {names}")
    return ", ".join(parts)


def _differs(values: Sequence[Any]) -> bool:
    return len({canonical_key(value) for value in values}) > 1


def _differences(descriptions: Sequence[SyncDescription], ranks: Sequence[int]) -> list[str]:
    """One phrase per difference between the ranks' descriptions.

    The first of these that differs is described: the kind of sync, the number of metrics, or, metric by metric,
    its class, its arguments or its states.
    """
    kinds = [kind for kind, _ in descriptions]
    if _differs(kinds):
        return [f"the ranks sync in different calls: {_by_rank([_KINDS[kind] for kind in kinds], ranks)}"]
    members = [metrics for _, metrics in descriptions]
    if len({len(metrics) for metrics in members}) > 1:
        listed = [
            f"{len(metrics)} metric{'' if len(metrics) == 1 else 's'} "
            f"({', '.join(name for name, _, _ in metrics)}; {_length(metrics)} state elements)"
            for metrics in members
        ]
        return [f"they sync different numbers of metrics: {_by_rank(listed, ranks)}"]
    found: list[str] = []
    for position, metrics in enumerate(zip(*members, strict=True)):
        found.extend(_metric_differences(position, len(members[0]), metrics, ranks))
    return found or [f"their descriptions differ: {_by_rank([repr(d) for d in descriptions], ranks)}"]


def _metric_differences(
    position: int, count: int, metrics: Sequence[MetricDescription], ranks: Sequence[int]
) -> list[str]:
    names = [name for name, _, _ in metrics]
    where = f"metric {position + 1} of {count}" if count > 1 else "the metric"
    if _differs(names):
        return [f"{where} is {_by_rank(names, ranks)}"]
    label = f"{names[0]} ({where})" if count > 1 else names[0]
    arguments = [dict(args) for _, args, _ in metrics]
    found = [
        f"{label} `{argument}` is {_by_rank([repr(args.get(argument)) for args in arguments], ranks)}"
        for argument in sorted({argument for args in arguments for argument in args})
        if _differs([args.get(argument) for args in arguments])
    ]
    if found:
        return found
    states = [{state: (shape, dtype) for state, shape, dtype in described} for _, _, described in metrics]
    if _differs([list(named) for named in states]):
        return [f"{label} has states {_by_rank([repr(list(named)) for named in states], ranks)}"]
    return [
        f"{label} state `{state}` has {_by_rank([_shape_and_dtype(*named[state]) for named in states], ranks)}"
        for state in states[0]
        if _differs([named[state] for named in states])
    ]


def _shape_and_dtype(shape: tuple[int, ...], dtype: str) -> str:
    return f"shape {tuple(shape)} and dtype {dtype}"


def _length(metrics: Sequence[MetricDescription]) -> int:
    """How many elements the states of ``metrics`` pack into."""
    return sum(math.prod(shape) for _, _, states in metrics for _, shape, _ in states)

"""Sync latency of hingemetrics against torchmetrics, at several world sizes, in one run.

Each world size is a real process group: one spawned process per rank, gloo over 127.0.0.1. Every rank holds a
hingemetrics metric and its torchmetrics equivalent (``BinaryHingeLoss``; ``MulticlassHingeLoss``, Crammer-Singer)
updated with the same batch. A timed sync is ``metric.sync(); metric.unsync()``, the work ``compute()`` does around
the formula, started right after a barrier on every rank. A third row syncs all three metrics of a collection
(binary, Crammer-Singer, one-vs-all): hingemetrics' inside one ``hm.synced(...)`` block, torchmetrics' one after
the other, as its ``MetricCollection.compute()`` does. Its latency is the slowest rank's time; a row reports the
median over the repeats, the two libraries measured alternately in the same loop, and their ratio.

Each row has the first sync of new metrics, where hingemetrics checks that the ranks agree on what they sum (one
small ``all_gather`` more), timed on new metrics at every repeat, and the later syncs, which the ratio compares;
both with the number of collectives they issue.

Run it with ``python -m hingemetrics.benchmark.sync`` (``--json`` for machine-readable output).
"""

from __future__ import annotations

import argparse
import functools
import json
import multiprocessing as mp
import os
import statistics
import sys
import time
import traceback
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass
from datetime import timedelta
from typing import Any

import torch
import torch.distributed as dist
import torchmetrics
from torch.utils._python_dispatch import TorchDispatchMode
from torchmetrics import Metric

import hingemetrics as hm
from hingemetrics._processes import leave_now, stop_processes

__all__ = ["SyncRow", "format_table", "main", "run_sync_benchmark"]

_RESULT_KEY = "hingemetrics-sync-benchmark"


@dataclass(frozen=True)
class SyncRow:
    """One metric at one world size: median sync latency of both libraries and their collectives per sync.

    ``*_us`` and ``*_collectives`` are for a later sync of the same metrics; ``*_first_us`` and
    ``*_first_collectives`` for the first sync of new ones (hingemetrics' includes its agreement check).
    """

    world_size: int
    metric: str
    hingemetrics_us: float
    torchmetrics_us: float
    hingemetrics_collectives: int
    torchmetrics_collectives: int
    hingemetrics_first_us: float
    torchmetrics_first_us: float
    hingemetrics_first_collectives: int
    torchmetrics_first_collectives: int

    @property
    def ratio(self) -> float:
        """How many times longer torchmetrics' later sync takes than hingemetrics' (above 1: ours is faster)."""
        return self.torchmetrics_us / self.hingemetrics_us


class _CollectiveCounter(TorchDispatchMode):
    """Count the c10d collectives dispatched while active, whichever Python function issued them."""

    def __init__(self) -> None:
        super().__init__()
        self.count = 0

    def __torch_dispatch__(self, func: Any, types: Any, args: Any = (), kwargs: Any = None) -> Any:
        if func.namespace == "c10d":
            self.count += 1
        return func(*args, **(kwargs or {}))


Sync = Callable[[], None]


def _sync_pairs(num_classes: int, rank: int) -> list[tuple[str, Sync, Sync]]:
    """(name, hingemetrics sync, torchmetrics sync): each pair of metrics updated with one shared batch of 64."""
    gen = torch.Generator().manual_seed(rank)
    binary_scores, binary_labels = torch.rand(64, generator=gen), torch.randint(2, (64,), generator=gen)
    class_scores = torch.rand(64, num_classes, generator=gen).softmax(1)
    class_labels = torch.randint(num_classes, (64,), generator=gen)
    ours: dict[str, Metric] = {
        "binary": hm.BinaryHingeLoss(),
        "multiclass": hm.MulticlassHingeLoss(num_classes),
        "one-vs-all": hm.MulticlassHingeLoss(num_classes, multiclass_mode="one-vs-all"),
    }
    theirs: dict[str, Metric] = {
        "binary": torchmetrics.classification.BinaryHingeLoss(),
        "multiclass": torchmetrics.classification.MulticlassHingeLoss(num_classes),
        "one-vs-all": torchmetrics.classification.MulticlassHingeLoss(num_classes, multiclass_mode="one-vs-all"),
    }
    for name in ours:
        scores, labels = (binary_scores, binary_labels) if name == "binary" else (class_scores, class_labels)
        ours[name].update(scores, labels)
        theirs[name].update(scores, labels)
    return [
        ("binary", functools.partial(_sync_once, ours["binary"]), functools.partial(_sync_once, theirs["binary"])),
        (
            "multiclass",
            functools.partial(_sync_once, ours["multiclass"]),
            functools.partial(_sync_once, theirs["multiclass"]),
        ),
        (
            "collection of 3",
            functools.partial(_sync_together, list(ours.values())),
            functools.partial(_sync_each, list(theirs.values())),
        ),
    ]


def _sync_once(metric: Metric) -> None:
    metric.sync()
    metric.unsync()


def _sync_together(metrics: list[Metric]) -> None:
    with hm.synced(*metrics):
        pass


def _sync_each(metrics: list[Metric]) -> None:
    for metric in metrics:
        _sync_once(metric)


def _count_collectives(sync: Sync) -> int:
    """How many collectives one call of ``sync`` issues."""
    with _CollectiveCounter() as counter:
        sync()
    return counter.count


def _flat(pairs: list[tuple[str, Sync, Sync]]) -> list[Sync]:
    """The syncs of ``pairs`` in order: hingemetrics', torchmetrics', for each pair."""
    return [sync for _, ours, theirs in pairs for sync in (ours, theirs)]


def _time_round(syncs: Sequence[Sync], rotation: int, seconds: list[list[float]]) -> None:
    """Time each sync once on this rank, after a barrier each, starting at ``rotation``; append to ``seconds``."""
    for k in range(len(syncs)):
        index = (k + rotation) % len(syncs)
        dist.barrier()
        start = time.perf_counter()
        syncs[index]()
        seconds[index].append(time.perf_counter() - start)


def _time_syncs(syncs: Sequence[Sync], repeats: int) -> list[list[float]]:
    """Seconds per sync, ``[sync][repeat]``, on this rank; the syncs take turns, in a rotating order."""
    seconds: list[list[float]] = [[] for _ in syncs]
    for repeat in range(repeats):
        _time_round(syncs, repeat, seconds)
    return seconds


def _time_first_syncs(num_classes: int, repeats: int) -> list[list[float]]:
    """Seconds of the first sync of new metrics, ``[sync][repeat]``: new metrics (made untimed) at each repeat."""
    seconds: list[list[float]] = []
    for repeat in range(repeats):
        syncs = _flat(_sync_pairs(num_classes, dist.get_rank()))
        seconds = seconds or [[] for _ in syncs]
        _time_round(syncs, repeat, seconds)
    return seconds


def _medians(world_size: int, local: list[list[float]], repeats: int) -> list[float] | None:
    """On rank 0, the median over the repeats of the slowest rank's time, in µs, per sync; None elsewhere."""
    gathered: list[Any] = [None] * world_size
    dist.all_gather_object(gathered, local)
    if dist.get_rank() != 0:
        return None
    return [
        statistics.median(max(rank_seconds[index][r] for rank_seconds in gathered) for r in range(repeats)) * 1e6
        for index in range(len(local))
    ]


def _measure_rank(world_size: int, repeats: int, warmup: int, num_classes: int) -> list[dict[str, Any]] | None:
    """Run the benchmark on this rank of an initialised group; rank 0 returns the rows as dicts, others None."""
    pairs = _sync_pairs(num_classes, dist.get_rank())
    syncs = _flat(pairs)
    first_counts = [_count_collectives(sync) for sync in syncs]  # new metrics: hingemetrics checks agreement
    counts = [_count_collectives(sync) for sync in syncs]
    _time_syncs(syncs, warmup)
    later = _medians(world_size, _time_syncs(syncs, repeats), repeats)
    first = _medians(world_size, _time_first_syncs(num_classes, repeats), repeats)
    if later is None or first is None:
        return None
    return [
        asdict(
            SyncRow(
                world_size,
                name,
                hingemetrics_us=later[2 * k],
                torchmetrics_us=later[2 * k + 1],
                hingemetrics_collectives=counts[2 * k],
                torchmetrics_collectives=counts[2 * k + 1],
                hingemetrics_first_us=first[2 * k],
                torchmetrics_first_us=first[2 * k + 1],
                hingemetrics_first_collectives=first_counts[2 * k],
                torchmetrics_first_collectives=first_counts[2 * k + 1],
            )
        )
        for k, (name, _, _) in enumerate(pairs)
    ]


def _rank_main(rank: int, world_size: int, port: int, settings: tuple[int, int, int]) -> None:
    """Entry point of one spawned rank: join the group through the parent's store, measure, report, leave."""
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    timeout = timedelta(seconds=120)
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size, timeout=timeout)
    try:
        rows = _measure_rank(world_size, *settings)
        if rows is not None:
            store.set(_RESULT_KEY, json.dumps(rows))
        dist.barrier()  # no rank leaves while another may still be using its connections
    except BaseException:
        traceback.print_exc()
        leave_now(1)
    leave_now(0)


def _run_world(world_size: int, settings: tuple[int, int, int], timeout: float) -> list[SyncRow]:
    """Spawn ``world_size`` ranks on 127.0.0.1 and collect rank 0's rows; raise if a rank fails or overruns."""
    store = dist.TCPStore("127.0.0.1", 0, world_size, is_master=True, wait_for_workers=False)
    ctx = mp.get_context("spawn")
    procs = [ctx.Process(target=_rank_main, args=(r, world_size, store.port, settings)) for r in range(world_size)]
    for proc in procs:
        proc.start()
    deadline = time.monotonic() + timeout
    try:
        for proc in procs:
            proc.join(max(0.0, deadline - time.monotonic()))
        late = [rank for rank, proc in enumerate(procs) if proc.is_alive()]
    finally:
        stop_processes(procs)
    if late:
        raise TimeoutError(f"Expected every rank to finish within {timeout} s, but ranks {late} were still running.")
    codes = [proc.exitcode for proc in procs]
    if any(code != 0 for code in codes):
        raise RuntimeError(f"Expected every rank to exit with 0, but got exit codes {codes}.")
    return [SyncRow(**row) for row in json.loads(store.get(_RESULT_KEY))]


def _check_int(name: str, value: Any, least: int) -> None:
    if isinstance(value, bool) or not isinstance(value, int):
        raise TypeError(f"Expected `{name}` to be an int >= {least}, but got {type(value).__name__}.")
    if value < least:
        raise ValueError(f"Expected `{name}` to be an int >= {least}, but got {value}.")


def run_sync_benchmark(
    world_sizes: Sequence[int] = (2, 4),
    repeats: int = 200,
    warmup: int = 20,
    num_classes: int = 10,
    timeout: float = 300.0,
) -> list[SyncRow]:
    """Measure sync latency of hingemetrics and torchmetrics metrics at each world size.

    Args:
        world_sizes: numbers of ranks, each >= 2; one process group (gloo, 127.0.0.1) is started for each.
        repeats: timed syncs per metric.
        warmup: untimed syncs per metric first (connections, allocations).
        num_classes: classes of the multiclass pair.
        timeout: seconds allowed for each world size before its ranks are killed and ``TimeoutError`` is raised.

    Returns:
        Three rows (binary, multiclass, collection of 3) per world size, in order, each with later and first syncs.
    """
    if not isinstance(world_sizes, Sequence) or not world_sizes:
        raise TypeError(f"Expected `world_sizes` to be a non-empty sequence of ints, but got {world_sizes!r}.")
    for size in world_sizes:
        _check_int("world_sizes", size, 2)
    _check_int("repeats", repeats, 1)
    _check_int("warmup", warmup, 0)
    _check_int("num_classes", num_classes, 2)
    if not dist.is_available():
        raise RuntimeError("Expected a torch build with torch.distributed, but it is not available.")
    settings = (repeats, warmup, num_classes)
    return [row for size in world_sizes for row in _run_world(size, settings, timeout)]


def format_table(rows: Sequence[SyncRow]) -> str:
    """Render rows as a Markdown table: later syncs, their ratio and collectives, then the first sync's."""
    lines = [
        "| world size | metric | hingemetrics sync (µs) | torchmetrics sync (µs) | torchmetrics / hingemetrics "
        "| collectives per sync (hingemetrics / torchmetrics) | first sync (µs, hingemetrics / torchmetrics) "
        "| first sync collectives (hingemetrics / torchmetrics) |",
        "|---:|---|---:|---:|---:|---|---|---|",
    ]
    lines += [
        f"| {row.world_size} | {row.metric} | {row.hingemetrics_us:.0f} | {row.torchmetrics_us:.0f} "
        f"| {row.ratio:.2f}x | {row.hingemetrics_collectives} / {row.torchmetrics_collectives} "
        f"| {row.hingemetrics_first_us:.0f} / {row.torchmetrics_first_us:.0f} "
        f"| {row.hingemetrics_first_collectives} / {row.torchmetrics_first_collectives} |"
        for row in rows
    ]
    return "\n".join(lines)


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m hingemetrics.benchmark.sync",
        description="Sync latency of hingemetrics against torchmetrics on gloo process groups over 127.0.0.1.",
    )
    parser.add_argument("--world-sizes", type=int, nargs="+", default=[2, 4], help="ranks per run (default: 2 4)")
    parser.add_argument(
        "--repeats", type=int, default=200, help="timed syncs per metric, later and first (default: 200)"
    )
    parser.add_argument("--warmup", type=int, default=20, help="untimed syncs per metric first (default: 20)")
    parser.add_argument("--num-classes", type=int, default=10, help="classes of the multiclass pair (default: 10)")
    parser.add_argument("--timeout", type=float, default=300.0, help="seconds allowed per world size (default: 300)")
    parser.add_argument("--json", action="store_true", help="print the rows as JSON instead of a table")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Run the sync benchmark from the command line; returns the exit status.

    Args:
        argv: command-line arguments without the program name; ``sys.argv[1:]`` when None.

    Returns:
        0 on success (argument errors exit through argparse with status 2).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    try:
        rows = run_sync_benchmark(args.world_sizes, args.repeats, args.warmup, args.num_classes, args.timeout)
    except (TypeError, ValueError) as err:
        parser.error(str(err))
    if args.json:
        print(json.dumps([{**asdict(row), "ratio": row.ratio} for row in rows], indent=2))
        return 0
    print(
        "sync = metric.sync(); metric.unsync() (collection: hingemetrics in one hm.synced block, torchmetrics one "
        f"metric after the other), median of {args.repeats} over the slowest rank; later syncs of the same metrics, "
        "and the first sync of new ones (hingemetrics' checks that the ranks agree); gloo on 127.0.0.1, "
        f"torch {torch.__version__}, torchmetrics {torchmetrics.__version__}, {os.cpu_count()} CPUs"
    )
    print(format_table(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())

"""Start real process groups on this machine: gloo over 127.0.0.1, a fixed number of ranks, a deadline.

``run_ranks`` spawns one fresh interpreter per rank. The parent hosts the rendezvous store itself, bound to a port
the operating system picks, so no port can be taken by someone else between choosing it and using it. Each rank
returns a picklable result; a rank that raises, hangs or dies fails the call.
"""

from __future__ import annotations

import os
import socket
import sys
import tempfile
import time
import traceback
from collections.abc import Callable
from datetime import timedelta
from pathlib import Path
from typing import Any

import torch
import torch.distributed as dist
from torch.multiprocessing.spawn import ProcessException

from hingemetrics._processes import leave_now, stop_processes

REPO = Path(__file__).resolve().parents[2]
#: The file, in a run's temporary folder, that holds the ranks' arguments.
ARGS_FILE = "args.pt"
COLLECTIVE_TIMEOUT = timedelta(seconds=60)


def loopback_env() -> dict[str, str]:
    """Environment for a child that runs torch.distributed: the repository importable, gloo on loopback, 1 thread."""
    env = dict(os.environ)
    env["PYTHONPATH"] = os.pathsep.join(p for p in (str(REPO), env.get("PYTHONPATH", "")) if p)
    env["OMP_NUM_THREADS"] = "1"
    if sys.platform.startswith("linux"):
        env.setdefault("GLOO_SOCKET_IFNAME", "lo")
    return env


def free_port() -> int:
    """A TCP port on 127.0.0.1 that was free a moment ago (for tools such as torchrun that want a number)."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind(("127.0.0.1", 0))
        return int(sock.getsockname()[1])


def _rank_main(rank: int, world: int, port: int, out: str, fn: Callable[..., Any]) -> None:
    """Join the group, run ``fn(rank, world, *args)`` on the arguments saved under ``out``, save its result there."""
    args = torch.load(Path(out) / ARGS_FILE, weights_only=False)
    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")
    store = dist.TCPStore("127.0.0.1", port, world, is_master=False, timeout=COLLECTIVE_TIMEOUT)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world, timeout=COLLECTIVE_TIMEOUT)
    try:
        result = fn(rank, world, *args)
        dist.barrier()  # no rank leaves while another may still be using its connections
    except BaseException:
        (Path(out) / f"{rank}.err").write_text(traceback.format_exc())
        raise
    torch.save(result, Path(out) / f"{rank}.pt")
    leave_now(0)  # the barrier has passed and the result is saved


def run_ranks(fn: Callable[..., Any], world: int, *args: Any, timeout: float = 150.0) -> list[Any]:
    """Run ``fn(rank, world, *args)`` on ``world`` spawned ranks of one gloo group; return the results by rank.

    ``fn`` must be importable by name (a module-level function). A rank that raises or dies stops the others and
    raises ``RuntimeError`` here with every failed rank's traceback; ranks still running at the deadline are
    killed and ``TimeoutError`` names them.
    """
    store = dist.TCPStore("127.0.0.1", 0, world, is_master=True, wait_for_workers=False)
    with tempfile.TemporaryDirectory() as out:
        # the arguments travel in a file, not through the spawn: torch pickles a spawn's tensor arguments into
        # shared memory, one descriptor per storage, and on torch 2.1 two arguments that share a storage (two views
        # of one tensor) make the spawn fail with "bad value(s) in fds_to_keep"
        torch.save(args, Path(out) / ARGS_FILE)
        ranks = torch.multiprocessing.start_processes(
            _rank_main, args=(world, store.port, out, fn), nprocs=world, join=False, start_method="spawn"
        )
        deadline = time.monotonic() + timeout
        try:
            while not ranks.join(timeout=max(0.1, deadline - time.monotonic())):
                if time.monotonic() >= deadline:
                    hung = [rank for rank, proc in enumerate(ranks.processes) if proc.is_alive()]
                    raise TimeoutError(f"ranks {hung} of {world} were still running after {timeout:.0f} s")
        except ProcessException as err:
            # the rank torch reports may only have lost its peer: show every rank's traceback
            tracebacks = [f"--- rank {path.stem}:\n{path.read_text()}" for path in sorted(Path(out).glob("*.err"))]
            raise RuntimeError("\n".join([str(err), *tracebacks])) from err
        finally:  # a hung rank, or pytest-timeout's interrupt
            stop_processes(ranks.processes)
        return [torch.load(Path(out) / f"{rank}.pt", weights_only=False) for rank in range(world)]

"""The two chores of every launcher of gloo ranks (the sync benchmark, the demo's evaluation, the test ranks)."""

from __future__ import annotations

import os
import sys
from collections.abc import Iterable
from multiprocessing.process import BaseProcess

__all__: list[str] = []


def stop_processes(processes: Iterable[BaseProcess]) -> None:
    """Kill and reap every process still running.

    Launchers call it on every way out, an interrupt or a test's timeout included: a child left running keeps the
    interpreter from exiting, since multiprocessing waits for its children at exit.
    """
    for process in processes:
        if process.is_alive():
            process.kill()
            process.join()


def leave_now(code: int = 0) -> None:
    """End a rank at once: without destroying its process group and without the interpreter's teardown.

    Call it after the rank's results are out and a final barrier has passed, so nothing is lost. Either teardown
    can hang or abort the process: on torch 2.1 ``destroy_process_group`` now and then deadlocks (gloo's
    destructor waits, holding the interpreter lock, for a worker thread that needs it); on torch 2.13 a collective
    issued under a ``TorchDispatchMode`` leaves references to the group behind, so gloo's threads outlive it and
    now and then abort the interpreter's teardown with SIGABRT.
    """
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(code)

"""No process-wide side effects: updates from several threads, threads started during updates, torch's settings.

torch keeps its intra-op thread count per process, and a thread copies it at its first torch call. A library that
lowered it even for the length of a loop would hand every thread that starts in that window one thread for life.
"""

from __future__ import annotations

import threading
from concurrent.futures import ThreadPoolExecutor

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests.cases import CASES, cat_batches

#: torch functions that change a setting of the whole process (or of every thread to come).
PROCESS_SETTERS = (
    "set_num_threads",
    "set_num_interop_threads",
    "set_default_dtype",
    "set_default_device",
    "set_default_tensor_type",
    "set_float32_matmul_precision",
    "use_deterministic_algorithms",
    "set_deterministic_debug_mode",
    "set_flush_denormal",
    "set_printoptions",
)


@pytest.fixture
def two_threads():
    """torch at 2 intra-op threads for the test (this test's own setting, put back after it)."""
    before = torch.get_num_threads()
    torch.set_num_threads(2)
    yield 2
    torch.set_num_threads(before)


def _big_batches():
    gen = torch.Generator().manual_seed(0)
    n = 200_000
    return (
        (torch.randn(n, generator=gen), torch.randint(0, 2, (n,), generator=gen)),
        (torch.randn(n // 10, 10, generator=gen), torch.randint(0, 10, (n // 10,), generator=gen)),
    )


def test_threads_started_during_updates_get_the_process_thread_count(two_threads):
    (binary, labels), (scores, classes) = _big_batches()
    metrics = [hm.BinaryHingeLoss(normalization="auto"), hm.MulticlassHingeLoss(10, normalization="auto")]
    stop = threading.Event()
    updates = [0]

    def keep_updating() -> None:
        while not stop.is_set():
            metrics[0].update(binary, labels)
            metrics[1].update(scores, classes)
            updates[0] += 1

    def first_torch_call(_: int) -> int:
        return torch.get_num_threads()  # a new thread's first torch call takes the process setting

    updater = threading.Thread(target=keep_updating)
    updater.start()
    try:
        seen = []
        for _ in range(8):  # fresh pools, so that every worker is a thread that has never called torch
            with ThreadPoolExecutor(max_workers=4) as pool:
                seen.extend(pool.map(first_torch_call, range(4)))
    finally:
        stop.set()
        updater.join()
    assert updates[0] >= 1
    assert seen == [two_threads] * len(seen)
    assert torch.get_num_threads() == two_threads


def test_concurrent_updates_from_several_threads_are_right_and_leave_the_setting(two_threads):
    cases = [c for c in CASES if c.name in ("binary", "multiclass-cs-softmax", "multiclass-ova", "multilabel-macro")]
    gen = torch.Generator().manual_seed(5)
    streams = {c.name: [c.draw(gen, 3000) for _ in range(6)] for c in cases}
    threads_after: dict[str, int] = {}

    def run(case) -> np.ndarray:
        metric = case.make()
        for batch in streams[case.name]:
            metric.update(**batch)
        threads_after[case.name] = torch.get_num_threads()
        return metric.compute().numpy()

    with ThreadPoolExecutor(max_workers=len(cases)) as pool:
        values = dict(zip([c.name for c in cases], pool.map(run, cases)))
    for case in cases:
        np.testing.assert_allclose(values[case.name], case.oracle(cat_batches(streams[case.name])), rtol=1e-6)
    assert threads_after == {c.name: two_threads for c in cases}
    assert torch.get_num_threads() == two_threads


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_no_update_forward_or_compute_calls_a_process_wide_setter(case, monkeypatch):
    calls: list[str] = []
    for name in PROCESS_SETTERS:
        if hasattr(torch, name):
            monkeypatch.setattr(torch, name, lambda *a, _name=name, **k: calls.append(_name))
    gen = torch.Generator().manual_seed(1)
    metric = case.make()
    metric(**case.draw(gen, 50))
    metric.update(**case.draw(gen, 40_000))  # many chunks
    metric.compute()
    assert case.functional is not None
    case.functional(**case.draw(gen, 30))
    assert calls == []


def _cpu_autocast_enabled() -> bool:
    try:
        return torch.is_autocast_enabled("cpu")
    except TypeError:  # torch 2.1 has no device argument, and a function of its own for the CPU
        return torch.is_autocast_cpu_enabled()


def test_updates_leave_every_torch_setting_as_it_was():
    def settings() -> dict[str, object]:
        return {
            "threads": torch.get_num_threads(),
            "interop": torch.get_num_interop_threads(),
            "dtype": torch.get_default_dtype(),
            "grad": torch.is_grad_enabled(),
            "inference": torch.is_inference_mode_enabled(),
            "deterministic": torch.are_deterministic_algorithms_enabled(),
            "matmul": torch.get_float32_matmul_precision(),
            "autocast": _cpu_autocast_enabled(),
        }

    before = settings()
    gen = torch.Generator().manual_seed(2)
    for case in CASES:
        metric = case.make()
        metric(**case.draw(gen, 20))
        metric.update(**case.draw(gen, 5000))
        metric.compute()
    assert settings() == before

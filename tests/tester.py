"""A metric tester of the strength of torchmetrics' ``MetricTester``, written for hingemetrics' case registry.

What one case goes through (``check_class_contract``): TorchScript (``torch.jit.script``), pickling and
``clone`` mid-stream, an empty ``state_dict`` by default, ``forward`` equal to ``update`` + ``compute`` on a fresh
metric for every batch, and half and double inputs against the reference on the same numbers. The multi-process
half (``rank_run``) runs on real gloo ranks: each rank feeds the batches ``rank, rank + world, ...`` through
``forward`` with ``dist_sync_on_step`` off and on; the parent checks every step value and the final ``compute``
against the reference over the batches of every rank.
"""

from __future__ import annotations

import copy
import pickle
import warnings
from typing import Any

import numpy as np
import torch

from tests.cases import CASES, Batch, Case, cat_batches, map_inputs

NUM_BATCHES, BATCH_SIZE, WORLD = 4, 6, 2


def batches_of(case: Case, seed: int = 0, num: int = NUM_BATCHES, size: int = BATCH_SIZE) -> list[Batch]:
    gen = torch.Generator().manual_seed(seed)
    return [case.draw(gen, size) for _ in range(num)]


def _value(result: torch.Tensor) -> np.ndarray:
    return result.detach().double().numpy()


def _assert_close(actual: Any, expected: Any, rtol: float, what: str) -> None:
    np.testing.assert_allclose(np.asarray(actual, dtype=np.float64), expected, rtol=rtol, err_msg=what)


def _with_inputs(case: Case, batches: list[Batch], dtype: torch.dtype) -> list[Batch]:
    return [map_inputs(case, b, lambda x: x.to(dtype)) for b in batches]


def check_class_contract(case: Case) -> None:
    """Every single-process check of the tester, on one case; raises AssertionError on the first that fails."""
    batches = batches_of(case)
    whole = cat_batches(batches)

    with warnings.catch_warnings():
        warnings.simplefilter("ignore", DeprecationWarning)  # torch deprecates TorchScript, torchmetrics requires it
        scripted = torch.jit.script(case.make())
    assert isinstance(scripted, torch.jit.ScriptModule)

    metric = case.make()
    assert metric.state_dict() == {}, "states are not persistent by default"

    for i, batch in enumerate(batches):
        step = metric(**batch)
        fresh = case.make()
        fresh.update(**batch)
        _assert_close(_value(step), _value(fresh.compute()), 1e-12, f"forward != update + compute at batch {i}")
        _assert_close(_value(step), case.oracle(batch), 1e-6, f"forward at batch {i}")
        if i == 1:  # mid-stream copies go on independently of the original
            pickled, cloned = pickle.loads(pickle.dumps(metric)), metric.clone()
            deep = copy.deepcopy(metric)
    _assert_close(_value(metric.compute()), case.oracle(whole), 1e-6, "compute over all batches")
    for name, other in (("pickle", pickled), ("clone", cloned), ("deepcopy", deep)):
        assert other is not metric
        _assert_close(_value(other.compute()), case.oracle(cat_batches(batches[:2])), 1e-6, f"{name} mid-stream")
        for batch in batches[2:]:
            other.update(**batch)
        _assert_close(_value(other.compute()), case.oracle(whole), 1e-6, f"{name} after more batches")

    for dtype, rtol in ((torch.float16, 1e-5), (torch.float64, 1e-10)):
        typed = _with_inputs(case, batches, dtype)
        metric = case.make()
        for batch in typed:
            metric.update(**batch)
        result = metric.compute()
        assert result.dtype == torch.float64
        # the reference reads the very numbers the metric saw: the half-precision rounding included
        _assert_close(_value(result), case.oracle(cat_batches(typed)), rtol, f"{dtype} scores")


def rank_run(rank: int, world: int) -> dict[str, dict[str, Any]]:
    """On one rank: every case's batches ``rank::world`` through ``forward``, ``dist_sync_on_step`` off and on."""
    torch.manual_seed(0)
    out: dict[str, dict[str, Any]] = {}
    for case in CASES:
        mine = batches_of(case)[rank::world]
        for on_step in (False, True):
            metric = case.make()
            metric.dist_sync_on_step = on_step
            steps = [_value(metric(**batch)) for batch in mine]
            out[f"{case.name}/{on_step}"] = {"steps": steps, "compute": _value(metric.compute())}
    return out


def check_rank_results(results: list[dict[str, dict[str, Any]]]) -> None:
    """The parent's side of :func:`rank_run`: step values and final values against the references."""
    for case in CASES:
        batches = batches_of(case)
        for on_step in (False, True):
            key = f"{case.name}/{on_step}"
            for rank, result in enumerate(results):
                mine = batches[rank::WORLD]
                _assert_close(result[key]["compute"], case.oracle(cat_batches(batches)), 1e-6, f"{key} compute")
                for step, value in enumerate(result[key]["steps"]):
                    if on_step:  # the step's value over the step's batch of every rank
                        expected = case.oracle(cat_batches(batches[step * WORLD : (step + 1) * WORLD]))
                    else:  # the step's value over this rank's batch alone
                        expected = case.oracle(mine[step])
                    _assert_close(value, expected, 1e-6, f"{key} rank {rank} step {step}")

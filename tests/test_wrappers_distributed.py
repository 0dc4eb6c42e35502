"""The wrappers on 2 real gloo ranks: every rank's result equals one process fed the union of the data, and each
sync is one all_reduce of every state packed together (after the agreement check on the first)."""

from __future__ import annotations

from typing import Any

import pytest
import torch

import hingemetrics as hm
from tests.ddp.launch import run_ranks
from tests.ddp.scenarios import CollectiveLog

pytestmark = pytest.mark.timeout(300)

WORLD = 2
ALL_REDUCE, ALL_GATHER = "c10d.allreduce_.default", "c10d.allgather_.default"
SHARDS = [[7, 5], [12]]  # batch sizes per rank, uneven


def _wrappers() -> dict[str, Any]:
    return {
        "ci-normal": hm.ConfidenceInterval(hm.BinaryHingeLoss()),
        "ci-ova": hm.ConfidenceInterval(hm.MulticlassHingeLoss(3, multiclass_mode="one-vs-all")),
        "ci-per-group": hm.ConfidenceInterval(hm.PerGroup(hm.BinaryHingeLoss(), 3)),
        "ci-bootstrap": hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="bootstrap", num_resamples=64, seed=3),
        "per-group": hm.PerGroup(hm.BinaryHingeLoss(), 3),
        "paired": hm.PairedComparison(hm.BinaryHingeLoss()),
    }


def _batches() -> list[dict[str, torch.Tensor]]:
    gen = torch.Generator().manual_seed(0)
    out = []
    for n in [size for shard in SHARDS for size in shard]:
        out.append(
            {
                "preds": torch.randn(n, generator=gen),
                "scores": torch.randn(n, 3, generator=gen),
                "classes": torch.randint(3, (n,), generator=gen),
                "target": torch.randint(2, (n,), generator=gen),
                "weight": torch.rand(n, generator=gen),
                "groups": torch.randint(3, (n,), generator=gen),
            }
        )
    return out


def _feed(name: str, metric: Any, batch: dict[str, torch.Tensor]) -> None:
    if name == "ci-ova":
        metric.update(batch["scores"], batch["classes"])
    elif "group" in name:
        metric.update(batch["preds"], batch["target"], groups=batch["groups"], sample_weight=batch["weight"])
    elif name == "paired":
        metric.update(batch["preds"], batch["preds"] * 0.5 + 0.2, batch["target"], batch["weight"])
    else:
        metric.update(batch["preds"], batch["target"], sample_weight=batch["weight"])


def _mine(rank: int) -> list[dict[str, torch.Tensor]]:
    batches = _batches()
    start = sum(len(shard) for shard in SHARDS[:rank])
    return batches[start : start + len(SHARDS[rank])]


def rank_main(rank: int, world: int) -> dict[str, Any]:
    out: dict[str, Any] = {}
    for name, metric in _wrappers().items():
        for batch in _mine(rank):
            _feed(name, metric, batch)
        with CollectiveLog() as first:
            result = metric.compute()
        with CollectiveLog() as later:
            metric._computed = None
            metric.compute()
        out[name] = {"result": result, "first": first.calls, "later": later.calls}
        out[name]["packed"] = sum(getattr(metric, state).numel() for state in metric._defaults)
    # the first update's Poisson weights under one seed: each rank mixes its rank in, so they differ
    draws = hm.ConfidenceInterval(hm.BinaryHingeLoss(), method="bootstrap", num_resamples=8, seed=11)
    out["weights"] = draws._poisson_weights(16, torch.device("cpu"))
    return out


def _as_dict(result: Any) -> dict[str, torch.Tensor]:
    return result if isinstance(result, dict) else {"": result}


def test_wrappers_on_two_ranks_equal_one_process_and_sync_in_one_all_reduce():
    results = run_ranks(rank_main, WORLD)
    assert not torch.equal(results[0]["weights"], results[1]["weights"])
    for name, single in _wrappers().items():
        for batch in _batches():
            _feed(name, single, batch)
        expected = _as_dict(single.compute())
        for rank, rank_results in enumerate(results):
            what = f"{name} on rank {rank}"
            got = rank_results[name]
            packed = got["packed"]
            assert got["first"] == [(ALL_GATHER, ((4,),) * (WORLD + 1)), (ALL_REDUCE, ((packed,),))], what
            assert got["later"] == [(ALL_REDUCE, ((packed,),))], what
            values = _as_dict(got["result"])
            assert values.keys() == expected.keys()
            for key, value in values.items():
                if name == "ci-bootstrap" and key != "value":
                    continue  # each rank draws its own weights: another (equally valid) set of resamples
                torch.testing.assert_close(value, expected[key], rtol=1e-10, atol=0, equal_nan=True, msg=what)
            if name == "ci-bootstrap":
                # every rank sees the same summed resamples, which differ from one process drawing them all
                assert torch.equal(values["low"], _as_dict(results[0][name]["result"])["low"])
                assert not torch.equal(values["low"], expected["low"])

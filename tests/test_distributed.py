"""Distributed evaluation in real process groups: spawned ranks and torchrun, gloo over 127.0.0.1.

Every case of ``tests/cases.py`` runs on 2 and 4 ranks with uneven shards and a rank that sees no data. On every
rank, each way of syncing must give the single-process value over the union of the data (and the plain reference),
with one ``all_reduce`` of one packed tensor (after one small ``all_gather`` that checks the ranks agree, on a
metric's first sync), and every rank must issue the same collectives.
"""

from __future__ import annotations

import importlib.util
import json
import os
import re
import signal
import subprocess
import sys
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch

import hingemetrics as hm
from tests import reference as ref
from tests.cases import CASES, Batch, Case, batch_size, cat_batches, map_inputs
from tests.ddp.launch import REPO, free_port, loopback_env, run_ranks
from tests.ddp.scenarios import LAYOUTS, accepts_weights, make_plan, run_rank

pytestmark = pytest.mark.timeout(300)

ALL_REDUCE = "c10d.allreduce_.default"
ALL_GATHER = "c10d.allgather_.default"
DIGEST = (4,)  # the agreement check gathers a 32-byte digest as 4 int64
TORCHRUN_TIMEOUT = 150
# The docs' script ends with destroy_process_group(), which on torch 2.1 deadlocks now and then: the gloo group's
# destructor waits for its worker threads while holding the GIL that a worker needs to free the tensors of the
# last collective. (The demo's ranks leave without it; docs/guides/reliability.md states the limitation.)
README_SCRIPT_CAN_HANG = pytest.mark.skipif(
    torch.__version__ < "2.2",
    reason=f"torch {torch.__version__}: destroy_process_group() can deadlock at the end of the docs' script",
)


@pytest.fixture(scope="module", params=sorted(LAYOUTS), ids=lambda world: f"world{world}")
def dist_run(request) -> tuple[int, dict[str, Any], list[dict[str, Any]]]:
    """One spawned run per world size: (world size, the plan of data, each rank's results)."""
    world = request.param
    plan = make_plan(world)
    return world, plan, run_ranks(run_rank, world, plan)


@pytest.fixture(params=CASES, ids=[c.name for c in CASES])
def case(request) -> Case:
    return request.param


def _union(per_rank: list[list[Batch]], ranks=None) -> list[Batch]:
    ranks = range(len(per_rank)) if ranks is None else ranks
    return [batch for r in ranks for batch in per_rank[r]]


def _single(case: Case, batches: list[Batch]):
    """The single-process metric fed ``batches``."""
    metric = case.make()
    for batch in batches:
        metric.update(**batch)
    return metric


def _expect(case: Case, values: list[torch.Tensor], batches: list[Batch], rtol: float = 1e-12) -> None:
    """Every rank's value equals the single-process value and the plain reference on ``batches``, and each other.

    ``rtol`` is for the single-process value fed the same batches: the ranks only add float64 sums in another order.
    """
    expected = _single(case, batches).compute().numpy()
    oracle = case.oracle(cat_batches(batches))
    for rank, value in enumerate(values):
        assert value.dtype == torch.float64, f"rank {rank}"
        np.testing.assert_allclose(value.numpy(), expected, rtol=rtol, err_msg=f"rank {rank}")
        np.testing.assert_allclose(value.numpy(), oracle, rtol=1e-6, err_msg=f"rank {rank}")
        assert torch.equal(value, values[0]) or value.isnan().all(), f"rank {rank} differs from rank 0"


def _one_all_reduce(case: Case, extra: int = 0) -> list[tuple[str, tuple[tuple[int, ...], ...]]]:
    """The collectives expected of a later sync: a single all_reduce of every state packed into one vector.

    ``extra`` more elements: 1 for a forward step's failed-batch flag.
    """
    metric = case.make()
    return [(ALL_REDUCE, ((sum(getattr(metric, name).numel() for name in metric._defaults) + extra,),))]


def _first_sync(case: Case, group_size: int, extra: int = 0) -> list[tuple[str, tuple[tuple[int, ...], ...]]]:
    """The collectives expected of a metric's first sync on a group: the agreement check, then a later sync's.

    The check is one all_gather of a digest: ``group_size`` outputs and the input.
    """
    return [(ALL_GATHER, (DIGEST,) * (group_size + 1)), *_one_all_reduce(case, extra)]


def _per_case(results: list[dict[str, Any]], name: str) -> list[dict[str, Any]]:
    return [rank_results["cases"][name] for rank_results in results]


def test_layouts_have_uneven_shards_and_an_idle_rank():
    for world, layout in LAYOUTS.items():
        sizes = [sum(shard) for shard in layout.shards]
        assert len(sizes) == world and 0 in sizes and len(set(sizes)) > 1
        assert layout.padded_size % world != 0  # so DistributedSampler pads
        assert sorted(r for group in layout.groups for r in group) == list(range(world))


def test_compute_on_every_rank_equals_single_process_over_the_union(dist_run, case):
    _, plan, results = dist_run
    data, ranks = plan["cases"][case.name], _per_case(results, case.name)
    union = _union(data["shards"])
    _expect(case, [r["compute"] for r in ranks], union)
    _expect(case, [r["forward_then_compute"] for r in ranks], union)


def test_one_compute_issues_exactly_one_all_reduce(dist_run, case):
    """A new metric's compute(): the agreement check and one all_reduce (later syncs: see the sync_context test)."""
    world, _, results = dist_run
    ranks = _per_case(results, case.name)
    for rank, r in enumerate(ranks):
        assert r["compute_calls"] == _first_sync(case, world), f"rank {rank}"
        assert r["cached_compute_calls"] == [], f"rank {rank}: a second compute() synced again"


def test_the_collective_counter_sees_torchmetrics_gathers(dist_run):
    """The counter is not blind: torchmetrics' own metric issues a barrier and a gather per state."""
    _, _, results = dist_run
    for rank_results in results:
        names = [name for name, _ in rank_results["torchmetrics_compute_calls"]]
        assert names.count("c10d.barrier.default") >= 2 and names.count("c10d.allgather_.default") >= 2


def test_syncing_leaves_no_reference_to_the_group_behind(dist_run):
    """After every case has synced on the default group and been dropped, the group has the references it had."""
    _, _, results = dist_run
    for rank, rank_results in enumerate(results):
        before, after = rank_results["world_references"]
        assert after == before, f"rank {rank}: {after - before} references to the group left behind"


def test_every_rank_issues_the_same_collectives(dist_run, case):
    _, _, results = dist_run
    ranks = _per_case(results, case.name)
    keys = [key for key in ranks[0] if key.endswith("_calls")]
    assert "compute_calls" in keys and "step_calls" in keys
    for key in keys:
        for rank, r in enumerate(ranks):
            assert r[key] == ranks[0][key], f"{key}: rank {rank} differs from rank 0"


def test_sync_unsync_and_sync_context(dist_run, case):
    world, plan, results = dist_run
    data, ranks = plan["cases"][case.name], _per_case(results, case.name)
    union = _union(data["shards"])
    summed = _single(case, union)
    for rank, r in enumerate(ranks):
        local = _single(case, data["shards"][rank])
        # the first sync() checks that the ranks agree; sync_context(), the second sync, is one all_reduce alone
        assert r["sync_calls"] == _first_sync(case, world), f"rank {rank}"
        assert r["context_calls"] == _one_all_reduce(case), f"rank {rank}"
        assert r["synced_compute_calls"] == [], f"rank {rank}: compute() on synced states synced again"
        for name, value in r["synced_states"].items():
            np.testing.assert_allclose(value.numpy(), getattr(summed, name).numpy(), rtol=1e-12, err_msg=name)
        for key in ("local_states", "unsynced_states", "after_context_states"):
            for name, value in r[key].items():
                assert torch.equal(value, getattr(local, name)), f"rank {rank}: {key}[{name}]"
    _expect(case, [r["synced_compute"] for r in ranks], union)
    _expect(case, [r["context_compute"] for r in ranks], union)
    _expect(case, [r["compute_with_extra"] for r in ranks], union + _union(data["extra"]))


def test_dist_sync_on_step(dist_run, case):
    world, plan, results = dist_run
    data, ranks = plan["cases"][case.name], _per_case(results, case.name)
    for step in range(len(data["steps"][0])):
        step_union = [data["steps"][rank][step] for rank in range(world)]
        _expect(case, [r["step_values"][step] for r in ranks], step_union)
        for rank, r in enumerate(ranks):
            # one all_reduce per step, its states and the failed-batch flag; the first step checks agreement first
            expected = _first_sync(case, world, extra=1) if step == 0 else _one_all_reduce(case, extra=1)
            assert r["step_calls"][step] == expected, f"rank {rank}, step {step}"
    _expect(case, [r["step_compute"] for r in ranks], _union(data["steps"]))


def test_dist_sync_on_step_gradient_reaches_each_ranks_scores(dist_run, case):
    """d(step value over all ranks)/d(this rank's scores), as a single process gets it on the step's union."""
    world, plan, results = dist_run
    data, ranks = plan["cases"][case.name], _per_case(results, case.name)
    for rank, r in enumerate(ranks):
        assert r["step_backward_warnings"] == [], f"rank {rank}"
    for step in range(len(data["steps"][0])):
        union = map_inputs(
            case,
            cat_batches([data["steps"][rank][step] for rank in range(world)]),
            lambda x: x.clone().requires_grad_(),
        )
        case.make()(**union).sum().backward()
        sizes = [batch_size(data["steps"][rank][step]) for rank in range(world)]
        for index, key in enumerate(case.inputs):
            for rank, expected in enumerate(union[key].grad.split(sizes)):
                got = ranks[rank]["step_grads"][step][index]
                np.testing.assert_allclose(got.numpy(), expected.numpy(), rtol=1e-6, atol=0, err_msg=key)


def test_process_group(dist_run, case):
    _, plan, results = dist_run
    data, ranks = plan["cases"][case.name], _per_case(results, case.name)
    for members in plan["layout"].groups:
        union = _union(data["shards"], members)
        if not any(batch_size(batch) for batch in union):
            continue  # a group of idle ranks: nothing to compare
        for key in ("group_compute", "group_context_compute"):
            _expect(case, [ranks[rank][key] for rank in members], union)
        for rank in members:
            # new metrics, so each checks agreement first, on its group alone
            assert ranks[rank]["group_calls"] == _first_sync(case, len(members)), f"rank {rank}"
            assert ranks[rank]["group_context_calls"] == _first_sync(case, len(members)), f"rank {rank}"


def test_a_user_dist_sync_fn_is_honoured(dist_run, case):
    _, plan, results = dist_run
    ranks = _per_case(results, case.name)
    union = _union(plan["cases"][case.name]["shards"])
    for rank, r in enumerate(ranks):
        # torchmetrics' own path: the user's function is called once per state, by the constructor and by sync()
        assert r["user_fn_calls"] == (r["state_count"], r["state_count"]), f"rank {rank}"
    _expect(case, [r["user_fn_compute"] for r in ranks], union)
    _expect(case, [r["user_fn_context_compute"] for r in ranks], union)


@pytest.mark.parametrize("case", [c for c in CASES if accepts_weights(c)], ids=lambda c: c.name)
def test_zero_weight_on_padded_duplicates_gives_the_exact_value(dist_run, case):
    _, plan, results = dist_run
    dataset = plan["cases"][case.name]["dataset"]
    # The sampler batches the samples differently from the single-process run, and a float32 per-sample loss
    # may round differently in another batch layout (Weston-Watkins does): hence the float32-level tolerance.
    _expect(case, [rank_results["padding"][case.name][0] for rank_results in results], [dataset], rtol=1e-6)


def test_padded_duplicates_change_the_value_without_the_weights(dist_run):
    """The padding test is not vacuous: counting the duplicates gives another value for some case."""
    _, _, results = dist_run
    pairs = results[0]["padding"].values()
    assert pairs and any(not torch.allclose(exact, naive, rtol=1e-4, equal_nan=True) for exact, naive in pairs)


# --- torchrun: the README's example script, on one node and on two --------------------------------------------


def _readme_script(tmp_path: Path) -> Path:
    """The first Python block of the docs' "Distributed evaluation" guide (the README links to it), as a file."""
    text = (REPO / "docs" / "guides" / "distributed.md").read_text()
    section = text.split("\n## A complete example", 1)
    assert len(section) == 2, "docs/guides/distributed.md has no '## A complete example' section"
    match = re.search(r"```python\n(.*?)```", section[1], re.S)
    assert match, "the distributed guide's complete example has no python block"
    script = tmp_path / "evaluate.py"
    script.write_text(match.group(1))
    return script


def _expected_from_script(script: Path) -> dict[str, float]:
    """The script's dataset and model, scored in this process: single-process metrics and plain references."""
    spec = importlib.util.spec_from_file_location("readme_evaluate", script)
    assert spec and spec.loader
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)  # defines the functions; main() runs only under torchrun
    features, labels = module.make_dataset().tensors
    with torch.no_grad():
        scores = module.make_model()(features)
    multiclass = hm.MulticlassHingeLoss(num_classes=scores.shape[1])
    multiclass.update(scores, labels)
    binary = hm.BinaryHingeLoss()  # the script's second metric: class 0 against the others
    binary.update(scores[:, 0], labels == 0)
    expected = {"multiclass": multiclass.compute().item(), "binary": binary.compute().item()}
    oracle = {
        "multiclass": ref.multiclass_hinge(scores.numpy(), labels.numpy()),
        "binary": ref.binary_hinge(scores[:, 0].numpy(), (labels == 0).numpy()),
    }
    for name, value in expected.items():
        np.testing.assert_allclose(value, oracle[name], rtol=1e-6, err_msg=name)
    return expected


def _parse(stdout: str) -> dict[int, dict[str, float]]:
    """``rank R: name value name value ...`` records of the script's output, by rank.

    The ranks share one pipe, so one rank's record may start before another's newline: a record ends at the end
    of its line or where the next ``rank R:`` begins.
    """
    out = {}
    for rank, rest in re.findall(r"rank (\d+): (.*?)(?=rank \d+:|$)", stdout, re.M):
        fields = rest.split()
        out[int(rank)] = {fields[i]: float(fields[i + 1]) for i in range(0, len(fields), 2)}
    return out


def _check_ranks(seen: dict[int, dict[str, float]], expected: dict[str, float], world: int) -> None:
    assert sorted(seen) == list(range(world)), seen
    for rank, values in seen.items():
        assert values == seen[0], f"rank {rank} differs from rank 0"
        assert sorted(values) == sorted(expected)
        for name, value in values.items():
            # the script scores in batches of 64, this process in one: float32 rounding may differ slightly
            np.testing.assert_allclose(value, expected[name], rtol=1e-6, err_msg=f"rank {rank}: {name}")


def _torchrun(*args: str, script: Path) -> subprocess.Popen:
    command = [sys.executable, "-m", "torch.distributed.run", *args, str(script)]
    env = {**loopback_env(), "TMPDIR": str(script.parent)}  # torchrun's scratch folders go with the test's
    # a session of its own, so that a hung run is stopped with its workers, which hold the output pipe open
    return subprocess.Popen(
        command,
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=env,
        cwd=script.parent,
        start_new_session=True,
    )


def _finish(proc: subprocess.Popen) -> str:
    try:
        output, _ = proc.communicate(timeout=TORCHRUN_TIMEOUT)
    except subprocess.TimeoutExpired:
        os.killpg(proc.pid, signal.SIGKILL)
        output, _ = proc.communicate(timeout=30)
        pytest.fail(f"torchrun still running after {TORCHRUN_TIMEOUT} s:\n{output}")
    assert proc.returncode == 0, output
    return output


@README_SCRIPT_CAN_HANG
def test_readme_example_under_torchrun_two_processes(tmp_path):
    script = _readme_script(tmp_path)
    expected = _expected_from_script(script)
    output = _finish(_torchrun("--standalone", "--nproc-per-node", "2", script=script))
    _check_ranks(_parse(output), expected, world=2)


@README_SCRIPT_CAN_HANG
def test_readme_example_under_torchrun_two_nodes(tmp_path):
    """Two torchrun invocations, one per "node", meeting at a loopback rendezvous (static, node 0 hosts it)."""
    script = _readme_script(tmp_path)
    expected = _expected_from_script(script)
    port = str(free_port())
    common = ["--nnodes", "2", "--nproc-per-node", "1", "--master-addr", "127.0.0.1", "--master-port", port]
    nodes = [_torchrun(*common, "--node-rank", str(node), script=script) for node in (0, 1)]
    try:
        outputs = [_finish(node) for node in nodes]
    finally:  # a node whose partner failed may wait for it: stop it with its workers
        for node in nodes:
            if node.poll() is None:
                os.killpg(node.pid, signal.SIGKILL)
                node.communicate(timeout=30)
    seen = {}
    for output in outputs:
        seen.update(_parse(output))
    _check_ranks(seen, expected, world=2)
    assert set(_parse(outputs[1])) == {1}, "the second node should have run global rank 1"


def test_sync_benchmark_runs_and_counts_collectives(capsys):
    from hingemetrics.benchmark.sync import main

    # the benchmark's own deadline comes well before this module's pytest timeout, so that it, not pytest, stops
    # a hung rank and says which
    assert main(["--world-sizes", "2", "--repeats", "3", "--warmup", "1", "--json", "--timeout", "120"]) == 0
    rows = json.loads(capsys.readouterr().out)
    assert [(row["world_size"], row["metric"]) for row in rows] == [
        (2, "binary"),
        (2, "multiclass"),
        (2, "collection of 3"),
    ]
    for row in rows:
        # later syncs: one collective; the first sync of new metrics adds the agreement check's all_gather
        assert row["hingemetrics_collectives"] == 1
        assert row["hingemetrics_first_collectives"] == 2
        assert row["torchmetrics_collectives"] > 1
        assert row["torchmetrics_first_collectives"] == row["torchmetrics_collectives"]
        assert row["hingemetrics_us"] > 0 and row["torchmetrics_us"] > 0
        assert row["hingemetrics_first_us"] > 0 and row["torchmetrics_first_us"] > 0
        assert row["ratio"] == pytest.approx(row["torchmetrics_us"] / row["hingemetrics_us"])
    # torchmetrics syncs the collection's metrics one after the other (the two above and one more), hingemetrics
    # all at once
    binary, multiclass, collection = (row["torchmetrics_collectives"] for row in rows)
    assert collection > binary + multiclass


# --- hm.synced: many metrics, one collective ----------------------------------------------------------------------


def _together(results: list[dict[str, Any]]) -> list[dict[str, Any]]:
    return [rank_results["synced_together"] for rank_results in results]


def test_synced_collection_gives_every_member_the_value_over_the_union(dist_run, case):
    _, plan, results = dist_run
    union = _union(plan["cases"][case.name]["shards"])
    _expect(case, [r["values"][case.name] for r in _together(results)], union)


def test_synced_collection_sums_every_hinge_metric_in_one_all_reduce(dist_run):
    """All the hinge metrics' states in one all_reduce; the torchmetrics member gathers on its own, as usual."""
    _, _, results = dist_run
    packed_size = sum(call[1][0][0] for case in CASES for call in _one_all_reduce(case))
    for rank, r in enumerate(_together(results)):
        all_reduces = [call for call in r["calls"] if call[0] == ALL_REDUCE]
        assert all_reduces == [(ALL_REDUCE, ((packed_size,),))], f"rank {rank}"
        assert any(name == "c10d.allgather_.default" for name, _ in r["calls"]), f"rank {rank}: torchmetrics member"
        assert r["calls"] == _together(results)[0]["calls"], f"rank {rank} issued other collectives than rank 0"


def test_synced_puts_the_local_states_back_on_exit(dist_run, case):
    world, _, results = dist_run
    for rank, r in enumerate(_together(results)):
        local, inside, after = r["local"][case.name], r["inside"][case.name], r["after"][case.name]
        for name in local:
            assert torch.equal(after[name], local[name]), f"rank {rank}: {name}"
            summed = sum(_together(results)[other]["local"][case.name][name] for other in range(world))
            torch.testing.assert_close(inside[name], summed, rtol=1e-12, atol=0, msg=f"rank {rank}: {name}")


def test_synced_honours_a_user_dist_sync_fn_and_refuses_a_synced_metric(dist_run):
    _, plan, results = dist_run
    binary = next(c for c in CASES if c.name == "binary")
    values = []
    for rank, r in enumerate(_together(results)):
        value, calls = r["custom"]
        assert calls == len(binary.make()._defaults), f"rank {rank}: once per state, through the user's function"
        values.append(value)
        assert r["refused"] == (
            "Expected every metric given to `synced` to hold its local states, but BinaryHingeLoss is already "
            "synced: call its `unsync()` first, or leave it out."
        )
    _expect(binary, values, _union(plan["cases"]["binary"]["shards"]))


@pytest.mark.filterwarnings("ignore:The ``compute`` method:UserWarning")  # the idle rank's expected value
def test_synced_leaves_a_metric_made_with_sync_on_compute_false_local(dist_run):
    _, plan, results = dist_run
    binary = next(c for c in CASES if c.name == "binary")
    for rank, r in enumerate(_together(results)):
        expected = _single(binary, plan["cases"]["binary"]["shards"][rank]).compute()
        torch.testing.assert_close(r["local_only"], expected, rtol=1e-12, atol=0, equal_nan=True, msg=f"rank {rank}")

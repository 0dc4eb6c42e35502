"""The version shims in ``hingemetrics._compat``: each branch is chosen right and gives the right answer.

The choice is tested on any torch by giving the chooser a ``torch.compiler`` with or without the newer name. The
answers are tested with the torch that is installed: ``make test`` has a torch that has ``torch.compiler.is_compiling``
and ``make test-oldest`` (torch 2.1) one that lacks it, so CI runs both branches for real.
"""

from __future__ import annotations

import math

import pytest
import torch
import torch._utils

import hingemetrics as hm
from hingemetrics import _compat

HAS_COMPILER_IS_COMPILING = hasattr(torch.compiler, "is_compiling")


def _branch_on_compiling(x: torch.Tensor) -> torch.Tensor:
    if _compat.is_compiling():
        return x + 1
    return x - 1


def test_is_compiling_is_torch_compiler_is_compiling_where_torch_has_it(monkeypatch):
    def newer() -> bool:
        return False

    monkeypatch.setattr(torch.compiler, "is_compiling", newer, raising=False)
    assert _compat._pick_is_compiling(torch.compiler) is newer


def test_is_compiling_falls_back_to_torch_utils_where_torch_compiler_lacks_it(monkeypatch):
    monkeypatch.delattr(torch.compiler, "is_compiling", raising=False)
    assert _compat._pick_is_compiling(torch.compiler) is torch._utils.is_compiling


def test_the_installed_torch_gets_the_branch_it_needs():
    expected = torch.compiler.is_compiling if HAS_COMPILER_IS_COMPILING else torch._utils.is_compiling
    assert _compat.is_compiling is expected


@pytest.mark.parametrize("backend", ["eager", "aot_eager"])
def test_is_compiling_is_false_eagerly_and_true_under_a_fullgraph_compile(backend):
    x = torch.zeros(3)
    assert _compat.is_compiling() is False
    torch.testing.assert_close(_branch_on_compiling(x), torch.full((3,), -1.0))
    # fullgraph=True fails on a graph break, so the call must be one that torch.compile answers while it traces.
    compiled = torch.compile(_branch_on_compiling, fullgraph=True, backend=backend, dynamic=False)
    torch.testing.assert_close(compiled(x), torch.full((3,), 1.0))
    assert _compat.is_compiling() is False


@pytest.mark.filterwarnings("ignore:`torch.jit.script` is deprecated:DeprecationWarning")
def test_is_compiling_is_false_in_torchscript():
    scripted = torch.jit.script(_branch_on_compiling)
    torch.testing.assert_close(scripted(torch.zeros(2)), torch.full((2,), -1.0))


def test_update_does_not_need_torch_compiler_is_compiling(monkeypatch):
    # torch 2.1 and 2.2 lack the name; every update used to ask for it and raised AttributeError there.
    monkeypatch.delattr(torch.compiler, "is_compiling", raising=False)
    preds, target = torch.tensor([0.5, -2.0, 0.25]), torch.tensor([1, 0, 0])
    metric = hm.BinaryHingeLoss()
    metric.update(preds, target)
    signs = torch.tensor([1.0, -1.0, -1.0])
    expected = torch.clamp(1 - signs * preds.double(), min=0).mean()
    torch.testing.assert_close(metric.compute(), expected)


HALF_VALUES = [
    [0.5, -2.0, 65504.0, -0.0009765625],  # the largest float16, a subnormal-range value
    [3.0, math.inf, -1.0],
    [-math.inf, 2.0],
    [1.0, math.nan, -4.0],
    [7.0],
]


def _oracle_extrema(values: list[float]) -> tuple[float, float]:
    if any(math.isnan(v) for v in values):
        return math.nan, math.nan
    return min(values), max(values)


@pytest.mark.parametrize("values", HALF_VALUES)
@pytest.mark.parametrize("cpu_half_kernel", [False, True], ids=["through-float32", "torch-kernel"])
def test_aminmax_of_half_cpu_tensors_on_either_branch(values, cpu_half_kernel):
    if cpu_half_kernel and not _compat._CPU_HALF_AMINMAX:
        pytest.skip(f"torch {torch.__version__} has no CPU aminmax kernel for float16")
    low, high = _compat._aminmax(torch.tensor(values, dtype=torch.float16), cpu_half_kernel)
    assert low.dtype == high.dtype == torch.float16
    assert low.shape == high.shape == torch.Size([])
    expected = _oracle_extrema(values)
    torch.testing.assert_close((low.item(), high.item()), expected, equal_nan=True, rtol=0, atol=0)


@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64, torch.int64])
def test_aminmax_in_every_dtype_with_the_installed_torch(dtype):
    values = [3.0, -5.0, 0.25, 8.0] if dtype.is_floating_point else [3, -5, 0, 8]
    low, high = _compat.aminmax(torch.tensor(values, dtype=dtype).reshape(2, 2))
    assert low.dtype == high.dtype == dtype
    assert (low.item(), high.item()) == (min(values), max(values))


def test_a_half_precision_value_check_runs_on_the_installed_torch():
    # torch 2.1 has no CPU aminmax for float16: the value check of half scores used to raise RuntimeError there.
    metric = hm.BinaryHingeLoss(validate_args=True)
    preds = torch.tensor([0.5, -2.0, 0.25], dtype=torch.float16)
    metric.update(preds, torch.tensor([1, 0, 0]))
    expected = torch.clamp(1 - torch.tensor([1.0, -1.0, -1.0]) * preds.double(), min=0).mean()
    torch.testing.assert_close(metric.compute(), expected)
    with pytest.raises(ValueError, match=r"Expected `preds` to hold only finite values, but found inf\.$"):
        metric.update(torch.tensor([0.5, math.inf], dtype=torch.float16), torch.tensor([1, 0]))
    torch.testing.assert_close(metric.compute(), expected)  # the refused update changed nothing


class _EventNs:
    def start_ns(self) -> int:
        return 1_234_567


class _EventUs:
    def start_us(self) -> int:
        return 1_234


def test_event_start_reads_start_ns_where_events_have_it():
    assert _compat._pick_start_ns(_EventNs)(_EventNs()) == 1_234_567


def test_event_start_falls_back_to_start_us_where_events_lack_start_ns():
    assert _compat._pick_start_ns(_EventUs)(_EventUs()) == 1_234_000


def test_event_start_of_real_profiler_events_is_in_time_order():
    with torch.profiler.profile(activities=[torch.profiler.ProfilerActivity.CPU], profile_memory=True) as prof:
        first = torch.ones(3000)  # 12,000 bytes
        second = torch.ones(5000)  # 20,000 bytes, allocated after
    del first, second
    starts = {
        e.nbytes(): _compat.event_start_ns(e)
        for e in prof.profiler.kineto_results.events()
        if e.name() == "[memory]" and e.nbytes() in (12_000, 20_000)
    }
    assert sorted(starts) == [12_000, 20_000]
    assert all(isinstance(s, int) and s > 0 for s in starts.values())
    assert starts[12_000] <= starts[20_000]


def test_own_storage_gives_every_tensor_a_storage_of_its_own():
    base = torch.arange(10.0)
    splits = {"train": (base[:5], base[5:].long()), "test": [base[5:]], "name": "kept"}
    copied = _compat.own_storage(splits)
    tensors = [copied["train"][0], copied["train"][1], copied["test"][0]]
    pointers = {t.untyped_storage().data_ptr() for t in tensors} | {base.untyped_storage().data_ptr()}
    assert len(pointers) == 4
    assert copied["name"] == "kept"
    assert isinstance(copied["train"], tuple) and isinstance(copied["test"], list)
    for ours, theirs in zip(tensors, [splits["train"][0], splits["train"][1], splits["test"][0]]):
        assert ours.dtype == theirs.dtype
        torch.testing.assert_close(ours, theirs, rtol=0, atol=0)


@pytest.mark.parametrize("layout", ["contiguous", "transposed"])
def test_aminmax_through_float32_chunk_by_chunk_finds_extremes_in_any_chunk(layout):
    n = 3 * _compat._HALF_CHUNK + 5
    values = torch.linspace(-1.0, 1.0, n, dtype=torch.float16)
    values[_compat._HALF_CHUNK + 7] = -3.0  # the minimum in the second chunk
    values[-1] = 5.0  # the maximum in the short last chunk
    t = values.reshape(-1, 1) if layout == "contiguous" else values.reshape(1, -1).t()
    if layout == "transposed":
        t = torch.cat([t, t], dim=1)[:, ::2]  # a non-contiguous view of the same values
        assert not t.is_contiguous()
    low, high = _compat._aminmax(t, cpu_half_kernel=False)
    assert (low.item(), high.item()) == (-3.0, 5.0)
    values[2 * _compat._HALF_CHUNK + 1] = math.nan
    low, high = _compat._aminmax(values, cpu_half_kernel=False)
    assert math.isnan(low.item()) and math.isnan(high.item())


class _GroupWithName:
    group_name = "17"


class _GroupWithoutName:
    pass


def test_group_name_reads_the_groups_own_name_where_it_has_one():
    assert _compat._pick_group_name(_GroupWithName)(_GroupWithName()) == "17"


def test_group_name_asks_c10d_where_groups_have_no_name(monkeypatch):
    from torch.distributed import distributed_c10d

    group = _GroupWithoutName()
    monkeypatch.setattr(distributed_c10d, "_get_process_group_name", lambda g: "3" if g is group else "?")
    assert _compat._pick_group_name(_GroupWithoutName)(group) == "3"

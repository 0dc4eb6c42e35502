"""``python -m hingemetrics.benchmark`` runs end to end on small sizes and reports what it says it measures.

Nothing here asserts a timing: timings belong to the machine. The tests check the cases, that each baseline
computes the same numbers as hingemetrics, the derived figures, the memory probe, and the command line.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch

from hingemetrics.benchmark import memory
from hingemetrics.benchmark import update as bench


@pytest.fixture(autouse=True)
def _keep_thread_count():
    threads = torch.get_num_threads()
    yield
    torch.set_num_threads(threads)


def test_a_quick_json_run_covers_every_case_validated_and_not(capsys):
    assert bench.main(["--quick", "--json", "--repeats", "1", "--warmup", "0"]) == 0
    report = json.loads(capsys.readouterr().out)
    rows = report["rows"]
    names = [case.name for case in bench.cases()]
    assert sorted((row["case"], row["validate_args"]) for row in rows) == sorted(
        (name, validate) for name in names for validate in (True, False)
    )
    assert report["machine"]["threads"] == 2
    assert report["settings"] == {"device": "cpu", "quick": True, "repeats": 1, "warmup": 0, "busy_core": False}
    for row in rows:
        assert row["agree"] is True, row["case"]
        for task in bench.TASKS:
            assert row["ours_ms"][task] > 0 and row["theirs_ms"][task] > 0
            assert row["speedup"][task] == pytest.approx(row["theirs_ms"][task] / row["ours_ms"][task])
        assert row["update_over_floor"] == pytest.approx(row["ours_ms"]["update"] / row["floor_ms"])
        if row["baseline"].startswith("torchmetrics"):
            assert row["goal"] == (5.0 if row["validate_args"] else 3.0)
            assert row["goal_met"] == (row["speedup"]["update"] >= row["goal"])
        else:
            assert row["goal"] is None and row["goal_met"] is None
        assert row["ours_peak_bytes"] >= 0 and row["theirs_peak_bytes"] >= 0


def test_every_baseline_computes_what_hingemetrics_computes():
    gen = torch.Generator().manual_seed(3)
    for case in bench.cases():
        inputs = case.draw(gen, 40)
        ours, theirs = case.ours(True), case.theirs(True)
        for half in (slice(0, 25), slice(25, None)):
            ours.update(*(t[half] for t in inputs))
            theirs.update(*(t[half] for t in inputs))
        torch.testing.assert_close(ours.compute().double(), theirs.compute().double(), rtol=1e-5, atol=1e-6)


def test_the_table_names_every_case_and_the_goals(capsys):
    assert bench.main(["--quick", "--repeats", "1", "--warmup", "0", "--case", "binary, logits"]) == 0
    out = capsys.readouterr().out
    lines = out.splitlines()
    assert "CPU, 2 threads" in lines[0]
    assert lines[1].split()[:2] == ["case", "baseline"]
    assert sum(line.startswith("binary, logits") for line in lines) == 2
    assert any(
        line.startswith("goals against torchmetrics: update >= 5x with validation on, >= 3x off") for line in lines
    )


def test_the_markdown_table_has_one_line_per_case(capsys):
    assert bench.main(["--quick", "--markdown", "--repeats", "1", "--warmup", "0", "--case", "binary"]) == 0
    table = [line for line in capsys.readouterr().out.splitlines() if line.startswith("|")]
    binary_cases = [case.name for case in bench.cases() if "binary" in case.name]
    assert len(table) == 2 + len(binary_cases)
    assert [line.split(" | ")[0].lstrip("| ") for line in table[2:]] == binary_cases
    assert all(line.count("|") == table[0].count("|") for line in table)


def test_peak_temporary_bytes_sees_what_is_held_at_once():
    def one_at_a_time():
        for _ in range(3):
            torch.ones(250_000)  # 1 MB, freed at once

    def three_at_once():
        held = [torch.ones(250_000) for _ in range(3)]
        return held

    single = bench.peak_temporary_bytes(one_at_a_time, torch.device("cpu"))
    triple = bench.peak_temporary_bytes(three_at_once, torch.device("cpu"))
    assert 1_000_000 <= single < 2_000_000
    assert 3_000_000 <= triple < 4_000_000


@pytest.mark.skipif(torch.cuda.is_available(), reason="checks the message given where there is no GPU")
def test_asking_for_cuda_without_one_says_so_and_fails(capsys):
    assert bench.main(["--device", "cuda", "--quick"]) == 2
    assert "CUDA is not available on this machine" in capsys.readouterr().err


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_a_quick_cuda_run(capsys):
    assert bench.main(["--device", "cuda", "--quick", "--json", "--repeats", "1", "--case", "binary"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert rows and all(row["agree"] for row in rows)


def test_a_device_that_is_neither_is_an_argument_error():
    with pytest.raises(SystemExit) as info:
        bench.main(["--device", "tpu"])
    assert info.value.code == 2


def test_sync_hands_the_other_arguments_to_the_sync_benchmark(monkeypatch):
    from hingemetrics.benchmark import sync

    seen = []
    monkeypatch.setattr(sync, "main", lambda argv: seen.append(argv) or 0)
    assert bench.main(["--sync", "--json", "--repeats", "3"]) == 0
    assert seen == [["--json", "--repeats", "3"]]


def test_python_dash_m_runs_the_benchmark():
    result = subprocess.run(
        [sys.executable, "-m", "hingemetrics.benchmark", "--help"], capture_output=True, text=True, check=True
    )
    assert "--sync" in result.stdout and "--quick" in result.stdout


def _cpu_seconds(pid: int) -> float:
    fields = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()
    return (int(fields[11]) + int(fields[12])) / os.sysconf("SC_CLK_TCK")  # utime + stime


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="reads /proc")
def test_busy_core_keeps_another_process_spinning_for_the_block_only():
    with bench.busy_core() as spinner:
        assert spinner is not None and spinner.poll() is None
        start, wall = _cpu_seconds(spinner.pid), time.monotonic()
        time.sleep(0.5)
        assert _cpu_seconds(spinner.pid) - start > 0.2 * (time.monotonic() - wall)  # it does use a core
    assert spinner.poll() is not None  # gone once the block is left
    with pytest.raises(RuntimeError, match="inside"), bench.busy_core() as failing:
        raise RuntimeError("inside")
    assert failing is not None and failing.poll() is not None
    with bench.busy_core(False) as nothing:
        assert nothing is None


def test_a_busy_core_run_says_so(capsys):
    assert bench.main(["--quick", "--json", "--repeats", "1", "--warmup", "0", "--case", "binary", "--busy-core"]) == 0
    assert json.loads(capsys.readouterr().out)["settings"]["busy_core"] is True


# ----------------------------------------------------------------------------------------------- memory mode
def test_every_memory_case_stays_within_a_quarter_of_its_preds():
    """Every metric, option and layout, validation on and off, on ~2 million elements (about 60 chunks): the peak
    temporary memory of an update is at most a quarter of the bytes of ``preds``. Memory does not depend on the
    machine's load, so this is a plain assertion, not a timing."""
    rows = memory.run_memory_benchmark(quick=True)
    assert sorted((row.case, row.validate_args) for row in rows) == sorted(
        (case.name, validate) for case in memory.memory_cases() for validate in (True, False)
    )
    for row in rows:
        assert row.preds_elements >= 1_900_000, row.case
        assert row.peak_bytes is not None and row.peak_bytes > 0, row.case
        assert row.peak_bytes <= memory.BOUND * row.preds_bytes, (row.case, row.validate_args, row.ratio)


def test_the_memory_cases_cover_every_metric_option_and_layout():
    names = [case.name for case in memory.memory_cases()]
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins"):
        for layout in memory.LAYOUTS:
            assert f"multiclass {mode}, {layout}" in names
    for name in ("binary", "binary, ignore_index", "binary, weights", "binary, float16", "binary, bfloat16"):
        assert name in names
    for name in ("multilabel (N, L)", "multilabel (N, L, H, W)", "HingeEmbeddingLoss"):
        assert name in names
    assert {"multiclass categorical, (N, C)", "multiclass weston-watkins, class weights"} <= set(names)
    assert {"MarginDistribution binary", "MarginDistribution multiclass"} <= set(names)
    layouts = {
        "(N, C, H, W)": lambda p: p.dim() == 4 and p.is_contiguous(),
        "channels_last": lambda p: p.is_contiguous(memory_format=torch.channels_last) and not p.is_contiguous(),
        "transposed (N, C) view": lambda p: p.dim() == 2 and not p.is_contiguous() and p.T.is_contiguous(),
    }
    for case in memory.memory_cases():
        preds = case.draw(torch.Generator().manual_seed(0), 40_000)["preds"]
        for layout, holds in layouts.items():
            if case.name.endswith(layout):
                assert holds(preds), case.name


def test_the_memory_table_and_its_exit_status(capsys, monkeypatch):
    assert bench.main(["--memory", "--quick", "--case", "HingeEmbeddingLoss"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert lines[1].split()[:3] == ["case", "elements", "preds"]
    row = next(line for line in lines if line.startswith("HingeEmbeddingLoss"))
    assert row.split()[-1] == "pass" and row.split().count("pass") == 2
    assert lines[-1].startswith("bound: 0.25x the bytes of preds")
    monkeypatch.setattr(memory, "BOUND", 1e-9)  # a bound nothing meets: the row fails and the status says so
    assert bench.main(["--memory", "--quick", "--json", "--case", "HingeEmbeddingLoss"]) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["settings"]["bound"] == 1e-9
    assert [(r["validate_args"], r["passed"]) for r in report["rows"]] == [(True, False), (False, False)]
    for r in report["rows"]:
        assert r["ratio"] == pytest.approx(r["peak_bytes"] / r["preds_bytes"])


def test_the_wrapper_benchmark_times_every_wrapper_against_the_bare_metric(capsys):
    from hingemetrics.benchmark import wrappers

    assert bench.main(["--wrappers", "--quick", "--repeats", "1", "--json"]) == 0
    rows = json.loads(capsys.readouterr().out)["rows"]
    assert {row["metric"] for row in rows} == {"binary", "crammer-singer C=10", "one-vs-all C=10"}
    for metric in {row["metric"] for row in rows}:
        labels = {row["wrapper"]: row for row in rows if row["metric"] == metric}
        assert labels["ConfidenceInterval normal"]["goal"] == labels["PerGroup G=10"]["goal"] == 2.0
        assert labels["ConfidenceInterval bootstrap R=100"]["goal"] is None  # reported, no goal
        assert labels["PerGroup floor: id check + index_add_"]["goal"] is None
        for row in labels.values():
            assert row["bare_ms"] > 0 and row["ratio"] == pytest.approx(row["wrapped_ms"] / row["bare_ms"])
    table = wrappers.format_wrapper_table([wrappers.WrapperRow("binary", "PerGroup G=10", 10, 1.0, 3.0, 2.0)])
    assert "3.00x" in table and "MISSED" in table

"""The demo: its data, model and metrics against plain references, its figures, and the command line end to end."""

from __future__ import annotations

import math
import os
import re
import subprocess
import sys
from pathlib import Path

import matplotlib

matplotlib.use("Agg")

import matplotlib.pyplot as plt
import numpy as np
import pytest
import torch

from hingemetrics import demo
from hingemetrics.__main__ import main

REPO = Path(__file__).resolve().parents[1]


@pytest.fixture(autouse=True)
def _close_figures():
    yield
    plt.close("all")


def assert_png_picture(path: Path) -> None:
    assert path.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n"
    image = plt.imread(path)
    assert image.shape[0] >= 300 and image.shape[1] >= 300
    assert image[..., :3].std() > 0.01, "the picture is blank"


# ----------------------------------------------------------------------------------------------------- data
def test_two_circles_without_noise_lie_on_two_evenly_split_circles():
    x, y = demo.two_circles(11, noise=0.0, factor=0.5, seed=4)
    assert x.shape == (11, 2) and x.dtype == torch.float32 and y.dtype == torch.int64
    assert (y == 0).sum().item() == 5 and (y == 1).sum().item() == 6  # outer gets n // 2
    radius = np.hypot(x[:, 0].numpy(), x[:, 1].numpy())
    np.testing.assert_allclose(radius, np.where(y.numpy() == 1, 0.5, 1.0), atol=1e-6)
    for label, n in ((0, 5), (1, 6)):  # evenly spaced angles, one of them 0
        points = x[y == label].double().numpy()
        angles = np.sort(np.mod(np.arctan2(points[:, 1], points[:, 0]), 2 * math.pi))
        np.testing.assert_allclose(np.diff(np.append(angles, angles[0] + 2 * math.pi)), 2 * math.pi / n, atol=1e-5)


def test_two_circles_noise_and_seed():
    x, y = demo.two_circles(1000, noise=0.1, seed=1)
    radius = np.hypot(x[:, 0].numpy(), x[:, 1].numpy()) - np.where(y.numpy() == 1, 0.8, 1.0)
    assert 0.08 < radius.std() < 0.12  # Gaussian noise of std 0.1 on each coordinate, seen along the radius
    x2, y2 = demo.two_circles(1000, noise=0.1, seed=1)
    assert torch.equal(x, x2) and torch.equal(y, y2)
    x3, _ = demo.two_circles(1000, noise=0.1, seed=2)
    assert not torch.equal(x, x3)
    assert 0.3 < y[:500].float().mean().item() < 0.7  # shuffled: both classes in the first half


def test_split_circles_halves_and_signed_labels():
    x_train, y_train, x_test, y_test = demo.split_circles(seed=1)
    x, y = demo.two_circles(1000, noise=0.1, seed=1)
    assert torch.equal(torch.cat([x_train, x_test]), x)
    assert torch.equal(torch.cat([y_train, y_test]), torch.where(y == 1, 1, -1))
    assert len(x_train) == len(x_test) == 500


# ---------------------------------------------------------------------------------------------------- model
def test_build_mlp_layers_and_initialisation():
    model = demo.build_mlp(seed=3)
    hidden, relu, output, tanh = model
    assert isinstance(relu, torch.nn.ReLU) and isinstance(tanh, torch.nn.Tanh)
    assert hidden.weight.shape == (50, 2) and output.weight.shape == (1, 50)
    he, glorot = math.sqrt(6 / 2), math.sqrt(6 / 51)
    assert hidden.weight.abs().max().item() <= he and hidden.weight.abs().max().item() > 0.8 * he
    assert output.weight.abs().max().item() <= glorot and output.weight.abs().max().item() > 0.8 * glorot
    assert not hidden.bias.any() and not output.bias.any()
    again = demo.build_mlp(seed=3)
    assert all(torch.equal(a, b) for a, b in zip(model.state_dict().values(), again.state_dict().values()))
    scores = model(torch.randn(64, 2) * 5)
    assert scores.shape == (64, 1) and scores.abs().max().item() <= 1


def test_data_and_model_leave_the_global_random_state_alone():
    state = torch.get_rng_state()
    demo.split_circles(seed=1)
    demo.build_mlp(seed=1)
    assert torch.equal(torch.get_rng_state(), state)


# -------------------------------------------------------------------------------------------------- metrics
def numpy_scoreboard(batches: list[tuple[np.ndarray, np.ndarray]]) -> dict[str, float]:
    """The demo's rows the long way, from (scores, labels in {-1, 1}) batches."""
    s = np.concatenate([b[0] for b in batches]).astype(np.float64)
    y = np.concatenate([b[1] for b in batches]).astype(np.float64)
    squashed = []
    for scores, _ in batches:  # torchmetrics' rule: a batch with any value outside [0, 1] goes through a sigmoid
        scores = scores.astype(np.float64)
        outside = np.any((scores < 0) | (scores > 1))
        squashed.append(1 / (1 + np.exp(-scores)) if outside else scores)
    auto = np.concatenate(squashed)
    return {
        "hinge": np.mean(np.maximum(0.0, 1 - y * s)),
        "hinge_auto": np.mean(np.maximum(0.0, 1 - y * auto)),
        "accuracy": np.mean((s > 0) == (y > 0)),
        "misclassified": np.mean(y * s < 0),
        "inside_margin": np.mean(y * s < 1),
    }


def test_scoreboard_matches_a_numpy_reference_batch_by_batch():
    gen = torch.Generator().manual_seed(0)
    batches = [
        (torch.rand(8, generator=gen), torch.randint(2, (8,), generator=gen) * 2 - 1),  # all in [0, 1]: not squashed
        (torch.rand(8, generator=gen) * 2 - 1, torch.randint(2, (8,), generator=gen) * 2 - 1),  # squashed
        (torch.tensor([0.9, -0.95, 0.2]), torch.tensor([1, -1, -1])),
    ]
    board = demo.Scoreboard()
    for scores, target in batches:
        board.update(scores, target)
    values = board.compute()
    expected = numpy_scoreboard([(s.numpy(), t.numpy()) for s, t in batches])
    exact = ("misclassified", "inside_margin")  # counts; losses are float32 element losses, accuracy float32
    for key, value in expected.items():
        assert values[key] == pytest.approx(value, rel=1e-15 if key in exact else 1e-6), key
    assert values["torchmetrics_hinge"] == pytest.approx(expected["hinge_auto"], rel=1e-6)
    assert values["hinge_auto"] != pytest.approx(values["hinge"], rel=1e-3)  # the point of the demo
    s = np.concatenate([b[0].numpy() for b in batches]).astype(np.float64)
    y = np.concatenate([b[1].numpy() for b in batches]).astype(np.float64)
    loss = np.maximum(0.0, 1 - y * s)
    half = 1.959964 * loss.std(ddof=1) / np.sqrt(len(loss))  # the 95% normal interval of a mean
    assert values["hinge_low"] == pytest.approx(loss.mean() - half, rel=1e-5)
    assert values["hinge_high"] == pytest.approx(loss.mean() + half, rel=1e-5)


def test_evaluate_cuts_the_data_into_batches():
    x_train, y_train, _, _ = demo.split_circles(seed=2)
    model = demo.build_mlp(seed=2)
    with torch.no_grad():
        scores = model(x_train).squeeze(1)
    batches = [(s.numpy(), t.numpy()) for s, t in zip(scores.split(32), y_train.split(32))]
    values = demo.evaluate(model, x_train, y_train, batch_size=32).compute()
    for key, value in numpy_scoreboard(batches).items():
        assert values[key] == pytest.approx(value, rel=1e-6), key


def test_training_lowers_the_hinge_loss_and_records_every_epoch():
    data = demo.split_circles(seed=1)
    model = demo.build_mlp(seed=1)
    history = demo.train(model, data, epochs=12, seed=1)
    assert len(history.train) == len(history.test) == 12
    assert history.series("train", "hinge").shape == (12,)
    assert history.train[-1]["hinge"] < history.train[0]["hinge"]
    assert history.test[-1]["hinge"] < history.test[0]["hinge"]
    # the test row of the last epoch is the trained model's evaluation
    final = demo.evaluate(model, data[2], data[3]).compute()
    assert history.test[-1] == final


def test_progress_bar_prints_a_tenth_at_a_time_off_a_terminal(tmp_path):
    stream = (tmp_path / "progress.txt").open("w+")
    demo.train(demo.build_mlp(), demo.split_circles(), epochs=20, progress=stream)
    stream.seek(0)
    lines = stream.read().splitlines()
    assert [line.split()[1] for line in lines] == [f"{e}/20" for e in range(2, 21, 2)]
    assert lines[-1].count("#") == 30 and "test accuracy" in lines[-1]


# -------------------------------------------------------------------------------------------------- figures
def fake_history(epochs: int = 7) -> demo.History:
    history = demo.History()
    for e in range(epochs):
        for split, offset in (("train", 0.0), ("test", 0.1)):
            row = {key: 0.0 for key, _ in demo.ROWS}
            row.update(hinge=1.2 - 0.1 * e + offset, hinge_auto=0.9, accuracy=0.5 + 0.05 * e - offset)
            getattr(history, split).append(row)
    return history


def test_history_figure_has_loss_and_accuracy_panels(tmp_path):
    history = fake_history()
    fig = demo.history_figure(history)
    loss_ax, accuracy_ax = fig.axes
    assert [line.get_label() for line in loss_ax.get_lines()] == ["train", "test", 'test, normalization="auto"']
    for line, (split, key) in zip(loss_ax.get_lines(), [("train", "hinge"), ("test", "hinge"), ("test", "hinge_auto")]):
        np.testing.assert_allclose(line.get_ydata(), [epoch[key] for epoch in getattr(history, split)])
        np.testing.assert_array_equal(line.get_xdata(), np.arange(7))
    assert loss_ax.get_ylim()[0] == 0 and loss_ax.get_ylim()[1] > 1.3  # the loss exceeds 1 and stays in view
    assert [line.get_label() for line in accuracy_ax.get_lines()] == ["train", "test"]
    np.testing.assert_allclose(accuracy_ax.get_lines()[1].get_ydata(), [e["accuracy"] for e in history.test])
    assert loss_ax.get_ylabel() == "hinge loss" and accuracy_ax.get_ylabel() == "accuracy"
    assert accuracy_ax.get_xlabel() == "epoch" and accuracy_ax.get_ylim()[1] == 1.0
    fig.savefig(tmp_path / "history.png")
    assert_png_picture(tmp_path / "history.png")


def test_margins_figure_is_the_histogram(tmp_path):
    metric = demo.Scoreboard().margins
    scores = torch.linspace(-1, 1, 101)
    metric.update(scores, torch.ones(101, dtype=torch.long))
    fig = demo.margins_figure(metric)
    (ax,) = fig.axes
    assert len(ax.patches) == metric.bins
    assert sum(p.get_height() for p in ax.patches) == 101
    assert [line.get_xdata()[0] for line in ax.get_lines()] == [0.0, 1.0]
    fig.savefig(tmp_path / "margins.png")
    assert_png_picture(tmp_path / "margins.png")


# -------------------------------------------------------------------------------------------- distributed
def test_evaluate_distributed_refuses_a_bad_process_count():
    with pytest.raises(ValueError) as info:
        demo.evaluate_distributed(demo.build_mlp(), {}, nproc=0)
    assert str(info.value) == "Expected `nproc` to be an int >= 1, but got 0."


# ---------------------------------------------------------------------------------------------- command line
def test_main_runs_the_demo_and_writes_both_figures(tmp_path, capsys):
    assert main(["demo", "--epochs", "3", "--out", str(tmp_path / "out")]) == 0
    out = capsys.readouterr().out
    assert "epoch 3/3" in out
    for _, description in demo.ROWS:
        assert re.search(re.escape(description) + r"\s+\d\.\d{4}\s+\d\.\d{4}", out), description
    assert 'normalization="auto"' in out and "1 - sigmoid(1) = 0.2689" in out
    (line,) = re.findall(r"^test loss (\d\.\d{4}), 95% interval \[(\d\.\d{4}), (\d\.\d{4})\]", out, re.MULTILINE)
    loss, low, high = map(float, line)
    assert low < loss < high and re.search(rf"raw scores \(normalization=None\)\s+\d\.\d{{4}}\s+{loss:.4f}", out)
    for name in ("history.png", "margins.png"):
        assert_png_picture(tmp_path / "out" / name)
        assert f"wrote {tmp_path / 'out' / name}" in out


def test_command_line_with_two_processes(tmp_path):
    """`python -m hingemetrics demo --nproc 2`: both columns against a numpy reference of the same trained model."""
    env = dict(os.environ, MPLBACKEND="Agg", PYTHONPATH=str(REPO))
    command = [sys.executable, "-m", "hingemetrics", "demo", "--epochs", "1", "--nproc", "2", "--seed", "4"]
    result = subprocess.run([*command, "--out", str(tmp_path)], capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    assert "synced values equal the single-process ones" in result.stdout
    assert (tmp_path / "history.png").is_file() and (tmp_path / "margins.png").is_file()

    # the same seed gives the same model here: data, weights and shuffling are all drawn from it
    data = demo.split_circles(seed=4)
    model = demo.build_mlp(seed=4)
    demo.train(model, data, epochs=1, seed=4)
    expected = {}
    for split, (x, y) in {"train": data[:2], "test": data[2:]}.items():
        with torch.no_grad():
            scores = model(x).squeeze(1)
        expected[split] = numpy_scoreboard([(s.numpy(), t.numpy()) for s, t in zip(scores.split(32), y.split(32))])
    names = dict((name, key) for key, name in demo.ROWS)
    rows = re.findall(r"^(train|test): (.+?)\s+(\d\.\d{10})\s+(\d\.\d{10})\s+\S+$", result.stdout, re.MULTILINE)
    assert len(rows) == 2 * len(demo.ROWS)
    for split, name, one, two in rows:
        key = names[name]
        if key in expected[split]:
            assert float(one) == pytest.approx(expected[split][key], rel=1e-5), (split, name)
            assert one == two, (split, name)  # to the 10 printed digits


@pytest.mark.parametrize(
    ("argv", "message"),
    [
        (["demo", "--epochs", "0"], "argument --epochs: expected an int >= 1, but got 0"),
        (["demo", "--nproc", "two"], "argument --nproc: expected an int >= 1, but got 'two'"),
        ([], "the following arguments are required: COMMAND"),
        (["train"], "argument COMMAND: invalid choice: 'train'"),
    ],
)
def test_command_line_errors(argv, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    assert message in capsys.readouterr().err


def test_console_script_is_installed():
    script = Path(sys.executable).parent / "hingemetrics"
    if not script.exists():
        pytest.skip("the package is not installed in this interpreter's environment")
    result = subprocess.run([str(script), "demo", "--help"], capture_output=True, text=True, timeout=120)
    assert result.returncode == 0
    assert "--nproc" in result.stdout and "--epochs" in result.stdout

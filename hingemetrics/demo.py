"""The main job: an MLP trained with hinge loss on two circles, evaluated batch by batch with hingemetrics.

``python -m hingemetrics demo`` (or ``hingemetrics demo``, or ``make demo``) runs :func:`run`:

* data: two concentric noisy circles, 1,000 points (noise 0.1), generated with torch from ``--seed``; the first
  500 train and the last 500 test; label 0 (outer circle) becomes -1;
* model: ``Linear(2, 50)`` (He-uniform) -> ReLU -> ``Linear(50, 1)`` (Glorot-uniform) -> tanh, trained on the
  hinge loss ``max(0, 1 - y*s)`` with SGD (lr 0.01, momentum 0.9), batch 32, 200 epochs by default;
* metrics, updated batch by batch on the raw tanh outputs: :class:`~hingemetrics.BinaryHingeLoss` as it is and
  with ``normalization="auto"`` (torchmetrics' rule, which squashes these outputs), torchmetrics' own
  ``BinaryHingeLoss`` and ``BinaryAccuracy``, and :class:`~hingemetrics.MarginDistribution`;
* output: a progress bar, a final table, ``history.png`` (loss and accuracy per epoch, train vs test) and
  ``margins.png`` (the test margins) in ``--out``; with ``--nproc N`` the final evaluation is run again on N
  gloo processes and its synced values are compared with the single-process ones.

The functions are public so that the notebooks can reuse the data and the distributed evaluation.
"""

from __future__ import annotations

import math
import sys
import textwrap
import time
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any, TextIO

import torch
from torch import Tensor, nn

from hingemetrics._classification import BinaryHingeLoss
from hingemetrics._compat import own_storage
from hingemetrics._margin import MarginDistribution
from hingemetrics._processes import leave_now, stop_processes
from hingemetrics._sync import synced
from hingemetrics._uncertainty import ConfidenceInterval
from hingemetrics.functional import binary_hinge_loss

if TYPE_CHECKING:
    from matplotlib.figure import Figure

__all__ = [
    "History",
    "Scoreboard",
    "build_mlp",
    "evaluate",
    "evaluate_distributed",
    "history_figure",
    "margins_figure",
    "run",
    "split_circles",
    "train",
    "two_circles",
]

#: The rows of the final table: (key of :meth:`Scoreboard.compute`, description).
ROWS: tuple[tuple[str, str], ...] = (
    ("hinge", "hinge loss, raw scores (normalization=None)"),
    ("hinge_auto", 'hinge loss, normalization="auto"'),
    ("torchmetrics_hinge", "torchmetrics BinaryHingeLoss"),
    ("accuracy", "accuracy (torchmetrics BinaryAccuracy)"),
    ("misclassified", "misclassified, margin < 0"),
    ("inside_margin", "inside the margin, margin < 1"),
)

_TIMEOUT_S = 30  # seconds a process of the distributed evaluation waits for the others

#: The rows that a synced evaluation must reproduce to float64 rounding (all but torchmetrics' float32 hinge).
EXACT_WHEN_SYNCED = ("hinge", "hinge_auto", "accuracy", "misclassified", "inside_margin")


# ------------------------------------------------------------------------------------------------------ data
def two_circles(n_samples: int = 1000, noise: float = 0.1, factor: float = 0.8, seed: int = 1) -> tuple[Tensor, Tensor]:
    """Two concentric circles with Gaussian noise, shuffled: a binary problem no straight line separates.

    Half the points (rounded down) lie on the unit circle (label 0), the rest on a circle of radius ``factor``
    (label 1), at evenly spaced angles; every coordinate then gets noise ``N(0, noise^2)``.

    Args:
        n_samples: the number of points.
        noise: the standard deviation of the noise.
        factor: the radius of the inner circle, in (0, 1).
        seed: the seed of the torch generator that draws the noise and the order.

    Returns:
        ``(x, y)``: float32 points ``(n_samples, 2)`` and int64 labels ``(n_samples,)`` in {0, 1}.

    Example:
        >>> x, y = two_circles(10, noise=0.0)
        >>> x.shape, y.tolist().count(1)
        (torch.Size([10, 2]), 5)
        >>> bool(((x.norm(dim=1) - torch.where(y == 1, 0.8, 1.0)).abs() < 1e-6).all())
        True
    """
    generator = torch.Generator().manual_seed(seed)
    n_outer = n_samples // 2
    n_inner = n_samples - n_outer
    angles = [torch.arange(n, dtype=torch.float64) * (2 * math.pi / n) for n in (n_outer, n_inner)]
    radii = (1.0, factor)
    x = torch.cat([r * torch.stack([a.cos(), a.sin()], dim=1) for r, a in zip(radii, angles, strict=True)])
    y = torch.cat([torch.zeros(n_outer, dtype=torch.int64), torch.ones(n_inner, dtype=torch.int64)])
    order = torch.randperm(n_samples, generator=generator)
    x = x[order] + noise * torch.randn(n_samples, 2, generator=generator, dtype=torch.float64)
    return x.float(), y[order]


def split_circles(seed: int = 1, n_samples: int = 1000) -> tuple[Tensor, Tensor, Tensor, Tensor]:
    """The demo's data: :func:`two_circles` with noise 0.1, first half to train, second to test, labels in {-1, 1}.

    Returns:
        ``(x_train, y_train, x_test, y_test)``.
    """
    x, y = two_circles(n_samples, noise=0.1, seed=seed)
    y = y * 2 - 1  # 0 -> -1, 1 -> 1, as the hinge loss wants
    half = n_samples // 2
    return x[:half], y[:half], x[half:], y[half:]


# ----------------------------------------------------------------------------------------------------- model
def build_mlp(seed: int = 1, hidden: int = 50) -> nn.Sequential:
    """``Linear(2, hidden)`` -> ReLU -> ``Linear(hidden, 1)`` -> tanh, initialised from ``seed``.

    The hidden layer is He-uniform (``U(-b, b)``, ``b = sqrt(6 / fan_in)``), the output layer Glorot-uniform
    (``b = sqrt(6 / (fan_in + fan_out))``), biases zero, as in the original Keras model.
    """
    generator = torch.Generator().manual_seed(seed)
    # skip_init: no default initialisation, so the global random state is left alone
    hidden_layer = nn.utils.skip_init(nn.Linear, 2, hidden)
    output_layer = nn.utils.skip_init(nn.Linear, hidden, 1)
    with torch.no_grad():
        hidden_layer.weight.uniform_(-math.sqrt(6 / 2), math.sqrt(6 / 2), generator=generator)
        bound = math.sqrt(6 / (hidden + 1))
        output_layer.weight.uniform_(-bound, bound, generator=generator)
        hidden_layer.bias.zero_()
        output_layer.bias.zero_()
    model = nn.Sequential(hidden_layer, nn.ReLU(), output_layer, nn.Tanh())
    return model


# --------------------------------------------------------------------------------------------------- metrics
class Scoreboard:
    """The demo's metrics for one data split, all updated batch by batch with the model's raw tanh outputs.

    ``update(scores, target)`` takes scores ``(N,)`` and labels ``(N,)`` in {-1, 1}; torchmetrics' classes get the
    labels as {0, 1} and the accuracy gets the decisions ``scores > 0``.
    """

    def __init__(self) -> None:
        from torchmetrics.classification import BinaryAccuracy
        from torchmetrics.classification import BinaryHingeLoss as TorchmetricsBinaryHingeLoss

        self.hinge = BinaryHingeLoss()
        self.hinge_auto = BinaryHingeLoss(normalization="auto")
        self.torchmetrics_hinge = TorchmetricsBinaryHingeLoss()
        self.accuracy = BinaryAccuracy()
        self.margins = MarginDistribution(task="binary", bins=50, range=(-1.25, 1.25))  # tanh: |s| <= 1
        self.hinge_interval = ConfidenceInterval(BinaryHingeLoss(), level=0.95)  # the raw-score loss's error bar

    def _metrics(self) -> tuple[Any, ...]:
        return self.hinge, self.hinge_auto, self.torchmetrics_hinge, self.accuracy, self.margins, self.hinge_interval

    def update(self, scores: Tensor, target: Tensor) -> None:
        """Add one batch to every metric."""
        zero_one = (target > 0).long()
        self.hinge.update(scores, target)
        self.hinge_auto.update(scores, target)
        self.torchmetrics_hinge.update(scores, zero_one)
        self.accuracy.update((scores > 0).long(), zero_one)
        self.margins.update(scores, target)
        self.hinge_interval.update(scores, target)

    def compute(self) -> dict[str, float]:
        """The value of every row of :data:`ROWS` (synced across processes when a process group is up).

        The four hingemetrics metrics are summed over the processes together, in one ``all_reduce``; the two
        torchmetrics metrics sync on their own. ``hinge_low`` and ``hinge_high`` bound the 95% interval of the
        raw-score hinge loss (the delta method, :class:`~hingemetrics.ConfidenceInterval`).
        """
        with synced(*self._metrics()):
            histogram = self.margins.compute()
            interval = self.hinge_interval.compute()
            return {
                "hinge_low": float(interval["low"]),
                "hinge_high": float(interval["high"]),
                "hinge": float(self.hinge.compute()),
                "hinge_auto": float(self.hinge_auto.compute()),
                "torchmetrics_hinge": float(self.torchmetrics_hinge.compute()),
                "accuracy": float(self.accuracy.compute()),
                "misclassified": float(histogram.misclassified),
                "inside_margin": float(histogram.inside_margin),
            }

    def reset(self) -> None:
        """Forget everything, for the next epoch."""
        for metric in self._metrics():
            metric.reset()


def evaluate(model: nn.Module, x: Tensor, y: Tensor, batch_size: int = 32) -> Scoreboard:
    """Run ``model`` over ``(x, y)`` in batches and return the updated :class:`Scoreboard` (not yet computed)."""
    board = Scoreboard()
    model.eval()
    with torch.no_grad():
        for start in range(0, len(x), batch_size):
            board.update(model(x[start : start + batch_size]).squeeze(1), y[start : start + batch_size])
    return board


@dataclass
class History:
    """Per-epoch values: train ones averaged over the epoch's batches (as Keras reports them), test ones at its end."""

    train: list[dict[str, float]] = field(default_factory=list)
    test: list[dict[str, float]] = field(default_factory=list)

    def series(self, split: str, key: str) -> Tensor:
        """One row of :data:`ROWS` over the epochs, for ``split`` ``"train"`` or ``"test"``: a ``(epochs,)`` tensor."""
        return torch.tensor([epoch[key] for epoch in getattr(self, split)], dtype=torch.float64)


def train(
    model: nn.Module,
    data: tuple[Tensor, Tensor, Tensor, Tensor],
    epochs: int,
    *,
    seed: int = 1,
    batch_size: int = 32,
    progress: TextIO | None = None,
) -> History:
    """Train ``model`` on the hinge loss with SGD (lr 0.01, momentum 0.9) and record the metrics of every epoch.

    Args:
        model: the network; its output ``(N, 1)`` is the score.
        data: ``(x_train, y_train, x_test, y_test)`` with labels in {-1, 1}.
        epochs: the number of passes over the training data.
        seed: the seed of the generator that shuffles the training data every epoch.
        batch_size: the mini-batch size.
        progress: where to draw the progress bar; None for no bar.

    Returns:
        The :class:`History`.
    """
    x_train, y_train, x_test, y_test = data
    generator = torch.Generator().manual_seed(seed)
    optimizer = torch.optim.SGD(model.parameters(), lr=0.01, momentum=0.9)
    history = History()
    board = Scoreboard()
    bar = _ProgressBar(epochs, progress)
    for _ in range(epochs):
        model.train()
        board.reset()
        order = torch.randperm(len(x_train), generator=generator)
        for start in range(0, len(order), batch_size):
            batch = order[start : start + batch_size]
            scores = model(x_train[batch]).squeeze(1)
            loss = binary_hinge_loss(scores, y_train[batch], validate_args=False)
            optimizer.zero_grad()
            loss.backward()
            optimizer.step()
            board.update(scores.detach(), y_train[batch])
        history.train.append(board.compute())
        history.test.append(evaluate(model, x_test, y_test, batch_size).compute())
        bar.step(history)
    bar.close()
    return history


class _ProgressBar:
    """A text progress bar: redrawn in place on a terminal, a line every tenth of the run elsewhere."""

    width = 30

    def __init__(self, total: int, stream: TextIO | None) -> None:
        self.total, self.stream, self.done = total, stream, 0
        self.in_place = stream is not None and stream.isatty()

    def step(self, history: History) -> None:
        self.done += 1
        if self.stream is None:
            return
        every = max(1, self.total // 10)
        if not self.in_place and self.done % every and self.done != self.total:
            return
        filled = self.width * self.done // self.total
        train, test = history.train[-1], history.test[-1]
        line = (
            f"epoch {self.done:>{len(str(self.total))}}/{self.total} [{'#' * filled}{'.' * (self.width - filled)}] "
            f"train loss {train['hinge']:.4f}  test loss {test['hinge']:.4f}  test accuracy {test['accuracy']:.3f}"
        )
        self.stream.write(("\r" + line) if self.in_place else line + "\n")
        self.stream.flush()

    def close(self) -> None:
        if self.stream is not None and self.in_place:
            self.stream.write("\n")
            self.stream.flush()


# ----------------------------------------------------------------------------------------------- distributed
def _distributed_worker(
    rank: int,
    world_size: int,
    port: int,
    state: dict[str, Tensor],
    splits: dict[str, tuple[Tensor, Tensor]],
    batch_size: int,
    results: Any,
) -> None:
    """One rank: evaluate batches ``rank, rank + world_size, ...`` of each split; ``compute`` then syncs."""
    import os

    import torch.distributed as dist

    torch.set_num_threads(1)
    if sys.platform.startswith("linux"):
        os.environ.setdefault("GLOO_SOCKET_IFNAME", "lo")  # stay on the loopback device
    timeout = timedelta(seconds=_TIMEOUT_S)
    store = dist.TCPStore("127.0.0.1", port, world_size, is_master=False, timeout=timeout)
    dist.init_process_group("gloo", store=store, rank=rank, world_size=world_size, timeout=timeout)
    try:
        model = build_mlp()
        model.load_state_dict(state)
        values = {}
        for name, (x, y) in splits.items():
            mine = torch.arange(len(x)).split(batch_size)[rank::world_size]
            index = torch.cat(mine) if mine else torch.arange(0)
            # evaluate() cuts the rank's share into the same batches the single process saw
            values[name] = evaluate(model, x[index], y[index], batch_size).compute()
        if rank == 0:
            results.put(values)
        dist.barrier()  # no rank leaves while another may still be using the group
    except BaseException:
        dist.destroy_process_group()
        raise
    leave_now(0)  # the values are sent and the barrier has passed


def evaluate_distributed(
    model: nn.Module, splits: dict[str, tuple[Tensor, Tensor]], nproc: int, batch_size: int = 32
) -> dict[str, dict[str, float]]:
    """Evaluate ``model`` on each split, with the batches dealt out to ``nproc`` gloo processes on this machine.

    The batches are those of ``evaluate(model, x, y, batch_size)``; process ``r`` takes batches ``r``,
    ``r + nproc``, ... . Each process updates its own :class:`Scoreboard`, and ``compute()`` syncs the states
    across the processes (one ``all_reduce`` for all three hingemetrics metrics). Only the order of the sums
    changes, so the values of rank 0, returned here, equal those of a single process up to float64 rounding. The
    processes meet at a store this process hosts on 127.0.0.1 (a port the system picks); they are stopped after
    two minutes.

    Args:
        model: a network built by :func:`build_mlp` (its weights are sent to every process).
        splits: ``{name: (x, y)}`` with labels in {-1, 1}.
        nproc: the number of processes, >= 1.
        batch_size: the batch size.

    Returns:
        ``{name: values}``, the values keyed like :data:`ROWS`.
    """
    import torch.distributed as dist
    import torch.multiprocessing as mp

    if isinstance(nproc, bool) or not isinstance(nproc, int) or nproc < 1:
        raise ValueError(f"Expected `nproc` to be an int >= 1, but got {nproc!r}.")
    store = dist.TCPStore("127.0.0.1", 0, nproc, is_master=True, wait_for_workers=False)
    results = mp.get_context("spawn").SimpleQueue()
    state = {k: v.detach().clone() for k, v in model.state_dict().items()}
    args = (nproc, store.port, state, own_storage(splits), batch_size, results)
    processes = mp.start_processes(_distributed_worker, args=args, nprocs=nproc, join=False, start_method="spawn")
    deadline = time.monotonic() + 4 * _TIMEOUT_S
    try:
        while not processes.join(timeout=1.0):  # raises if a process fails
            if time.monotonic() > deadline:
                raise TimeoutError(f"the {nproc} evaluation processes were still running after {4 * _TIMEOUT_S} s")
    finally:
        stop_processes(processes.processes)
    values: dict[str, dict[str, float]] = results.get()
    return values


# --------------------------------------------------------------------------------------------------- figures
def history_figure(history: History) -> Figure:
    """Two stacked panels over the epochs: the hinge loss (train, test, and test under ``"auto"``) and accuracy."""
    import matplotlib.pyplot as plt

    from hingemetrics._plot import plot_values

    fig, (ax_loss, ax_accuracy) = plt.subplots(2, 1, sharex=True, figsize=(8, 7))
    loss = BinaryHingeLoss()
    loss.plot(history.series("train", "hinge"), ax=ax_loss, labels=["train"])
    loss.plot(history.series("test", "hinge"), ax=ax_loss, labels=["test"])
    loss.plot(history.series("test", "hinge_auto"), ax=ax_loss, labels=['test, normalization="auto"'])
    ax_loss.get_lines()[-1].set_linestyle("--")
    ax_loss.set_ylabel("hinge loss")
    ax_loss.set_xlabel("")
    ax_loss.set_title("BinaryHingeLoss per epoch (raw tanh scores)")
    for split in ("train", "test"):
        plot_values(history.series(split, "accuracy"), ax_accuracy, labels=[split], lower_bound=None, upper_bound=1.0)
    ax_accuracy.set_ylabel("accuracy")
    ax_accuracy.set_xlabel("epoch")
    fig.tight_layout()
    return fig


def margins_figure(metric: MarginDistribution) -> Figure:
    """The histogram of the margins ``metric`` has seen, with lines at 0 and at the margin."""
    from matplotlib.axes import Axes

    fig, ax = metric.plot()
    assert isinstance(ax, Axes)
    ax.set_title("MarginDistribution of the test set, y * s")
    fig.tight_layout()
    return fig


def _save(fig: Figure, path: Path) -> None:
    import matplotlib.pyplot as plt

    fig.savefig(path, dpi=100)
    plt.close(fig)


# ------------------------------------------------------------------------------------------------------- run
def _table(columns: Sequence[str], rows: Sequence[tuple[str, Sequence[str]]]) -> str:
    width = max(len(name) for name, _ in rows)
    lines = [" " * width + "".join(f"{c:>14}" for c in columns)]
    lines += [name.ljust(width) + "".join(f"{v:>14}" for v in values) for name, values in rows]
    return "\n".join(lines)


def run(
    *,
    epochs: int = 200,
    seed: int = 1,
    out: str | Path = "hingemetrics-demo",
    nproc: int = 1,
    batch_size: int = 32,
    stream: TextIO | None = None,
) -> int:
    """Run the whole demo and print its report to ``stream`` (standard output by default).

    Returns:
        The exit status: 0, or 1 when ``nproc > 1`` and the synced values differ from the single-process ones.
    """
    stream = sys.stdout if stream is None else stream
    started = time.perf_counter()

    def say(text: str = "", wrap: bool = False) -> None:
        print(textwrap.fill(text, width=100) if wrap else text, file=stream, flush=True)

    data = split_circles(seed)
    model = build_mlp(seed)
    say("hingemetrics demo: an MLP (2 -> 50 ReLU -> 1 tanh) trained with hinge loss on two circles")
    say(f"data: 1,000 points, noise 0.1, seed {seed}; 500 to train, 500 to test; labels 0 -> -1")
    say(f"training: SGD (lr 0.01, momentum 0.9), batch {batch_size}, {epochs} epochs; metrics updated per batch")
    history = train(model, data, epochs, seed=seed, batch_size=batch_size, progress=stream)

    x_train, y_train, x_test, y_test = data
    final = {
        "train": evaluate(model, x_train, y_train, batch_size),
        "test": evaluate(model, x_test, y_test, batch_size),
    }
    values = {split: board.compute() for split, board in final.items()}
    say()
    say(
        _table(
            ("train", "test"),
            [(name, [f"{values[s][key]:.4f}" for s in ("train", "test")]) for key, name in ROWS],
        )
    )
    test = values["test"]
    say(
        f"test loss {test['hinge']:.4f}, 95% interval [{test['hinge_low']:.4f}, {test['hinge_high']:.4f}] "
        "(ConfidenceInterval, the delta method over the 500 test samples)"
    )
    with torch.no_grad():
        test_batches = model(x_test).squeeze(1).split(batch_size)
    squashed = sum(bool(((b < 0) | (b > 1)).any()) for b in test_batches)
    floor = 1 - torch.tensor(1.0).sigmoid().item()
    say()
    say(
        f"The model's tanh scores lie in [-1, 1]. normalization=None (the default) takes them as they are: "
        f"{values['test']['hinge']:.4f} on the test set, the loss the model was trained on. "
        f'normalization="auto" (torchmetrics\' rule) passes a batch through a sigmoid when it holds any value '
        f"outside [0, 1], as {squashed} of the {len(test_batches)} test batches do (every negative score "
        f"does it). Squashed scores lie in [0.27, 0.73], so no model, however good, can score below "
        f"1 - sigmoid(1) = {floor:.4f}: the test loss reads {values['test']['hinge_auto']:.4f}, the same as "
        f"torchmetrics' own BinaryHingeLoss ({values['test']['torchmetrics_hinge']:.4f}).",
        wrap=True,
    )

    status = 0
    if nproc > 1:
        say()
        say(f"--nproc {nproc}: the final evaluation again, its batches dealt out to {nproc} gloo processes")
        synced = evaluate_distributed(model, {"train": (x_train, y_train), "test": (x_test, y_test)}, nproc, batch_size)
        rows, worst = [], 0.0
        for split in ("train", "test"):
            for key, name in ROWS:
                one, many = values[split][key], synced[split][key]
                if key in EXACT_WHEN_SYNCED:
                    worst = max(worst, abs(one - many))
                rows.append((f"{split}: {name}", [f"{one:.10f}", f"{many:.10f}", f"{abs(one - many):.1e}"]))
        say(_table(("1 process", f"{nproc} processes", "|difference|"), rows))
        same = worst <= 1e-12
        say(
            f"hingemetrics and accuracy: synced values {'equal' if same else 'DIFFER FROM'} the single-process "
            f"ones (largest difference {worst:.1e}, tolerance 1e-12). torchmetrics' BinaryHingeLoss keeps float32 "
            "state, so its value may move in the 7th or 8th digit when the sums are taken in another order.",
            wrap=True,
        )
        status = 0 if same else 1

    out_dir = Path(out)
    out_dir.mkdir(parents=True, exist_ok=True)
    _save(history_figure(history), out_dir / "history.png")
    _save(margins_figure(final["test"].margins), out_dir / "margins.png")
    say()
    say(f"wrote {out_dir / 'history.png'} (loss and accuracy per epoch, train vs test)")
    say(f"wrote {out_dir / 'margins.png'} (histogram of the test margins y * s, lines at 0 and 1)")
    say(f"done in {time.perf_counter() - started:.1f} s")
    return status

"""The ``hingemetrics`` command line: ``python -m hingemetrics demo`` (or the ``hingemetrics`` console script)."""

from __future__ import annotations

import argparse

__all__ = ["main"]


def _positive_int(text: str) -> int:
    try:
        value = int(text)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, but got {text!r}") from None
    if value < 1:
        raise argparse.ArgumentTypeError(f"expected an int >= 1, but got {value}")
    return value


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="hingemetrics", description="Stateful hinge-loss metrics for PyTorch: command-line tools."
    )
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    demo = commands.add_parser(
        "demo",
        help="train an MLP with hinge loss on two circles and evaluate it with hingemetrics",
        description=(
            "Train an MLP (2 -> 50 ReLU -> 1 tanh) with hinge loss on two circles (1,000 points, noise 0.1), "
            "evaluate it batch by batch with hingemetrics, print a table and write history.png and margins.png."
        ),
    )
    demo.add_argument("--epochs", type=_positive_int, default=200, help="training epochs (default: 200)")
    demo.add_argument(
        "--seed", type=int, default=1, help="seed of the data, the weights and the shuffling (default: 1)"
    )
    demo.add_argument(
        "--out", default="hingemetrics-demo", help="folder for the figures (default: ./hingemetrics-demo)"
    )
    demo.add_argument(
        "--nproc",
        type=_positive_int,
        default=1,
        help="also run the final evaluation on N gloo processes and compare (default: 1, no comparison)",
    )
    demo.add_argument("--batch-size", type=_positive_int, default=32, help="mini-batch size (default: 32)")
    return parser


def main(argv: list[str] | None = None) -> int:
    """Parse ``argv`` (default: the process's arguments), run the command and return its exit status.

    Example:
        >>> main(["demo", "--epochs", "0"])
        Traceback (most recent call last):
        ...
        SystemExit: 2
    """
    args = _parser().parse_args(argv)
    if args.command == "demo":
        import matplotlib

        matplotlib.use("Agg")  # the demo only writes files
        from hingemetrics.demo import run

        return run(epochs=args.epochs, seed=args.seed, out=args.out, nproc=args.nproc, batch_size=args.batch_size)
    raise AssertionError(f"unhandled command {args.command!r}")  # argparse refuses unknown commands


if __name__ == "__main__":
    raise SystemExit(main())

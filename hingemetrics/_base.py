"""The base class of every hingemetrics metric: summed float64 state, a guarded update, one-collective sync."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from typing import Any

import torch
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.distributed import gather_all_tensors
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from hingemetrics.functional._common import STAT_DTYPE

__all__: list[str] = []


class SumStateMetric(Metric):
    """A metric whose whole state is a few tensors that add up across batches and processes.

    Subclasses declare their states with :meth:`_add_sum_state` and implement ``_batch_statistics``, which returns
    one tensor per state (in declaration order) for a batch. The base class then gives them:

    * an ``update`` that computes everything first and only then adds to the state, so a batch that raises leaves
      the state exactly as it was;
    * a sync that packs every state into one tensor and issues a single ``all_reduce`` (torchmetrics' default
      gathers each state separately); a user-supplied ``dist_sync_fn`` is still honoured.
    """

    is_differentiable = True
    higher_is_better = False
    full_state_update = False
    plot_lower_bound: float | None = 0.0

    _sum_states: tuple[str, ...]

    def _add_sum_state(self, name: str, shape: tuple[int, ...] = ()) -> None:
        """Register a float64 zero state reduced by summation."""
        self._sum_states = (*getattr(self, "_sum_states", ()), name)
        self.add_state(name, default=torch.zeros(shape, dtype=STAT_DTYPE), dist_reduce_fx="sum")

    def _add_config_key(self, **update_args: Any) -> None:
        """Register an empty state whose name encodes the arguments that change what ``update`` adds.

        torchmetrics' ``MetricCollection`` puts metrics in one compute group (one shared state) when their states
        are equal after the first batch, and two differently configured metrics can agree on one batch by chance
        (every score beyond both margins, say). The key makes their state names differ, so they are never merged,
        while metrics that differ only in how ``compute`` reads the same sums (multilabel ``average``, embedding
        ``reduction``) still share one state. The state holds no elements, so it costs nothing to sync.
        """
        fingerprint = repr((type(self).__name__, sorted(update_args.items())))
        digest = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
        self.add_state(f"config_{digest}", default=torch.zeros(0, dtype=STAT_DTYPE), dist_reduce_fx="sum")

    def _batch_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> None:
        """Add a batch to the state; see the class docstring for the shapes."""
        self._accumulate(preds, target, sample_weight)

    def _accumulate(self, *args: Any) -> None:
        try:
            stats = self._batch_statistics(*args)
        except Exception:
            self._update_count -= 1  # torchmetrics counted the call before it failed; the state never saw it
            raise
        for name, value in zip(self._sum_states, stats, strict=True):
            current = getattr(self, name)
            setattr(self, name, current + value.to(current.dtype))

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any | None = None) -> None:
        """Sum every state across processes with one ``all_reduce`` of one packed tensor."""
        if dist_sync_fn is not gather_all_tensors:
            super()._sync_dist(dist_sync_fn, process_group)
            return
        states = [getattr(self, name) for name in self._sum_states]
        packed = torch.cat([s.reshape(-1).to(states[0].dtype) for s in states])
        torch.distributed.all_reduce(
            packed, op=torch.distributed.ReduceOp.SUM, group=process_group or self.process_group
        )
        offset = 0
        for name, state in zip(self._sum_states, states, strict=True):
            size = state.numel()
            setattr(self, name, packed[offset : offset + size].reshape(state.shape).to(state.dtype))
            offset += size

    def plot(self, val: Tensor | Sequence[Tensor] | None = None, ax: _AX_TYPE | None = None) -> _PLOT_OUT_TYPE:
        """Plot one value, or a history of values, of this metric.

        Args:
            val: a result of ``forward`` or ``compute``, or a list of them. Without it, ``compute()`` is plotted.
            ax: a matplotlib axis to draw into; a new figure is made without it.

        Returns:
            ``(fig, ax)``.
        """
        return self._plot(val, ax)

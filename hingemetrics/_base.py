"""The base class of every hingemetrics metric: summed float64 state, a guarded update, one-collective sync."""

from __future__ import annotations

import functools
import hashlib
from collections.abc import Callable, Sequence
from typing import Any, ClassVar

import torch
import torch.distributed as dist
from lightning_utilities import apply_to_collection
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import _squeeze_if_scalar, dim_zero_sum
from torchmetrics.utilities.distributed import gather_all_tensors
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from hingemetrics._agreement import (
    MetricDescription,
    StepSyncError,
    SyncDescription,
    check_agreement,
    describe_metric,
    group_key,
)
from hingemetrics._plot import plot_metric
from hingemetrics.functional._common import STAT_DTYPE

__all__: list[str] = []


def _summed_tensor_state(name: str, state: Any, reduction: Any) -> Tensor:
    """Return ``state`` after checking that it is a tensor reduced by summation, the only kind that is packed."""
    if not isinstance(state, Tensor) or reduction is not dim_zero_sum:
        reduced_by = getattr(reduction, "__name__", reduction)
        raise TypeError(
            f"Expected state `{name}` to be a tensor reduced by summation, but got a {type(state).__name__}"
            f" reduced by {reduced_by}."
        )
    return state


def _pack(states: Sequence[Tensor]) -> Tensor:
    """Flatten states of any shapes into one new ``(sum of their numel,)`` tensor of their common dtype."""
    dtype = functools.reduce(torch.promote_types, [state.dtype for state in states])
    return torch.cat([state.reshape(-1).to(dtype) for state in states])


def _unpack(packed: Tensor, like: Sequence[Tensor]) -> list[Tensor]:
    """Split a ``(sum of numel,)`` tensor into pieces with the shapes and dtypes of ``like``, in order."""
    pieces = packed.split([state.numel() for state in like])
    return [piece.reshape(state.shape).to(state.dtype) for piece, state in zip(pieces, like, strict=True)]


class _AllReduceSum(torch.autograd.Function):
    """A summing ``all_reduce`` whose gradient reaches this rank's summand unchanged (the others are constants)."""

    @staticmethod
    def forward(ctx: Any, local: Tensor, group: Any) -> Tensor:
        total = local.clone()
        torch.distributed.all_reduce(total, op=torch.distributed.ReduceOp.SUM, group=group)
        return total

    @staticmethod
    def backward(ctx: Any, grad: Tensor) -> tuple[Tensor, None]:
        return grad, None


def _sum_over_ranks(packed: Tensor, group: Any | None) -> Tensor:
    """Sum a ``(K,)`` tensor over the ranks of ``group`` (None: the default group) with one ``all_reduce``.

    ``packed`` must be a tensor of its own (it is overwritten when it needs no gradient). With autograd recording
    and a ``packed`` that requires grad (``forward`` with ``dist_sync_on_step=True``), the gradient flows to this
    rank's contribution, as torchmetrics' gather does, instead of through an op that has no autograd formula.
    """
    if packed.requires_grad and torch.is_grad_enabled():
        total: Tensor = _AllReduceSum.apply(packed, group)
        return total
    torch.distributed.all_reduce(packed, op=torch.distributed.ReduceOp.SUM, group=group)
    return packed


def sum_states_over_ranks(
    metrics: Sequence[SumStateMetric], group: Any | None, *, step_failed: bool | None = None
) -> None:
    """Replace every state of every metric by its sum over the ranks of ``group``, with one ``all_reduce`` in all.

    The states (tensors reduced by summation, on one device) are packed into one tensor in order, summed, and
    unpacked into new tensors; the old ones are left untouched, so a caller may keep them to restore later.

    Before that, the ranks must agree on what they pack (see :func:`_agree`): the first time these metrics sync
    this configuration on ``group``, one small ``all_gather`` compares it across the ranks, and a mismatch raises
    :class:`~hingemetrics.SyncMismatchError` on every rank with nothing summed. Later syncs issue the
    ``all_reduce`` alone.

    Args:
        metrics: the metrics, in an order that is the same on every rank.
        group: the process group; None is the default one.
        step_failed: None for ``compute()``/``sync()``/``hm.synced``. In ``forward`` with ``dist_sync_on_step``,
            False where this rank's batch went through and True where its ``update`` raised: the packed tensor
            then ends with one more element, 1 from each rank whose batch failed (which packs zeros for its
            states and keeps them), and where the sum is not 0 every other rank raises
            :class:`~hingemetrics.StepSyncError` instead of taking the sums.
    """
    group = dist.group.WORLD if group is None else group
    names = [(metric, name) for metric in metrics for name in metric._defaults]
    states = [_summed_tensor_state(name, getattr(metric, name), metric._reductions[name]) for metric, name in names]
    description = (
        "compute" if step_failed is None else "step",
        tuple(metric._sync_description() for metric in metrics),
    )
    _agree(metrics, description, group, states[0].device)
    if step_failed is None:
        _set_states(names, _unpack(_sum_over_ranks(_pack(states), group), states))
        return
    packed = _pack([torch.zeros_like(state) for state in states] if step_failed else states)
    flag = torch.full((1,), float(step_failed), dtype=packed.dtype, device=packed.device)
    total = _sum_over_ranks(torch.cat([packed, flag]), group)
    failed = int(total[-1].item())
    if step_failed:
        return
    if failed:
        raise StepSyncError(
            "Expected every rank's batch of this forward step (dist_sync_on_step=True) to update its metric, but "
            f"the batches of {failed} of the {dist.get_world_size(group)} ranks raised. The step counts on no rank: "
            f"every rank keeps its {', '.join(type(metric).__name__ for metric in metrics)} state as it was before."
        )
    _set_states(names, _unpack(total[:-1], states))


def _set_states(names: Sequence[tuple[Metric, str]], values: Sequence[Tensor]) -> None:
    for (metric, name), value in zip(names, values, strict=True):
        setattr(metric, name, value)


def _agree(metrics: Sequence[SumStateMetric], description: SyncDescription, group: Any, device: torch.device) -> None:
    """Check, once per configuration, that every rank of ``group`` syncs what this one does; see ``check_agreement``.

    Whether to run the check (a collective) must be decided alike on every rank, or one rank would wait in the
    check while another sums. Each metric remembers the (group, description) pairs it has been agreed in, in its
    ``_agreed_syncs``; the check is skipped only when every metric of this sync has been agreed in exactly this
    description on this group. That decision reads the ranks' local histories, yet it is the same on every rank
    in any program whose ranks create their metrics and sync them in the same order (which every collective
    needs anyway), whatever the metrics' arguments:

    * a metric's first sync on a group checks on every rank, since its counterparts on the other ranks are new
      there too: a configuration computed from rank-local data is caught at once;
    * after that, a metric and its counterparts were agreed at the same syncs, on descriptions shown equal, so
      they hold the same entries, and a description that changes alike on every rank (another set of metrics in
      ``hm.synced``, another dtype) is new everywhere and checked again. The description holds the state shapes
      and dtypes, so an agreement never outlives a change in what is packed.

    What the check cannot see without a collective on every sync is a rank that, after an agreed sync, alone
    changes a metric (replaces its states by hand, edits an argument) or alone syncs another set of metrics it
    has synced before; ranks that do so may then disagree on running the check.
    """
    agreed = (group_key(group), description)
    if all(agreed in metric._agreed_syncs for metric in metrics):
        return
    check_agreement(description, group, device)
    for metric in metrics:
        metric._agreed_syncs.add(agreed)


class _StepSync:
    """The ``dist_sync_fn`` of one ``forward`` step with ``dist_sync_on_step=True``.

    ``_sync_dist`` recognises the step's sync by it and records that it started. Called as a gather function, it
    is torchmetrics' own.
    """

    def __init__(self) -> None:
        self.started = False

    def __call__(self, result: Tensor, group: Any | None = None) -> list[Tensor]:
        return gather_all_tensors(result, group)


#: torchmetrics' bookkeeping that ``forward`` changes on its way, restored when the batch raises.
_FORWARD_FLAGS = (
    "_update_count",
    "_computed",
    "_forward_cache",
    "_is_synced",
    "_should_unsync",
    "_to_sync",
    "_enable_grad",
    "compute_on_cpu",
)


class SumStateMetric(Metric):
    """A metric whose whole state is a few tensors that add up across batches and processes.

    Subclasses declare their states with :meth:`_add_sum_state` and implement ``_batch_statistics``, which returns
    one tensor per state (in declaration order) for a batch. The base class then gives them:

    * an ``update`` that computes everything first and only then adds to the state, so a batch that raises leaves
      the state exactly as it was, and a ``forward`` that puts the state back when its batch raises;
    * states that never keep an autograd graph (torchmetrics runs ``update`` with autograd off), while
      ``forward``'s batch value stays differentiable;
    * a ``load_state_dict`` that checks each state's shape and casts it to the metric's own dtype and device;
    * a sync that packs every state into one tensor and issues a single ``all_reduce`` (torchmetrics' default
      gathers each state separately), after the ranks have agreed once on what they pack (see
      :func:`sum_states_over_ranks`); a user-supplied ``dist_sync_fn`` is still honoured.
    """

    is_differentiable = True
    higher_is_better: bool | None = False
    full_state_update = False
    plot_lower_bound: float | None = 0.0
    #: Names of the classes or labels of a vector result, used by :meth:`plot` when it is given no ``labels``.
    #: Set it on an instance (``metric.plot_labels = ["cat", "dog"]``) to name them wherever the metric is
    #: plotted, e.g. through ``MetricCollection.plot``.
    plot_labels: Sequence[str] | None = None

    #: Arguments that change how ``compute`` reads the state but not what ``update`` adds (``average``,
    #: ``reduction``): part of the description the ranks agree on, with those given to :meth:`_add_config_key`.
    _compute_args: ClassVar[tuple[str, ...]] = ()

    _sum_states: tuple[str, ...]
    #: Names of the arguments given to :meth:`_add_config_key`, read from the attributes of the same names.
    _config_names: tuple[str, ...] = ()

    def __init__(self, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        #: ``(group, description)`` keys of the syncs this metric has been agreed in: see ``_agree``.
        self._agreed_syncs: set[tuple[tuple[str, tuple[int, ...]], SyncDescription]] = set()

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
        self._config_names = tuple(sorted(update_args))
        fingerprint = repr((type(self).__name__, sorted(update_args.items())))
        digest = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
        self.add_state(f"config_{digest}", default=torch.zeros(0, dtype=STAT_DTYPE), dist_reduce_fx="sum")

    def _sync_description(self) -> MetricDescription:
        """What the ranks must agree on before summing this metric's states.

        The class name, the arguments that change what ``update`` adds or how ``compute`` reads it (their current
        values), and each state's name, shape and dtype.
        """
        names = (*self._config_names, *self._compute_args)
        return describe_metric(
            type(self).__name__,
            [(name, getattr(self, name)) for name in names],
            [(name, getattr(self, name)) for name in self._defaults],
        )

    def _batch_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        raise NotImplementedError

    def update(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> None:
        """Add a batch to the state; see the class docstring for the shapes."""
        self._accumulate(preds, target, sample_weight)

    def _accumulate(self, *args: Any) -> None:
        """Add one batch's statistics to the state, or raise and leave the state as it was.

        torchmetrics runs ``update`` with autograd off, so the states never hold a graph however many batches
        require grad; only ``forward``'s batch value, computed with autograd on, is differentiable.
        """
        try:
            self._check_inputs_on_state_device(args)
            stats = self._batch_statistics(*args)
        except Exception:
            self._update_count -= 1  # torchmetrics counted the call before it failed; the state never saw it
            raise
        for name, value in zip(self._sum_states, stats, strict=True):
            current = getattr(self, name)
            setattr(self, name, current + value.to(current.dtype))

    def _check_inputs_on_state_device(self, args: Sequence[Any]) -> None:
        """Refuse inputs that share one device other than the state's, before any arithmetic.

        Adding them would move a scalar state to their device (or fail halfway for a vector state). Inputs on
        several devices are left to the tensor checks, which name each of them.
        """
        devices = {arg.device for arg in args if isinstance(arg, Tensor)}
        state_device = getattr(self, self._sum_states[0]).device
        if len(devices) == 1 and state_device not in devices:
            raise ValueError(
                f"Expected the inputs on the metric's device {state_device}, but got them on {devices.pop()}. "
                "Move the metric with `metric.to(device)`, or the inputs to its device."
            )

    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Add the batch to the state and return the metric on this batch alone (differentiable).

        torchmetrics' ``forward`` resets the state before it updates with the batch, so a batch that raises would
        lose everything accumulated so far; here the state, the update count and torchmetrics' flags are put back
        as they were before the error propagates.

        With ``dist_sync_on_step=True`` under ``torch.distributed``, each step is a collective. A rank whose batch
        raises before the step's ``all_reduce`` still takes part in it, contributing nothing but a flag, and then
        raises its own error; the other ranks see the flag and raise :class:`~hingemetrics.StepSyncError`. No rank
        keeps the step, so the next step pairs up with the next step on every rank. (With a ``dist_sync_fn`` of
        your own, torchmetrics' per-state path has no room for the flag, and a failed batch leaves the ranks out of
        step, as in torchmetrics.)
        """
        saved = {name: getattr(self, name) for name in self._defaults}  # states are replaced, never changed in place
        flags = {name: getattr(self, name) for name in _FORWARD_FLAGS}
        step, own_sync_fn = (_StepSync() if self._syncs_each_step() else None), self.dist_sync_fn
        if step is not None:
            # torchmetrics hands `dist_sync_fn` to `_sync_dist`: that is how the step's sync learns it is one
            self.dist_sync_fn = step
        try:
            return super().forward(*args, **kwargs)
        except Exception:
            for name, value in (saved | flags).items():
                setattr(self, name, value)
            if step is not None and not step.started:
                # the batch failed before the step's collective: take part in it, so that every rank learns
                sum_states_over_ranks([self], self.process_group, step_failed=True)
            raise
        finally:
            if step is not None:
                self.dist_sync_fn = own_sync_fn

    def _syncs_each_step(self) -> bool:
        """Whether ``forward`` syncs through :func:`sum_states_over_ranks`, as torchmetrics' ``sync`` decides it."""
        available = self.distributed_available_fn
        return (
            self.dist_sync_on_step
            and self.dist_sync_fn in (None, gather_all_tensors)
            and callable(available)
            and bool(available())
        )

    def _load_from_state_dict(
        self,
        state_dict: dict[str, Any],
        prefix: str,
        local_metadata: dict[str, Any],
        strict: bool,
        missing_keys: list[str],
        unexpected_keys: list[str],
        error_msgs: list[str],
    ) -> None:
        """Load the summed states after checking their shapes, cast to this metric's dtype and device.

        torchmetrics sets whatever the checkpoint holds: a float32 checkpoint would turn the float64 sums into
        float32 ones, and a state of another shape would broadcast silently at the next update. Here each state is
        cast to the dtype and device of the metric's own, and a shape that differs is reported (``load_state_dict``
        raises a ``RuntimeError`` listing every such state) with no state loaded. The cached ``compute`` result is
        dropped, and a loaded state that holds data counts as an update, so ``compute`` does not warn that it was
        called before ``update``.
        """
        loaded: dict[str, Tensor] = {}
        errors: list[str] = []
        for name in self._sum_states:
            key = prefix + name
            if key not in state_dict:
                continue
            value, current = state_dict.pop(key), getattr(self, name)
            if not isinstance(value, Tensor) or value.shape != current.shape:
                got = f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else f"a {type(value).__name__}"
                errors.append(
                    f"Expected state `{name}` (key {key!r}) of {type(self).__name__} to be a tensor of shape "
                    f"{tuple(current.shape)}, but got {got}."
                )
                continue
            loaded[name] = value.to(device=current.device, dtype=current.dtype)
        error_msgs.extend(errors)
        if not errors:
            for name, value in loaded.items():
                setattr(self, name, value)
            self._computed = None
            if any(bool(value.ne(0).any()) for value in loaded.values()):
                # a state that holds data counts as updated: no "compute before update" warning after resuming
                self._update_count = max(self._update_count, 1)
        super()._load_from_state_dict(
            state_dict, prefix, local_metadata, strict, missing_keys, unexpected_keys, error_msgs
        )

    def _sync_dist(self, dist_sync_fn: Callable = gather_all_tensors, process_group: Any | None = None) -> None:
        """Sum every state over the ranks of the group with one ``all_reduce`` of one packed tensor.

        Every rank issues this one collective, with the same shape, whether or not it has seen data, so no rank can
        wait on a collective that another never issues; the first sync of a configuration on a group adds the
        agreement check (see :func:`sum_states_over_ranks`). A ``forward`` step with ``dist_sync_on_step=True``
        arrives with a ``_StepSync`` as ``dist_sync_fn`` and carries the failed-batch flag. A ``dist_sync_fn``
        other than torchmetrics' default is honoured through torchmetrics' own path, which calls it once per state.
        """
        group = process_group or self.process_group
        if isinstance(dist_sync_fn, _StepSync):
            dist_sync_fn.started = True
            sum_states_over_ranks([self], group, step_failed=False)
            return
        if dist_sync_fn is not gather_all_tensors:
            super()._sync_dist(dist_sync_fn, process_group)
            return
        sum_states_over_ranks([self], group)

    def _wrap_compute(self, compute: Callable) -> Callable:
        """Wrap ``compute`` as torchmetrics does, and let it run on states that ``sync()`` has already summed.

        torchmetrics' ``compute`` raises inside ``sync_context()`` (it tries to sync a second time). Here it then
        reads the synced states as they are: no second collective, no cached value, and the caller's ``unsync()``
        still restores the local states.
        """
        synced_by_torchmetrics = super()._wrap_compute(compute)

        @functools.wraps(compute)
        def wrapped(*args: Any, **kwargs: Any) -> Any:
            if self._is_synced:
                return apply_to_collection(_squeeze_if_scalar(compute(*args, **kwargs)), Tensor, Tensor.clone)
            return synced_by_torchmetrics(*args, **kwargs)

        return wrapped

    def plot(
        self,
        val: Tensor | Sequence[Tensor] | None = None,
        ax: _AX_TYPE | None = None,
        *,
        labels: Sequence[str] | None = None,
    ) -> _PLOT_OUT_TYPE:
        """Plot one value, or a history of values, of this metric.

        One scalar is drawn as a marker, one per-class (or per-label) vector as bars, and a history (a list of
        ``forward``/``compute`` results, or a tensor of them stacked along a new first dimension, such as
        ``MetricTracker.compute_all()``) as one line per class or label. The y-axis starts at
        ``plot_lower_bound`` and its top follows the data.

        Args:
            val: a result of ``forward`` or ``compute``, or a history of them. Without it, ``compute()`` is plotted.
            ax: a matplotlib axis to draw into; a new figure is made without it.
            labels: names for the classes or labels of a vector result (or one name for a scalar metric's
                series), shown in the legend. Without it, ``self.plot_labels`` is used if set, else
                ``"Class 0"``, ``"Label 0"``, ...

        Returns:
            ``(fig, ax)``.

        Example:
            >>> import torch
            >>> from hingemetrics import MulticlassHingeLoss
            >>> metric = MulticlassHingeLoss(num_classes=3, multiclass_mode="one-vs-all")
            >>> history = [metric(torch.randn(8, 3), torch.randint(3, (8,))) for _ in range(4)]
            >>> fig, ax = metric.plot(history, labels=["cat", "dog", "bird"])
            >>> [text.get_text() for text in ax.get_legend().get_texts()]
            ['cat', 'dog', 'bird']
            >>> import matplotlib.pyplot as plt
            >>> plt.close(fig)
        """
        return plot_metric(self, val, ax, labels)

"""The base class of every hingemetrics metric: summed float64 state, a guarded update, one-collective sync."""

import functools
import hashlib
import warnings
from collections.abc import Callable, Sequence
from typing import Any, ClassVar, TypeVar

import torch
import torch.distributed as dist
from lightning_utilities import apply_to_collection
from torch import Tensor
from torchmetrics import Metric
from torchmetrics.utilities.data import _squeeze_if_scalar, dim_zero_sum
from torchmetrics.utilities.distributed import gather_all_tensors
from torchmetrics.utilities.plot import _AX_TYPE, _PLOT_OUT_TYPE

from hingemetrics import _precision as P
from hingemetrics._agreement import (
    MetricDescription,
    StepSyncError,
    SyncDescription,
    check_agreement,
    describe_metric,
    group_key,
)
from hingemetrics._plot import plot_metric
from hingemetrics.functional._common import STAT_DTYPE, RowReduction, fold_rows

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
    metrics: Sequence["SumStateMetric"], group: Any | None, *, step_failed: bool | None = None
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


def _agree(metrics: Sequence["SumStateMetric"], description: SyncDescription, group: Any, device: torch.device) -> None:
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


_Self = TypeVar("_Self", bound="SumStateMetric")

#: The key, in a state dict's metadata for a metric's prefix, under which the metric records its configuration.
_CONFIG_METADATA = "hingemetrics_config"


def _is_config_key(key: str, prefix: str) -> bool:
    """Whether ``key`` is the configuration key of the metric at ``prefix`` (not of a module below it)."""
    return key.startswith(prefix + "config_") and "." not in key[len(prefix) :]


def _describe(config: dict[str, Any]) -> str:
    """``BinaryHingeLoss(margin=1.0, squared=False, ...)``: a configuration as the message shows it."""
    args = ", ".join(f"{name}={value!r}" for name, value in config.items() if name != "class")
    return f"{config.get('class')}({args})"


def _differences(ours: dict[str, Any], theirs: dict[str, Any], our_side: str, their_side: str) -> str:
    """``"`margin` differs: 1.0 (here) vs 2.0 (in the checkpoint)"``, one clause per differing entry."""
    missing = "(not set)"
    names = [*ours, *(name for name in theirs if name not in ours)]
    clauses = [
        f"`{name}` differs: {ours.get(name, missing)!r} ({our_side}) vs {theirs.get(name, missing)!r} ({their_side})"
        for name in names
        if ours.get(name, missing) != theirs.get(name, missing)
    ]
    return "; ".join(clauses).replace("`class` differs", "the class differs")


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
    * float64 states that stay float64: a module cast (``metric.half()``, ``parent.to(torch.bfloat16)``, ...)
      moves them to its device but never changes their dtype; only :meth:`set_dtype` does, with a warning that
      says what a narrower dtype costs. On a device without float64 (MPS) they are float32, with a warning;
    * a ``load_state_dict`` that checks each state's shape and casts it to the metric's own dtype and device, and
      that (like ``merge_state``) refuses the state of a metric built with other arguments, naming them;
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
    #: The name of the empty state that encodes the configuration (see ``_add_config_key``), None before it.
    _config_key: str | None = None

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
        fingerprint = repr((type(self).__name__, sorted(update_args.items())))
        digest = hashlib.sha1(fingerprint.encode()).hexdigest()[:12]
        self._config_args: dict[str, Any] = dict(update_args)
        self._config_key = f"config_{digest}"
        self.add_state(self._config_key, default=torch.zeros(0, dtype=STAT_DTYPE), dist_reduce_fx="sum")

    def _config(self) -> dict[str, Any]:
        """The class and the arguments that decide what ``update`` adds, as merges and checkpoints compare them."""
        return {"class": type(self).__name__, **getattr(self, "_config_args", {})}

    def _sync_description(self) -> MetricDescription:
        """What the ranks must agree on before summing this metric's states.

        The class name; the arguments that change what ``update`` adds, as :meth:`_add_config_key` recorded them
        (the configuration that merges and checkpoints compare too), and those that change how ``compute`` reads
        the state (``_compute_args``); and each state's name, shape and dtype.
        """
        config = getattr(self, "_config_args", {})
        return describe_metric(
            type(self).__name__,
            [*config.items(), *((name, getattr(self, name)) for name in self._compute_args)],
            [(name, getattr(self, name)) for name in self._defaults],
        )

    def _batch_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        raise NotImplementedError

    # ------------------------------------------------------------------------------- the per-sample protocol
    def _sample_statistics(self, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        """The statistics of ``_batch_statistics``, one row per sample: each ``(N, *state_shape)``, float64.

        Row ``i`` holds what sample ``i`` (index ``i`` along dimension 0, its extra positions included) adds to
        each state, so the rows sum to ``_batch_statistics`` of the same arguments, which are checked the same
        way. The wrappers (:class:`~hingemetrics.ConfidenceInterval`, :class:`~hingemetrics.PerGroup`,
        :class:`~hingemetrics.PairedComparison`) build on it.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no per-sample statistics (`_sample_statistics`), which ConfidenceInterval, "
            "PerGroup and PairedComparison need."
        )

    def _reduce_samples(self, reduction: RowReduction, *args: Any, **kwargs: Any) -> tuple[Tensor, ...]:
        """The total of ``reduction``'s fold of the batch's per-sample rows (:meth:`_sample_statistics`).

        Here the rows of the whole batch are made, then folded in as one piece; a metric whose kernel makes its rows
        chunk by chunk folds in each chunk as it is made instead (:class:`WeightedSumStateMetric`).
        """
        return fold_rows(reduction, self._sample_statistics(*args, **kwargs))

    def _compute_from(self, *states: Any, **kwargs: Any) -> Any:
        """The metric's value from state tensors shaped like its own, with any extra leading dimensions.

        ``compute()`` is this function of the metric's states. Given states of shapes ``(*lead, *state_shape)``
        it returns ``(*lead, *result_shape)``, one value per leading index, and it is differentiable by autograd.
        """
        raise NotImplementedError(
            f"{type(self).__name__} has no compute from given states (`_compute_from`), which ConfidenceInterval, "
            "PerGroup and PairedComparison need."
        )

    def compute(self) -> Any:
        """The metric's value: ``_compute_from`` of its states."""
        return self._compute_from(*(getattr(self, name) for name in self._sum_states))

    def update(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None) -> None:
        """Add a batch to the state; see the class docstring for the shapes."""
        self._accumulate(preds, target, sample_weight)

    def _accumulate(self, *args: Any, **kwargs: Any) -> None:
        """Add one batch's statistics to the state, or raise and leave the state as it was.

        torchmetrics runs ``update`` with autograd off, so the states never hold a graph however many batches
        require grad; only ``forward``'s batch value, computed with autograd on, is differentiable.
        """
        try:
            self._check_inputs_on_state_device([*args, *kwargs.values()])
            stats = self._batch_statistics(*args, **kwargs)
            totals = [
                getattr(self, name) + value.to(getattr(self, name).dtype)
                for name, value in zip(self._sum_states, stats, strict=True)
            ]
        except BaseException:  # a KeyboardInterrupt too: the state never saw the batch
            self._update_count -= 1  # torchmetrics counted the call before it failed
            raise
        for name, total in zip(self._sum_states, totals, strict=True):
            setattr(self, name, total)

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

    @torch.jit.unused
    def forward(self, *args: Any, **kwargs: Any) -> Any:
        """Add the batch to the state and return the metric on this batch alone (differentiable).

        torchmetrics' ``forward`` resets the state before it updates with the batch, so a batch that raises would
        lose everything accumulated so far; here the state, the update count and torchmetrics' flags are put back
        as they were before the error (any ``BaseException``, ``KeyboardInterrupt`` included) propagates.

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
        except BaseException as err:  # a KeyboardInterrupt too
            for name, value in (saved | flags).items():
                setattr(self, name, value)
            if step is not None and not step.started and isinstance(err, Exception):
                # the batch failed before the step's collective: take part in it, so that every rank learns
                # (not on an interrupt, where a collective could block the user's way out)
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
        """Load the summed states after checking their configuration and shapes, cast to this metric's dtype.

        torchmetrics sets whatever the checkpoint holds: a float32 checkpoint would turn the float64 sums into
        float32 ones, and a state of another shape would broadcast silently at the next update. Here each state is
        cast to the dtype and device of the metric's own (for a float64 metric, a widening cast that loses
        nothing), and a shape that differs is reported (``load_state_dict`` raises a ``RuntimeError`` listing every
        such state) with no state loaded. A checkpoint written by a metric with other arguments (another
        ``margin``, say) is refused the same way, even with ``strict=False``, since its sums would give a wrong
        value here: the message names the arguments that differ when the checkpoint records them (this package
        writes them into the state dict's metadata), and otherwise lists this metric's own. The cached
        ``compute`` result is dropped, and a loaded state that holds data counts as an update, so ``compute`` does
        not warn that it was called before ``update``.
        """
        config_keys = [key for key in state_dict if _is_config_key(key, prefix)]
        present = [name for name in self._sum_states if prefix + name in state_dict]
        if present or config_keys:
            mismatch = self._checkpoint_config_mismatch(config_keys, local_metadata, prefix)
            if mismatch is not None:
                for key in config_keys + [prefix + name for name in present]:
                    state_dict.pop(key)
                error_msgs.append(mismatch)
                return
        for key in config_keys:
            state_dict.pop(key)  # this metric's own key, which holds nothing
        loaded: dict[str, Tensor] = {}
        errors: list[str] = []
        for name in present:
            key = prefix + name
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

    def _checkpoint_config_mismatch(
        self, config_keys: list[str], local_metadata: dict[str, Any], prefix: str
    ) -> str | None:
        """The error for a checkpoint written with another configuration, or None when it matches this one."""
        saved = local_metadata.get(_CONFIG_METADATA)
        ours = self._config()
        foreign = [key[len(prefix) :] for key in config_keys if key[len(prefix) :] != self._config_key]
        where = f" at {prefix[:-1]!r}" if prefix else ""
        if isinstance(saved, dict):  # the checkpoint records its configuration: compare it entry by entry
            if saved == ours:
                return None
            return (
                f"Expected the checkpoint of {type(self).__name__}{where} to be saved with this metric's "
                f"configuration, but {_differences(ours, saved, 'here', 'in the checkpoint')}. Build the metric "
                "with the arguments it was saved with; no state was loaded."
            )
        if foreign:
            return (
                f"Expected the checkpoint of {type(self).__name__}{where} to be saved with this metric's "
                f"configuration ({_describe(ours)}), but it was saved with a different one (key {foreign[0]!r}, "
                f"this metric's is {self._config_key!r}); the checkpoint does not record which arguments differ. "
                "Build the metric with the arguments it was saved with; no state was loaded."
            )
        return None

    def state_dict(  # type: ignore[override]
        self, destination: dict[str, Any] | None = None, prefix: str = "", keep_vars: bool = False
    ) -> dict[str, Any]:
        """The state dict of torchmetrics, whose metadata also records this metric's configuration.

        The configuration (the class and the arguments that decide what ``update`` adds) lets ``load_state_dict``
        name the arguments that differ when a checkpoint comes from a metric built otherwise.
        """
        out = super().state_dict(destination=destination, prefix=prefix, keep_vars=keep_vars)
        metadata = getattr(out, "_metadata", None)
        if metadata is not None and prefix[:-1] in metadata:
            metadata[prefix[:-1]][_CONFIG_METADATA] = self._config()
        return out

    def merge_state(self, incoming_state: dict[str, Any] | Metric) -> None:
        """Add the state of another metric of the same configuration (or a dict of its states) to this one.

        Everything is checked before anything is added: the incoming metric must be of this class and built with
        the arguments that decide what ``update`` adds (an error names each one that differs, e.g. ``margin``); a
        dict must hold every summed state with this metric's shapes, and if it carries a configuration key (as
        ``metric.metric_state`` does) it must be this metric's. The incoming states are cast to this metric's dtype
        and device. The update counts add up and a cached ``compute`` result is dropped.

        Example:
            >>> import torch
            >>> from hingemetrics import BinaryHingeLoss
            >>> a, b = BinaryHingeLoss(), BinaryHingeLoss()
            >>> a.update(torch.tensor([0.5]), torch.tensor([1]))
            >>> b.update(torch.tensor([-1.0]), torch.tensor([1]))
            >>> a.merge_state(b)
            >>> a.compute()
            tensor(1.2500, dtype=torch.float64)
            >>> a.merge_state(BinaryHingeLoss(margin=2.0))  # doctest: +ELLIPSIS
            Traceback (most recent call last):
            ...
            ValueError: Expected the incoming BinaryHingeLoss ... `margin` differs: 1.0 (this metric) vs 2.0 (incoming).
        """
        if isinstance(incoming_state, Metric):
            if not isinstance(incoming_state, type(self)):
                raise ValueError(
                    f"Expected the incoming metric to be a {type(self).__name__}, but got a "
                    f"{type(incoming_state).__name__}."
                )
            theirs = incoming_state._config()
            if theirs != self._config():
                raise ValueError(
                    f"Expected the incoming {type(self).__name__} to have this metric's configuration, but "
                    f"{_differences(self._config(), theirs, 'this metric', 'incoming')}."
                )
            states: dict[str, Any] = incoming_state.metric_state
            count: int | None = incoming_state._update_count
        elif isinstance(incoming_state, dict):
            states, count = incoming_state, None
            foreign = [key for key in states if key.startswith("config_") and key != self._config_key]
            if foreign:
                raise ValueError(
                    f"Expected an incoming state of a {type(self).__name__} with this metric's configuration "
                    f"({_describe(self._config())}), but it carries the key {foreign[0]!r} of another one (this "
                    f"metric's is {self._config_key!r})."
                )
        else:
            raise TypeError(
                f"Expected `incoming_state` to be a dict of states or a {type(self).__name__}, but got "
                f"{type(incoming_state).__name__}."
            )
        if self.dist_sync_on_step:
            raise RuntimeError(
                "``merge_state`` is not supported for metrics with ``dist_sync_on_step=True`` (torchmetrics' rule)."
            )
        totals = self._merged(states)
        for name, total in totals.items():
            setattr(self, name, total)
        self._computed = None
        if count is not None:
            self._update_count += count
        elif any(bool(states[name].ne(0).any()) for name in self._sum_states):
            self._update_count = max(self._update_count, 1)  # a dict that holds data counts as updated

    def _merged(self, states: dict[str, Any]) -> dict[str, Tensor]:
        """This metric's sums plus those of ``states``, checked for presence and shape before any is added."""
        totals: dict[str, Tensor] = {}
        for name in self._sum_states:
            current = getattr(self, name)
            value = states.get(name)
            if not isinstance(value, Tensor) or value.shape != current.shape:
                got = (
                    "no such state"
                    if name not in states
                    else (f"shape {tuple(value.shape)}" if isinstance(value, Tensor) else f"a {type(value).__name__}")
                )
                raise ValueError(
                    f"Expected incoming state `{name}` of {type(self).__name__} to be a tensor of shape "
                    f"{tuple(current.shape)}, but got {got}."
                )
            totals[name] = current + value.to(device=current.device, dtype=current.dtype)
        return totals

    # ------------------------------------------------------------------------------------------- dtype and device
    def _apply(  # type: ignore[override]
        self, fn: Callable, exclude_state: Sequence[str] = "", recurse: bool = True
    ) -> torch.nn.Module:
        """Apply ``fn`` (a move or a cast from ``nn.Module``) to the states: they move, and keep their dtype.

        ``nn.Module`` calls this for ``.to(...)``, ``.cuda()``, ``.half()`` and the rest, also when they are called
        on a parent module. The states and their defaults move to the device of ``fn`` in the metric's state dtype:
        float64, or what :meth:`set_dtype` chose (its cast is the one that changes it). The cached results move as
        they are (``set_dtype`` casts them too, as torchmetrics does). On a device without float64 (MPS) float64
        becomes float32, with a warning once per metric. ``recurse`` is accepted for ``to_empty``; a metric has no
        child modules.
        """
        device = getattr(self, self._sum_states[0]).device if getattr(self, "_sum_states", ()) else self.device
        plan = P.plan_of(fn, device)
        explicit = getattr(self, "_dtype_convert", False) and plan.float_dtype is not None
        if explicit:
            self._state_dtype = plan.float_dtype  # inside set_dtype: the one cast that changes the states
        wanted = self._wanted_state_dtype()
        caches = P.state_fn(fn, plan, plan.float_dtype if explicit else None)
        out = super()._apply(caches, exclude_state=(*exclude_state, *self._defaults))
        move = P.state_fn(fn, plan, wanted)
        for name, default in self._defaults.items():
            if name in exclude_state:
                continue
            if isinstance(default, Tensor):
                self._defaults[name] = move(default)
            setattr(self, name, move(getattr(self, name)))
        if P.state_dtype_for(plan.device, wanted) != wanted and not getattr(self, "_warned_no_float64", False):
            self._warned_no_float64 = True
            warnings.warn(
                f"{type(self).__name__} keeps its states in float32 on {plan.device}, which has no float64: "
                f"{P.precision_cost(torch.float32)}.",
                P.StatePrecisionWarning,
                stacklevel=3,
            )
        return out

    def __setattr__(self, name: str, value: Any) -> None:
        """Set an attribute; a state is kept in the metric's state dtype, whatever assigns it.

        torchmetrics' wrappers that share their metric's states (``ClasswiseWrapper``) cast them through their own
        ``_apply`` after the metric's, so a parent's ``.to(torch.bfloat16)`` assigns the metric a bfloat16 copy of
        its float64 state. A copy that is just this state rounded to a narrower dtype adds nothing, so the state
        stays as it is; any other tensor is cast to the state dtype (widening loses nothing).
        """
        if isinstance(value, Tensor) and value.is_floating_point() and name in self.__dict__.get("_defaults", ()):
            value = self._as_state(name, value)
        super().__setattr__(name, value)

    def _as_state(self, name: str, value: Tensor) -> Tensor:
        """``value`` in the state dtype, or the current state when ``value`` is only that state rounded."""
        want = P.state_dtype_for(value.device, self._wanted_state_dtype())
        if value.dtype == want:
            return value
        current = self.__dict__.get(name)
        if (
            isinstance(current, Tensor)
            and current.dtype == want
            and value.dtype.itemsize < want.itemsize
            and (current.shape, current.device) == (value.shape, value.device)
            and value.device.type != "meta"
            and torch.equal(current.to(value.dtype), value)
        ):
            return current
        return value.to(want)

    def _wanted_state_dtype(self) -> torch.dtype:
        """The dtype of the states where the device has it: float64 unless :meth:`set_dtype` chose another."""
        return getattr(self, "_state_dtype", STAT_DTYPE)

    def set_dtype(self: _Self, dst_type: str | torch.dtype) -> _Self:
        """Keep the states in ``dst_type`` from now on: the one call that changes their dtype.

        float64 is the default and loses nothing; a narrower floating dtype warns with a
        :class:`~hingemetrics.StatePrecisionWarning` that says what it costs (float32: 24 significant bits;
        float16: 11, and overflow to inf past 65504; bfloat16: 8). A non-floating dtype is refused. Module casts
        (``.half()``, ``.to(dtype)``, a parent's cast) never change the states.

        Example:
            >>> import warnings
            >>> import torch
            >>> from hingemetrics import BinaryHingeLoss
            >>> metric = BinaryHingeLoss()
            >>> with warnings.catch_warnings(record=True) as caught:
            ...     warnings.simplefilter("always")
            ...     _ = metric.set_dtype(torch.float32)
            >>> metric.loss_sum.dtype, caught[0].category.__name__
            (torch.float32, 'StatePrecisionWarning')
        """
        dtype = P.as_dtype(dst_type)
        if not dtype.is_floating_point:
            raise TypeError(f"Expected `dst_type` to be a floating-point dtype for the summed states, but got {dtype}.")
        if dtype != torch.float64:
            warnings.warn(
                f"{type(self).__name__}.set_dtype({dtype}) keeps the summed states in {dtype}: "
                f"{P.precision_cost(dtype)}.",
                P.StatePrecisionWarning,
                stacklevel=2,
            )
        self._dtype_convert = True
        try:
            torch.nn.Module.type(self, dtype)
        finally:
            self._dtype_convert = False
        return self

    def _cast_ignored(self, call: str, dtype: torch.dtype | None) -> None:
        """Warn that a cast called on the metric itself leaves the states as they are, when it would change them."""
        state = getattr(self, self._sum_states[0])
        if dtype is None or dtype == state.dtype or not (dtype.is_floating_point or dtype.is_complex):
            return
        warnings.warn(
            f"{type(self).__name__}.{call} leaves the {state.dtype} states as they are: module casts move a "
            f"metric but never change its state dtype. Call `metric.set_dtype({dtype})` to change it.",
            P.StatePrecisionWarning,
            stacklevel=3,
        )

    def type(self: _Self, dst_type: str | torch.dtype) -> _Self:
        """Leave the states as they are (warn if that is not ``dst_type``); use :meth:`set_dtype` to change them."""
        self._cast_ignored(f"type({dst_type})", P.as_dtype(dst_type))
        return self

    def float(self: _Self) -> _Self:
        """Leave the states as they are (warn if they are not float32); use :meth:`set_dtype` to change them."""
        self._cast_ignored("float()", torch.float32)
        return self

    def double(self: _Self) -> _Self:
        """Leave the states as they are (warn if they are not float64); use :meth:`set_dtype` to change them."""
        self._cast_ignored("double()", torch.float64)
        return self

    def half(self: _Self) -> _Self:
        """Leave the states as they are (warn if they are not float16); use :meth:`set_dtype` to change them."""
        self._cast_ignored("half()", torch.float16)
        return self

    def bfloat16(self: _Self) -> _Self:
        """Leave the states as they are (warn if they are not bfloat16); use :meth:`set_dtype` to change them."""
        self._cast_ignored("bfloat16()", torch.bfloat16)
        return self

    def to(self: _Self, *args: Any, **kwargs: Any) -> _Self:
        """Move the states to a device as ``nn.Module.to`` does; a dtype given here leaves them as they are.

        ``metric.to("cuda")`` and ``metric.to("cuda", torch.float16)`` both move the float64 states; the second
        also warns that the dtype was ignored (use :meth:`set_dtype`).
        """
        dtype = torch._C._nn._parse_to(*args, **kwargs)[1]
        self._cast_ignored("to(...)", dtype)
        return super().to(*args, **kwargs)

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


class WeightedSumStateMetric(SumStateMetric):
    """A metric whose statistics of ``(preds, target, sample_weight)`` come from one kernel, summed or per sample.

    The subclass implements :meth:`_weighted_statistics`; ``_batch_statistics`` is its sum over the batch and
    ``_sample_statistics`` its rows, one per sample: the same checks and the same element losses, reduced over
    the batch or over each sample's positions. A sample is a row of ``preds`` along dimension 0, unless ``preds``
    is a single sample without that dimension (binary: a 0-d score; multiclass: ``(C,)`` scores), one row.
    """

    def _batch_statistics(self, preds: Tensor, target: Tensor, sample_weight: Tensor | None) -> tuple[Tensor, ...]:
        return self._weighted_statistics(preds, target, sample_weight, per_sample=False)

    def _sample_statistics(
        self, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        """One row per sample of the batch's statistics; see :meth:`SumStateMetric._sample_statistics`."""
        return self._weighted_statistics(preds, target, sample_weight, per_sample=True)

    def _reduce_samples(
        self, reduction: RowReduction, preds: Tensor, target: Tensor, sample_weight: Tensor | None = None
    ) -> tuple[Tensor, ...]:
        """The total of ``reduction``'s fold of the per-sample rows, each chunk's folded in inside the kernel's loop."""
        return self._weighted_statistics(preds, target, sample_weight, per_sample=True, reduction=reduction)

    def _weighted_statistics(
        self,
        preds: Tensor,
        target: Tensor,
        sample_weight: Tensor | None,
        per_sample: bool,
        reduction: RowReduction | None = None,
    ) -> tuple[Tensor, ...]:
        """The checked statistics of a batch: summed, or one ``(N, *state_shape)`` row each (``per_sample``).

        With a ``reduction`` (which implies ``per_sample``): the total of its fold of those rows, chunk by chunk.
        """
        raise NotImplementedError(f"{type(self).__name__} has no `_weighted_statistics`.")

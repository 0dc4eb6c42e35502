"""``update`` without validation reads nothing back to the host, and the kernels compile as one graph.

* Meta tensors carry shapes and dtypes but no data: an update that runs on them cannot have read a value, taken a
  data-dependent shape or branched in Python on the data. Every metric runs its ``validate_args=False`` update on
  them; the same update with validation on is refused there with a clear error, and past that refusal it must fail
  on the first value it reads, which shows the test can tell the difference.
* With CUDA, ``torch.cuda.set_sync_debug_mode("error")`` turns any synchronisation into an error (skipped here
  without a GPU).
* COMPILE TESTS (the slowest here, about a second each on 2 cores): each kernel goes through
  ``torch.compile(fullgraph=True)``, which fails on any graph break, with the ``aot_eager`` backend (Dynamo and
  AOTAutograd trace the whole graph; no C++ is compiled, which would take minutes on a small CPU), on a few small
  inputs, and must give the eager result.
"""

from __future__ import annotations

from collections.abc import Callable
from functools import partial
from typing import Any

import pytest
import torch
from torchmetrics import Metric

import hingemetrics as hm
from hingemetrics.functional import _checks as C
from hingemetrics.functional._binary import _binary_hinge_update
from hingemetrics.functional._multiclass import _multiclass_hinge_update
from hingemetrics.functional._multilabel import _multilabel_hinge_update
from hingemetrics.functional._ranking import _multilabel_margin_plan, _triplet_plan, summed

Batch = dict[str, torch.Tensor]


def _binary_batch(gen: torch.Generator, n: int = 12) -> Batch:
    target = torch.randint(0, 2, (n, 3), generator=gen)
    target[0, 0] = -100
    return {
        "preds": torch.randn(n, 3, generator=gen) * 2,
        "target": target,
        "sample_weight": torch.rand(n, generator=gen),
    }


def _multiclass_batch(gen: torch.Generator, n: int = 12, c: int = 5) -> Batch:
    target = torch.randint(0, c, (n,), generator=gen)
    target[1] = -100
    return {
        "preds": torch.randn(n, c, generator=gen) * 2,
        "target": target,
        "sample_weight": torch.rand(n, generator=gen),
    }


def _one_hot_batch(gen: torch.Generator, n: int = 12, c: int = 5) -> Batch:
    batch = _multiclass_batch(gen, n, c)
    batch["target"] = torch.nn.functional.one_hot(batch["target"].clamp_min(0), c)
    return batch


def _multilabel_batch(gen: torch.Generator, n: int = 12, labels: int = 4) -> Batch:
    target = torch.randint(0, 2, (n, labels), generator=gen)
    target[2, 1] = -100
    return {"preds": torch.rand(n, labels, generator=gen), "target": target}


def _embedding_batch(gen: torch.Generator, n: int = 12) -> Batch:
    return {"preds": torch.rand(n, generator=gen) * 2, "target": torch.randint(0, 2, (n,), generator=gen) * 2 - 1}


def _ranking_batch(gen: torch.Generator, n: int = 12) -> Batch:
    x1, x2 = torch.randn(2, n, generator=gen)
    target = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    return {"preds1": x1, "preds2": x2, "target": target, "sample_weight": torch.rand(n, generator=gen)}


def _triplet_batch(gen: torch.Generator, n: int = 12) -> Batch:
    a, p, neg = torch.randn(3, n, 4, generator=gen)
    return {"anchor": a, "positive": p, "negative": neg, "sample_weight": torch.rand(n, generator=gen)}


def _cosine_batch(gen: torch.Generator, n: int = 12) -> Batch:
    x1, x2 = torch.randn(2, n, 3, generator=gen)
    target = torch.randint(0, 2, (n,), generator=gen) * 2 - 1
    return {"preds1": x1, "preds2": x2, "target": target, "sample_weight": torch.rand(n, generator=gen)}


def _multilabel_margin_batch(gen: torch.Generator, n: int = 12, labels: int = 4, index: bool = False) -> Batch:
    target = torch.randint(0, 2, (n, labels), generator=gen)
    if index:  # torch's format: the true labels first, then -1 padding
        order = torch.sort(-target, dim=1, stable=True).indices
        target = torch.where(target.gather(1, order) == 1, order, -1)
    return {"preds": torch.randn(n, labels, generator=gen), "target": target}


# (name, metric factory taking validate_args, batch factory)
METRICS: list[tuple[str, Callable[[bool], Metric], Callable[[torch.Generator], Batch]]] = [
    ("binary-auto", lambda v: hm.BinaryHingeLoss(validate_args=v, normalization="auto"), _binary_batch),
    (
        "binary-auto-ignore",
        lambda v: hm.BinaryHingeLoss(True, -100, v, normalization="auto"),
        _binary_batch,
    ),
    ("binary-raw", lambda v: hm.BinaryHingeLoss(validate_args=v, ignore_index=-100), _binary_batch),
    (
        "binary-sigmoid",
        lambda v: hm.BinaryHingeLoss(validate_args=v, normalization="sigmoid", ignore_index=-100),
        _binary_batch,
    ),
]
for _mode in ("crammer-singer", "one-vs-all", "weston-watkins"):
    for _norm in (None, "auto", "softmax"):
        METRICS.append(
            (
                f"multiclass-{_mode}-{_norm}",
                partial(
                    lambda v, mode, norm: hm.MulticlassHingeLoss(
                        5, multiclass_mode=mode, ignore_index=-100, validate_args=v, normalization=norm
                    ),
                    mode=_mode,
                    norm=_norm,
                ),
                _multiclass_batch,
            )
        )
    METRICS.append(
        (
            f"multiclass-{_mode}-one-hot-auto",
            partial(
                lambda v, mode: hm.MulticlassHingeLoss(5, multiclass_mode=mode, validate_args=v, normalization="auto"),
                mode=_mode,
            ),
            _one_hot_batch,
        )
    )
METRICS += [
    (
        "multiclass-categorical-class-weight",
        lambda v: hm.MulticlassHingeLoss(
            5, multiclass_mode="categorical", ignore_index=-100, validate_args=v, class_weight=[1, 2, 3, 4, 5]
        ),
        _multiclass_batch,
    ),
    (
        "multiclass-weston-watkins-class-weight-negative-margin",
        lambda v: hm.MulticlassHingeLoss(
            5, True, "weston-watkins", -100, v, margin=-0.5, class_weight=[0.5, 1, 1, 1, 2]
        ),
        _multiclass_batch,
    ),
    (
        "multilabel-auto-ignore",
        lambda v: hm.MultilabelHingeLoss(4, ignore_index=-100, validate_args=v, normalization="auto"),
        _multilabel_batch,
    ),
    ("embedding", lambda v: hm.HingeEmbeddingLoss(validate_args=v), _embedding_batch),
    ("margin-ranking", lambda v: hm.MarginRankingLoss(0.5, validate_args=v), _ranking_batch),
    ("triplet-p1-swap", lambda v: hm.TripletMarginLoss(p=1.0, swap=True, validate_args=v), _triplet_batch),
    (
        "triplet-distance-function",
        lambda v: hm.TripletMarginLoss(distance_function=torch.nn.PairwiseDistance(3.0), validate_args=v),
        _triplet_batch,
    ),
    ("cosine-embedding", lambda v: hm.CosineEmbeddingLoss(0.2, validate_args=v), _cosine_batch),
    (
        "multilabel-margin-auto-multi-hot",
        lambda v: hm.MultilabelMarginLoss(4, validate_args=v),
        _multilabel_margin_batch,
    ),
    (
        "multilabel-margin-auto-index",
        lambda v: hm.MultilabelMarginLoss(4, validate_args=v),
        partial(_multilabel_margin_batch, index=True),
    ),
    (
        "multilabel-margin-index",
        lambda v: hm.MultilabelMarginLoss(4, validate_args=v, target_format="index"),
        partial(_multilabel_margin_batch, index=True),
    ),
]
IDS = [name for name, _, _ in METRICS]


def _on(batch: Batch, device: str | torch.device) -> Batch:
    return {k: v.to(device) for k, v in batch.items()}


@pytest.mark.parametrize(("name", "make", "draw"), METRICS, ids=IDS)
def test_update_without_validation_runs_on_data_free_meta_tensors(name, make, draw):
    metric = make(False).to("meta")
    batch = _on(draw(torch.Generator().manual_seed(0)), "meta")
    metric.update(**batch)
    metric.update(**batch)
    for state in metric._defaults:
        assert getattr(metric, state).device.type == "meta"


@pytest.mark.parametrize(("name", "make", "draw"), METRICS, ids=IDS)
def test_update_with_validation_reads_values_so_it_cannot_run_on_meta(name, make, draw, monkeypatch):
    metric = make(True).to("meta")
    batch = _on(draw(torch.Generator().manual_seed(0)), "meta")
    with pytest.raises(ValueError) as info:
        metric.update(**batch)
    assert "got meta tensors (shapes without data). Pass `validate_args=False` to run on meta tensors" in str(
        info.value
    )
    assert metric.update_count == 0
    # past that refusal the value checks read the data, which meta tensors do not have
    monkeypatch.setattr(C, "refuse_meta", lambda validate_args, preds: None)
    with pytest.raises((NotImplementedError, RuntimeError)):
        metric.update(**batch)


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA: the sync debug mode exists only there")
@pytest.mark.parametrize(("name", "make", "draw"), METRICS, ids=IDS)
def test_update_without_validation_never_synchronises_cuda(name, make, draw):
    metric = make(False).to("cuda")
    batch = _on(draw(torch.Generator().manual_seed(0)), "cuda")
    metric.update(**batch)  # the first call may set things up (allocator, kernels)
    torch.cuda.synchronize()
    torch.cuda.set_sync_debug_mode("error")
    try:
        metric.update(**batch)
        metric.update(**batch)
    finally:
        torch.cuda.set_sync_debug_mode("default")
    reference = make(True).to("cuda")
    reference.update(**batch)
    reference.update(**batch)
    reference.update(**batch)
    torch.testing.assert_close(metric.compute(), reference.compute())


# ----------------------------------------------------------------------------------------- compile tests (slow)
def _binary_kernel(preds, target, sample_weight):
    return _binary_hinge_update(
        preds,
        target,
        margin=0.8,
        squared=False,
        ignore_index=-100,
        normalization="auto",
        sample_weight=sample_weight,
    )


def _multiclass_kernel(
    mode: str, normalization: str | None, **options: Any
) -> Callable[..., tuple[torch.Tensor, torch.Tensor]]:
    """The multiclass update as a function of the batch; ``options`` replace the margin and squaring or add
    ``class_weight``."""
    settings = {"margin": 1.0, "squared": True, **options}

    def kernel(preds, target, sample_weight):
        return _multiclass_hinge_update(
            preds,
            target,
            num_classes=5,
            multiclass_mode=mode,
            ignore_index=-100,
            normalization=normalization,
            sample_weight=sample_weight,
            **settings,
        )

    return kernel


def _multilabel_kernel(preds, target):
    return _multilabel_hinge_update(
        preds,
        target,
        num_labels=4,
        margin=1.0,
        squared=False,
        ignore_index=-100,
        normalization="auto",
        sample_weight=None,
    )


def _multilabel_margin_kernel(preds, target):
    plan = _multilabel_margin_plan(preds, target, None, num_labels=4, margin=1.0, target_format="auto")
    return summed(plan)


def _triplet_kernel(anchor, positive, negative, sample_weight):
    plan = _triplet_plan(
        anchor, positive, negative, sample_weight, margin=1.0, p=1.0, eps=1e-6, swap=True, distance_function=None
    )
    return summed(plan)


COMPILED = [
    ("binary-auto-ignore-weighted", _binary_kernel, _binary_batch),
    ("multiclass-crammer-singer-auto", _multiclass_kernel("crammer-singer", "auto"), _multiclass_batch),
    ("multiclass-one-vs-all-softmax", _multiclass_kernel("one-vs-all", "softmax"), _multiclass_batch),
    ("multiclass-weston-watkins-raw", _multiclass_kernel("weston-watkins", None), _multiclass_batch),
    ("multilabel-auto-ignore", _multilabel_kernel, _multilabel_batch),
    ("multilabel-margin-auto-index", _multilabel_margin_kernel, partial(_multilabel_margin_batch, index=True)),
    ("triplet-p1-swap-weighted", _triplet_kernel, _triplet_batch),
    (
        "multiclass-categorical-class-weight-raw",
        _multiclass_kernel(
            "categorical", None, margin=0.0, squared=False, class_weight=torch.tensor([1.0, 2.0, 0.5, 0.0, 1.0])
        ),
        _multiclass_batch,
    ),
]


@pytest.mark.parametrize(("name", "kernel", "draw"), COMPILED, ids=[c[0] for c in COMPILED])
def test_the_kernel_compiles_as_one_graph_and_matches_eager(name, kernel, draw):
    torch._dynamo.reset()
    compiled = torch.compile(kernel, fullgraph=True, backend="aot_eager", dynamic=False)
    for seed, scale in ((0, 1.0), (1, 0.1)):  # logits, then values inside [0, 1]: both sides of "auto"
        batch = draw(torch.Generator().manual_seed(seed))
        first = next(iter(batch))  # the scores (or the anchors)
        batch[first] = batch[first] * scale if scale == 1.0 else batch[first].sigmoid()
        eager, traced = kernel(**batch), compiled(**batch)
        for ours, expected in zip(traced, eager, strict=True):
            torch.testing.assert_close(ours, expected, rtol=1e-6, atol=1e-9)


def test_the_compile_check_fails_on_data_dependent_branching():
    def branches(x):
        return x * 2 if x.sum() > 0 else x

    with pytest.raises(torch._dynamo.exc.Unsupported):
        torch.compile(branches, fullgraph=True, backend="aot_eager")(torch.ones(3))

"""The fast update path: chunking, the batch-wide "auto" decision, the softmax shortcut, the fused value checks.

Each test compares the fast path with something computed another way: the same update in one chunk, the plain
references, float64 arithmetic written out here, or the element-by-element checks that the fused ones replace.
"""

from __future__ import annotations

import math

import numpy as np
import pytest
import torch

import hingemetrics as hm
from hingemetrics.benchmark.update import peak_temporary_bytes
from hingemetrics.functional import _checks as C
from hingemetrics.functional import _common, binary_hinge_loss, multiclass_hinge_loss, multilabel_hinge_loss
from hingemetrics.functional._binary import _binary_hinge_check_tensors, _binary_hinge_update
from hingemetrics.functional._common import index_blocks, outside_unit_interval, take
from hingemetrics.functional._multiclass import _multiclass_hinge_check_tensors
from tests import reference as ref
from tests.cases import CASES, cat_batches, draw_batches, map_inputs

TINY_CHUNK = 16  # elements: a batch of a few dozen rows spans several chunks


@pytest.fixture
def tiny_chunks(monkeypatch):
    monkeypatch.setattr(_common, "CPU_CHUNK_ELEMENTS", TINY_CHUNK)


def _batches(case, sizes=(37, 1, 50), seed=0):
    return draw_batches(case, sizes, seed)


def _result(case, batches):
    metric = case.make()
    for batch in batches:
        metric.update(**batch)
    return metric.compute().numpy()


# --------------------------------------------------------------------------------------------------- chunking
def _positions(shape, blocks):
    """The index positions each block covers, in order, read off a tensor of position numbers."""
    numbers = torch.arange(int(np.prod(shape))).reshape(shape)
    return [take(numbers, block, False).tolist() for block in blocks]


@pytest.mark.parametrize("shape", [(10,), (7, 3), (2, 5, 6), (3, 1, 9), (0, 4)])
def test_blocks_cover_the_index_space_once_in_order(shape, tiny_chunks):
    blocks = index_blocks(shape, 1, torch.device("cpu"))
    assert [i for part in _positions(shape, blocks) for i in part] == list(range(int(np.prod(shape))))


def test_cpu_chunks_stay_below_torchs_grain_size():
    # torch splits an operation over its threads only from the grain size on: below it, a chunk's steps run on
    # the calling thread, and no thread setting is needed to keep them there. A sample larger than a chunk is
    # split along its positions (an image's rows, then its pixels); only one position of more classes than a
    # chunk holds is a chunk of its own.
    cpu = torch.device("cpu")
    for shape, row_size in [((10**6,), 1), ((10**6,), 10), ((5000, 7), 1), ((3, 40000), 1), ((2, 300, 300), 10)]:
        sizes = {len(part) * row_size for part in _positions(shape, index_blocks(shape, row_size, cpu))}
        assert max(sizes) < _common.TORCH_GRAIN_SIZE
    assert {len(part) for part in _positions((3,), index_blocks((3,), 40000, cpu))} == {1}


def test_the_tiny_chunks_do_split_the_test_batches(tiny_chunks):
    assert len(index_blocks((50,), 4, torch.device("cpu"))) > 5
    assert len(index_blocks((2, 5, 6), 4, torch.device("cpu"))) > 5  # a sample is larger than a chunk


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_many_chunks_give_the_reference_value(case, tiny_chunks):
    batches = _batches(case)
    np.testing.assert_allclose(_result(case, batches), case.oracle(cat_batches(batches)), rtol=1e-6)


@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_many_chunks_and_one_chunk_differ_only_by_float64_rounding(case, monkeypatch):
    batches = _batches(case, sizes=(64,))
    one_chunk = _result(case, batches)
    monkeypatch.setattr(_common, "CPU_CHUNK_ELEMENTS", TINY_CHUNK)
    # a softmax or sigmoid is float32 work that vectorised kernels may round differently in a chunk of another size
    rtol = 1e-6 if case.kwargs.get("normalization") else 1e-12
    np.testing.assert_allclose(_result(case, batches), one_chunk, rtol=rtol, atol=1e-15)


def test_auto_decides_once_for_the_whole_batch_not_per_chunk(tiny_chunks):
    # every chunk but the last holds probabilities; one logit at the very end makes torchmetrics squash all
    gen = torch.Generator().manual_seed(0)
    preds, target = torch.rand(200, generator=gen), torch.randint(0, 2, (200,), generator=gen)
    preds[-1] = 3.0
    auto = binary_hinge_loss(preds, target, normalization="auto")
    expected = ref.binary_hinge(preds.double().sigmoid().numpy(), target.numpy())
    assert auto.item() == pytest.approx(expected, rel=1e-6)

    scores = torch.rand(60, 4, generator=gen)
    labels = torch.randint(0, 4, (60,), generator=gen)
    scores[-1, 0] = -2.0
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins"):
        expected = ref.multiclass_hinge(scores.double().softmax(1).numpy(), labels.numpy(), mode=mode)
        ours = multiclass_hinge_loss(scores, labels, 4, multiclass_mode=mode, normalization="auto")
        np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize(
    ("values", "valid", "expected"),
    [
        ([0.0, 1.0, 0.5], None, False),
        ([0.0, 1.0, 1.5], None, True),
        ([-0.1, 0.5], None, True),
        ([0.2, math.nan], None, True),  # NaN is not in [0, 1], as for torchmetrics
        ([0.2, 7.0], [True, False], False),  # the only value outside is not counted
        ([0.2, 7.0], [False, True], True),
        ([], None, False),
    ],
)
def test_outside_unit_interval(values, valid, expected, tiny_chunks):
    scores = torch.tensor(values)
    if valid is None:
        assert bool(outside_unit_interval(scores)) is expected
        return
    mask, cpu = torch.tensor(valid), torch.device("cpu")

    def counted(block):
        return torch.where(take(mask, block, False), take(scores, block, False), 0.5)

    assert bool(outside_unit_interval(scores, index_blocks(scores.shape, 1, cpu), counted)) is expected
    rows = scores.reshape(-1, 1).expand(-1, 3)  # whole rows masked at once

    def counted_rows(block):
        return torch.where(take(mask, block, False).unsqueeze(1), take(rows, block, True), 0.5)

    assert bool(outside_unit_interval(rows, index_blocks(rows.shape[:1], 3, cpu), counted_rows)) is expected


# --------------------------------------------------------------------------------------- softmax, done sparingly
def _softmax_reference(scores, target, mode, margin=1.0, squared=False):
    probs = scores.double().softmax(1).numpy()
    return ref.multiclass_hinge(probs, target.numpy(), mode=mode, margin=margin, squared=squared)


@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins"])
@pytest.mark.parametrize("num_classes", [3, 80])  # below and above the width where torch's own softmax is used
def test_softmax_matches_float64_softmax_even_for_huge_logits(mode, num_classes, tiny_chunks):
    gen = torch.Generator().manual_seed(1)
    scores = torch.randn(40, num_classes, generator=gen) * 3
    scores[:5] += 500.0  # exp would overflow without the shift by the row maximum
    target = torch.randint(0, num_classes, (40,), generator=gen)
    ours = multiclass_hinge_loss(scores, target, num_classes, True, mode, normalization="softmax")
    assert torch.isfinite(ours).all()
    np.testing.assert_allclose(ours.numpy(), _softmax_reference(scores, target, mode, squared=True), rtol=2e-5)


@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins"])
@pytest.mark.parametrize("num_classes", [4, 70])
def test_softmax_path_is_differentiable(mode, num_classes):
    gen = torch.Generator().manual_seed(2)
    preds = torch.randn(6, num_classes, generator=gen, dtype=torch.float64).requires_grad_(True)
    target = torch.randint(0, num_classes, (6,), generator=gen)
    # a margin of 2 keeps every term of the softmaxed hinge away from its kink at 0
    assert torch.autograd.gradcheck(
        lambda p: multiclass_hinge_loss(p, target, num_classes, False, mode, margin=2.0, normalization="softmax"),
        (preds,),
    )


# ----------------------------------------------------------------------------------------- fused value checks
def _message(call):
    try:
        call()
    except ValueError as err:
        return str(err)
    return None


@pytest.mark.parametrize(
    ("target", "ignore_index"),
    [
        ([1, 0, 1], None),
        ([1, -1, -1], None),
        ([1, 0, -1], None),
        ([1, 0, -1], -1),
        ([1, -1, 0], 0),
        ([1, 2, 0], None),
        ([1, 2, 0], 2),
        ([-1, -2, 1], None),
        ([0.0, 1.0, 0.5], None),
        ([0.0, 1.0, math.nan], None),
        ([0.0, 1.0, math.inf], None),
        ([-1.0, 1.0, 1.0], None),
        ([-1.0, 0.0, 1.0], None),
        ([3, 3, 3], 3),
    ],
)
def test_fused_binary_checks_agree_with_the_element_wise_ones(target, ignore_index):
    labels = torch.tensor(target)
    preds = torch.zeros(labels.shape)
    fused = _message(lambda: C.check_binary_values(preds, labels, None, ignore_index))
    element_wise = _message(lambda: C.check_binary_target_values(labels, ignore_index))
    assert fused == element_wise


@pytest.mark.parametrize(
    ("target", "ignore_index"),
    [
        ([0, 3, 2], None),
        ([0, 4, 2], None),
        ([0, -1, 2], None),
        ([0, -1, 2], -1),
        ([0, 9, 2], 9),
        ([0.0, 1.5, 2.0], None),
        ([0.0, math.nan, 2.0], None),
    ],
)
def test_fused_class_checks_agree_with_the_element_wise_ones(target, ignore_index):
    labels = torch.tensor(target)
    preds = torch.zeros(labels.shape[0], 4)
    fused = _message(lambda: C.check_class_values(preds, labels, None, 4, ignore_index))
    element_wise = _message(lambda: C.check_class_target_values(labels, 4, ignore_index, "class"))
    assert fused == element_wise


@pytest.mark.parametrize(
    ("values", "message"),
    [
        ([0.5, math.inf], "Expected `preds` to hold only finite values, but found inf."),
        ([math.nan, 0.5], "Expected `preds` to hold only finite values, but found nan."),
        ([0.5, 0.25], None),
    ],
)
@pytest.mark.parametrize("dtype", [torch.float16, torch.bfloat16, torch.float32, torch.float64])
def test_fused_finite_check_in_every_float_dtype(values, message, dtype):
    preds = torch.tensor(values, dtype=dtype)
    assert _message(lambda: C.check_binary_values(preds, torch.tensor([1, 0]), None, None)) == message


@pytest.mark.parametrize(
    ("weights", "message"),
    [
        ([1.0, -0.5], "Expected `sample_weight` to be non-negative, but found -0.5."),
        ([1.0, math.nan], "Expected `sample_weight` to hold only finite values, but found nan."),
        ([2, 0], None),
    ],
)
def test_fused_weight_check(weights, message):
    sample_weight = torch.tensor(weights)
    preds, target = torch.zeros(2), torch.tensor([1, 0])
    assert _message(lambda: C.check_binary_values(preds, target, sample_weight, None)) == message
    assert _message(lambda: C.check_class_values(torch.zeros(2, 2), target, sample_weight, 2, None)) == message


def test_one_hot_rows_are_checked_in_the_same_read():
    preds = torch.zeros(3, 3)
    good = torch.eye(3, dtype=torch.int64)
    assert _message(lambda: multiclass_hinge_loss(preds, good, 3)) is None
    for bad in (torch.tensor([[1, 0, 0], [0, 1, 1], [0, 0, 1]]), torch.tensor([[1, 0, 0], [0, 0, 0], [0, 0, 1]])):
        assert "one-hot" in _message(lambda bad=bad: multiclass_hinge_loss(preds, bad, 3))


# ---------------------------------------------------------------------------------------------- memory bound
MEMORY_CASES = [
    ("binary-auto", lambda: hm.BinaryHingeLoss(normalization="auto"), (1 << 20,), 2),
    ("crammer-singer-auto", lambda: hm.MulticlassHingeLoss(10, normalization="auto"), (1 << 19, 10), 10),
    (
        "one-vs-all-auto",
        lambda: hm.MulticlassHingeLoss(10, multiclass_mode="one-vs-all", normalization="auto"),
        (1 << 19, 10),
        10,
    ),
    (
        "weston-watkins-raw",
        lambda: hm.MulticlassHingeLoss(10, multiclass_mode="weston-watkins", validate_args=False),
        (1 << 19, 10),
        10,
    ),
    (
        "categorical-class-weight",
        lambda: hm.MulticlassHingeLoss(10, multiclass_mode="categorical", class_weight=[1.0] * 5 + [2.0] * 5),
        (1 << 19, 10),
        10,
    ),
]


@pytest.mark.parametrize(("name", "make", "shape", "classes"), MEMORY_CASES, ids=[m[0] for m in MEMORY_CASES])
def test_temporary_memory_of_an_update_stays_below_twice_the_input(name, make, shape, classes):
    gen = torch.Generator().manual_seed(0)
    preds = torch.randn(shape, generator=gen)
    target = torch.randint(0, classes, shape[:1], generator=gen)
    metric = make()
    metric.update(preds, target)
    peak = peak_temporary_bytes(lambda: metric.update(preds, target), torch.device("cpu"))
    input_bytes = preds.numel() * preds.element_size() + target.numel() * target.element_size()
    assert peak is not None
    assert 0 < peak <= 2 * input_bytes


def test_multilabel_chunked_equals_reference(tiny_chunks):
    gen = torch.Generator().manual_seed(5)
    preds, target = torch.randn(30, 3, generator=gen), torch.randint(0, 2, (30, 3), generator=gen)
    ours = multilabel_hinge_loss(preds, target, 3, average="none")
    expected = [ref.binary_hinge(preds[:, j].double().numpy(), target[:, j].numpy()) for j in range(3)]
    np.testing.assert_allclose(ours.numpy(), expected, rtol=1e-6)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("case", CASES, ids=[c.name for c in CASES])
def test_an_update_never_writes_into_its_inputs(case, dtype, tiny_chunks):
    batch = map_inputs(case, case.draw(torch.Generator().manual_seed(4), 20), lambda x: x.to(dtype))
    before = {k: v.clone() for k, v in batch.items()}
    case.make().update(**batch)
    for k, v in batch.items():
        assert torch.equal(v, before[k]), k


@pytest.mark.parametrize("normalization", [None, "auto", "softmax"])
@pytest.mark.parametrize("mode", ["crammer-singer", "one-vs-all", "weston-watkins", "categorical"])
def test_a_multiclass_update_never_writes_into_float64_scores(mode, normalization):
    preds = torch.randn(30, 4, generator=torch.Generator().manual_seed(5), dtype=torch.float64)
    target = torch.arange(30) % 4
    before = preds.clone()
    multiclass_hinge_loss(preds, target, 4, multiclass_mode=mode, normalization=normalization)
    assert torch.equal(preds, before)


@pytest.mark.parametrize(
    "labels",
    [
        [0.3, 0.0, -0.7, 2.0, math.nan, 0.5],
        [1, 0, -1, 2, -100, 7],
        [True, False, False, True, False, True],
    ],
)
def test_without_validation_a_binary_label_is_positive_exactly_where_it_is_above_zero(labels):
    target = torch.tensor(labels)
    preds = torch.tensor([0.4, -0.2, 1.5, -3.0, 0.8, 0.1])
    y = np.where(target.double().numpy() > 0, 1.0, -1.0)  # NaN > 0 is False: negative
    expected = np.maximum(0.0, 1.0 - y * preds.double().numpy()).mean()
    assert binary_hinge_loss(preds, target, validate_args=False).item() == pytest.approx(expected, rel=1e-6)


# ------------------------------------------------------------------ "auto" settled from the value check's read
def _auto_binary(preds, target, extrema=None):
    return _binary_hinge_update(
        preds,
        target,
        margin=1.0,
        squared=False,
        ignore_index=None,
        normalization="auto",
        sample_weight=None,
        score_extrema=extrema,
    )[0].item()


def test_the_value_check_hands_back_the_extrema_it_read():
    preds, target = torch.rand(8) * 3 - 1, torch.randint(0, 2, (8,))
    assert _binary_hinge_check_tensors(preds, target, None, None, True) == (preds.min().item(), preds.max().item())
    assert _binary_hinge_check_tensors(preds, target, None, None, False) is None  # no value check, nothing read
    assert _binary_hinge_check_tensors(preds[:0], target[:0], None, None, True) is None
    scores, labels = torch.randn(6, 3), torch.randint(0, 3, (6,))
    extrema = _multiclass_hinge_check_tensors(scores, labels, None, 3, None, True)
    assert extrema == (scores.min().item(), scores.max().item())


def test_an_update_decides_auto_from_the_extrema_it_is_given_and_on_the_device_without():
    gen = torch.Generator().manual_seed(6)
    preds, target = torch.rand(50, generator=gen) * 10 - 5, torch.randint(0, 2, (50,), generator=gen)
    squashed = ref.binary_hinge(preds.double().sigmoid().numpy(), target.numpy())
    raw = ref.binary_hinge(preds.double().numpy(), target.numpy())
    assert _auto_binary(preds, target) / 50 == pytest.approx(squashed, rel=1e-6)  # decided on the device
    assert _auto_binary(preds, target, (preds.min().item(), preds.max().item())) / 50 == pytest.approx(squashed)
    assert _auto_binary(preds, target, (0.0, 1.0)) / 50 == pytest.approx(raw, rel=1e-6)  # what it was told


@pytest.mark.parametrize("scale", [1.0, 6.0])  # inside [0, 1], then logits
def test_auto_settled_on_the_host_matches_auto_decided_on_the_device(scale):
    gen = torch.Generator().manual_seed(7)
    preds = torch.rand(300, 5, generator=gen) * scale - (scale - 1) / 2
    target = torch.randint(0, 5, (300,), generator=gen)
    for mode in ("crammer-singer", "one-vs-all", "weston-watkins"):
        checked = multiclass_hinge_loss(preds, target, 5, multiclass_mode=mode, normalization="auto")
        unchecked = multiclass_hinge_loss(
            preds, target, 5, multiclass_mode=mode, normalization="auto", validate_args=False
        )
        np.testing.assert_allclose(checked.numpy(), unchecked.numpy(), rtol=1e-6)
    binary, labels = preds[:, 0], target % 2
    assert binary_hinge_loss(binary, labels, normalization="auto").item() == pytest.approx(
        binary_hinge_loss(binary, labels, normalization="auto", validate_args=False).item(), rel=1e-6
    )


# ------------------------------------------------------------------------------------------------- layouts
def _layouts(x: torch.Tensor) -> dict[str, torch.Tensor]:
    """The same values in other memory layouts: none of them is contiguous, and only some are dense."""
    layouts = {"contiguous": x, "gaps": torch.stack([x, torch.zeros_like(x)], -1)[..., 0]}  # every other element
    if x.dim() >= 2:
        layouts["transposed"] = x.transpose(0, 1).contiguous().transpose(0, 1)
    if x.dim() >= 3:
        layouts["last two swapped"] = x.transpose(-1, -2).contiguous().transpose(-1, -2)  # they do not merge
    if x.dim() == 4:
        layouts["channels_last"] = x.contiguous(memory_format=torch.channels_last)
    return layouts


def _layout_batches(batch: dict[str, torch.Tensor]) -> dict[str, dict[str, torch.Tensor]]:
    """The batch in each layout (every tensor of it in the same one, where it has that layout)."""
    per_tensor = {name: _layouts(t) for name, t in batch.items()}
    kinds = {kind for layouts in per_tensor.values() for kind in layouts}
    return {kind: {name: layouts.get(kind, batch[name]) for name, layouts in per_tensor.items()} for kind in kinds}


def _image_batch(gen: torch.Generator, family: str) -> dict[str, torch.Tensor]:
    """(3, 4, 5, 6) scores: a sample (120 elements) is larger than a tiny chunk, so the blocks split its positions."""
    preds = torch.randn(3, 4, 5, 6, generator=gen) * 2
    if family == "multiclass":
        target = torch.randint(0, 4, (3, 5, 6), generator=gen)
        target[0, 1] = -100
        return {"preds": preds, "target": target, "sample_weight": torch.rand(3, 5, 6, generator=gen)}
    if family == "one-hot":
        target = torch.nn.functional.one_hot(torch.randint(0, 4, (3, 5, 6), generator=gen), 4).movedim(-1, 1)
        return {"preds": preds, "target": target, "sample_weight": torch.rand(3, generator=gen)}
    target = torch.randint(0, 2, (3, 4, 5, 6), generator=gen)
    target[1, 2, 3] = -100
    return {"preds": preds, "target": target, "sample_weight": torch.rand(3, 4, 5, 6, generator=gen)}


def _image_reference(family: str, batch, mode: str | None = None):
    scores, target = batch["preds"].double().numpy(), batch["target"].numpy()
    if family == "multilabel":
        weight = batch["sample_weight"].double().numpy()
        return ref.multilabel_hinge(scores, target, average="none", weight=weight, ignore_index=-100)
    if family == "one-hot":
        weight = np.broadcast_to(batch["sample_weight"].double().numpy()[:, None, None], (3, 5, 6))
        return ref.multiclass_hinge(scores, target.argmax(1), mode=mode, weight=weight)
    weight = batch["sample_weight"].double().numpy()
    return ref.multiclass_hinge(scores, target, mode=mode, weight=weight, ignore_index=-100)


IMAGE_METRICS = [
    *[
        (f"{family}-{mode}", family, mode)
        for family in ("multiclass", "one-hot")
        for mode in ("crammer-singer", "one-vs-all", "weston-watkins", "categorical")
    ],
    ("multilabel", "multilabel", None),
]


@pytest.mark.parametrize("validate_args", [True, False])
@pytest.mark.parametrize(("name", "family", "mode"), IMAGE_METRICS, ids=[m[0] for m in IMAGE_METRICS])
def test_every_layout_gives_the_reference_value(name, family, mode, validate_args, tiny_chunks):
    batch = _image_batch(torch.Generator().manual_seed(8), family)
    if family == "multilabel":
        make = lambda: hm.MultilabelHingeLoss(4, average="none", ignore_index=-100, validate_args=validate_args)  # noqa: E731
    else:
        ignore_index = -100 if family == "multiclass" else None
        make = lambda: hm.MulticlassHingeLoss(  # noqa: E731
            4, multiclass_mode=mode, ignore_index=ignore_index, validate_args=validate_args
        )
    want = _image_reference(family, batch, mode)
    for kind, laid_out in _layout_batches(batch).items():
        assert kind == "contiguous" or not laid_out["preds"].is_contiguous()
        metric = make()
        metric.update(**laid_out)
        np.testing.assert_allclose(metric.compute().numpy(), want, rtol=1e-6, err_msg=kind)


@pytest.mark.parametrize("validate_args", [True, False])
def test_every_layout_gives_the_same_binary_embedding_and_margin_values(validate_args, tiny_chunks):
    gen = torch.Generator().manual_seed(9)
    scores, labels = torch.randn(3, 5, 6, generator=gen) * 2, torch.randint(0, 2, (3, 5, 6), generator=gen)
    weight = torch.rand(3, generator=gen)
    classes, index = torch.randn(3, 4, 5, 6, generator=gen), torch.randint(0, 4, (3, 5, 6), generator=gen)
    metrics = [
        (lambda: hm.BinaryHingeLoss(validate_args=validate_args), {"preds": scores, "target": labels}),
        (
            lambda: hm.BinaryHingeLoss(True, validate_args=validate_args, normalization="auto"),
            {"preds": scores, "target": labels, "sample_weight": weight},
        ),
        (lambda: hm.HingeEmbeddingLoss(validate_args=validate_args), {"preds": scores.abs(), "target": labels * 2 - 1}),
        (lambda: hm.MarginDistribution(bins=8, validate_args=validate_args), {"preds": scores, "target": labels}),
        (
            lambda: hm.MarginDistribution("multiclass", 4, bins=8, validate_args=validate_args),
            {"preds": classes, "target": index},
        ),
    ]
    for make, batch in metrics:
        results = {}
        for kind, laid_out in _layout_batches(batch).items():
            metric = make()
            metric.update(**laid_out)
            results[kind] = metric.compute()
        first = results.pop("contiguous")
        for kind, result in results.items():
            for ours, expected in zip(
                result if isinstance(result, tuple) else (result,), first if isinstance(first, tuple) else (first,)
            ):
                np.testing.assert_allclose(ours.numpy(), expected.numpy(), rtol=1e-12, err_msg=kind)


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
def test_exp_of_nonpositive_agrees_with_exp_in_float64(dtype):
    values = -torch.logspace(-8, 2.5, 2001, dtype=torch.float64).to(dtype)
    values = torch.cat([values, torch.zeros(1, dtype=dtype)])
    ours = _common.exp_of_nonpositive(values).double().numpy()
    exact = np.exp(values.double().numpy())
    tiny = np.finfo(np.float32 if dtype == torch.float32 else np.float64).tiny
    normal = exact > tiny * 2**24  # far from the subnormals, where only absolute error makes sense
    ulp = np.finfo(np.float32 if dtype == torch.float32 else np.float64).eps
    np.testing.assert_allclose(ours[normal], exact[normal], rtol=8 * ulp)
    np.testing.assert_allclose(ours[~normal], exact[~normal], atol=tiny * 2**24)

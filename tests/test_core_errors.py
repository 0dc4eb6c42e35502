"""Core error behaviour: constructor arguments are always checked; tensors get named, explicit errors."""

from __future__ import annotations

import pytest
import torch

import hingemetrics as hm
from hingemetrics.functional import binary_hinge_loss, hinge_loss, multiclass_hinge_loss


@pytest.mark.parametrize(
    ("factory", "error", "message"),
    [
        (lambda: hm.BinaryHingeLoss(squared=1), TypeError, "Expected `squared` to be a bool, but got 1"),
        (lambda: hm.BinaryHingeLoss(margin=float("nan")), ValueError, "Expected `margin` to be a finite real number"),
        (lambda: hm.BinaryHingeLoss(margin=float("inf")), ValueError, "finite real number, but got inf"),
        (lambda: hm.BinaryHingeLoss(normalization="softmax"), ValueError, "`normalization` to be one of"),
        (lambda: hm.BinaryHingeLoss(ignore_index=1.5), TypeError, "`ignore_index` to be None or an int"),
        (lambda: hm.MulticlassHingeLoss(1), ValueError, "Expected `num_classes` to be an int >= 2, but got 1."),
        (lambda: hm.MulticlassHingeLoss(3.0), TypeError, "Expected `num_classes` to be an int >= 2"),
        (lambda: hm.MulticlassHingeLoss(3, multiclass_mode="ovr"), ValueError, "`multiclass_mode` to be one of"),
        (lambda: hm.MulticlassHingeLoss(3, normalization="sigmoid"), ValueError, "`normalization` to be one of"),
        (lambda: hm.HingeLoss("regression"), ValueError, "Expected `task` to be one of"),
        (lambda: hm.HingeLoss("multiclass"), ValueError, "Expected `num_classes`"),
        # constructor arguments are checked even when tensor validation is off
        (lambda: hm.BinaryHingeLoss(validate_args=False, margin=-float("inf")), ValueError, "`margin`"),
    ],
)
def test_bad_constructor_arguments(factory, error, message):
    with pytest.raises(error, match=message.replace("(", r"\(").replace(")", r"\)").replace("[", r"\[")):
        factory()


def test_bad_tensors_name_the_argument():
    preds = torch.tensor([0.2, -0.4, 1.3])
    with pytest.raises(TypeError, match="Expected `preds` to be a floating-point tensor of scores, but got dtype"):
        binary_hinge_loss(torch.tensor([1, 0, 1]), torch.tensor([1, 0, 1]))
    with pytest.raises(TypeError, match=r"Expected `target` to be a torch\.Tensor, but got list"):
        binary_hinge_loss(preds, [1, 0, 1])
    with pytest.raises(ValueError, match=r"same shape, but got \(3,\) and \(2,\)"):
        binary_hinge_loss(preds, torch.tensor([1, 0]))
    with pytest.raises(ValueError, match=r"binary labels in \{0, 1\} or \{-1, 1\}, but found 2"):
        binary_hinge_loss(preds, torch.tensor([1, 2, 0]))
    with pytest.raises(ValueError, match="found both 0 and -1"):
        binary_hinge_loss(preds, torch.tensor([1, 0, -1]))
    with pytest.raises(ValueError, match="`sample_weight` to be non-negative, but found -1"):
        binary_hinge_loss(preds, torch.tensor([1, 0, 1]), sample_weight=torch.tensor([1.0, -1.0, 1.0]))
    with pytest.raises(ValueError, match=r"`sample_weight` to have shape \(3,\)"):
        binary_hinge_loss(preds, torch.tensor([1, 0, 1]), sample_weight=torch.ones(2))
    with pytest.raises(ValueError, match=r"class indices in \[0, 2\], but found 3"):
        multiclass_hinge_loss(torch.randn(2, 3), torch.tensor([0, 3]), 3)
    with pytest.raises(ValueError, match=r"shape \(N, 4, \.\.\.\)"):
        multiclass_hinge_loss(torch.randn(2, 3), torch.tensor([0, 1]), 4)
    with pytest.raises(ValueError, match="one of"):
        hinge_loss(preds, torch.tensor([1, 0, 1]), task="ranking")


def test_ignore_index_comes_before_the_label_rules():
    # -1 is ignored here, so the batch does not mix conventions
    value = binary_hinge_loss(torch.tensor([0.5, -0.5, 3.0]), torch.tensor([1, 0, -1]), ignore_index=-1)
    assert value.item() == pytest.approx(0.5)


def test_validate_args_false_skips_value_checks_only():
    # values are not checked (a 2 counts as positive) ...
    assert binary_hinge_loss(torch.tensor([0.5]), torch.tensor([2]), validate_args=False).item() == pytest.approx(0.5)
    # ... but dtypes and shapes still are
    with pytest.raises(ValueError, match="same shape"):
        binary_hinge_loss(torch.tensor([0.5]), torch.tensor([1, 0]), validate_args=False)

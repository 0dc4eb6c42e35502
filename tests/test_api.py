"""The public API: names, signatures in the documented order, docstrings, and the typing marker."""

from __future__ import annotations

import inspect
from pathlib import Path

import pytest

import hingemetrics
import hingemetrics.functional as F

# The documented contract: positional parameters first (in torchmetrics' order), then keyword-only ones.
SIGNATURES = {
    F.binary_hinge_loss: "preds, target, squared, ignore_index, validate_args, *, margin, normalization, sample_weight",
    F.multiclass_hinge_loss: (
        "preds, target, num_classes, squared, multiclass_mode, ignore_index, validate_args, "
        "*, margin, normalization, sample_weight, class_weight"
    ),
    F.multilabel_hinge_loss: (
        "preds, target, num_labels, squared, average, ignore_index, validate_args, "
        "*, margin, normalization, sample_weight"
    ),
    F.hinge_embedding_loss: "preds, target, margin, reduction, validate_args",
    F.hinge_loss: (
        "preds, target, task, num_classes, squared, multiclass_mode, ignore_index, validate_args, "
        "*, margin, normalization, sample_weight, num_labels, average, class_weight"
    ),
    hingemetrics.BinaryHingeLoss: "squared, ignore_index, validate_args, *, margin, normalization, **kwargs",
    hingemetrics.MulticlassHingeLoss: (
        "num_classes, squared, multiclass_mode, ignore_index, validate_args, *, margin, normalization, class_weight, "
        "**kwargs"
    ),
    hingemetrics.MultilabelHingeLoss: (
        "num_labels, squared, average, ignore_index, validate_args, *, margin, normalization, **kwargs"
    ),
    hingemetrics.HingeEmbeddingLoss: "margin, reduction, validate_args, **kwargs",
}


def _describe(obj) -> str:
    target = obj.__init__ if inspect.isclass(obj) else obj
    parts, star = [], False
    for p in inspect.signature(target).parameters.values():
        if p.name == "self":
            continue
        if p.kind is p.KEYWORD_ONLY and not star:
            parts.append("*")
            star = True
        parts.append(f"**{p.name}" if p.kind is p.VAR_KEYWORD else p.name)
    return ", ".join(parts)


@pytest.mark.parametrize("obj", list(SIGNATURES), ids=lambda o: o.__name__)
def test_signature_is_the_documented_one(obj):
    assert _describe(obj) == SIGNATURES[obj]


@pytest.mark.parametrize("obj", list(SIGNATURES), ids=lambda o: o.__name__)
def test_defaults_are_the_documented_ones(obj):
    target = obj.__init__ if inspect.isclass(obj) else obj
    params = inspect.signature(target).parameters
    expected = {"validate_args": True, "margin": 1.0, "normalization": None, "squared": False, "ignore_index": None}
    for name, default in expected.items():
        if name in params:
            assert params[name].default == default, name


def test_task_dispatcher_signature():
    assert _describe(hingemetrics.HingeLoss.__new__).startswith(
        "cls, task, num_classes, squared, multiclass_mode, ignore_index, validate_args, *, margin, normalization"
    )


@pytest.mark.parametrize("module", [hingemetrics, F], ids=lambda m: m.__name__)
def test_public_names_exist_and_are_documented(module):
    assert module.__all__, "a public module lists its names"
    for name in module.__all__:
        obj = getattr(module, name)
        if callable(obj):
            assert inspect.getdoc(obj), f"{name} has no docstring"


def test_version_and_typing_marker():
    assert isinstance(hingemetrics.__version__, str) and hingemetrics.__version__.count(".") == 2
    assert (Path(hingemetrics.__file__).parent / "py.typed").is_file()

"""Every metric class logged from a real one-process ``lightning.Trainer`` with its defaults.

Lightning runs validation and test under ``torch.inference_mode()`` unless told otherwise, so this is where an
update that needs anything an inference tensor lacks fails first. The Trainer is given nothing but a folder for
its files and the number of epochs: accelerator, precision, inference mode, logger, checkpointing and progress bar
stay as Lightning sets them. Each logged epoch value is compared with the plain reference on all batches.
"""

from __future__ import annotations

import warnings

import lightning as L
import numpy as np
import pytest
import torch
from torch.utils.data import DataLoader, TensorDataset
from torchmetrics import MetricCollection

import hingemetrics as hm
from tests.cases import CASES, Batch, cat_batches, map_inputs

BATCHES, BATCH_SIZE = 4, 6


def _case_batches(seed: int) -> dict[str, list[Batch]]:
    """For every case, the batches that the validation (or test) loop feeds it, one per loader batch."""
    out = {}
    for index, case in enumerate(CASES):
        gen = torch.Generator().manual_seed(seed * 1000 + index)
        out[case.name] = [case.draw(gen, BATCH_SIZE) for _ in range(BATCHES)]
    return out


def _binary_members() -> dict[str, hm.BinaryHingeLoss]:
    return {
        "hinge": hm.BinaryHingeLoss(),
        "squared": hm.BinaryHingeLoss(squared=True),
        "wide": hm.BinaryHingeLoss(margin=2.0),
    }


class Evaluated(L.LightningModule):
    """Scores every case's batches through a parameter (``x * w``, w = 1) and logs every metric."""

    def __init__(self, data: dict[str, dict[str, list[Batch]]]) -> None:
        super().__init__()
        self.data = data
        self.weight = torch.nn.Parameter(torch.ones(()))
        self.metrics = torch.nn.ModuleDict({case.name.replace("-", "_"): case.make() for case in CASES})
        self.collection = MetricCollection(_binary_members(), prefix="collection/")
        self.modes_seen: list[tuple[bool, bool]] = []

    def training_step(self, batch: list[torch.Tensor], batch_idx: int) -> torch.Tensor:
        return (self.weight * 0.0).sum()  # zero gradient: the weight stays 1, the scores stay the data

    def configure_optimizers(self) -> torch.optim.Optimizer:
        return torch.optim.SGD(self.parameters(), lr=0.1)

    def _evaluate(self, split: str, batch_idx: int) -> None:
        self.modes_seen.append((torch.is_inference_mode_enabled(), torch.is_grad_enabled()))
        for case in CASES:
            key = case.name.replace("-", "_")
            batch = map_inputs(case, self.data[split][case.name][batch_idx], lambda x: x * self.weight)
            metric = self.metrics[key]
            metric(**batch)
            if not _vector(case):
                self.log(f"{split}/{key}", metric, on_step=False, on_epoch=True)
        binary = self.data[split]["binary"][batch_idx]
        self.collection.update(binary["preds"] * self.weight, binary["target"])
        self.log_dict(self.collection, on_step=False, on_epoch=True)

    def _log_vectors(self, split: str) -> None:
        for case in CASES:
            if _vector(case):
                key = case.name.replace("-", "_")
                metric = self.metrics[key]
                self.log_dict({f"{split}/{key}/{i}": v.float() for i, v in enumerate(metric.compute())})
                metric.reset()

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._evaluate("val", batch_idx)

    def on_validation_epoch_end(self) -> None:
        self._log_vectors("val")

    def test_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        self._evaluate("test", batch_idx)

    def on_test_epoch_end(self) -> None:
        self._log_vectors("test")


def _vector(case) -> bool:
    return case.kwargs.get("multiclass_mode") == "one-vs-all" or case.kwargs.get("average") == "none"


def _expected(batches: dict[str, list[Batch]], split: str) -> dict[str, float]:
    out: dict[str, float] = {}
    for case in CASES:
        key = case.name.replace("-", "_")
        value = np.asarray(case.oracle(cat_batches(batches[case.name])), dtype=np.float64)
        if value.ndim:
            out.update({f"{split}/{key}/{i}": float(v) for i, v in enumerate(value)})
        else:
            out[f"{split}/{key}"] = float(value)
    binary = cat_batches(batches["binary"])
    for name, member in _binary_members().items():
        member.update(binary["preds"], binary["target"])
        out[f"collection/{name}"] = float(member.compute())
    return out


def _loader() -> DataLoader:
    return DataLoader(TensorDataset(torch.arange(BATCHES * BATCH_SIZE)), batch_size=BATCH_SIZE)


def _check(logged: dict[str, object], expected: dict[str, float]) -> None:
    missing = sorted(set(expected) - set(logged))
    assert not missing, f"not logged: {missing}"
    for name, value in expected.items():
        got = float(torch.as_tensor(logged[name]))
        assert got == pytest.approx(value, rel=1e-5), name


@pytest.fixture
def module() -> Evaluated:
    return Evaluated({"val": _case_batches(1), "test": _case_batches(2)})


def _trainer(tmp_path, **kwargs) -> L.Trainer:
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # Lightning's advice about workers and log intervals on tiny loaders
        return L.Trainer(default_root_dir=tmp_path, **kwargs)


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_validate_and_test_with_trainer_defaults(module, tmp_path):
    trainer = _trainer(tmp_path)
    assert trainer.strategy.root_device.type == "cpu" and trainer.world_size == 1
    validated = trainer.validate(module, dataloaders=_loader(), verbose=False)
    assert module.modes_seen and set(module.modes_seen) == {(True, False)}  # validated under inference_mode
    _check(validated[0], _expected(module.data["val"], "val"))
    tested = trainer.test(module, dataloaders=_loader(), verbose=False)
    _check(tested[0], _expected(module.data["test"], "test"))


@pytest.mark.filterwarnings("ignore::UserWarning")
def test_fit_with_a_validation_loop_logs_each_epoch(module, tmp_path):
    trainer = _trainer(tmp_path, max_epochs=2)
    trainer.fit(module, train_dataloaders=_loader(), val_dataloaders=_loader())
    assert module.modes_seen and set(module.modes_seen) == {(False, False)}  # fit validates under no_grad
    # the sanity check and both epochs validated the same batches: each epoch's value is the reference
    _check(trainer.callback_metrics, _expected(module.data["val"], "val"))
    assert module.weight.item() == 1.0  # training did not move the scores

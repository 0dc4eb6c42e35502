"""Validation with Lightning's DDP strategy on CPU, logging hingemetrics metric objects with ``self.log``.

Run as a script (Lightning's "ddp" strategy re-launches this file once per extra process):

    python tests/integration/lightning_ddp_eval.py OUT.json

Rank 0 writes the logged epoch values and the seed of the data to OUT.json; the test recomputes the expected
values in one process from the same data.
"""

from __future__ import annotations

import json
import sys

import lightning as L
import torch
from torch.utils.data import DataLoader, TensorDataset

import hingemetrics as hm

N, C, SEED = 96, 4, 1234


def dataset() -> TensorDataset:
    """Scores, class targets and binary targets for the validation set (a multiple of 2 x batch size)."""
    gen = torch.Generator().manual_seed(SEED)
    scores = torch.randn(N, C, generator=gen) * 2
    classes = torch.randint(0, C, (N,), generator=gen)
    return TensorDataset(scores, classes, (classes == 0).long())


class Scorer(L.LightningModule):
    """A module that passes precomputed scores through, so only the metrics are under test."""

    def __init__(self) -> None:
        super().__init__()
        self.scale = torch.nn.Parameter(torch.ones(()))
        self.binary = hm.BinaryHingeLoss()
        self.crammer_singer = hm.MulticlassHingeLoss(C)
        self.one_vs_all = hm.MulticlassHingeLoss(C, multiclass_mode="one-vs-all")

    def validation_step(self, batch: list[torch.Tensor], batch_idx: int) -> None:
        scores, classes, is_first = batch
        scores = scores * self.scale
        self.binary(scores[:, 0], is_first)
        self.crammer_singer(scores, classes)
        self.one_vs_all.update(scores, classes)
        self.log("val/binary", self.binary, on_step=False, on_epoch=True)
        self.log("val/crammer_singer", self.crammer_singer, on_step=False, on_epoch=True)

    def on_validation_epoch_end(self) -> None:
        per_class = self.one_vs_all.compute()
        for c in range(C):
            self.log(f"val/one_vs_all_{c}", per_class[c].float())
        self.one_vs_all.reset()


def main(out: str) -> None:
    """Validate on 2 CPU processes and let rank 0 write what was logged."""
    torch.set_num_threads(1)
    trainer = L.Trainer(
        accelerator="cpu",
        devices=2,
        strategy="ddp",
        logger=False,
        enable_checkpointing=False,
        enable_progress_bar=False,
        enable_model_summary=False,
    )
    loader = DataLoader(dataset(), batch_size=8, shuffle=False)
    results = trainer.validate(Scorer(), dataloaders=loader, verbose=False)
    if trainer.global_rank == 0:
        with open(out, "w") as handle:
            json.dump({"world_size": trainer.world_size, "logged": results[0]}, handle)


if __name__ == "__main__":
    main(sys.argv[1])

"""Functional hinge losses: one call per batch, no state.

Each function validates its arguments, reduces the batch to summed statistics with the same private helpers the
metric classes use, and returns their weighted mean.
"""

from hingemetrics.functional._binary import binary_hinge_loss
from hingemetrics.functional._embedding import hinge_embedding_loss
from hingemetrics.functional._multiclass import multiclass_hinge_loss
from hingemetrics.functional._multilabel import multilabel_hinge_loss
from hingemetrics.functional._ranking import (
    cosine_embedding_loss,
    margin_ranking_loss,
    multilabel_margin_loss,
    triplet_margin_loss,
)
from hingemetrics.functional._task import hinge_loss

__all__ = [
    "binary_hinge_loss",
    "cosine_embedding_loss",
    "hinge_embedding_loss",
    "hinge_loss",
    "margin_ranking_loss",
    "multiclass_hinge_loss",
    "multilabel_hinge_loss",
    "multilabel_margin_loss",
    "triplet_margin_loss",
]

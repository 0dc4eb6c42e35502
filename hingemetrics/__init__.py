"""hingemetrics: stateful hinge-loss metrics for PyTorch, built on torchmetrics.

Every metric keeps summed float64 statistics, syncs them across processes in one ``all_reduce`` and plots
itself. The arithmetic lives in :mod:`hingemetrics.functional`, shared by the functional and class forms.
"""

from hingemetrics import functional
from hingemetrics._agreement import StepSyncError, SyncMismatchError
from hingemetrics._classification import BinaryHingeLoss, HingeLoss, MulticlassHingeLoss
from hingemetrics._embedding import HingeEmbeddingLoss
from hingemetrics._margin import MarginDistribution, MarginHistogram
from hingemetrics._multilabel import MultilabelHingeLoss
from hingemetrics._precision import StatePrecisionWarning
from hingemetrics._ranking import CosineEmbeddingLoss, MarginRankingLoss, MultilabelMarginLoss, TripletMarginLoss
from hingemetrics._sync import synced
from hingemetrics._uncertainty import ConfidenceInterval, PairedComparison, PerGroup

#: The version of this release of hingemetrics, as a string such as ``"0.1.0"``.
__version__ = "0.1.0"

__all__ = [
    "BinaryHingeLoss",
    "ConfidenceInterval",
    "CosineEmbeddingLoss",
    "HingeEmbeddingLoss",
    "HingeLoss",
    "MarginDistribution",
    "MarginHistogram",
    "MarginRankingLoss",
    "MulticlassHingeLoss",
    "MultilabelHingeLoss",
    "MultilabelMarginLoss",
    "PairedComparison",
    "PerGroup",
    "StatePrecisionWarning",
    "StepSyncError",
    "SyncMismatchError",
    "TripletMarginLoss",
    "__version__",
    "functional",
    "synced",
]

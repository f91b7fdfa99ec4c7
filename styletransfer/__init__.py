"""Neural style transfer: feature networks, losses, the matting Laplacian, methods, the optimiser."""

from styletransfer.cache import TransferCache
from styletransfer.config import TransferConfig
from styletransfer.features import FEATURE_MODELS, WeightsUnavailable, load_encoder
from styletransfer.methods import METHODS, register_method
from styletransfer.transfer import SegmentationMasks, TransferResult, transfer, transfer_batch

__all__ = [
    "FEATURE_MODELS",
    "METHODS",
    "SegmentationMasks",
    "TransferCache",
    "TransferConfig",
    "TransferResult",
    "WeightsUnavailable",
    "load_encoder",
    "register_method",
    "transfer",
    "transfer_batch",
]

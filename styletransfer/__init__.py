"""Neural style transfer: feature networks, losses, the matting Laplacian, methods, the optimiser."""

from styletransfer.cache import TransferCache
from styletransfer.config import Runtime, TransferConfig
from styletransfer.features import FEATURE_MODELS, WeightsUnavailable, load_encoder
from styletransfer.registry import METHODS, MethodSpec, method_spec, register_method
from styletransfer.transfer import (
    MASK_SOURCES,
    PairStyle,
    SegmentationMasks,
    TransferResult,
    prepare_inputs,
    transfer,
    transfer_batch,
)

__all__ = [
    "FEATURE_MODELS",
    "MASK_SOURCES",
    "METHODS",
    "MethodSpec",
    "PairStyle",
    "Runtime",
    "SegmentationMasks",
    "TransferCache",
    "TransferConfig",
    "TransferResult",
    "WeightsUnavailable",
    "load_encoder",
    "method_spec",
    "prepare_inputs",
    "register_method",
    "transfer",
    "transfer_batch",
]

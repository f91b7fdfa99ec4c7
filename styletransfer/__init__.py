"""Neural style transfer: feature networks, losses, the matting Laplacian, methods, the optimiser.

The names below are imported on first use (``styletransfer.lazy``): ``styletransfer.config``
and the settings' descriptions load without torch, so the command line builds its options from
them and ``stylebench --help`` stays light.
"""

from __future__ import annotations

from styletransfer.lazy import exports

_EXPORTS = {
    "FEATURE_MODELS": "styletransfer.features",
    "MASK_SOURCES": "styletransfer.run",
    "METHODS": "styletransfer.registry",
    "MethodSpec": "styletransfer.registry",
    "PairStyle": "styletransfer.run",
    "Runtime": "styletransfer.config",
    "SegmentationMasks": "styletransfer.run",
    "TransferCache": "styletransfer.cache",
    "TransferConfig": "styletransfer.config",
    "TransferResult": "styletransfer.run",
    "WeightsUnavailable": "styletransfer.features",
    "load_encoder": "styletransfer.features",
    "method_spec": "styletransfer.registry",
    "prepare_inputs": "styletransfer.run",
    "register_method": "styletransfer.registry",
    "transfer": "styletransfer.run",
    "transfer_batch": "styletransfer.run",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)

"""Fast feed-forward style transfer: multi-style transformer networks, training and inference.

The names below are imported on first use (``styletransfer.lazy``): ``TrainConfig`` loads
without torch.
"""

from __future__ import annotations

from styletransfer.lazy import exports

_EXPORTS = {
    "TrainConfig": "styletransfer.fast.config",
    "fast_method": "styletransfer.fast.infer",
    "stylize": "styletransfer.fast.infer",
    "stylize_tensor": "styletransfer.fast.infer",
    **dict.fromkeys(
        (
            "CheckpointMismatch",
            "CorruptModel",
            "FastModel",
            "FastModelError",
            "ModelMeta",
            "ModelNotFound",
            "StyleInfo",
            "dataset_fingerprint",
            "load_model",
            "save_model",
        ),
        "styletransfer.fast.model",
    ),
    "NetworkSpec": "styletransfer.fast.network",
    "TransformerNet": "styletransfer.fast.network",
}
__all__ = sorted(_EXPORTS)
__getattr__, __dir__ = exports(__name__, _EXPORTS)

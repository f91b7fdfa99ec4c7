"""Fast feed-forward style transfer: multi-style transformer networks, training and inference."""

from styletransfer.fast.config import TrainConfig
from styletransfer.fast.infer import fast_method, stylize, stylize_tensor
from styletransfer.fast.model import (
    CheckpointMismatch,
    CorruptModel,
    FastModel,
    FastModelError,
    ModelMeta,
    ModelNotFound,
    StyleInfo,
    dataset_fingerprint,
    load_model,
    save_model,
)
from styletransfer.fast.network import NetworkSpec, TransformerNet

__all__ = [
    "CheckpointMismatch",
    "CorruptModel",
    "FastModel",
    "FastModelError",
    "ModelMeta",
    "ModelNotFound",
    "NetworkSpec",
    "StyleInfo",
    "TrainConfig",
    "TransformerNet",
    "dataset_fingerprint",
    "fast_method",
    "load_model",
    "save_model",
    "stylize",
    "stylize_tensor",
]

"""Hyper-parameters of feed-forward training, validated once at construction."""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields, replace
from typing import Any


@dataclass(frozen=True)
class TrainConfig:
    """How a feed-forward network is trained.

    Defaults follow Johnson et al. 2016 (section 4.1): 256x256 crops, batch size 4, Adam with
    learning rate 1e-3, 40 000 iterations (about two epochs of COCO); Dumoulin et al. 2017
    train N styles for the same number of steps, one style per sample. The loss weights are for
    the engine's losses (mean-squared features, Gram matrices divided by C*H*W, Caffe-scaled
    VGG19 features): with style layers weighted 1/n, style weight 10 makes the style term
    about 1.5x the content term at the start and stylises visibly within a few hundred steps
    at 128 px; no total variation by default (upsample+conv leaves no checkerboard to smooth).
    ``content_layers`` / ``style_layers`` empty means: the feature network's default layer set.
    ``style_layer_weights`` empty means 1/n for each of the n style layers.
    """

    steps: int = 40_000
    batch_size: int = 4
    size: int = 256
    style_size: int | None = None
    lr: float = 1e-3
    content_weight: float = 1.0
    style_weight: float = 10.0
    tv_weight: float = 0.0
    feature_model: str = "vgg19"
    content_layers: tuple[str, ...] = ()
    style_layers: tuple[str, ...] = ()
    style_layer_weights: tuple[float, ...] = ()
    base_channels: int = 32
    residual_blocks: int = 5
    mixed_precision: bool = False  # bf16 autocast where the hardware has it (CUDA, bf16 CPUs)
    checkpoint_every: int = 500
    keep_checkpoints: int = 2
    seed: int = 0

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_layers", tuple(self.content_layers))
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        object.__setattr__(
            self, "style_layer_weights", tuple(float(w) for w in self.style_layer_weights)
        )
        for name in (
            "steps",
            "batch_size",
            "size",
            "base_channels",
            "residual_blocks",
            "checkpoint_every",
            "keep_checkpoints",
        ):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if not 16 <= self.size <= 4096:
            raise ValueError(f"size must be 16 to 4096 pixels, got {self.size}")
        if self.style_size is not None and self.style_size < 16:
            raise ValueError(f"style_size must be at least 16 pixels, got {self.style_size}")
        if not (math.isfinite(self.lr) and self.lr > 0):
            raise ValueError(f"lr must be a positive number, got {self.lr!r}")
        for name in ("content_weight", "style_weight", "tv_weight"):
            value = getattr(self, name)
            if not (math.isfinite(value) and value >= 0):
                raise ValueError(f"{name} must be a finite number >= 0, got {value!r}")
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights has {len(self.style_layer_weights)} entries but "
                f"style_layers has {len(self.style_layers)}: give one weight per style layer"
            )
        if any(not (math.isfinite(w) and w >= 0) for w in self.style_layer_weights):
            raise ValueError("style_layer_weights must be finite numbers >= 0")
        if not isinstance(self.mixed_precision, bool):
            raise ValueError(f"mixed_precision must be true or false, got {self.mixed_precision!r}")
        if not isinstance(self.feature_model, str) or not self.feature_model:
            raise ValueError("feature_model must be the name of a feature network, e.g. 'vgg19'")

    def with_layers(self, content: tuple[str, ...], style: tuple[str, ...]) -> TrainConfig:
        """This config with its layer sets filled in where they were left empty."""
        return replace(
            self,
            content_layers=self.content_layers or tuple(content),
            style_layers=self.style_layers or tuple(style),
        )

    def layer_weights(self) -> dict[str, float]:
        """Weight of each style layer (1/n each when none were given, as in the engine)."""
        n = len(self.style_layers)
        weights = self.style_layer_weights or (1.0 / n,) * n
        return dict(zip(self.style_layers, weights, strict=True))

    def to_dict(self) -> dict[str, Any]:
        data = asdict(self)
        for key, value in data.items():
            if isinstance(value, tuple):
                data[key] = list(value)
        return data

    @classmethod
    def from_dict(cls, data: dict[str, Any]) -> TrainConfig:
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown training option(s) {', '.join(unknown)}; "
                f"valid: {', '.join(sorted(known))}"
            )
        return cls(**{k: tuple(v) if isinstance(v, list) else v for k, v in data.items()})

    def resume_key(self) -> dict[str, Any]:
        """The settings a checkpoint must share to be resumed (steps and cadence may change)."""
        data = self.to_dict()
        for free in ("steps", "checkpoint_every", "keep_checkpoints"):
            data.pop(free)
        return data

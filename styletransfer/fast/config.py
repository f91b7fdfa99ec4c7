"""Hyper-parameters of feed-forward training, validated once at construction."""

from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

from styletransfer.config import MAX_SIZE, MIN_SIZE
from styletransfer.fields import check, setting


@dataclass(frozen=True)
class TrainConfig:
    """How a feed-forward network is trained.

    Defaults follow Johnson et al. 2016 (section 4.1): 256x256 crops, batch size 4, Adam with
    learning rate 1e-3, 40 000 iterations (about two epochs of COCO); Dumoulin et al. 2017
    train N styles for the same number of steps, one style per sample. The loss weights are for
    the engine's losses (mean-squared features, Gram matrices divided by C*H*W, Caffe-scaled
    VGG19 features): with style layers weighted 1/n, style weight 10 makes the style term
    about 1.5x the content term at the start and stylises visibly within a few hundred steps
    at 128 px; no total variation by default (upsample+conv leaves no checkerboard to smooth);
    bf16 autocast where the hardware has it, as for a transfer.
    ``content_layers`` / ``style_layers`` empty means: the feature network's default layer set.
    ``style_layer_weights`` empty means 1/n for each of the n style layers.
    """

    steps: int = setting(40_000, "int", "Training steps", low=1)
    batch_size: int = setting(4, "int", "Images per step", low=1)
    size: int = setting(
        256, "int", "Training crop size", low=MIN_SIZE, high=MAX_SIZE, unit="pixels"
    )
    style_size: int | None = setting(
        None,
        "int",
        "Short side of the style images (default: size)",
        low=MIN_SIZE,
        unit="pixels",
        optional=True,
    )
    lr: float = setting(1e-3, "number", "Adam's learning rate", low=0, above=True)
    content_weight: float = setting(1.0, "number", "Content loss weight", low=0)
    style_weight: float = setting(10.0, "number", "Style loss weight", low=0)
    tv_weight: float = setting(0.0, "number", "Total-variation weight", low=0)
    feature_model: str = setting("vgg19", "str", "The loss network: vgg19, vgg16 or resnet101")
    content_layers: tuple[str, ...] = setting(
        (), "names", "Content layers (default: the network's default set)"
    )
    style_layers: tuple[str, ...] = setting(
        (), "names", "Style layers (default: the network's default set)"
    )
    style_layer_weights: tuple[float, ...] = setting(
        (), "numbers", "One weight per style layer (default: 1/n each)"
    )
    base_channels: int = setting(32, "int", "Channels of the transformer's first layer", low=1)
    residual_blocks: int = setting(5, "int", "Residual blocks of the transformer", low=1)
    mixed_precision: bool = setting(
        True,
        "bool",
        "Mixed precision: bf16 autocast where the hardware has it (CUDA, CPUs with bf16 units)",
    )
    checkpoint_every: int = setting(500, "int", "Steps between checkpoints", low=1)
    keep_checkpoints: int = setting(2, "int", "Checkpoints kept", low=1)
    seed: int = setting(0, "int", "Seed of the initialisation and the data order")

    def __post_init__(self) -> None:
        object.__setattr__(self, "content_layers", tuple(self.content_layers))
        object.__setattr__(self, "style_layers", tuple(self.style_layers))
        check(self)
        object.__setattr__(
            self, "style_layer_weights", tuple(float(w) for w in self.style_layer_weights)
        )
        if self.style_layer_weights and len(self.style_layer_weights) != len(self.style_layers):
            raise ValueError(
                f"style_layer_weights has {len(self.style_layer_weights)} entries but "
                f"style_layers has {len(self.style_layers)}: give one weight per style layer"
            )
        if any(w < 0 for w in self.style_layer_weights):
            raise ValueError("style_layer_weights must be finite numbers >= 0")
        if not self.feature_model:
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
        """The settings a checkpoint must share to be resumed (steps, cadence and precision may
        change: the weights are float32 either way)."""
        data = self.to_dict()
        for free in ("steps", "checkpoint_every", "keep_checkpoints", "mixed_precision"):
            data.pop(free)
        return data

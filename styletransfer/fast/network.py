"""Johnson et al.'s (2016) feed-forward transformer with conditional instance norm for N styles."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass

import torch
from torch import Tensor, nn
from torch.nn import functional as F


@dataclass(frozen=True)
class NetworkSpec:
    """Shape of the transformer network.

    Defaults follow Johnson et al. 2016, supplementary material, Table 1: a 9x9 conv with 32
    filters, two stride-2 3x3 convs (64, 128), five residual blocks of 128 channels, two
    nearest-neighbour upsample+conv stages (Odena et al. 2016, instead of transposed convs,
    which leave checkerboard artefacts) and a 9x9 conv back to RGB. Normalisation is
    conditional instance norm (Dumoulin et al. 2017) with one scale and shift per style;
    the output goes through a sigmoid as in Dumoulin et al.'s released model.
    """

    num_styles: int = 1
    base_channels: int = 32
    residual_blocks: int = 5

    def __post_init__(self) -> None:
        for name in ("num_styles", "base_channels", "residual_blocks"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"NetworkSpec.{name} must be a positive integer, got {value!r}")

    def to_dict(self) -> dict[str, int]:
        return asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> NetworkSpec:
        known = {"num_styles", "base_channels", "residual_blocks"}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(
                f"unknown network field(s) {', '.join(unknown)}; valid: {', '.join(sorted(known))}"
            )
        return cls(**data)


class ConditionalInstanceNorm2d(nn.Module):
    """Instance norm whose affine scale and shift are chosen (or blended) per style.

    ``weights`` is ``[B, num_styles]`` (or ``[num_styles]`` for the whole batch); the scale
    and shift applied to sample b are ``weights[b] @ gamma`` and ``weights[b] @ beta``, so a
    one-hot row selects a style and any other row blends styles (Dumoulin et al. 2017, 5.2).
    """

    def __init__(self, channels: int, num_styles: int, eps: float = 1e-5):
        super().__init__()
        self.channels = channels
        self.num_styles = num_styles
        self.eps = eps
        self.gamma = nn.Parameter(torch.ones(num_styles, channels))
        self.beta = nn.Parameter(torch.zeros(num_styles, channels))

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        normed = F.instance_norm(x, eps=self.eps)
        gamma = weights @ self.gamma  # [B, S] @ [S, C] -> [B, C]
        beta = weights @ self.beta
        return normed * gamma[:, :, None, None] + beta[:, :, None, None]


class _ConvNormAct(nn.Module):
    """Reflection-padded conv, optional nearest upsampling before it, CIN, optional ReLU."""

    def __init__(
        self,
        cin: int,
        cout: int,
        kernel: int,
        num_styles: int,
        stride: int = 1,
        upsample: int = 1,
        relu: bool = True,
    ):
        super().__init__()
        self.upsample = upsample
        self.pad = nn.ReflectionPad2d(kernel // 2)
        self.conv = nn.Conv2d(cin, cout, kernel, stride)
        self.norm = ConditionalInstanceNorm2d(cout, num_styles)
        self.relu = relu

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        if self.upsample > 1:
            x = F.interpolate(x, scale_factor=self.upsample, mode="nearest")
        x = self.norm(self.conv(self.pad(x)), weights)
        return F.relu(x) if self.relu else x


class _Residual(nn.Module):
    """Two 3x3 conv+CIN layers with an identity shortcut (Gross and Wilber 2016 variant)."""

    def __init__(self, channels: int, num_styles: int):
        super().__init__()
        self.first = _ConvNormAct(channels, channels, 3, num_styles)
        self.second = _ConvNormAct(channels, channels, 3, num_styles, relu=False)

    def forward(self, x: Tensor, weights: Tensor) -> Tensor:
        return x + self.second(self.first(x, weights), weights)


class TransformerNet(nn.Module):
    """RGB in [0, 1], ``[B, 3, H, W]`` -> stylised RGB in [0, 1] of the same size.

    Any H and W work: the input is reflection-padded to a multiple of 4 for the two stride-2
    stages and the output is cropped back.
    """

    def __init__(self, spec: NetworkSpec | None = None):
        super().__init__()
        self.spec = spec or NetworkSpec()
        c, s = self.spec.base_channels, self.spec.num_styles
        self.down = nn.ModuleList(
            [
                _ConvNormAct(3, c, 9, s),
                _ConvNormAct(c, 2 * c, 3, s, stride=2),
                _ConvNormAct(2 * c, 4 * c, 3, s, stride=2),
            ]
        )
        self.residual = nn.ModuleList(
            [_Residual(4 * c, s) for _ in range(self.spec.residual_blocks)]
        )
        self.up = nn.ModuleList(
            [
                _ConvNormAct(4 * c, 2 * c, 3, s, upsample=2),
                _ConvNormAct(2 * c, c, 3, s, upsample=2),
            ]
        )
        self.out_pad = nn.ReflectionPad2d(4)
        self.out_conv = nn.Conv2d(c, 3, 9)

    @property
    def num_styles(self) -> int:
        return self.spec.num_styles

    def style_weights(
        self,
        batch: int,
        style: int | None = None,
        weights: Sequence[float] | Tensor | None = None,
        device: torch.device | None = None,
    ) -> Tensor:
        """The ``[batch, num_styles]`` weight matrix for one style index or a blend."""
        return style_weight_matrix(self.num_styles, batch, style, weights, device=device)

    def forward(
        self, x: Tensor, style: int | None = None, weights: Sequence[float] | Tensor | None = None
    ) -> Tensor:
        if x.dim() != 4 or x.shape[1] != 3:
            raise ValueError(f"expected an RGB batch [B, 3, H, W], got shape {tuple(x.shape)}")
        w = self.style_weights(x.shape[0], style, weights, device=x.device).to(x.dtype)
        h, wd = x.shape[-2:]
        ph, pw = (-h) % 4, (-wd) % 4
        if ph or pw:
            x = F.pad(
                x, (0, pw, 0, ph), mode="reflect" if min(h, wd) > max(ph, pw) else "replicate"
            )
        for layer in self.down:
            x = layer(x, w)
        for block in self.residual:
            x = block(x, w)
        for layer in self.up:
            x = layer(x, w)
        x = torch.sigmoid(self.out_conv(self.out_pad(x)))
        return x[..., :h, :wd]


def style_weight_matrix(
    num_styles: int,
    batch: int,
    style: int | None = None,
    weights: Sequence[float] | Tensor | None = None,
    device: torch.device | None = None,
) -> Tensor:
    """``[batch, num_styles]`` blend weights from a style index, a weight vector, or a matrix.

    A weight vector is used as given (not renormalised), so ``(1, 0)`` is exactly style 0 and
    ``(0.5, 0.5)`` an even blend; with neither argument a one-style network uses its style.
    """
    if style is not None and weights is not None:
        raise ValueError("give either style (an index) or weights (a blend), not both")
    if weights is None:
        if style is None:
            if num_styles != 1:
                raise ValueError(
                    f"this network holds {num_styles} styles: give style=0..{num_styles - 1} "
                    "or blend weights"
                )
            style = 0
        if not 0 <= style < num_styles:
            raise ValueError(f"style index {style} out of range; valid: 0..{num_styles - 1}")
        w = torch.zeros(batch, num_styles, device=device)
        w[:, style] = 1.0
        return w
    w = torch.as_tensor(weights, dtype=torch.float32, device=device)
    if w.dim() == 1:
        w = w.unsqueeze(0).expand(batch, -1)
    if w.dim() != 2 or w.shape != (batch, num_styles):
        raise ValueError(
            f"style weights must have {num_styles} entries (one per style of the model) "
            f"or shape [{batch}, {num_styles}], got shape {tuple(w.shape)}"
        )
    if not torch.isfinite(w).all():
        raise ValueError("style weights must be finite numbers")
    return w

"""Loss matrices: content and style loss between every pair of images under one feature network."""

from __future__ import annotations

import hashlib
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path

import torch

from styletransfer.device import autocast, autocast_dtype, select_device
from styletransfer.features import check_layers, default_layers, load_encoder
from styletransfer.images import open_rgb, to_tensor
from styletransfer.losses import content_loss, gram_matrix, style_loss


@dataclass(frozen=True)
class LossMatrix:
    """Square matrices of losses between images, in the order of ``images``."""

    feature_model: str
    images: tuple[str, ...]  # image ids (sha256 of the file bytes)
    labels: tuple[str, ...]  # file names, for plots
    content: tuple[tuple[float, ...], ...]
    style: tuple[tuple[float, ...], ...]

    def rows(self, experiment_id: str) -> list[dict]:
        """Rows of the ``loss_matrix`` table."""
        return [
            {
                "experiment_id": experiment_id,
                "feature_model": self.feature_model,
                "image_a": a,
                "image_b": b,
                "content_loss": self.content[i][j],
                "style_loss": self.style[i][j],
            }
            for i, a in enumerate(self.images)
            for j, b in enumerate(self.images)
        ]


def file_id(path: str | Path) -> str:
    """sha256 of a file's bytes: the image_id the image store gives it."""
    return hashlib.sha256(Path(path).read_bytes()).hexdigest()


def loss_matrix(
    images: Sequence[str | Path],
    feature_model: str = "vgg19",
    *,
    content_layers: Sequence[str] | None = None,
    style_layers: Sequence[str] | None = None,
    weights: str | Path | None = None,
    size: int = 256,
    device: str = "auto",
    mixed_precision: bool = False,
    on_image: Callable[[int], None] | None = None,
) -> LossMatrix:
    """Content loss (mean over ``content_layers``) and style loss (mean over ``style_layers``)
    between every ordered pair of ``images``, each resized to ``size`` x ``size``.

    One forward pass per image serves every layer.
    """
    if len(images) < 2:
        raise ValueError("a loss matrix needs at least two images")
    defaults = default_layers(feature_model)
    content_layers = tuple(content_layers or defaults.content)
    style_layers = tuple(style_layers or defaults.style)
    check_layers(feature_model, content_layers)
    check_layers(feature_model, style_layers)
    dev = select_device(device)
    encoder = load_encoder(feature_model, (*content_layers, *style_layers), weights, dev)
    dtype = autocast_dtype(dev, mixed_precision)
    feats, grams = [], []
    for n, path in enumerate(images):
        img = open_rgb(path).resize((size, size))
        with torch.no_grad(), autocast(dev, dtype):
            out = encoder(to_tensor(img).to(dev))
        feats.append({layer: out[layer].float() for layer in content_layers})
        grams.append({layer: gram_matrix(out[layer]) for layer in style_layers})
        if on_image is not None:
            on_image(n)
    n = len(images)
    content = [[0.0] * n for _ in range(n)]
    style = [[0.0] * n for _ in range(n)]
    for i in range(n):
        for j in range(n):
            content[i][j] = float(
                sum(content_loss(feats[i][la], feats[j][la]) for la in content_layers)
                / len(content_layers)
            )
            style[i][j] = float(
                sum(style_loss(grams[i][la], grams[j][la]) for la in style_layers)
                / len(style_layers)
            )
    return LossMatrix(
        feature_model=feature_model,
        images=tuple(file_id(p) for p in images),
        labels=tuple(Path(p).name for p in images),
        content=tuple(map(tuple, content)),
        style=tuple(map(tuple, style)),
    )


def plot_heatmaps(matrices: Sequence[LossMatrix], path: str | Path) -> Path:
    """One row per feature network, content and style loss side by side (log10 colour scale)."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt
    import numpy as np

    rows = len(matrices)
    n = len(matrices[0].labels)
    fig, axes = plt.subplots(
        rows, 2, figsize=(4 + 0.6 * n * 2, 1.5 + 0.5 * n * rows), squeeze=False
    )
    for r, m in enumerate(matrices):
        for c, (name, values) in enumerate((("content", m.content), ("style", m.style))):
            ax = axes[r][c]
            data = np.log10(np.asarray(values) + 1e-12)
            im = ax.imshow(data, cmap="viridis")
            ax.set_title(f"{m.feature_model}: {name} loss (log10)")
            ax.set_xticks(range(n), m.labels, rotation=60, ha="right", fontsize=7)
            ax.set_yticks(range(n), m.labels, fontsize=7)
            fig.colorbar(im, ax=ax, fraction=0.046, pad=0.04)
    fig.tight_layout()
    path = Path(path)
    fig.savefig(path, dpi=120)
    plt.close(fig)
    return path

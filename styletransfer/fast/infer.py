"""Batched, gradient-free inference with a trained feed-forward model."""

from __future__ import annotations

import os
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from styletransfer.fast.model import FastModel
from styletransfer.fast.network import TransformerNet, style_weight_matrix

ImageLike = Image.Image | str | os.PathLike[str]


def stylize_tensor(
    net: TransformerNet, images: Tensor, style: int | None = None,
    weights: Sequence[float] | Tensor | None = None, batch_size: int = 8,
) -> Tensor:
    """``[N, 3, H, W]`` in [0, 1] -> stylised ``[N, 3, H, W]``, ``batch_size`` at a time."""
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    device = next(net.parameters()).device
    w = style_weight_matrix(net.num_styles, 1, style, weights, device=device)
    was_training = net.training
    net.eval()
    outputs = []
    try:
        with torch.inference_mode():
            for start in range(0, images.shape[0], batch_size):
                chunk = images[start:start + batch_size].to(device)
                outputs.append(net(chunk, weights=w.expand(chunk.shape[0], -1)).cpu())
    finally:
        net.train(was_training)
    return torch.cat(outputs) if outputs else images.new_zeros((0, *images.shape[1:]))


def to_tensor(image: ImageLike, size: int | None = None) -> Tensor:
    """A PIL image or file -> ``[3, H, W]`` in [0, 1]; ``size`` resizes the long side."""
    if isinstance(image, Image.Image):
        img = image.convert("RGB")
    else:
        with Image.open(image) as opened:
            img = ImageOps.exif_transpose(opened).convert("RGB")
    if size is not None:
        w, h = img.size
        scale = size / max(w, h)
        img = img.resize((max(1, round(w * scale)), max(1, round(h * scale))),
                         Image.Resampling.BICUBIC)
    array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)  # HWC -> CHW


def to_image(tensor: Tensor) -> Image.Image:
    """``[3, H, W]`` in [0, 1] -> an RGB PIL image (rounded, clipped to 0-255)."""
    array = tensor.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(array.cpu().numpy(), mode="RGB")


def stylize(
    model: FastModel | TransformerNet, images: Sequence[ImageLike], *, style: int | None = None,
    weights: Sequence[float] | None = None, size: int | None = None, batch_size: int = 8,
) -> list[Image.Image]:
    """Stylise images (PIL or paths) in batches of equal size; results in the input order."""
    net = model.net if isinstance(model, FastModel) else model
    tensors = [to_tensor(image, size) for image in images]
    groups: dict[tuple[int, int], list[int]] = {}
    for i, t in enumerate(tensors):
        groups.setdefault(tuple(t.shape[-2:]), []).append(i)
    results: list[Image.Image | None] = [None] * len(tensors)
    for indices in groups.values():
        batch = torch.stack([tensors[i] for i in indices])
        out = stylize_tensor(net, batch, style=style, weights=weights, batch_size=batch_size)
        for i, t in zip(indices, out, strict=True):
            results[i] = to_image(t)
    return [r for r in results if r is not None]

"""Batched, gradient-free inference with a trained feed-forward model."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence
from pathlib import Path

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from styletransfer.fast.model import FastModel, load_model, resolve_model
from styletransfer.fast.network import TransformerNet, style_weight_matrix

ImageLike = Image.Image | str | os.PathLike[str]


def stylize_tensor(
    net: TransformerNet,
    images: Tensor,
    style: int | None = None,
    weights: Sequence[float] | Tensor | None = None,
    batch_size: int = 8,
    autocast_dtype: torch.dtype | None = None,
) -> Tensor:
    """``[N, 3, H, W]`` in [0, 1] -> stylised ``[N, 3, H, W]``, ``batch_size`` at a time.

    Runs under ``torch.inference_mode``; ``autocast_dtype`` (e.g. torch.bfloat16) runs the
    convolutions in that precision, the output is float32 either way.
    """
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive integer, got {batch_size}")
    device = next(net.parameters()).device
    w = style_weight_matrix(net.num_styles, 1, style, weights, device=device)
    was_training = net.training
    net.eval()
    outputs = []
    precision = (
        torch.autocast(device_type=device.type, dtype=autocast_dtype)
        if autocast_dtype is not None
        else contextlib.nullcontext()
    )
    try:
        with torch.inference_mode(), precision:
            for start in range(0, images.shape[0], batch_size):
                chunk = images[start : start + batch_size].to(device)
                outputs.append(net(chunk, weights=w.expand(chunk.shape[0], -1)).float().cpu())
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
        img = img.resize(
            (max(1, round(w * scale)), max(1, round(h * scale))), Image.Resampling.BICUBIC
        )
    array = np.asarray(img, dtype=np.uint8).copy()
    return torch.from_numpy(array).permute(2, 0, 1).float().div_(255.0)  # HWC -> CHW


def to_image(tensor: Tensor) -> Image.Image:
    """``[3, H, W]`` in [0, 1] -> an RGB PIL image (rounded, clipped to 0-255)."""
    array = tensor.detach().clamp(0, 1).mul(255).round().to(torch.uint8).permute(1, 2, 0)
    return Image.fromarray(array.cpu().numpy(), mode="RGB")


def stylize(
    model: FastModel | TransformerNet,
    images: Sequence[ImageLike],
    *,
    style: int | None = None,
    weights: Sequence[float] | None = None,
    size: int | None = None,
    batch_size: int = 8,
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


def default_models_dir() -> Path:
    """``models/`` of the data directory named by STYLEBENCH_DATA (default ./stylebench-data).

    Only local data directories are searched; for a remote one the caller passes a local
    ``models_dir`` (the CLI does).
    """
    data = os.environ.get("STYLEBENCH_DATA") or "stylebench-data"
    if "://" in data and not data.startswith("file://"):
        return Path("stylebench-data") / "models"
    return Path(data.removeprefix("file://")) / "models"


def blend_for(model_styles: int, style_weights: Sequence[float] | None) -> tuple[float, ...]:
    """Blend weights for a model: the given ones normalised to sum 1, or an even blend."""
    if style_weights is None:
        return (1.0 / model_styles,) * model_styles
    if len(style_weights) != model_styles:
        raise ValueError(
            f"{len(style_weights)} style weight(s) for a model of {model_styles} style(s): "
            "give one weight per style of the model (see its model.json)"
        )
    total = float(sum(style_weights))
    if total <= 0 or any(w < 0 for w in style_weights):
        raise ValueError(
            f"style weights must be >= 0 with a positive sum, got {list(style_weights)}"
        )
    return tuple(float(w) / total for w in style_weights)


def fast_method(inp):  # inp: styletransfer.engine.MethodInput -> list[MethodOutput]
    """The ``fast`` method: one forward pass of a trained model over the content batch.

    ``config.model`` names the model (a directory, its model.json, or a name under
    ``config.extra['models_dir']``, else under ``default_models_dir()``); the styles come from
    the model and ``config.style_weights`` blends them (default: an even blend).
    """
    from styletransfer.engine import MethodOutput, autocast_dtype

    cfg = inp.config
    if not cfg.model:
        raise ValueError(
            "method fast needs a trained model: pass --model NAME (or a path); "
            "train one with `stylebench train-fast`"
        )
    if inp.styles:
        raise ValueError(
            "method fast takes its styles from the model: omit the style images and choose "
            "or blend the model's styles with --style-weights"
        )
    extra = dict(cfg.extra)
    models_dir = extra.get("models_dir") or default_models_dir()
    start = time.perf_counter()
    directory = resolve_model(cfg.model, models_dir)
    stamp = (directory / "model.json").stat().st_mtime_ns
    model = inp.cache.get_or_compute(
        "fast_model",
        (str(directory.resolve()), stamp, str(inp.device)),
        lambda: load_model(directory, device=inp.device),
    )
    weights = blend_for(model.net.num_styles, cfg.style_weights)
    prepared = time.perf_counter()
    # Mixed precision only on CUDA: on this project's bf16 CPU the transformer's convolutions
    # ran slower in bf16 than in float32 at batch 1 (bench/bench_fast.py has both columns).
    cuda = inp.device.type == "cuda"
    dtype = autocast_dtype(inp.device, cfg.mixed_precision) if cuda else None
    out = stylize_tensor(
        model.net,
        inp.contents,
        weights=weights,
        batch_size=int(extra.get("batch_size", 8)),
        autocast_dtype=dtype,
    )
    seconds = {"prepare": prepared - start, "optimize": time.perf_counter() - prepared}
    return [
        MethodOutput(image=out[i : i + 1].to(inp.device), seconds=seconds, steps=0)
        for i in range(out.shape[0])
    ]

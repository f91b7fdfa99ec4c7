"""Batched, gradient-free inference with a trained feed-forward model."""

from __future__ import annotations

import contextlib
import os
import time
from collections.abc import Sequence

import numpy as np
import torch
from PIL import Image, ImageOps
from torch import Tensor

from styletransfer.fast.model import FastModel, load_model, read_meta, resolve_model
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


def prepare_fast(config, styles, runtime):
    """The prepare hook of ``fast``: a pair's styles as a blend of the model's styles.

    A model records the sha256 of each style image, which is the catalog's image id; the
    weights come back in the model's order (0 for its styles the pair lacks), the images are
    the pair's styles with a nonzero weight in that order, for measuring the style loss.
    """
    if not config.model:
        raise ValueError("method fast needs settings.model: the name of a trained model")
    directory = resolve_model(config.model, runtime.models_dir)
    model_styles = [s.sha256 for s in read_meta(directory).styles]
    missing = [s.image_id for s in styles if s.image_id not in model_styles]
    if missing:
        raise ValueError(
            f"model {config.model!r} was not trained on style image(s) "
            f"{', '.join(m[:12] for m in missing)}; its styles are "
            f"{', '.join(s[:12] for s in model_styles)}"
        )
    by_id = {s.image_id: s for s in styles}
    weights = tuple(float(by_id[s].weight) if s in by_id else 0.0 for s in model_styles)
    images = [by_id[s].path for s, w in zip(model_styles, weights, strict=True) if w > 0]
    return config.with_(style_weights=weights), images


def _loss_network(inp, meta):
    """The model's loss network (its training feature network and layers), cached."""
    from styletransfer.features import load_encoder

    training = meta.training
    layers = tuple(dict.fromkeys((*training.content_layers, *training.style_layers)))
    # model.json records the weights' label ("bundled:...", "file:PATH", "torchvision:PATH");
    # bundled (or unrecorded) weights are the network's default, shared with other methods.
    kind, _, where = meta.feature_weights.partition(":")
    weights = {"file": where, "torchvision": where or "torchvision"}.get(kind)
    key = (training.feature_model, str(weights), layers, str(inp.device))
    return inp.cache.get_or_compute(
        "encoder", key, lambda: load_encoder(training.feature_model, layers, weights, inp.device)
    )


def measure_losses(
    inp, meta, outputs: Tensor, weights: Sequence[float], batch_size: int = 8
) -> list[dict[str, float]]:
    """Per output, the weighted perceptual losses under the model's loss network.

    The terms of its training (``styletransfer.fast.train.perceptual_losses``): content
    against the content image, style against the blend of the given style images' Gram
    matrices (the model's styles with a nonzero weight, at the run's size), total variation,
    weighted by the model's training config. Without style images the style term (and the
    total) is NaN: not measured. One forward pass of outputs and contents together,
    ``batch_size`` outputs at a time.
    """
    from styletransfer.losses import content_loss, gram_matrix, style_loss, tv_loss

    training = meta.training
    encoder = _loss_network(inp, meta)
    layer_weights = training.layer_weights()
    with torch.inference_mode():
        targets = [
            (
                blend,
                inp.cache.get_or_compute(
                    "fast_style_grams",
                    (
                        key,
                        training.feature_model,
                        meta.feature_weights,
                        tuple(layer_weights),
                        str(inp.device),
                    ),
                    lambda image=image: {
                        layer: gram_matrix(encoder(image.float())[layer]) for layer in layer_weights
                    },
                ),
            )
            for image, key, blend in zip(
                inp.styles, inp.style_keys, [w for w in weights if w > 0], strict=False
            )
        ]
        rows = []
        for start in range(0, outputs.shape[0], batch_size):
            out = outputs[start : start + batch_size].to(inp.device).float()
            n = out.shape[0]
            contents = inp.contents[start : start + batch_size].float()
            feats = encoder(torch.cat([out, contents]))
            c_loss = sum(
                content_loss(feats[layer][:n], feats[layer][n:], reduction="none")
                for layer in training.content_layers
            )
            s_loss = torch.zeros(n, device=inp.device) if targets else None
            for blend, grams in targets:
                for layer, lw in layer_weights.items():
                    gram = gram_matrix(feats[layer][:n])
                    s_loss = s_loss + blend * lw * style_loss(gram, grams[layer], reduction="none")
            t_loss = tv_loss(out, reduction="none")
            for i in range(n):
                style = float("nan") if s_loss is None else float(s_loss[i])
                row = {
                    "content": training.content_weight * float(c_loss[i]),
                    "style": training.style_weight * style,
                    "tv": training.tv_weight * float(t_loss[i]),
                    "photoreal": 0.0,
                }
                row["total"] = row["content"] + row["style"] + row["tv"]
                rows.append(row)
    return rows


def fast_method(inp):  # inp: styletransfer.engine.MethodInput -> list[MethodOutput]
    """The ``fast`` method: one forward pass of a trained model over the content batch.

    ``config.model`` names the model (a directory, its model.json, or a name under
    ``inp.runtime.models_dir``); the styles come from the model and ``config.style_weights``
    blends them (default: an even blend). Style images, if given, are the model's styles with a
    nonzero weight, in its order (``prepare_fast`` makes them from a pair): they serve only to
    measure the style loss, recorded with the others under the model's loss network.
    """
    from styletransfer.device import autocast_dtype
    from styletransfer.engine import MethodOutput
    from styletransfer.options import FastOptions

    cfg = inp.config
    if not cfg.model:
        raise ValueError(
            "method fast needs a trained model: pass --model NAME (or a path); "
            "train one with `stylebench train-fast`"
        )
    opts = FastOptions.from_extra(cfg.extra)
    start = time.perf_counter()
    directory = resolve_model(cfg.model, inp.runtime.models_dir)
    stamp = (directory / "model.json").stat().st_mtime_ns
    model = inp.cache.get_or_compute(
        "fast_model",
        (str(directory.resolve()), stamp, str(inp.device)),
        lambda: load_model(directory, device=inp.device),
    )
    num_styles = model.net.num_styles
    if inp.styles and (cfg.style_weights is None or len(cfg.style_weights) != num_styles):
        raise ValueError(
            "method fast takes its styles from the model: omit the style images and choose "
            "or blend the model's styles with --style-weights (one weight per style of the "
            "model); style images, given with those weights, only measure the style loss"
        )
    weights = blend_for(num_styles, cfg.style_weights)
    if inp.styles and len(inp.styles) != sum(w > 0 for w in weights):
        raise ValueError(
            f"method fast takes its styles from the model: {len(inp.styles)} style image(s) "
            f"given for {sum(w > 0 for w in weights)} style(s) with a nonzero weight; give "
            "one image per such style of the model, in its order, or none"
        )
    prepared = time.perf_counter()
    # Mixed precision only on CUDA: on this project's bf16 CPU the transformer's convolutions
    # ran slower in bf16 than in float32 at batch 1 (bench/bench_fast.py has both columns).
    cuda = inp.device.type == "cuda"
    dtype = autocast_dtype(inp.device, cfg.mixed_precision) if cuda else None
    out = stylize_tensor(
        model.net,
        inp.contents,
        weights=weights,
        batch_size=opts.batch_size,
        autocast_dtype=dtype,
    )
    seconds = {"prepare": prepared - start, "optimize": time.perf_counter() - prepared}
    losses = measure_losses(inp, model.meta, out, weights, opts.batch_size)
    return [
        MethodOutput(
            image=out[i : i + 1].to(inp.device), seconds=seconds, steps=0, losses=losses[i]
        )
        for i in range(out.shape[0])
    ]

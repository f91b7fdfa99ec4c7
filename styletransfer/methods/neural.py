"""What the optimisation-based methods share: encoders, cached targets and the perceptual loss."""

from __future__ import annotations

import dataclasses
import time
from collections.abc import Sequence

import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer.config import TransferConfig
from styletransfer.device import autocast, autocast_dtype
from styletransfer.engine import MethodInput, MethodOutput, OptimizeOptions, optimize, timer
from styletransfer.features import Encoder, load_encoder
from styletransfer.laplacian import matting_laplacian, to_torch
from styletransfer.losses import (
    content_loss,
    gram_matrix,
    masked_gram_matrix,
    photoreal_loss,
    style_loss,
    tv_loss,
)


def get_encoder(inp: MethodInput) -> Encoder:
    """The feature network for the config's layers, loaded once per process and device."""
    cfg = inp.config
    layers = tuple(dict.fromkeys((*cfg.content_layers, *cfg.style_layers)))
    key = (cfg.feature_model, str(cfg.weights), layers, str(inp.device))
    return inp.cache.get_or_compute(
        "encoder", key, lambda: load_encoder(cfg.feature_model, layers, cfg.weights, inp.device)
    )


def _resize_mask(mask: Tensor, like: Tensor) -> Tensor:
    return F.interpolate(mask, size=like.shape[-2:], mode="bilinear", align_corners=False)


def style_targets(
    inp: MethodInput,
    encoder: Encoder,
    index: int,
    style_masks: Sequence[Tensor] | None = None,
    mask_key: str | None = None,
) -> list[dict[str, Tensor]]:
    """Gram targets of style ``index``: one dict per segment (one segment without masks).

    Cached per style image, network, weights, layers, size, precision and masks.
    """
    cfg = inp.config
    style = inp.styles[index]
    dtype = autocast_dtype(inp.device, cfg.mixed_precision)
    key = (
        inp.style_keys[index],
        cfg.feature_model,
        str(cfg.weights),
        cfg.style_layers,
        tuple(style.shape[-2:]),
        str(dtype),
        str(inp.device),
        mask_key,
    )

    def compute() -> list[dict[str, Tensor]]:
        with torch.no_grad(), autocast(inp.device, dtype):
            feats = encoder(style)
        if style_masks is None:
            return [{layer: gram_matrix(feats[layer]) for layer in cfg.style_layers}]
        return [
            {
                layer: masked_gram_matrix(feats[layer], _resize_mask(m, feats[layer]))
                for layer in cfg.style_layers
            }
            for m in style_masks
        ]

    return inp.cache.get_or_compute("style", key, compute)


def laplacians(inp: MethodInput, contents: Tensor, keys: Sequence[str]) -> list[Tensor]:
    """The matting Laplacian of each content image, cached per image, size and epsilon."""
    out = []
    for image, key in zip(contents, keys, strict=True):
        h, w = image.shape[-2:]

        def compute(image: Tensor = image) -> Tensor:
            array = image.permute(1, 2, 0).double().cpu().numpy()
            return to_torch(matting_laplacian(array, inp.config.matting_eps), inp.device)

        out.append(
            inp.cache.get_or_compute(
                "laplacian", (key, h, w, inp.config.matting_eps, str(inp.device)), compute
            )
        )
    return out


class PerceptualLoss:
    """Weighted content, style (plain or masked), tv and photorealism terms, per sample."""

    def __init__(
        self,
        encoder: Encoder,
        config: TransferConfig,
        device: torch.device,
        contents: Tensor,
        targets: list[list[dict[str, Tensor]]],
        blend: Sequence[float],
        content_masks: Sequence[Tensor] | None = None,
        laplacian: Sequence[Tensor] | None = None,
        photoreal: bool = True,
    ) -> None:
        self.encoder = encoder
        self.cfg = config
        self.device = device
        self.dtype = autocast_dtype(device, config.mixed_precision)
        self.targets = targets  # [style][segment] -> {layer: gram}
        self.blend = list(blend)
        self.laplacian = laplacian
        self.photoreal = photoreal and config.photoreal_weight > 0 and laplacian is not None
        with torch.no_grad(), autocast(device, self.dtype):
            feats = encoder(contents)
        self.content_feats = {layer: feats[layer].float() for layer in config.content_layers}
        self.content_masks = None
        if content_masks is not None:
            self.content_masks = [
                {layer: _resize_mask(m, feats[layer]) for layer in config.style_layers}
                for m in content_masks
            ]

    def to_float32(self) -> bool:
        """Leave mixed precision for the rest of the run; False if already in float32."""
        if self.dtype is None:
            return False
        self.dtype = None
        return True

    def __call__(self, image: Tensor) -> dict[str, Tensor]:
        cfg = self.cfg
        with autocast(self.device, self.dtype):
            feats = self.encoder(image)
        parts: dict[str, Tensor] = {}
        if cfg.content_weight > 0:
            parts["content"] = cfg.content_weight * sum(
                w * content_loss(feats[layer], self.content_feats[layer], reduction="none")
                for layer, w in zip(cfg.content_layers, cfg.content_layer_weights, strict=True)
            )
        if cfg.style_weight > 0:
            total = 0.0
            for layer, w in zip(cfg.style_layers, cfg.style_layer_weights, strict=True):
                if self.content_masks is None:
                    grams = [gram_matrix(feats[layer])]
                else:
                    grams = [masked_gram_matrix(feats[layer], m[layer]) for m in self.content_masks]
                for style_targets_, b in zip(self.targets, self.blend, strict=True):
                    for gram, target in zip(grams, style_targets_, strict=True):
                        total = total + (w * b) * style_loss(gram, target[layer], reduction="none")
            parts["style"] = cfg.style_weight * total
        if cfg.tv_weight > 0:
            parts["tv"] = cfg.tv_weight * tv_loss(image, reduction="none")
        if self.photoreal:
            parts["photoreal"] = cfg.photoreal_weight * photoreal_loss(
                image, self.laplacian, reduction="none"
            )
        return parts


def run_neural(
    inp: MethodInput, *, photoreal: bool, two_stage: bool = False, init: Tensor | None = None
) -> list[MethodOutput]:
    """Gatys-style image optimisation, with the photorealism term and masks for dpst.

    ``init`` overrides the start image; ``config.levels > 1`` runs coarse to fine (multires).
    """
    cfg = inp.config
    if cfg.levels > 1:
        from styletransfer.multires import coarse_to_fine

        return coarse_to_fine(
            inp,
            cfg.levels,
            lambda sub, start: run_neural(
                dataclasses.replace(sub, config=sub.config.with_(levels=1)),
                photoreal=photoreal,
                two_stage=two_stage,
                init=start,
            ),
        )
    seconds: dict[str, float] = {}
    batch = inp.contents.shape[0]
    with timer(seconds, "prepare"):
        encoder = get_encoder(inp)
        content_masks = style_masks = None
        if inp.masks is not None:
            if batch != 1:
                raise ValueError("segmentation masks need one content image per run")
            content_masks = [cm for cm, _ in inp.masks[0]]
        targets = []
        for s in range(len(inp.styles)):
            if inp.masks is not None:
                style_masks = [sms[s] for _, sms in inp.masks[0]]
            key = inp.mask_keys[0] if inp.mask_keys else None
            targets.append(style_targets(inp, encoder, s, style_masks, key))
    laps = None
    if photoreal and cfg.photoreal_weight > 0:
        with timer(seconds, "laplacian"):
            laps = laplacians(inp, inp.contents, inp.content_keys)
    if init is None and cfg.init == "noise":
        generator = torch.Generator().manual_seed(cfg.seed)
        init = torch.rand(inp.contents.shape, generator=generator).to(inp.device)
    elif init is None:
        init = inp.contents

    def loss(with_photoreal: bool) -> PerceptualLoss:
        return PerceptualLoss(
            encoder,
            cfg,
            inp.device,
            inp.contents,
            targets,
            inp.style_blend,
            content_masks,
            laps,
            photoreal=with_photoreal,
        )

    start = time.perf_counter()
    if two_stage and photoreal:
        first = cfg.steps // 2
        fn = loss(False)
        options = OptimizeOptions.of(cfg, callback=inp.callback, on_stall=fn.to_float32)
        stage1 = optimize(init, fn, dataclasses.replace(options, steps=first))
        result = stage1
        if stage1.status == "ok":
            fn = loss(True)
            result = optimize(
                stage1.best,
                fn,
                dataclasses.replace(
                    options,
                    steps=cfg.steps - first,
                    step_offset=first,
                    time_offset=stage1.seconds,
                    on_stall=fn.to_float32,
                ),
            )
            result.curves = [a + b for a, b in zip(stage1.curves, result.curves, strict=True)]
            result.steps += stage1.steps
    else:
        fn = loss(photoreal)
        options = OptimizeOptions.of(cfg, callback=inp.callback, on_stall=fn.to_float32)
        result = optimize(init, fn, options)
    seconds["optimize"] = time.perf_counter() - start
    return [
        MethodOutput(
            image=result.best[i : i + 1],
            status=result.status,
            error=result.error,
            losses=result.losses[i],
            curve=result.curves[i],
            seconds=dict(seconds),
            steps=result.steps,
        )
        for i in range(batch)
    ]

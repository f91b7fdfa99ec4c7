"""The entry points: transfer() for one content image, transfer_batch() for several."""

from __future__ import annotations

import hashlib
import math
import os
import time
import traceback
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timezone
from typing import Any

import torch
from PIL import Image

from styletransfer.cache import TransferCache, default_cache
from styletransfer.config import Runtime, TransferConfig
from styletransfer.device import configure_threads, select_device, single_threaded_blas
from styletransfer.engine import LOSS_TERMS, MethodInput, StepCallback, unmeasured_losses
from styletransfer.features import WeightsUnavailable
from styletransfer.images import (
    ImageLike,
    image_key,
    label_masks,
    luminance_image,
    open_rgb,
    recolour,
    resize,
    to_pil,
    to_tensor,
)
from styletransfer.masks import check_masks, name_of
from styletransfer.quality import QUALITY_METRICS, RunScorer
from styletransfer.registry import method_spec

# On a CPU a stacked batch pays only while it is small: one VGG19 forward and backward pass
# per image (bf16, 2 threads) took 0.73-0.90x the one-image time in batches of 8 at 96 and
# 128 px, but 1.16-1.24x at 192 px and 0.96-1.41x at 256 px (bench/bench_speed.py, repeated
# runs). So on a CPU a chunk holds at most this many pixels (8 images of 128 x 128), and
# larger images run one at a time.
CPU_BATCH_PIXELS = 8 * 128 * 128

# Where a run's segment correspondence came from: masks passed in, found by the method from
# the two photos, or none (one global style).
MASK_SOURCES = ("given", "auto", "none")

# The phases of a run, in the order they happen, whose seconds add up to its wall time:
# reading and resizing its images, the method's set-up (feature network, style targets, glue),
# the matting Laplacian, the optimisation or closed form, scoring, writing the output. A
# batch adds "wait" where a run waited (see flows.batch). "total" is load + prepare +
# laplacian + optimize, the run itself without scoring and writing.
PHASES = ("load", "prepare", "laplacian", "optimize", "score", "write")


@dataclass(frozen=True)
class SegmentationMasks:
    """Colour label images for dpst's augmented style loss: one for the content, one per style."""

    content: ImageLike
    styles: Sequence[ImageLike]


@dataclass(frozen=True)
class PairStyle:
    """One style of a pair: the catalog's image id (sha256 of the file), a local path, a weight."""

    image_id: str
    path: str | os.PathLike[str]
    weight: float


def prepare_inputs(
    config: TransferConfig, styles: Sequence[PairStyle], runtime: Runtime | None = None
) -> tuple[TransferConfig, list[str | os.PathLike[str]]]:
    """The ``(config, style images)`` that run a pair's styles under ``config``'s method.

    By default the styles are passed as they are and their weights become
    ``config.style_weights``; a method with a prepare hook maps them its own way (a
    feed-forward model blends the styles it was trained on). ValueError says what is missing.
    """
    hook = method_spec(config.method).prepare_function()
    if hook is None:
        weights = tuple(s.weight for s in styles) or None
        return config.with_(style_weights=weights), [s.path for s in styles]
    return hook(config, list(styles), runtime or Runtime())


@dataclass
class TransferResult:
    """One stylised image and its record. Losses are the weighted terms of the final iterate.

    ``config`` is the effective config that ran: resolved, with the style blend it was given;
    ``config.to_json()`` holds only the settings that apply to its method.
    """

    image: Image.Image
    status: str  # ok | failed | diverged
    error: str | None
    device: str
    height: int
    width: int
    steps: int
    # the phases of PHASES the run went through, "total" (load to optimize), "wall" (the call's
    # elapsed time) and "wait" (wall less this run's own phases: the others of its call)
    seconds: dict[str, float]
    # total, content, style, tv, photoreal: 0.0 where a term is off, NaN where none was measured
    losses: dict[str, float]
    curve: list[dict[str, float]]  # step, elapsed_s, loss_total, loss_content, ...
    config: TransferConfig = field(default_factory=TransferConfig)
    # ssim, colour_distance, affine_residual (styletransfer.quality); None where not scored
    quality: dict[str, float | None] = field(default_factory=dict)
    # the segment correspondence the run used: one of MASK_SOURCES
    mask_source: str = "none"
    # when the call that made it began and ended (UTC)
    started_at: datetime | None = None
    finished_at: datetime | None = None

    def measured_losses(self) -> dict[str, float | None]:
        """The losses with None where a term was not measured (NaN): null in JSON and tables."""
        return {k: v if math.isfinite(v) else None for k, v in self.losses.items()}

    def metrics(self) -> dict[str, Any]:
        """The JSON object of ``stylebench transfer --metrics`` (DESIGN.md); null: not measured."""
        return {
            "status": self.status,
            "method": self.config.method,
            "feature_model": self.config.feature_model,
            "config": self.config.settings(),
            "device": self.device,
            "seconds": dict(self.seconds),
            "losses": self.measured_losses(),
            "curve": [dict(row) for row in self.curve],
            "quality": {name: self.quality.get(name) for name in QUALITY_METRICS},
            "mask_source": self.mask_source,
            "started_at": self.started_at.isoformat() if self.started_at else None,
            "finished_at": self.finished_at.isoformat() if self.finished_at else None,
        }


def now() -> datetime:
    """The current time in UTC (the runs table's timestamps)."""
    return datetime.now(timezone.utc)


def batch_limit(device: torch.device, width: int, height: int, max_batch: int = 16) -> int:
    """How many images of ``width`` x ``height`` run as one stacked batch on ``device``."""
    if device.type == "cpu":
        return max(1, min(max_batch, CPU_BATCH_PIXELS // (width * height)))
    return max_batch


def _zero_losses() -> dict[str, float]:
    return {"total": 0.0, **{name: 0.0 for name in LOSS_TERMS}}


def transfer(
    content: ImageLike,
    styles: ImageLike | Sequence[ImageLike],
    config: TransferConfig | None = None,
    *,
    masks: SegmentationMasks | tuple[ImageLike, Sequence[ImageLike]] | None = None,
    callback: StepCallback | None = None,
    cache: TransferCache | None = None,
    runtime: Runtime | None = None,
    quality: bool = True,
) -> TransferResult:
    """Stylise ``content`` with ``styles`` (blended by ``config.style_weights``).

    ``runtime`` says where things live that are not settings (``models_dir`` of trained
    models). Raises ValueError for invalid settings or inputs and WeightsUnavailable when the
    feature network's weights cannot be had; a failure during the run is returned as status
    "failed". With ``quality`` the output is scored (``TransferResult.quality``, its time in
    ``seconds["score"]``).
    """
    return transfer_batch(
        [content],
        styles,
        config,
        masks=[masks] if masks else None,
        callback=callback,
        cache=cache,
        runtime=runtime,
        quality=quality,
    )[0]


def transfer_batch(
    contents: Sequence[ImageLike],
    styles: ImageLike | Sequence[ImageLike],
    config: TransferConfig | None = None,
    *,
    masks: Sequence[SegmentationMasks | tuple | None] | None = None,
    callback: StepCallback | None = None,
    cache: TransferCache | None = None,
    max_batch: int = 16,
    runtime: Runtime | None = None,
    quality: bool = True,
) -> list[TransferResult]:
    """Stylise several content images with the same styles, as one batch per output size.

    Each image's objective is separate (the batch loss is their sum), so the batch only shares
    the work: one network, one set of style targets, batched convolutions. With masks, each
    image runs alone. Seconds of a batch are shared out equally among its images. A chunk holds
    at most ``max_batch`` images, and on a CPU at most ``CPU_BATCH_PIXELS`` pixels. numpy's and
    scipy's BLAS are held to one thread from then on (``device.single_threaded_blas``).
    """
    config = (config or TransferConfig()).validate()
    cfg = config.resolved()
    if isinstance(styles, (str, Image.Image)) or not isinstance(styles, Sequence):
        styles = [styles]
    spec = method_spec(cfg.method)
    if not styles and spec.needs_styles:
        raise ValueError(f"method {cfg.method} needs at least one style image")
    # A method that runs without styles reads config.style_weights its own way.
    blend = cfg.blend(len(styles)) if styles and spec.needs_styles else ()
    cache = cache if cache is not None else default_cache()
    runtime = runtime or Runtime()
    device = select_device(cfg.device)
    if device.type == "cpu":
        configure_threads()
    method = spec.function()
    single_threaded_blas()  # the libraries the method's modules load are loaded now
    call_started_at, call_start = now(), time.perf_counter()
    content_imgs, load_seconds = [], []
    for c in contents:
        started = time.perf_counter()
        content_imgs.append(resize(open_rgb(c), cfg.size, upscale=cfg.upscale))
        load_seconds.append(time.perf_counter() - started)
    started = time.perf_counter()
    style_imgs = [resize(open_rgb(s), cfg.size, upscale=cfg.upscale) for s in styles]
    style_share = (time.perf_counter() - started) / max(1, len(contents))
    masks = list(masks) if masks is not None else [None] * len(contents)
    if len(masks) != len(contents):
        raise ValueError(f"{len(masks)} mask sets for {len(contents)} content images")
    masks = [SegmentationMasks(*m) if isinstance(m, tuple) else m for m in masks]
    for content, m in zip(contents, masks, strict=True):
        if m is not None:
            if not spec.takes_masks:
                raise ValueError(f"method {cfg.method} takes no segmentation masks")
            check_masks(m.content, list(m.styles), content, list(styles))

    groups: dict[tuple, list[int]] = {}
    for i, img in enumerate(content_imgs):
        key = (img.size, i) if masks[i] is not None else (img.size,)
        groups.setdefault(key, []).append(i)
    results: list[TransferResult | None] = [None] * len(contents)
    for indices in groups.values():
        width, height = content_imgs[indices[0]].size
        limit = batch_limit(device, width, height, max_batch)
        for chunk_start in range(0, len(indices), limit):
            chunk = indices[chunk_start : chunk_start + limit]
            for i, res in zip(
                chunk,
                _run_group(
                    method,
                    [content_imgs[i] for i in chunk],
                    style_imgs,
                    blend,
                    cfg,
                    device,
                    cache,
                    masks[chunk[0]] if len(chunk) == 1 else None,
                    callback,
                    runtime,
                ),
                strict=True,
            ):
                res.seconds["load"] = load_seconds[i] + style_share
                results[i] = res
    scorer = RunScorer(style_imgs, blend) if quality else None
    for i, res in enumerate(results):
        if res is None:
            continue
        res.seconds["score"] = 0.0
        if scorer is not None and res.status != "failed":
            started = time.perf_counter()
            res.quality = scorer.score(res.image, content_imgs[i], masks[i])
            res.seconds["score"] = time.perf_counter() - started
    wall = time.perf_counter() - call_start
    call_finished_at = now()
    for res in results:
        if res is not None:
            seconds = res.seconds
            seconds["total"] = sum(seconds[k] for k in ("load", "prepare", "laplacian", "optimize"))
            seconds["wall"] = wall
            seconds["wait"] = max(0.0, wall - seconds["total"] - seconds["score"])
            res.started_at, res.finished_at = call_started_at, call_finished_at
    return [r for r in results if r is not None]


def _mask_inputs(masks, content: Image.Image, styles: list[Image.Image]):
    if isinstance(masks, tuple):
        masks = SegmentationMasks(*masks)
    style_masks = list(masks.styles)
    if len(style_masks) != len(styles):
        raise ValueError(f"{len(style_masks)} style mask(s) for {len(styles)} style image(s)")
    cmask = open_rgb(masks.content)
    smasks = [open_rgb(m) for m in style_masks]
    names = [name_of(m, f"style mask {k}") for k, m in enumerate(style_masks, 1)]
    per_style = [
        label_masks(
            cmask,
            sm,
            content.size,
            st.size,
            (name_of(masks.content, "the content mask"), n),
            (masks.content, sf),
        )
        for sm, sf, st, n in zip(smasks, style_masks, styles, names, strict=True)
    ]
    colours = len(per_style[0])
    if any(len(p) != colours for p in per_style):
        raise ValueError("every style mask must share the same label colours with the content mask")
    segments = [(per_style[0][k][0], [p[k][1] for p in per_style]) for k in range(colours)]
    key = image_key(cmask) + "".join(image_key(m) for m in smasks)
    return segments, key


def _run_group(
    method, contents, styles, blend, cfg, device, cache, masks, callback, runtime
) -> list[TransferResult]:
    """Run one stacked batch; each result's seconds are its equal share of the batch's time."""
    start = time.perf_counter()
    width, height = contents[0].size
    batch = torch.cat([to_tensor(c) for c in contents]).to(device)
    style_tensors = [to_tensor(s).to(device) for s in styles]
    content_keys = [image_key(c) for c in contents]
    style_keys = [image_key(s) for s in styles]
    if cfg.preserve_color:
        originals = batch
        batch = luminance_image(batch)
        style_tensors = [luminance_image(s, like=originals) for s in style_tensors]
        # the styles' luminance is matched to this batch's, so their targets depend on it
        batch_key = hashlib.sha256("".join(content_keys).encode()).hexdigest()
        content_keys = [k + ":luminance" for k in content_keys]
        style_keys = [f"{k}:luminance:{batch_key}" for k in style_keys]
    mask_segments = mask_key = None
    if masks is not None:
        segments, mask_key = _mask_inputs(masks, contents[0], styles)
        mask_segments = [[(cm.to(device), [sm.to(device) for sm in sms]) for cm, sms in segments]]
    inp = MethodInput(
        contents=batch,
        content_keys=content_keys,
        styles=style_tensors,
        style_keys=style_keys,
        style_blend=blend,
        config=cfg,
        device=device,
        cache=cache,
        masks=mask_segments,
        mask_keys=[mask_key] if mask_key else None,
        callback=callback,
        runtime=runtime,
    )
    n = len(contents)
    try:
        outputs = method(inp)
    except (WeightsUnavailable, ValueError):
        raise
    except Exception as exc:  # a failed run is data: status "failed" with the reason
        share = (time.perf_counter() - start) / n
        error = f"{type(exc).__name__}: {exc}\n{traceback.format_exc(limit=3)}"
        return [
            TransferResult(
                image=c,
                status="failed",
                error=error,
                device=str(device),
                height=height,
                width=width,
                steps=0,
                config=cfg,
                losses=unmeasured_losses(),
                curve=[],
                mask_source="given" if masks is not None else "none",
                seconds={"prepare": share, "laplacian": 0.0, "optimize": 0.0},
            )
            for c in contents
        ]
    results = []
    images = []
    for i, out in enumerate(outputs):
        image = out.image
        if cfg.preserve_color:
            image = recolour(image, originals[i : i + 1])
        images.append(to_pil(image))
    # A stacked batch's time is shared equally; what is neither the Laplacian nor the
    # optimisation (set-up, moving tensors, converting the outputs) counts as preparation. A
    # method times the batch as a whole (the same seconds for every image) or each image.
    share = (time.perf_counter() - start) / n
    shared = all(out.seconds == outputs[0].seconds for out in outputs)
    for out, image in zip(outputs, images, strict=True):
        laplacian = out.seconds.get("laplacian", 0.0) / (n if shared else 1)
        optimize = out.seconds.get("optimize", 0.0) / (n if shared else 1)
        seconds = {
            "prepare": max(0.0, share - laplacian - optimize),
            "laplacian": laplacian,
            "optimize": optimize,
        }
        losses = _zero_losses()
        losses.update(out.losses)
        results.append(
            TransferResult(
                image=image,
                status=out.status,
                error=out.error,
                device=str(device),
                height=height,
                width=width,
                steps=out.steps,
                seconds=seconds,
                losses=losses,
                curve=out.curve,
                config=cfg,
                mask_source="given" if masks is not None else out.mask_source,
            )
        )
    return results

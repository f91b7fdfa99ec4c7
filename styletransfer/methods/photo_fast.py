"""photo-fast: per-segment colour transfer made locally affine, in seconds; optional VGG refinement.

Default (closed form, no feature network):

1. on copies at ``work_size`` px, the content's colours in CIELAB are moved onto the style's
   per segment: the linear Monge-Kantorovich map of the colour statistics (Pitie & Kokaram
   2007), then ``passes`` sliced one-dimensional matches along fixed rotated axes (Pitie et
   al. 2005). Segments are the masks when given (hard labels: no soft edge mixes two
   segments); without masks they are found by matching the two photos' VGG19 features
   densely (``styletransfer.correspond``: sky to sky, ground to ground, whatever their
   colours), or with ``semantic`` 0 by k-means clusters of colour and position paired by
   lightness and height (``styletransfer.colour.auto_segments``). Several styles blend their
   targets by the style weights.
2. That target is fitted from the content by the colour guided filter (He et al. 2013) at the
   working size, and its local affine coefficients are upsampled and applied to the
   full-size photo (He & Sun 2015, the fast guided filter): every output pixel is an affine
   map of the photo's own colour, so edges and textures survive, and the cost at full size is
   one bilinear upsampling and one multiply-add per pixel.

``refine`` 1 then fits a bilateral grid of affine colour maps (Chen et al. 2016; the grid of
Gharbi et al. 2017) on that result against Gatys' content and (masked, blended) style losses
through the engine's optimiser loop, within ``refine_seconds``; its identity start is the
closed-form result, and the refined output stays a local affine map of the photo.
"""

from __future__ import annotations

import dataclasses
import time

import numpy as np
import torch
import torch.nn.functional as F
from torch import Tensor

from styletransfer.colour import (
    auto_segments,
    lab_to_rgb,
    labels_from_masks,
    rgb_to_lab,
    transfer_segments,
)
from styletransfer.engine import (
    MethodInput,
    MethodOutput,
    OptimizeOptions,
    OptimizeResult,
    minimize,
    timer,
    to_image,
    unmeasured_losses,
)
from styletransfer.guided import (
    apply_affine,
    box_filter,
    grid_roughness,
    guided_filter,
    identity_grid,
    local_affine_fit,
    luminance,
)
from styletransfer.images import downsize
from styletransfer.methods.automask import auto_labels, match_options
from styletransfer.options import PhotoFastOptions

# The refinement's loss weights and layers: styletransfer.registry.PhotoFastDefaults; the
# options (``extra``) and their defaults: styletransfer.options.PhotoFastOptions.
# Style masks of the refinement are eroded by this share of the style's longer side: deep
# features near a segment's border see the neighbouring segment, and would carry it across.
MASK_EROSION = 1.0 / 32.0

# Where the content is flat, the colour target is smoothed (``smooth_flat``): local spread
# (CIELAB units, over windows of radius FLAT_WINDOW) below which a pixel is flat and above
# which it is not, the guided filter's radius at the working size and its ridge (RGB in
# [0, 1], so a flat region's noise counts for nothing). Chosen so that a white ground with
# pixel noise of a few levels stays flat (tests/styletransfer/test_photo_fast.py) while an
# overcast sky's faint clouds still take the style's (the DPST pairs, bench/bench_photo.py).
FLAT_SPREAD = (0.5, 1.5)
FLAT_WINDOW = 4
FLAT_RADIUS = 16
FLAT_EPS = 1e-3


def _mask_labels(masks: list[Tensor], like: Tensor) -> np.ndarray:
    size = like.shape[-2:]
    resized = [F.interpolate(m.float(), size=size, mode="area") for m in masks]
    return labels_from_masks(resized)


def _lab_array(image: Tensor) -> np.ndarray:
    return rgb_to_lab(image.double())[0].permute(1, 2, 0).cpu().numpy()  # [H, W, 3]


def colour_target(
    content: Tensor,
    styles: list[Tensor],
    blend: tuple[float, ...],
    opts: PhotoFastOptions,
    masks: list[tuple[Tensor, list[Tensor]]] | None = None,
    seed: int = 0,
    labels: list[tuple[np.ndarray, np.ndarray]] | None = None,
) -> Tensor:
    """The per-segment colour transfer of ``content`` ([1, 3, h, w]) as RGB, clipped to [0, 1].

    Segments come from ``masks``, else from ``labels`` (a (content, style) pair of label
    images per style, at these sizes), else from colour clusters.
    """
    lab_c = _lab_array(content)
    target = np.zeros_like(lab_c)
    content_labels = None if masks is None else _mask_labels([cm for cm, _ in masks], content)
    for s, (style, weight) in enumerate(zip(styles, blend, strict=True)):
        if weight == 0:
            continue
        lab_s = _lab_array(style)
        if masks is not None:
            labels_c = content_labels
            labels_s = _mask_labels([sms[s] for _, sms in masks], style)
        elif labels is not None:
            labels_c, labels_s = labels[s]
        else:
            labels_c, labels_s = auto_segments(
                lab_c, lab_s, opts.segments, opts.position_weight, seed
            )
        target += weight * transfer_segments(
            lab_c, lab_s, labels_c, labels_s, opts.passes, seed, opts.contrast_floor
        )
    target_lab = torch.from_numpy(target).permute(2, 0, 1)[None]
    target_lab = smooth_flat(target_lab, torch.from_numpy(lab_c).permute(2, 0, 1)[None], content)
    rgb = lab_to_rgb(target_lab)
    return rgb.clamp(0, 1).to(content.dtype)


def smooth_flat(target: Tensor, content_lab: Tensor, guide: Tensor) -> Tensor:
    """``target`` ([1, 3, h, w], CIELAB) smoothed where the content is flat, edges kept.

    A colour map moves each colour on its own, so where the content is flat (a white ground,
    a clear sky) the faint noise of its pixels is pulled apart into the style's whole range
    and the fit below would turn it into blotches. There the target is replaced by a guided
    filter of itself on the content (He et al. 2013; radius ``FLAT_RADIUS``): averaged over
    the flat region, never across an edge of the content. Flatness is the local colour spread
    (windows of radius ``FLAT_WINDOW``, CIELAB units) of the content averaged over 3x3 pixels
    (which leaves
    structure and takes most of the pixel noise away), fully flat below ``FLAT_SPREAD[0]``,
    not at all above ``FLAT_SPREAD[1]``.
    """
    content_lab = box_filter(content_lab.to(target.dtype), 1)  # 3x3: pixel noise counts less
    mean = box_filter(content_lab, FLAT_WINDOW)
    spread = (box_filter(content_lab * content_lab, FLAT_WINDOW) - mean * mean).sum(1, keepdim=True)
    spread = spread.clamp_min(0).sqrt()
    low, high = FLAT_SPREAD
    weight = ((high - spread) / (high - low)).clamp(0, 1)  # 1 where flat
    if not bool((weight > 0).any()):
        return target
    smoothed = guided_filter(guide.to(target.dtype), target, FLAT_RADIUS, FLAT_EPS)
    return weight * smoothed + (1 - weight) * target


def affine_coefficients(
    guide: Tensor, target: Tensor, radius: int, eps: float
) -> tuple[Tensor, Tensor]:
    """Guided-filter coefficients of ``target`` on ``guide``, averaged over covering windows."""
    a, b = local_affine_fit(guide, target, radius, eps)
    n, c, _, h, w = a.shape
    a = box_filter(a.reshape(n, c * 3, h, w), radius)  # [B, 9, h, w]
    return a, box_filter(b, radius)


def apply_coefficients(a: Tensor, b: Tensor, image: Tensor, rows: int = 512) -> Tensor:
    """Upsample coefficients bilinearly to ``image``'s size and apply them, ``rows`` at a time.

    Equivalent to one bilinear resize of the coefficients (align_corners False), computed in
    bands of rows so a 4096 px picture never holds more than a band's coefficients.
    """
    n, _, h, w = a.shape
    big_h, big_w = image.shape[-2:]
    coeffs = torch.cat([a, b], 1).to(image.dtype)  # [B, 12, h, w]
    xs = (torch.arange(big_w, device=image.device, dtype=image.dtype) + 0.5) / big_w * 2 - 1
    out = torch.empty(n, 3, big_h, big_w, dtype=image.dtype, device=image.device)
    for top in range(0, big_h, rows):
        bottom = min(big_h, top + rows)
        ys = (torch.arange(top, bottom, device=image.device, dtype=image.dtype) + 0.5) / big_h
        ys = ys * 2 - 1
        gy, gx = torch.meshgrid(ys, xs, indexing="ij")
        grid = torch.stack([gx, gy], -1)[None].expand(n, -1, -1, -1)
        band = F.grid_sample(
            coeffs, grid, mode="bilinear", padding_mode="border", align_corners=False
        )  # [B, 12, rows, W]
        aa = band[:, :9].reshape(n, 3, 3, bottom - top, big_w)
        out[:, :, top:bottom] = apply_affine(aa, band[:, 9:], image[:, :, top:bottom])
    return out.clamp_(0, 1)


def closed_form(
    inp: MethodInput, opts: PhotoFastOptions, index: int
) -> tuple[Tensor, Tensor, Tensor]:
    """Content ``index`` at full size, its closed-form result, and the result at work size."""
    content = inp.contents[index : index + 1]
    small = downsize(content, opts.work_size)
    styles = [downsize(s, opts.work_size) for s in inp.styles]
    masks = None if inp.masks is None else inp.masks[index]
    labels = None
    if masks is None and opts.semantic and opts.segments > 1:
        match = match_options(opts)
        labels = [
            (_resized_labels(lc, small), _resized_labels(ls, style))
            for (lc, ls), style in zip(auto_labels(inp, index, match), styles, strict=True)
        ]
    target = colour_target(small, styles, inp.style_blend, opts, masks, inp.config.seed, labels)
    a, b = affine_coefficients(small.float(), target.float(), opts.radius, opts.eps)
    full = apply_coefficients(a, b, content.float()).to(content.dtype)
    at_work = apply_coefficients(a, b, small.float()).to(content.dtype)
    return content, full, at_work


def _resized_labels(labels: np.ndarray, like: Tensor) -> np.ndarray:
    """``labels`` resized (nearest) to ``like``'s size, where it differs."""
    h, w = like.shape[-2:]
    if labels.shape == (h, w):
        return labels
    t = torch.from_numpy(labels.astype(np.float32))[None, None]
    return F.interpolate(t, size=(h, w), mode="nearest")[0, 0].numpy().astype(np.int64)


def _erode(mask: Tensor, radius: int) -> Tensor:
    if radius < 1:
        return mask
    return -F.max_pool2d(-mask, 2 * radius + 1, stride=1, padding=radius)


def refine(
    inp: MethodInput,
    opts: PhotoFastOptions,
    content: Tensor,
    start: Tensor,
    index: int,
) -> OptimizeResult:
    """The VGG-loss bilateral-grid fit from the closed-form ``start``, within the time budget:
    ``best`` is the fitted grid."""
    from styletransfer.methods.neural import PerceptualLoss, get_encoder, style_targets

    cfg = inp.config
    started = time.perf_counter()
    encoder = get_encoder(inp)
    small_content = downsize(content, opts.fit_size)
    small_start = downsize(start, opts.fit_size)
    small_styles = [downsize(s, opts.fit_size) for s in inp.styles]
    small = dataclasses.replace(inp, contents=small_content, styles=small_styles)
    masks = None if inp.masks is None else inp.masks[index]
    content_masks = None
    targets = []
    for s in range(len(inp.styles)):
        style_masks = None
        if masks is not None:
            style_masks = []
            for _, sms in masks:
                m = (downsize(sms[s].float(), opts.fit_size) >= 0.5).float()
                style_masks.append(_erode(m, round(MASK_EROSION * max(m.shape[-2:]))))
        key = None if inp.mask_keys is None else f"{inp.mask_keys[index]}:eroded"
        targets.append(style_targets(small, encoder, s, style_masks, key))
    if masks is not None:
        # Hard content masks: each content pixel belongs to exactly one segment.
        labels = torch.from_numpy(_mask_labels([cm for cm, _ in masks], small_content))
        content_masks = [
            (labels == k).float()[None, None].to(inp.device) for k in range(len(masks))
        ]
    loss_fn = PerceptualLoss(
        encoder,
        cfg,
        inp.device,
        small_content,
        targets,
        inp.style_blend,
        content_masks,
        None,
        photoreal=False,
    )
    h, w = content.shape[-2:]
    gh = max(2, round(opts.grid * h / max(h, w)))
    gw = max(2, round(opts.grid * w / max(h, w)))
    grid0 = identity_grid(1, opts.bins, gh, gw).to(inp.device)
    if cfg.init == "noise":
        generator = torch.Generator().manual_seed(cfg.seed)
        grid0 = grid0 + 0.05 * torch.randn(grid0.shape, generator=generator).to(inp.device)
    guide = luminance(small_content)
    with torch.no_grad():
        reference = sum(loss_fn(small_start).values()).detach()

    def objective(grid: Tensor) -> dict[str, Tensor]:
        parts = loss_fn(to_image(_apply_grid(grid, small_start, guide)))
        if opts.smoothness > 0:
            penalty = opts.smoothness * reference * grid_roughness(grid)
            parts["tv"] = parts["tv"] + penalty if "tv" in parts else penalty
        return parts

    options = OptimizeOptions.of(
        cfg,
        callback=inp.callback,
        normalize=True,
        # The budget covers the set-up too (targets, the first evaluation).
        max_seconds=max(0.0, opts.refine_seconds - (time.perf_counter() - started)),
        tolerance=opts.tolerance,
        patience=opts.patience,
    )
    return minimize(grid0, objective, options)


def _apply_grid(grid: Tensor, image: Tensor, guide: Tensor) -> Tensor:
    from styletransfer.guided import apply_grid

    return apply_grid(grid, image, guide)


def _mask_source(inp: MethodInput, opts: PhotoFastOptions) -> str:
    if inp.masks is not None:
        return "given"
    return "auto" if opts.segments > 1 else "none"


def photo_fast(inp: MethodInput) -> list[MethodOutput]:
    """Per-segment colour transfer, made locally affine; then, with ``refine``, the grid fit."""
    cfg = inp.config
    opts = PhotoFastOptions.from_extra(cfg.extra)
    if not inp.styles:
        raise ValueError("photo-fast needs at least one style image")
    if inp.masks is not None and len(inp.masks) != inp.contents.shape[0]:
        raise ValueError("segmentation masks need one set per content image")
    torch.manual_seed(cfg.seed)
    outputs = []
    for index in range(inp.contents.shape[0]):
        seconds: dict[str, float] = {"laplacian": 0.0, "prepare": 0.0, "optimize": 0.0}
        with timer(seconds, "optimize"):
            content, image, _ = closed_form(inp, opts, index)
        # the closed form evaluates no loss: its losses are not measured (null), not zero
        status, error, losses, curve, steps = "ok", None, unmeasured_losses(), [], 0
        if opts.refine and cfg.steps > 0:
            with timer(seconds, "optimize"):
                fit = refine(inp, opts, content, image, index)
                with torch.no_grad():
                    image = _apply_grid(fit.best, image, luminance(content)).clamp(0, 1)
            status, error, steps = fit.status, fit.error, fit.steps
            losses, curve = fit.losses[0], fit.curves[0]
        outputs.append(
            MethodOutput(
                image=image.detach(),
                status=status,
                error=error,
                losses=losses,
                curve=curve,
                seconds=seconds,
                steps=steps,
                mask_source=_mask_source(inp, opts),
            )
        )
    return outputs

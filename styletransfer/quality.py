"""Photorealism and style metrics that no method optimises: SSIM, colour distance, affine residual.

Pure functions on images ([1, 3, H, W] tensors in [0, 1] or PIL images) and label images:

- ``luma_ssim``: SSIM of the Rec. 601 luma of the output against the content's (scikit-image,
  7x7 windows, data range 1); 1 means the same structure.
- ``colour_distance``: the sliced Wasserstein-2 distance in CIELAB between the output's pixels
  and the style's, per segment where labels are given, averaged with the segments' content
  areas as weights over the segments found in both (64 fixed projections, seed 0, 256
  quantiles; in CIELAB units, about one just-noticeable difference each).
- ``affine_residual_share``: the share of the output's local variance (5x5 windows, per colour
  channel) that the best local affine map of the content's colours does not explain; 0 for
  any locally affine recolouring of the photo, near 1 for unrelated pictures.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import asdict, dataclass
from typing import Any

import numpy as np
import torch
from PIL import Image
from skimage.metrics import structural_similarity
from torch import Tensor

from styletransfer.colour import rgb_to_lab
from styletransfer.guided import LUMA, local_residual_variance
from styletransfer.images import label_codes

PROJECTIONS = 64
QUANTILES = 256
SEED = 0
RESIDUAL_RADIUS = 2
QUALITY_METRICS = ("ssim", "colour_distance", "affine_residual")
# Each segment's pixels are subsampled (a fixed stride) to at most this many for the distance.
MAX_POINTS = 65536
# The smallest share of a picture's pixels for a segment to be scored.
MIN_SEGMENT_SHARE = 0.001


@dataclass(frozen=True)
class Quality:
    """The three metrics of one output (see the module docstring)."""

    ssim: float
    colour_distance: float
    affine_residual: float

    def to_dict(self) -> dict[str, float]:
        return asdict(self)


def _tensor(image: Tensor | Image.Image) -> Tensor:
    if isinstance(image, Image.Image):
        array = np.asarray(image.convert("RGB"), dtype=np.float32) / 255.0
        return torch.from_numpy(array).permute(2, 0, 1)[None].contiguous()
    if image.dim() != 4 or image.shape[0] != 1 or image.shape[1] != 3:
        raise ValueError(f"expected a [1, 3, H, W] image, got shape {tuple(image.shape)}")
    return image.detach().float().cpu()


def _like(image: Tensor, size: tuple[int, int]) -> Tensor:
    if tuple(image.shape[-2:]) == size:
        return image
    return torch.nn.functional.interpolate(
        image, size=size, mode="bilinear", antialias=True, align_corners=False
    )


def luma_ssim(output: Tensor | Image.Image, content: Tensor | Image.Image) -> float:
    """SSIM of the output's luma against the content's (the content resized to the output)."""
    out = _tensor(output)
    ref = _like(_tensor(content), tuple(out.shape[-2:]))
    weights = torch.tensor(LUMA).view(1, 3, 1, 1)
    ya = (out * weights).sum(1)[0].double().numpy()
    yb = (ref * weights).sum(1)[0].double().numpy()
    return float(structural_similarity(ya, yb, data_range=1.0))


def _directions() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    d = rng.normal(size=(PROJECTIONS, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Sliced Wasserstein-2 distance of point sets [N, 3] and [M, 3] (fixed projections)."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError("sliced_wasserstein needs two non-empty point sets")
    d = _directions()
    q = (np.arange(QUANTILES) + 0.5) / QUANTILES
    qa = np.quantile(a @ d.T, q, axis=0)  # [Q, P]
    qb = np.quantile(b @ d.T, q, axis=0)
    return float(np.sqrt(((qa - qb) ** 2).mean()))


def _labels(labels: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if labels is None:
        return np.zeros(shape, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != shape:
        image = Image.fromarray(labels.astype(np.int32), mode="I")
        labels = np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
    return labels.astype(np.int64)


def colour_distance(
    output: Tensor | Image.Image,
    style: Tensor | Image.Image,
    output_labels: np.ndarray | None = None,
    style_labels: np.ndarray | None = None,
) -> float:
    """Area-weighted per-segment sliced Wasserstein-2 distance in CIELAB to the style.

    Labels are integer images (resized by nearest neighbour where their size differs; -1: no
    segment); without them each picture is one segment. Segments below 0.1% of either
    picture are left out; a ValueError says when no segment is in both.
    """
    out, sty = _tensor(output), _tensor(style)
    lab_o = rgb_to_lab(out.double())[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    lab_s = rgb_to_lab(sty.double())[0].permute(1, 2, 0).reshape(-1, 3).numpy()
    lo = _labels(output_labels, tuple(out.shape[-2:])).reshape(-1)
    ls = _labels(style_labels, tuple(sty.shape[-2:])).reshape(-1)
    total, weight = 0.0, 0.0

    def thin(points: np.ndarray) -> np.ndarray:
        return points[:: max(1, -(-points.shape[0] // MAX_POINTS))]

    for label in np.unique(lo[lo >= 0]):
        sel_o, sel_s = lo == label, ls == label
        if sel_o.mean() < MIN_SEGMENT_SHARE or sel_s.mean() < MIN_SEGMENT_SHARE:
            continue
        area = float(sel_o.sum())
        total += area * sliced_wasserstein(thin(lab_o[sel_o]), thin(lab_s[sel_s]))
        weight += area
    if weight == 0:
        raise ValueError("no segment is present in both the output and the style")
    return total / weight


def affine_residual_share(
    output: Tensor | Image.Image, content: Tensor | Image.Image, radius: int = RESIDUAL_RADIUS
) -> float:
    """Share of the output's local variance not explained by a local affine map of the content."""
    out = _tensor(output).double()
    guide = _like(_tensor(content), tuple(out.shape[-2:])).double()
    residual, variance = local_residual_variance(guide, out, radius)
    total = float(variance.sum())
    return float(residual.sum()) / total if total > 0 else 0.0


def score(
    output: Tensor | Image.Image,
    content: Tensor | Image.Image,
    style: Tensor | Image.Image,
    content_labels: np.ndarray | None = None,
    style_labels: np.ndarray | None = None,
) -> Quality:
    """All three metrics of one output (labels: the content's segments, and the style's)."""
    return Quality(
        ssim=luma_ssim(output, content),
        colour_distance=colour_distance(output, style, content_labels, style_labels),
        affine_residual=affine_residual_share(output, content),
    )


def labels_from_label_images(
    content_mask: Image.Image,
    style_mask: Image.Image,
    content_size: tuple[int, int] | None = None,
    style_size: tuple[int, int] | None = None,
) -> tuple[np.ndarray, np.ndarray]:
    """Integer label images from two colour label images (colours in only one of them: -1).

    Colours are read as the methods read them (``styletransfer.images.label_codes``); sizes
    are (width, height) to resize to first.
    """
    c = label_codes(content_mask, content_size)
    s = label_codes(style_mask, style_size)
    shared = sorted((set(np.unique(c)) & set(np.unique(s))) - {-1})
    if not shared:
        raise ValueError("the content and style masks share no label colour")
    lookup = {code: i for i, code in enumerate(shared)}

    def relabel(codes: np.ndarray) -> np.ndarray:
        out = np.full(codes.shape, -1, dtype=np.int64)
        for code, i in lookup.items():
            out[codes == code] = i
        return out

    return relabel(c), relabel(s)


def mean_quality(rows: Sequence[Quality]) -> Quality:
    """The mean of each metric over several outputs."""
    if not rows:
        raise ValueError("mean_quality needs at least one row")
    return Quality(
        *(float(np.mean([getattr(r, f) for r in rows])) for f in Quality.__annotations__)
    )


def score_run(
    output: Image.Image,
    content: Image.Image,
    styles: Sequence[Image.Image],
    blend: Sequence[float],
    masks: Any = None,
) -> dict[str, float | None]:
    """The metrics of one transfer run, for its record (a metric that cannot be had is None).

    With several styles the colour distance is the blend-weighted mean of the distances to
    each; ``masks`` is a ``SegmentationMasks`` (or (content, styles) tuple) of label images.
    """
    out: dict[str, float | None] = dict.fromkeys(QUALITY_METRICS)
    try:
        out["ssim"] = luma_ssim(output, content)
        out["affine_residual"] = affine_residual_share(output, content)
    except ValueError:
        pass
    if styles:
        try:
            distances = []
            for k, style in enumerate(styles):
                labels: tuple[Any, Any] = (None, None)
                if masks is not None:
                    content_mask, style_masks = (
                        masks if isinstance(masks, tuple) else (masks.content, masks.styles)
                    )
                    labels = labels_from_label_images(
                        _open(content_mask), _open(style_masks[k]), output.size, style.size
                    )
                distances.append(colour_distance(output, style, *labels))
            out["colour_distance"] = float(np.dot(distances, blend) / max(sum(blend), 1e-12))
        except (ValueError, OSError):
            pass
    return out


def _open(image: Any) -> Image.Image:
    from styletransfer.images import open_rgb

    return open_rgb(image)

"""Photorealism and style metrics that no method optimises: SSIM, colour distance, affine residual.

Pure functions on images ([1, 3, H, W] tensors in [0, 1] or PIL images) and label images:

- ``luma_ssim``: SSIM of the Rec. 601 luma of the output against the content's (7x7 windows,
  data range 1, sample covariance: scikit-image's ``structural_similarity``); 1 means the same
  structure.
- ``colour_distance``: the sliced Wasserstein-2 distance in CIELAB between the output's pixels
  and the style's, per segment where labels are given, averaged with the segments' content
  areas as weights over the segments found in both (64 fixed projections, seed 0, 256
  quantiles; in CIELAB units, about one just-noticeable difference each).
- ``affine_residual_share``: the share of the output's local variance (5x5 windows, per colour
  channel) that the best local affine map of the content's colours does not explain; 0 for
  any locally affine recolouring of the photo, near 1 for unrelated pictures.

Each metric has a bounded cost (``score_run`` scores every run of a batch): SSIM and the
residual average over windows on a regular grid (at most ``SSIM_WINDOWS`` and
``RESIDUAL_WINDOWS`` of them), the colour distance reads every pixel up to ``COLOUR_PIXELS``
(a fixed-stride sample of larger pictures), each distinct colour once with its count. With
``max_windows=None`` / ``max_pixels=None`` a metric reads every window and pixel: the
full-resolution value, which the bounded one stays within 2% of on the DPST paper's pairs
(bench/RESULTS.md).
"""

from __future__ import annotations

import math
import os
from collections.abc import Callable, Sequence
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from PIL import Image
from torch import Tensor

from styletransfer import colour as _colour
from styletransfer.guided import LUMA
from styletransfer.images import label_codes, mask_codes

PROJECTIONS = 64
QUANTILES = 256
SEED = 0
RESIDUAL_RADIUS = 2
QUALITY_METRICS = ("ssim", "colour_distance", "affine_residual")
# The smallest share of a picture's pixels for a segment to be scored.
MIN_SEGMENT_SHARE = 0.001
# SSIM's window (scikit-image's default) and constants (Wang et al. 2004).
SSIM_WINDOW = 7
SSIM_K1, SSIM_K2 = 0.01, 0.03
# The bounded cost: at most about this many windows (on a grid of a fixed stride) per metric,
# and every pixel of a picture up to COLOUR_PIXELS (a fixed-stride sample of larger ones).
# At 700 px the residual's grid has stride 2 and SSIM's stride 4; a 700 px picture is read
# whole for the colour distance.
SSIM_WINDOWS = 1 << 14
RESIDUAL_WINDOWS = 1 << 17
COLOUR_PIXELS = 1 << 19
# A bounded colour distance merges a picture's colours to 7 bits a channel (at their mean) where
# it has more distinct ones than this, and to 6 bits where more cells of 7 bits remain: textured
# photos, where the merge moves the distance by at most 0.9% on the DPST pairs
# (bench/RESULTS.md), while a smooth one keeps every colour. A style's colours, read once for
# every run of a batch, are merged to 7 bits at most (STYLE_MERGE_BITS).
DISTINCT_COLOURS = 1 << 15
MERGE_BITS = (7, 6)
STYLE_MERGE_BITS = (7,)
# Each projection's quantiles are read from a histogram of this many bins over the sRGB gamut's
# range along it (bins of 0.04-0.12 CIELAB units; within 0.3% of exact quantiles on the DPST
# pairs).
HISTOGRAM_BINS = 2048
# The window moments of the affine residual: guide x guide (upper triangle), output x guide,
# output^2, as (i, j) over the planes guide 0-2, output 3-5.
_GUIDE = ((0, 0), (0, 1), (0, 2), (1, 1), (1, 2), (2, 2))
_MOMENTS = (
    *_GUIDE,
    *((3 + c, j) for c in range(3) for j in range(3)),
    *((3 + c, 3 + c) for c in range(3)),
)


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
    return F.interpolate(image, size=size, mode="bilinear", antialias=True, align_corners=False)


def _planes(
    image: Tensor | Image.Image,
    size: tuple[int, int] | None = None,
    out: np.ndarray | None = None,
) -> np.ndarray:
    """The picture as colour planes [3, H, W] in [0, 1] (float64), resized to (H, W) if given.

    ``out``: an array [3, H, W] to write them in (its dtype is theirs).
    """
    if isinstance(image, Image.Image) and (size is None or image.size == (size[1], size[0])):
        pixels = np.asarray(image.convert("RGB"))
        if out is None:
            out = np.empty((3, *pixels.shape[:2]))
        for c in range(3):
            np.divide(pixels[..., c], out.dtype.type(255), out=out[c])
        return out
    tensor = _tensor(image)
    if size is not None:
        tensor = _like(tensor, size)
    planes = tensor[0].numpy()
    if out is None:
        return planes.astype(np.float64)
    out[...] = planes
    return out


def _luma(image: Tensor | Image.Image, size: tuple[int, int] | None = None) -> np.ndarray:
    """The picture's luma [H, W] in [0, 1] (float64), resized to (H, W) if given."""
    if isinstance(image, Image.Image) and (size is None or image.size == (size[1], size[0])):
        pixels = np.asarray(image.convert("RGB"))
        return pixels @ (np.asarray(LUMA) / 255.0)
    return np.tensordot(np.asarray(LUMA), _planes(image, size), 1)


def _height_width(image: Tensor | Image.Image) -> tuple[int, int]:
    if isinstance(image, Image.Image):
        return image.height, image.width
    return tuple(_tensor(image).shape[-2:])


def grid_stride(count: int, budget: int | None) -> int:
    """The stride of a regular grid (both ways) that keeps ``count`` items near ``budget``."""
    if budget is None or count <= budget:
        return 1
    return math.ceil(math.sqrt(count / budget))


# Rows of a picture are handled in blocks of about this many bytes (cache-sized temporaries).
BLOCK_BYTES = 1 << 21
# The affine residual's windows are finished this many at a time (cache-sized, likewise).
RESIDUAL_CHUNK = 1 << 14


def window_means(
    fill: Callable[[np.ndarray, int, int], None],
    channels: int,
    height: int,
    width: int,
    size: int,
    stride: int,
    clipped: bool,
    dtype: Any = np.float64,
) -> np.ndarray:
    """Means of ``channels`` planes over ``size`` x ``size`` windows centred on a grid: [C, y, x].

    ``fill(block, top, bottom)`` writes rows ``top:bottom`` of every plane into ``block``
    ([C, bottom - top, width]), a block at a time. The grid has the given stride; with
    ``clipped`` its windows are centred on every ``stride``-th pixel from (0, 0), clipped at
    the borders (the mean of the pixels inside), else they lie inside the picture. The sums
    are taken in ``dtype`` (each of at most ``size`` terms: float32 keeps centred statistics to
    about 1e-7 of their range).
    """
    r = size // 2
    if clipped:
        ys, xs = np.arange(0, height, stride), np.arange(0, width, stride)
    else:
        ys, xs = np.arange(r, height - r, stride), np.arange(r, width - r, stride)
    ny, nx = len(ys), len(xs)
    out = np.empty((channels, ny, nx))
    if ny == 0 or nx == 0:
        return out
    row_bytes = channels * (width + 2 * r) * np.dtype(dtype).itemsize
    per_block = max(1, (BLOCK_BYTES // row_bytes - size) // stride + 1)
    block = np.zeros((channels, (per_block - 1) * stride + size, width + 2 * r), dtype=dtype)
    for i0 in range(0, ny, per_block):
        n = min(per_block, ny - i0)
        top, bottom = ys[i0] - r, ys[i0 + n - 1] + r + 1
        lo, hi = max(top, 0), min(bottom, height)
        rows = block[:, : bottom - top]
        rows[:, : lo - top] = 0  # rows outside the picture (clipped windows only)
        rows[:, hi - top :] = 0
        fill(rows[:, lo - top : hi - top, r : r + width], lo, hi)
        vertical = _window_sums(rows, 1, 0, n, size, stride)  # window row sums
        # A window centred on x starts at x - r, padded by r: at xs[0] + t * stride.
        out[:, i0 : i0 + n] = _window_sums(vertical, 2, xs[0], nx, size, stride)
    if clipped:
        count_y = np.minimum(ys + r + 1, height) - np.maximum(ys - r, 0)
        count_x = np.minimum(xs + r + 1, width) - np.maximum(xs - r, 0)
        out /= (count_y[:, None] * count_x[None, :]).astype(np.float64)
    else:
        out /= size * size
    return out


def _window_sums(a: np.ndarray, axis: int, start: int, count: int, size: int, stride: int):
    """Sums of ``size`` consecutive entries of ``a`` along ``axis``, from ``start + i * stride``
    for i < ``count``.

    With a stride between 1 and the size, the entries are first summed ``stride`` at a time
    (each such group serves the windows that overlap on it): 3 passes instead of 5 for windows
    of 5 at a stride of 2.
    """

    def part(array: np.ndarray, first: int, n: int, step: int = 1) -> np.ndarray:
        return array[(slice(None),) * axis + (slice(first, first + (n - 1) * step + 1, step),)]

    if 1 < stride < size:
        whole, rest = divmod(size, stride)
        n = count + whole - 1  # the groups the windows cover
        groups = part(a, start, n, stride) + part(a, start + 1, n, stride)
        for j in range(2, stride):
            groups += part(a, start + j, n, stride)
        terms = [part(groups, m, count) for m in range(whole)]
        terms += [part(a, start + whole * stride + j, count, stride) for j in range(rest)]
    else:
        terms = [part(a, start + d, count, stride) for d in range(size)]
    total = terms[0] + terms[1] if len(terms) > 1 else terms[0].copy()
    for term in terms[2:]:
        total += term
    return total


def luma_ssim(
    output: Tensor | Image.Image,
    content: Tensor | Image.Image,
    max_windows: int | None = SSIM_WINDOWS,
) -> float:
    """SSIM of the output's luma against the content's (the content resized to the output).

    The mean over the 7x7 windows inside the picture; with ``max_windows`` over those on a grid
    of a fixed stride (``None``: every window, scikit-image's value).
    """
    h, w = _height_width(output)
    k = SSIM_WINDOW
    if min(h, w) < k:
        raise ValueError(f"SSIM needs a picture of at least {k}x{k} pixels, got {w}x{h}")
    ya, yb = _luma(output), _luma(content, (h, w))  # [H, W]
    shift = float(yb.mean())  # centred: the window statistics keep their precision
    ya -= shift
    yb -= shift

    def fill(block: np.ndarray, top: int, bottom: int) -> None:
        block[0], block[1] = ya[top:bottom], yb[top:bottom]
        np.multiply(block[0], block[0], out=block[2])
        np.multiply(block[1], block[1], out=block[3])
        np.multiply(block[0], block[1], out=block[4])

    stride = grid_stride((h - k + 1) * (w - k + 1), max_windows)
    ux, uy, uxx, uyy, uxy = window_means(fill, 5, h, w, k, stride, clipped=False, dtype=np.float32)
    norm = k * k / (k * k - 1)  # sample covariance
    vx, vy, vxy = norm * (uxx - ux * ux), norm * (uyy - uy * uy), norm * (uxy - ux * uy)
    ux += shift
    uy += shift
    c1, c2 = SSIM_K1**2, SSIM_K2**2
    s = ((2 * ux * uy + c1) * (2 * vxy + c2)) / ((ux * ux + uy * uy + c1) * (vx + vy + c2))
    return float(s.mean())


def _directions() -> np.ndarray:
    rng = np.random.default_rng(SEED)
    d = rng.normal(size=(PROJECTIONS, 3))
    return d / np.linalg.norm(d, axis=1, keepdims=True)


def _quantile_levels() -> np.ndarray:
    return (np.arange(QUANTILES) + 0.5) / QUANTILES


def sliced_wasserstein(a: np.ndarray, b: np.ndarray) -> float:
    """Sliced Wasserstein-2 distance of point sets [N, 3] and [M, 3] (fixed projections)."""
    if a.shape[0] == 0 or b.shape[0] == 0:
        raise ValueError("sliced_wasserstein needs two non-empty point sets")
    d = _directions()
    q = _quantile_levels()
    qa = np.quantile(a @ d.T, q, axis=0)  # [Q, P]
    qb = np.quantile(b @ d.T, q, axis=0)
    return float(np.sqrt(((qa - qb) ** 2).mean()))


@lru_cache(maxsize=1)
def _projection_range() -> tuple[np.ndarray, np.ndarray]:
    """(lo, bin width) of each projection over the sRGB gamut in CIELAB (1 unit of margin)."""
    levels = np.linspace(0, 255, 52).round().astype(np.uint8)  # 52 levels: every 5th byte
    grid = np.stack(np.meshgrid(levels, levels, levels, indexing="ij"), -1).reshape(-1, 3)
    projected = lab_points(grid).T.astype(np.float64) @ _directions().T
    lo, hi = projected.min(0) - 1.0, projected.max(0) + 1.0
    return lo, (hi - lo) / HISTOGRAM_BINS


def projection_histograms(
    points: np.ndarray,
    weights: np.ndarray,
    slots: np.ndarray | None = None,
    count: int = 1,
) -> np.ndarray:
    """Histograms [P, HISTOGRAM_BINS] of CIELAB points [3, N] with counts, along each projection.

    With ``slots`` (each point's segment, 0 to ``count`` - 1; -1: left out) the histograms of
    every segment at once: [count, P, HISTOGRAM_BINS]. The cost grows with the number of
    distinct points, not with their counts, nor with the number of segments.
    """
    d = _directions()
    lo, width = _projection_range()
    scale = (d / width[:, None]).astype(np.float32)  # [P, 3]: bin position of d . x
    offset = (-lo / width).astype(np.float32)
    xt = np.ascontiguousarray(points, dtype=np.float32)
    w = np.asarray(weights, dtype=np.float64)
    base = None
    if slots is not None:
        keep = slots >= 0
        if not keep.all():
            xt, w, slots = np.ascontiguousarray(xt[:, keep]), w[keep], slots[keep]
        if count > 1:
            base = slots.astype(np.intp) * HISTOGRAM_BINS
    counts = np.empty((len(d), count * HISTOGRAM_BINS))
    group = 64  # projections taken together: one matrix product, rows that stay in cache
    for k0 in range(0, len(d), group):
        positions = scale[k0 : k0 + group] @ xt
        positions += offset[k0 : k0 + group, None]
        for k, position in enumerate(positions, k0):
            index = position.astype(np.intp)
            np.clip(index, 0, HISTOGRAM_BINS - 1, out=index)
            if base is not None:
                index += base
            counts[k] = np.bincount(index, weights=w, minlength=count * HISTOGRAM_BINS)
    if slots is None:
        return counts
    return counts.reshape(len(d), count, HISTOGRAM_BINS).transpose(1, 0, 2)


# A running sum is taken RUNNING_BLOCK values at a time, in one matrix product (a vectorised
# product against a triangle of ones: 3x quicker than np.cumsum's loop).
RUNNING_BLOCK = 32
_TRIANGLE = np.triu(np.ones((RUNNING_BLOCK, RUNNING_BLOCK)))


def _running_sum(values: np.ndarray) -> np.ndarray:
    """``np.cumsum`` of a float64 vector (the same values where they are whole numbers, as
    counts are: every partial sum is exact)."""
    if values.size % RUNNING_BLOCK:
        return np.cumsum(values)
    sums = values.reshape(-1, RUNNING_BLOCK) @ _TRIANGLE  # running sums within each block
    sums[1:] += np.cumsum(sums[:-1, -1])[:, None]  # ... after the blocks before it
    return sums.reshape(-1)


def histogram_quantiles(counts: np.ndarray) -> np.ndarray:
    """The QUANTILES quantiles [..., P, Q] of each projection from its histograms [..., P, bins].

    Linear within a bin; every histogram is searched at once, in one running sum over all
    of them (each histogram's mass starts where the previous one's ends).
    """
    lo, width = _projection_range()
    *lead, p, bins = counts.shape
    rows = int(np.prod(lead, dtype=np.int64)) * p
    flat = np.ascontiguousarray(counts, dtype=np.float64).reshape(-1)
    cdf = _running_sum(flat)  # the mass up to each bin's upper edge, histograms one after another
    ends = cdf[bins - 1 :: bins]
    starts = np.concatenate(([0.0], ends[:-1]))
    target = starts[:, None] + _quantile_levels()[None, :] * (ends - starts)[:, None]  # [rows, Q]
    # The bin holding each target mass, kept within its own histogram.
    j = np.searchsorted(cdf, target.ravel(), side="right").reshape(rows, -1)
    first = np.arange(0, rows * bins, bins)[:, None]
    np.clip(j, first, first + bins - 1, out=j)
    below = np.where(j > first, cdf[np.maximum(j - 1, 0)], starts[:, None])
    inside = np.maximum(flat[j], 1e-300)
    frac = np.clip((target - below) / inside, 0.0, 1.0)
    j -= first
    lo_, width_ = np.tile(lo, rows // p)[:, None], np.tile(width, rows // p)[:, None]
    return (lo_ + (j + frac) * width_).reshape(*lead, p, -1)


def weighted_sliced_wasserstein(
    a: np.ndarray, wa: np.ndarray, b: np.ndarray, wb: np.ndarray
) -> float:
    """``sliced_wasserstein`` of CIELAB point sets [3, N], [3, M] whose points carry counts.

    Each projection's quantiles are read off its histogram (``projection_histograms``), within
    a bin of the exact ones.
    """
    if a.shape[1] == 0 or b.shape[1] == 0:
        raise ValueError("sliced_wasserstein needs two non-empty point sets")
    qa = histogram_quantiles(projection_histograms(a, wa))
    qb = histogram_quantiles(projection_histograms(b, wb))
    return float(np.sqrt(((qa - qb) ** 2).mean()))


def _labels(labels: np.ndarray | None, shape: tuple[int, int]) -> np.ndarray:
    if labels is None:
        return np.zeros(shape, dtype=np.int64)
    labels = np.asarray(labels)
    if labels.shape != shape:
        image = Image.fromarray(labels.astype(np.int32), mode="I")
        labels = np.asarray(image.resize((shape[1], shape[0]), Image.Resampling.NEAREST))
    return labels.astype(np.int64)


# CIELAB in numpy, as styletransfer.colour.rgb_to_lab computes it (sRGB D65; a test checks).
_XYZ = (_colour._RGB_TO_XYZ / _colour._WHITE[:, None]).numpy().astype(np.float32)
_DELTA = _colour._DELTA


def _linear(value: np.ndarray) -> np.ndarray:
    return np.where(value > 0.04045, ((value + 0.055) / 1.055) ** 2.4, value / 12.92)


_LINEAR_BYTES = _linear(np.arange(256) / 255.0).astype(np.float32)


def lab_points(rgb: np.ndarray) -> np.ndarray:
    """CIELAB [3, N] (float32) of colours [N, 3]: bytes (uint8) or floats in [0, 1] (clipped)."""
    if rgb.dtype == np.uint8:
        linear = _LINEAR_BYTES[rgb.T]  # [3, N]
    else:
        linear = _linear(np.clip(np.asarray(rgb, dtype=np.float64).T, 0.0, 1.0))
    xyz = (_XYZ @ linear).astype(np.float32, copy=False)
    f = np.cbrt(xyz)
    small = xyz <= _DELTA**3
    if small.any():
        f[small] = xyz[small] / (3 * _DELTA**2) + 4 / 29
    lab = np.empty_like(f)
    np.multiply(f[1], 116, out=lab[0])
    lab[0] -= 16
    np.subtract(f[0], f[1], out=lab[1])
    lab[1] *= 500
    np.subtract(f[1], f[2], out=lab[2])
    lab[2] *= 200
    return lab


def _morton_tables() -> tuple[np.ndarray, np.ndarray]:
    """The tables ``spread`` and ``gather`` [3, 256] of a colour's 24-bit code.

    A colour's code holds its channels' bits from the highest down, red, green, blue at each
    level: the colours of one cell of b bits a channel share the code's top 3b bits. ``spread``
    gives each channel's byte its bits in the code; ``gather`` gives each byte of a code its
    bits of the colour (red in the low byte), so that a code's three bytes give the colour back.
    """
    values = np.arange(256, dtype=np.uint32)
    spread = np.zeros((3, 256), dtype=np.uint32)
    gather = np.zeros((3, 256), dtype=np.uint32)
    for bit in range(24):
        level, channel = divmod(bit, 3)  # bit ``level`` of the channel ``2 - channel``
        spread[2 - channel] |= ((values >> level) & 1) << bit
        byte, place = divmod(bit, 8)
        gather[byte] |= ((values >> place) & 1) << (8 * (2 - channel) + level)
    return spread, gather


_SPREAD, _GATHER = _morton_tables()


def _colours(
    image: Tensor | Image.Image,
    labels: np.ndarray | None,
    max_pixels: int | None,
    merge_bits: Sequence[int] = MERGE_BITS,
) -> tuple[np.ndarray, np.ndarray, np.ndarray, int]:
    """(label, CIELAB [3, U], count) of each distinct (label, colour), and the pixels read.

    8-bit pictures are reduced to their distinct colours (bounded: merged to cells of
    ``merge_bits`` bits a channel in turn past DISTINCT_COLOURS); a float tensor keeps every
    pixel. Labels -1 are left out; pictures over ``max_pixels`` are read on a grid of a fixed
    stride.
    """
    if isinstance(image, Image.Image):
        rgb = np.asarray(image.convert("RGB"))
    else:
        rgb = _tensor(image)[0].permute(1, 2, 0).numpy()
    h, w = rgb.shape[:2]
    stride = grid_stride(h * w, max_pixels)
    rgb = rgb[::stride, ::stride]
    read = rgb.shape[0] * rgb.shape[1]
    ids = None if labels is None else _labels(labels, (h, w))[::stride, ::stride]
    if rgb.dtype != np.uint8:
        if ids is None:
            ids = np.zeros(rgb.shape[:2], dtype=np.int64)
        keep = ids >= 0
        return ids[keep], lab_points(rgb[keep]), np.ones(int(keep.sum())), read
    # A key per pixel: its label + 1 above its colour's code (unlabelled pixels: 0, left out).
    key = _SPREAD[0][rgb[..., 0]] | _SPREAD[1][rgb[..., 1]] | _SPREAD[2][rgb[..., 2]]
    if ids is None:
        key |= np.uint32(1 << 24)
    else:
        wide = np.int64 if ids.max(initial=0) >= 254 else np.uint32
        key = (ids + 1).astype(wide) << 24 | key
    key, counts = np.unique(key.reshape(-1), return_counts=True)
    labelled = np.searchsorted(key, 1 << 24)
    key, weights = key[labelled:].astype(np.int64), counts[labelled:].astype(np.float64)
    if max_pixels is None or len(key) <= DISTINCT_COLOURS:
        return (key >> 24) - 1, lab_points(_colour_bytes(key)), weights, read
    # Many distinct colours: each cell of 7 bits a channel (6 where that still leaves too
    # many) at their mean colour, with their count. A cell's colours lie side by side in the
    # sorted keys.
    for bits in merge_bits:
        cells = key >> 3 * (8 - bits)
        first = np.flatnonzero(np.diff(cells, prepend=-1))
        if len(first) <= DISTINCT_COLOURS:
            break
    cell = np.zeros(len(key), dtype=np.intp)  # each colour's cell: 0, 1, ... in key order
    cell[first[1:]] = 1
    np.cumsum(cell, out=cell)
    total = np.bincount(cell, weights=weights)
    word = _colour_word(key)
    means = np.empty((3, len(first)))
    for c in range(3):
        means[c] = np.bincount(cell, weights=(word >> 8 * c & 255) * weights)
    means /= total * 255.0
    ids = (key[first] >> 24) - 1
    return ids, lab_points(means.T), total, read


def _colour_word(key: np.ndarray) -> np.ndarray:
    """The colours of keys made of colour codes (``_morton_tables``) as words, red in the low
    byte."""
    return _GATHER[0][key & 255] | _GATHER[1][(key >> 8) & 255] | _GATHER[2][(key >> 16) & 255]


def _colour_bytes(key: np.ndarray) -> np.ndarray:
    """The colours [N, 3] (uint8) of keys made of colour codes (``_morton_tables``)."""
    word = _colour_word(key)
    return np.stack([word & 255, (word >> 8) & 255, word >> 16], axis=1).astype(np.uint8)


@dataclass
class ColourSegments:
    """A picture's distinct colours by segment; their projection quantiles made when first asked."""

    ids: np.ndarray  # [U] the segment of each distinct colour
    points: np.ndarray  # [3, U] CIELAB
    weights: np.ndarray  # [U] pixel counts
    pixels: int  # the pixels read
    _quantiles: dict[int, np.ndarray] = field(default_factory=dict, repr=False)

    def __post_init__(self) -> None:
        areas = np.bincount(self.ids, weights=self.weights) if self.ids.size else np.zeros(0)
        self.areas = {int(k): float(areas[k]) for k in np.flatnonzero(areas)}

    def present(self, label: int) -> bool:
        """Whether the segment covers at least MIN_SEGMENT_SHARE of the picture."""
        return self.areas.get(label, 0.0) >= MIN_SEGMENT_SHARE * self.pixels

    def quantiles(self, labels: Sequence[int]) -> list[np.ndarray]:
        """The projection quantiles [P, Q] of each segment; those not yet made, in one pass."""
        missing = sorted({k for k in labels if k not in self._quantiles})
        if missing:
            slot = np.full(max(self.areas, default=0) + 1, -1, dtype=np.intp)
            slot[missing] = np.arange(len(missing))
            histograms = projection_histograms(
                self.points, self.weights, slot[self.ids], len(missing)
            )
            self._quantiles.update(zip(missing, histogram_quantiles(histograms), strict=True))
        return [self._quantiles[k] for k in labels]


def colour_segments(
    image: Tensor | Image.Image,
    labels: np.ndarray | None = None,
    max_pixels: int | None = COLOUR_PIXELS,
    merge_bits: Sequence[int] = MERGE_BITS,
) -> ColourSegments:
    """The colours of a picture by segment (labels as ``colour_distance`` takes them).

    ``merge_bits``: the cells a picture of over DISTINCT_COLOURS colours is merged to, bits a
    channel, tried in turn.
    """
    return ColourSegments(*_colours(image, labels, max_pixels, merge_bits))


def segment_distance(output: ColourSegments, style: ColourSegments) -> float:
    """Area-weighted sliced Wasserstein-2 distance over the segments present in both."""
    shared = [k for k in output.areas if output.present(k) and style.present(k)]
    if not shared:
        raise ValueError("no segment is present in both the output and the style")
    total, weight = 0.0, 0.0
    for k, qa, qb in zip(shared, output.quantiles(shared), style.quantiles(shared), strict=True):
        area = output.areas[k]
        total += area * float(np.sqrt(((qa - qb) ** 2).mean()))
        weight += area
    return total / weight


def colour_distance(
    output: Tensor | Image.Image,
    style: Tensor | Image.Image,
    output_labels: np.ndarray | None = None,
    style_labels: np.ndarray | None = None,
    max_pixels: int | None = COLOUR_PIXELS,
) -> float:
    """Area-weighted per-segment sliced Wasserstein-2 distance in CIELAB to the style.

    Labels are integer images (resized by nearest neighbour where their size differs; -1: no
    segment); without them each picture is one segment. Segments below 0.1% of either
    picture are left out; a ValueError says when no segment is in both. Pictures over
    ``max_pixels`` are read on a grid of a fixed stride (``None``: every pixel).
    """
    return segment_distance(
        colour_segments(output, output_labels, max_pixels),
        colour_segments(style, style_labels, max_pixels),
    )


def affine_residual_share(
    output: Tensor | Image.Image,
    content: Tensor | Image.Image,
    radius: int = RESIDUAL_RADIUS,
    max_windows: int | None = RESIDUAL_WINDOWS,
    eps: float = 1e-8,
) -> float:
    """Share of the output's local variance not explained by a local affine map of the content.

    Over the (2r+1)^2 windows centred on every pixel (clipped at the borders), or with
    ``max_windows`` on those centred on a grid of a fixed stride (``None``: every window). Per
    window and output channel: the variance, and what is left of it by the least-squares map
    ``output ~ A @ content + b`` (ridge ``eps`` on A keeps flat windows well posed), in float64.
    """
    h, w = _height_width(output)
    base = np.empty((6, h, w), dtype=np.float32)  # guide (3), output (3): sums in float32
    _planes(content, (h, w), out=base[:3])
    _planes(output, out=base[3:])
    # Centred on the pictures' means: the window statistics are differences of nearly equal
    # sums in flat windows.
    base -= base.mean((1, 2), keepdims=True, dtype=np.float64).astype(np.float32)

    def fill(block: np.ndarray, top: int, bottom: int) -> None:
        block[:6] = base[:, top:bottom]
        for q, (i, j) in enumerate(_MOMENTS):
            np.multiply(block[i], block[j], out=block[6 + q])

    stride = grid_stride(h * w, max_windows)
    m = window_means(
        fill, 6 + len(_MOMENTS), h, w, 2 * radius + 1, stride, clipped=True, dtype=np.float32
    )
    flat = m.reshape(len(m), -1)
    residual_sum, variance_sum = 0.0, 0.0
    for start in range(0, flat.shape[1], RESIDUAL_CHUNK):  # temporaries that stay in cache
        residual, variance = _residual_sums(flat[:, start : start + RESIDUAL_CHUNK], eps)
        residual_sum += residual
        variance_sum += variance
    return residual_sum / variance_sum if variance_sum > 0 else 0.0


def _residual_sums(m: np.ndarray, eps: float) -> tuple[float, float]:
    """The residual and the variance of windows with moments ``m`` [24, N], summed over both."""
    mg, mp = m[0:3], m[3:6]
    # The guide's covariance (upper triangle, ridge on the diagonal) and its adjugate.
    c00, c01, c02, c11, c12, c22 = (m[6 + q] - mg[i] * mg[j] for q, (i, j) in enumerate(_GUIDE))
    c00, c11, c22 = c00 + eps, c11 + eps, c22 + eps
    a00, a01, a02 = c11 * c22 - c12 * c12, c02 * c12 - c01 * c22, c01 * c12 - c02 * c11
    a11, a12, a22 = c00 * c22 - c02 * c02, c01 * c02 - c00 * c12, c00 * c11 - c01 * c01
    det = c00 * a00 + c01 * a01 + c02 * a02
    residual_sum, variance_sum = 0.0, 0.0
    for c in range(3):
        # The cross-covariance of output channel c with the guide; the variance the affine
        # map explains is x^T cov^-1 x.
        x0, x1, x2 = (m[12 + 3 * c + j] - mp[c] * mg[j] for j in range(3))
        explained = (
            a00 * x0 * x0
            + a11 * x1 * x1
            + a22 * x2 * x2
            + 2 * (a01 * x0 * x1 + a02 * x0 * x2 + a12 * x1 * x2)
        ) / det
        variance = np.maximum(m[21 + c] - mp[c] * mp[c], 0)
        residual_sum += float(np.maximum(variance - explained, 0).sum())
        variance_sum += float(variance.sum())
    return residual_sum, variance_sum


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
    shared = np.intersect1d(c, s)
    shared = shared[shared >= 0]  # sorted colour codes in both
    if not len(shared):
        raise ValueError("the content and style masks share no label colour")
    return _positions(shared, c), _positions(shared, s)


def _positions(table: np.ndarray, codes: np.ndarray) -> np.ndarray:
    """Each code's position in ``table`` (sorted, not empty), -1 for codes not in it."""
    index = np.minimum(np.searchsorted(table, codes), len(table) - 1)
    return np.where(table[index] == codes, index, -1).astype(np.int64)


def mean_quality(rows: Sequence[Quality]) -> Quality:
    """The mean of each metric over several outputs."""
    if not rows:
        raise ValueError("mean_quality needs at least one row")
    return Quality(
        *(float(np.mean([getattr(r, f) for r in rows])) for f in Quality.__annotations__)
    )


class RunScorer:
    """Scores the outputs of runs that share their styles; each style's colours are read once.

    A metric that cannot be had (a picture too small for SSIM, no segment shared with a style)
    is None. With several styles the colour distance is the blend-weighted mean of the
    distances to each. With masks, each style's colours by its mask's labels are read once per
    style mask (a path, or the same image object).
    """

    def __init__(self, styles: Sequence[Image.Image], blend: Sequence[float]) -> None:
        self.styles = list(styles)
        self.blend = tuple(blend)
        self._colours: dict[int, ColourSegments] = {}
        self._masked: dict[tuple[int, Any], tuple[Any, np.ndarray, ColourSegments]] = {}

    def _style_colours(self, k: int) -> ColourSegments:
        if k not in self._colours:
            self._colours[k] = colour_segments(self.styles[k], merge_bits=STYLE_MERGE_BITS)
        return self._colours[k]

    def _style_segments(self, k: int, mask: Any) -> tuple[np.ndarray, ColourSegments]:
        """The style's label colours (sorted codes) and its colours by them, per style mask."""
        key = (k, str(mask) if isinstance(mask, (str, os.PathLike)) else id(mask))
        if key not in self._masked:
            style = self.styles[k]
            codes = mask_codes(mask, style.size)
            table = np.unique(codes[codes >= 0])
            labels = _positions(table, codes) if len(table) else codes
            # The mask is kept with its entry: an id stays that of the same object.
            self._masked[key] = (
                mask,
                table,
                colour_segments(style, labels, merge_bits=STYLE_MERGE_BITS),
            )
        _, table, segments = self._masked[key]
        return table, segments

    def score(
        self, output: Image.Image, content: Image.Image, masks: Any = None
    ) -> dict[str, float | None]:
        """The metrics of one output; ``masks`` a ``SegmentationMasks`` or (content, styles)."""
        out: dict[str, float | None] = dict.fromkeys(QUALITY_METRICS)
        for name, metric in (("ssim", luma_ssim), ("affine_residual", affine_residual_share)):
            try:
                out[name] = metric(output, content)
            except ValueError:
                pass
        if self.styles:
            try:
                out["colour_distance"] = self._colour_distance(output, masks)
            except (ValueError, OSError):
                pass
        return out

    def _colour_distance(self, output: Image.Image, masks: Any) -> float:
        if masks is None:
            whole = colour_segments(output)
            distances = [
                segment_distance(whole, self._style_colours(k)) for k in range(len(self.styles))
            ]
        else:
            content_mask, style_masks = (
                masks if isinstance(masks, tuple) else (masks.content, masks.styles)
            )
            if len(style_masks) != len(self.styles):
                raise ValueError(f"{len(style_masks)} style masks for {len(self.styles)} styles")
            codes = mask_codes(content_mask, output.size)
            distances = []
            for k, style_mask in enumerate(style_masks):
                table, style = self._style_segments(k, style_mask)
                if not len(table):
                    raise ValueError("the style mask has no label colour")
                # The content's label colours that the style's mask has too; the rest: -1.
                labels = _positions(table, codes)
                distances.append(segment_distance(colour_segments(output, labels), style))
        return float(np.dot(distances, self.blend) / max(sum(self.blend), 1e-12))


def score_run(
    output: Image.Image,
    content: Image.Image,
    styles: Sequence[Image.Image],
    blend: Sequence[float],
    masks: Any = None,
) -> dict[str, float | None]:
    """The metrics of one transfer run, for its record (see ``RunScorer``)."""
    return RunScorer(styles, blend).score(output, content, masks)


def matched_share(
    content_labels: np.ndarray,
    style_labels: np.ndarray,
    true_content: np.ndarray,
    true_style: np.ndarray,
) -> float:
    """How well segments found without masks correspond, with true labels to judge them.

    The share of content pixels whose colours come from the matching region of the style: for
    each content pixel, the share of its segment's style pixels that carry its true label (a
    content pixel of no segment draws on the whole style). Label images of one size per photo;
    true labels -1 are left out. 1: every segment pairs like the truth; one global transfer
    scores the overlap of the true regions' shares.
    """
    total = count = 0.0
    for j in np.unique(content_labels):
        in_c = content_labels == j
        in_s = style_labels == j if j >= 0 and (style_labels == j).any() else true_style > -2
        for t in np.unique(true_content[in_c]):
            if t < 0:
                continue
            n = float((in_c & (true_content == t)).sum())
            total += n * float((true_style[in_s] == t).mean())
            count += n
    return total / count

"""CIELAB conversions, per-segment colour-distribution transfer and automatic segment matching."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np
import torch
from scipy.cluster.vq import kmeans2
from scipy.optimize import linear_sum_assignment
from torch import Tensor

# sRGB (D65) -> XYZ, and the D65 white point (IEC 61966-2-1; CIE 15).
_RGB_TO_XYZ = torch.tensor(
    [
        [0.412453, 0.357580, 0.180423],
        [0.212671, 0.715160, 0.072169],
        [0.019334, 0.119193, 0.950227],
    ],
    dtype=torch.float64,
)
_XYZ_TO_RGB = torch.linalg.inv(_RGB_TO_XYZ)
_WHITE = torch.tensor([0.95047, 1.0, 1.08883], dtype=torch.float64)
_DELTA = 6.0 / 29.0


def _check(image: Tensor, name: str) -> None:
    if image.dim() != 4 or image.shape[1] != 3:
        raise ValueError(f"{name} must be a [B, 3, H, W] tensor, got shape {tuple(image.shape)}")


def rgb_to_lab(image: Tensor) -> Tensor:
    """[B, 3, H, W] sRGB in [0, 1] -> CIELAB (L in [0, 100]), in the input's float dtype."""
    _check(image, "image")
    x = image.clamp(0, 1)
    linear = torch.where(x > 0.04045, ((x + 0.055) / 1.055) ** 2.4, x / 12.92)
    m = _RGB_TO_XYZ.to(x)
    xyz = torch.einsum("ij,bjhw->bihw", m, linear) / _WHITE.to(x).view(1, 3, 1, 1)
    f = torch.where(
        xyz > _DELTA**3, xyz.clamp_min(1e-12) ** (1 / 3), xyz / (3 * _DELTA**2) + 4 / 29
    )
    lum = 116 * f[:, 1] - 16
    a = 500 * (f[:, 0] - f[:, 1])
    b = 200 * (f[:, 1] - f[:, 2])
    return torch.stack([lum, a, b], dim=1)


def lab_to_rgb(lab: Tensor) -> Tensor:
    """[B, 3, H, W] CIELAB -> sRGB, not clipped (colours outside the gamut leave [0, 1])."""
    _check(lab, "lab")
    fy = (lab[:, 0] + 16) / 116
    f = torch.stack([fy + lab[:, 1] / 500, fy, fy - lab[:, 2] / 200], dim=1)
    xyz = torch.where(f > _DELTA, f**3, 3 * _DELTA**2 * (f - 4 / 29))
    xyz = xyz * _WHITE.to(lab).view(1, 3, 1, 1)
    linear = torch.einsum("ij,bjhw->bihw", _XYZ_TO_RGB.to(lab), xyz)
    return torch.where(
        linear > 0.0031308, 1.055 * linear.clamp_min(1e-12) ** (1 / 2.4) - 0.055, 12.92 * linear
    )


# -- distribution transfer on point sets [N, 3] ------------------------------------------------
def _sqrtm(cov: np.ndarray) -> np.ndarray:
    values, vectors = np.linalg.eigh(cov)
    return (vectors * np.sqrt(values.clip(0))) @ vectors.T


def mkl_map(source: np.ndarray, target: np.ndarray, eps: float = 1e-6) -> np.ndarray:
    """The linear Monge-Kantorovich map of ``source`` [N, 3] onto ``target`` [M, 3]'s statistics.

    The optimal transport map between Gaussians with the point sets' means and covariances
    (Pitie & Kokaram 2007): returns the mapped source points.
    """
    mu_s, mu_t = source.mean(0), target.mean(0)
    eye = eps * np.eye(3)
    cov_s = np.cov(source, rowvar=False) + eye
    cov_t = np.cov(target, rowvar=False) + eye
    root_s = _sqrtm(cov_s)
    inv_root_s = np.linalg.inv(root_s)
    middle = _sqrtm(root_s @ cov_t @ root_s)
    t = inv_root_s @ middle @ inv_root_s
    return (source - mu_s) @ t.T + mu_t


def _match_1d(values: np.ndarray, reference_sorted: np.ndarray) -> np.ndarray:
    """Each value replaced by the reference quantile of its rank (1-D optimal transport)."""
    n = values.shape[0]
    order = np.argsort(values, kind="stable")
    ranks = np.empty(n, dtype=np.float64)
    ranks[order] = (np.arange(n) + 0.5) / n
    grid = (np.arange(reference_sorted.shape[0]) + 0.5) / reference_sorted.shape[0]
    return np.interp(ranks, grid, reference_sorted)


def _rotations(count: int, seed: int) -> list[np.ndarray]:
    rng = np.random.default_rng(seed)
    out = [np.eye(3)]
    while len(out) < count:
        q, r = np.linalg.qr(rng.normal(size=(3, 3)))
        out.append(q * np.sign(np.diag(r)))
    return out[:count]


def sliced_transport(
    source: np.ndarray,
    target: np.ndarray,
    passes: int = 6,
    seed: int = 0,
    max_target: int = 65536,
) -> np.ndarray:
    """Iterative distribution transfer (Pitie et al. 2005): 1-D matches along rotated axes.

    Each pass rotates the colour space, matches each axis' marginal of ``source`` to
    ``target``'s and rotates back; the first pass uses the axes themselves. Deterministic for
    a seed; ``target`` is subsampled to ``max_target`` points (evenly, by a fixed stride).
    """
    if target.shape[0] > max_target:
        target = target[:: int(np.ceil(target.shape[0] / max_target))]
    x = source.astype(np.float64).copy()
    for rot in _rotations(passes, seed):
        px, pt = x @ rot, target @ rot
        moved = np.empty_like(px)
        for k in range(3):
            moved[:, k] = _match_1d(px[:, k], np.sort(pt[:, k]))
        x = x + (moved - px) @ rot.T
    return x


def transfer_points(
    source: np.ndarray,
    target: np.ndarray,
    passes: int = 6,
    seed: int = 0,
    contrast_floor: float = 0.0,
) -> np.ndarray:
    """``source`` colours [N, 3] moved onto ``target``'s distribution: MKL, then sliced passes.

    Colours are CIELAB. With ``contrast_floor`` > 0, a mapped lightness whose spread fell
    below that share of the source's is stretched back to it about its mean, so a flat style
    region (a black ground) does not flatten the photo's structure there.
    """
    if source.shape[0] == 0:
        return source.astype(np.float64)
    if source.shape[0] < 4 or target.shape[0] < 4:
        return source - source.mean(0) + target.mean(0)
    mapped = mkl_map(source.astype(np.float64), target.astype(np.float64))
    if passes > 0:
        mapped = sliced_transport(mapped, target.astype(np.float64), passes, seed)
    if contrast_floor > 0:
        spread, wanted = mapped[:, 0].std(), contrast_floor * source[:, 0].std()
        if spread < wanted:
            mean = mapped[:, 0].mean()
            mapped[:, 0] = mean + (mapped[:, 0] - mean) * (wanted / max(spread, 1e-6))
    return mapped


def transfer_segments(
    content_lab: np.ndarray,
    style_lab: np.ndarray,
    content_labels: np.ndarray,
    style_labels: np.ndarray,
    passes: int = 6,
    seed: int = 0,
    contrast_floor: float = 0.0,
) -> np.ndarray:
    """Per-segment colour transfer of ``content_lab`` [H, W, 3] from ``style_lab`` [h, w, 3].

    Labels are integer images (-1: no segment); content pixels of a label the style lacks,
    or of no label, take the transfer from the whole style.
    """
    out = np.empty(content_lab.shape, dtype=np.float64)
    flat_c = content_lab.reshape(-1, 3)
    flat_s = style_lab.reshape(-1, 3)
    lab_c, lab_s = content_labels.reshape(-1), style_labels.reshape(-1)
    flat_out = out.reshape(-1, 3)
    pending = np.ones(flat_c.shape[0], dtype=bool)
    for label in np.unique(lab_c[lab_c >= 0]):
        where_s = lab_s == label
        if where_s.sum() < 16:
            continue
        where_c = lab_c == label
        flat_out[where_c] = transfer_points(
            flat_c[where_c], flat_s[where_s], passes, seed, contrast_floor
        )
        pending &= ~where_c
    if pending.any():
        flat_out[pending] = transfer_points(flat_c[pending], flat_s, passes, seed, contrast_floor)
    return out


# -- segments -----------------------------------------------------------------------------------
def labels_from_masks(masks: Sequence[Tensor]) -> np.ndarray:
    """Hard labels [H, W] from per-segment masks ([1, 1, H, W] each): the strongest mask wins.

    Pixels that no mask covers by at least a half are -1, so no soft mask edge mixes segments.
    """
    stack = torch.cat([m.reshape(1, *m.shape[-2:]).float() for m in masks]).cpu().numpy()
    labels = stack.argmax(0)
    labels[stack.max(0) < 0.5] = -1
    return labels


def _features(lab: np.ndarray, position_weight: float) -> np.ndarray:
    h, w = lab.shape[:2]
    ys, xs = np.mgrid[0:h, 0:w]
    scale = position_weight * 100.0 / max(h, w)
    return np.concatenate(
        [lab.reshape(-1, 3), (ys.reshape(-1, 1) * scale), (xs.reshape(-1, 1) * scale * 0.5)],
        axis=1,
    )


def _cluster(lab: np.ndarray, k: int, position_weight: float, seed: int) -> np.ndarray:
    feats = _features(lab, position_weight)
    sample = feats[:: max(1, feats.shape[0] // 20000)]
    rng = np.random.default_rng(seed)
    init = sample[rng.choice(sample.shape[0], size=k, replace=False)]
    centroids, _ = kmeans2(sample, init, iter=20, minit="matrix", seed=seed)
    dist = ((feats[:, None, :] - centroids[None]) ** 2).sum(-1)
    return dist.argmin(1).reshape(lab.shape[:2])


def auto_segments(
    content_lab: np.ndarray,
    style_lab: np.ndarray,
    k: int = 3,
    position_weight: float = 0.5,
    seed: int = 0,
) -> tuple[np.ndarray, np.ndarray]:
    """Matched segments of content and style without masks: k-means on (L, a, b, y, x).

    Each image is clustered on its own; the clusters are matched one to one by the Hungarian
    method on the distance of their mean lightness and mean height in the image (sky to sky,
    ground to ground). Returns integer label images whose equal labels correspond.
    """
    if k <= 1:
        return (
            np.zeros(content_lab.shape[:2], dtype=np.int64),
            np.zeros(style_lab.shape[:2], dtype=np.int64),
        )
    lc = _cluster(content_lab, k, position_weight, seed)
    ls = _cluster(style_lab, k, position_weight, seed)

    def summary(lab: np.ndarray, labels: np.ndarray) -> np.ndarray:
        h = lab.shape[0]
        ys = np.mgrid[0 : lab.shape[0], 0 : lab.shape[1]][0] / h
        rows = []
        for j in range(k):
            sel = labels == j
            if not sel.any():
                rows.append([1e3, 1e3])
                continue
            rows.append([lab[..., 0][sel].mean() / 100.0, ys[sel].mean()])
        return np.asarray(rows)

    sc, ss = summary(content_lab, lc), summary(style_lab, ls)
    cost = ((sc[:, None] - ss[None]) ** 2).sum(-1)
    rows, cols = linear_sum_assignment(cost)
    mapping = np.full(k, -1)
    mapping[cols] = rows  # style cluster -> the content label it matches
    return lc, mapping[ls]

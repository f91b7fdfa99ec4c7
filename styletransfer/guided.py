"""Edge-aware local affine colour maps: local affine fits (the guided filter's), bilateral grids."""

from __future__ import annotations

import torch
import torch.nn.functional as F
from torch import Tensor

# Rec. 601 luma, the guide of the bilateral grid (the same weights as images.rgb_to_yiq).
LUMA = (0.299, 0.587, 0.114)
COEFFS = 12  # a 3x3 colour matrix and a 3-vector offset per grid cell


def _check_image(x: Tensor, name: str, channels: int | None = None) -> None:
    if x.dim() != 4 or (channels is not None and x.shape[1] != channels):
        want = f"[B, {channels}, H, W]" if channels is not None else "[B, C, H, W]"
        raise ValueError(f"{name} must be a {want} tensor, got shape {tuple(x.shape)}")


def box_filter(x: Tensor, radius: int) -> Tensor:
    """Mean of ``x`` ([B, C, H, W]) over (2r+1)^2 windows, windows clipped at the borders.

    Computed as a mean along the rows, then along the columns: a clipped window is a
    rectangle, so the two means of it are its mean, at 2(2r+1) operations a pixel, not (2r+1)^2.
    """
    if radius < 0:
        raise ValueError(f"radius must be >= 0, got {radius}")
    if radius == 0:
        return x
    k = 2 * radius + 1
    rows = F.avg_pool2d(x, (1, k), stride=1, padding=(0, radius), count_include_pad=False)
    return F.avg_pool2d(rows, (k, 1), stride=1, padding=(radius, 0), count_include_pad=False)


def _window_stats(guide: Tensor, target: Tensor, radius: int) -> tuple[Tensor, ...]:
    """Means of guide, target; guide covariance [B,H,W,3,3], cross-covariance [B,H,W,C,3]."""
    _check_image(guide, "guide", 3)
    _check_image(target, "target")
    if guide.shape[0] != target.shape[0] or guide.shape[-2:] != target.shape[-2:]:
        raise ValueError(
            f"guide {tuple(guide.shape)} and target {tuple(target.shape)} differ in batch or size"
        )
    b, c, h, w = target.shape
    mean_i = box_filter(guide, radius)  # [B, 3, H, W]
    mean_p = box_filter(target, radius)  # [B, C, H, W]
    ii = (guide[:, :, None] * guide[:, None]).reshape(b, 9, h, w)
    cov_ii = box_filter(ii, radius).reshape(b, 3, 3, h, w) - mean_i[:, :, None] * mean_i[:, None]
    ip = (target[:, :, None] * guide[:, None]).reshape(b, c * 3, h, w)
    cov_ip = box_filter(ip, radius).reshape(b, c, 3, h, w) - mean_p[:, :, None] * mean_i[:, None]
    # Move the small matrix dimensions last for batched linear algebra.
    return mean_i, mean_p, cov_ii.permute(0, 3, 4, 1, 2), cov_ip.permute(0, 3, 4, 1, 2)


def local_affine_fit(
    guide: Tensor, target: Tensor, radius: int = 2, eps: float = 1e-4
) -> tuple[Tensor, Tensor]:
    """Per-window ridge fit ``target ~ A @ guide + b`` (the colour guided filter of He et al.).

    ``guide`` is [B, 3, H, W], ``target`` [B, C, H, W]; returns A [B, C, 3, H, W] and
    b [B, C, H, W], the coefficients of the window centred on each pixel. ``eps`` is the ridge
    penalty on A (larger: flatter maps, more smoothing). Computed in float32 or wider.
    """
    if eps < 0:
        raise ValueError(f"eps must be >= 0, got {eps}")
    dtype = torch.promote_types(guide.dtype, torch.float32)
    guide, target = guide.to(dtype), target.to(dtype)
    mean_i, mean_p, cov_ii, cov_ip = _window_stats(guide, target, radius)
    reg = cov_ii + eps * torch.eye(3, dtype=dtype, device=guide.device)
    # A_c = cov_ip_c^T (cov_ii + eps)^-1; solve reg @ X = cov_ip^T, X: [B, H, W, 3, C].
    a = torch.linalg.solve(reg, cov_ip.transpose(-1, -2)).transpose(-1, -2)  # [B, H, W, C, 3]
    a = a.permute(0, 3, 4, 1, 2)  # [B, C, 3, H, W]
    b = mean_p - (a * mean_i[:, None]).sum(2)
    return a, b


def apply_affine(a: Tensor, b: Tensor, image: Tensor) -> Tensor:
    """Per-pixel affine colour map: ``out_c = sum_j a[c, j] * image_j + b_c``.

    ``a`` [B, C, 3, H, W], ``b`` [B, C, H, W], ``image`` [B, 3, H, W] -> [B, C, H, W].
    """
    return (a * image[:, None]).sum(2) + b


def guided_filter(guide: Tensor, target: Tensor, radius: int = 2, eps: float = 1e-4) -> Tensor:
    """The colour guided filter: window fits averaged over the windows covering each pixel."""
    a, b = local_affine_fit(guide, target, radius, eps)
    n, c = a.shape[:2]
    h, w = a.shape[-2:]
    a_mean = box_filter(a.reshape(n, c * 3, h, w), radius).reshape(n, c, 3, h, w)
    return apply_affine(a_mean, box_filter(b, radius), guide.to(a.dtype))


def local_residual_variance(
    guide: Tensor, target: Tensor, radius: int = 2, eps: float = 1e-8
) -> tuple[Tensor, Tensor]:
    """Per-window variance of ``target`` left by its best affine fit on ``guide``, and its variance.

    Both [B, C, H, W] (float64, closed form): the residual is the variance minus the part that
    the least-squares map ``target ~ A @ guide + b`` over the window centred there explains
    (ridge ``eps`` on A keeps flat windows well posed).
    """
    guide, target = guide.double(), target.double()
    _, mean_p, cov_ii, cov_ip = _window_stats(guide, target, radius)
    var_p = (box_filter(target * target, radius) - mean_p * mean_p).clamp_min(0)
    reg = cov_ii + eps * torch.eye(3, dtype=guide.dtype, device=guide.device)
    x = torch.linalg.solve(reg, cov_ip.transpose(-1, -2))  # [B, H, W, 3, C]
    explained = (cov_ip.transpose(-1, -2) * x).sum(-2).permute(0, 3, 1, 2)  # [B, C, H, W]
    return (var_p - explained).clamp_min(0), var_p


# -- bilateral grids of affine colour transforms ------------------------------------------------
def luminance(image: Tensor) -> Tensor:
    """[B, 3, H, W] RGB -> [B, 1, H, W] luma."""
    _check_image(image, "image", 3)
    weights = torch.tensor(LUMA, dtype=image.dtype, device=image.device).view(1, 3, 1, 1)
    return (image * weights).sum(1, keepdim=True)


def identity_grid(batch: int, bins: int, height: int, width: int) -> Tensor:
    """A bilateral grid [B, 12, bins, height, width] whose every cell is the identity colour map."""
    if min(bins, height, width) < 2:
        raise ValueError(f"a grid needs >= 2 cells per axis, got {bins}x{height}x{width}")
    grid = torch.zeros(batch, 3, 4, bins, height, width)
    for c in range(3):
        grid[:, c, c] = 1.0
    return grid.reshape(batch, COEFFS, bins, height, width)


def slice_grid(grid: Tensor, guide: Tensor) -> Tensor:
    """Trilinear lookup of a bilateral grid at each pixel's position and guide value.

    ``grid`` [B, K, D, Gh, Gw] spans the image and guide values in [0, 1]; ``guide``
    [B, 1, H, W] -> [B, K, H, W].
    """
    if grid.dim() != 5:
        raise ValueError(f"grid must be [B, K, D, Gh, Gw], got shape {tuple(grid.shape)}")
    _check_image(guide, "guide", 1)
    n, _, h, w = guide.shape
    ys = torch.linspace(-1.0, 1.0, h, dtype=grid.dtype, device=grid.device)
    xs = torch.linspace(-1.0, 1.0, w, dtype=grid.dtype, device=grid.device)
    gy, gx = torch.meshgrid(ys, xs, indexing="ij")
    gz = guide[:, 0].to(grid.dtype).clamp(0, 1) * 2 - 1  # [B, H, W]
    coords = torch.stack([gx.expand(n, h, w), gy.expand(n, h, w), gz], dim=-1)  # [B, H, W, 3]
    sliced = F.grid_sample(
        grid, coords[:, None], mode="bilinear", padding_mode="border", align_corners=True
    )  # [B, K, 1, H, W]
    return sliced[:, :, 0]


def grid_roughness(grid: Tensor) -> Tensor:
    """Mean squared difference of neighbouring cells of [B, K, D, Gh, Gw] grids, per grid: [B]."""
    if grid.dim() != 5:
        raise ValueError(f"grid must be [B, K, D, Gh, Gw], got shape {tuple(grid.shape)}")
    total = grid.new_zeros(grid.shape[0])
    for axis in (2, 3, 4):
        diff = torch.diff(grid, dim=axis)
        total = total + diff.pow(2).reshape(grid.shape[0], -1).mean(1)
    return total


def apply_grid(grid: Tensor, image: Tensor, guide: Tensor | None = None) -> Tensor:
    """``image`` [B, 3, H, W] through the bilateral grid of affine maps, guided by its luma."""
    guide = luminance(image) if guide is None else guide
    coeffs = slice_grid(grid, guide)  # [B, 12, H, W]
    n, _, h, w = coeffs.shape
    coeffs = coeffs.reshape(n, 3, 4, h, w)
    return apply_affine(coeffs[:, :, :3], coeffs[:, :, 3], image.to(coeffs.dtype))

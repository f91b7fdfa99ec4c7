"""Loss maths as pure functions: content, Gram style (plain and masked), total variation, photorealism."""

from __future__ import annotations

from collections.abc import Sequence

import torch
from torch import Tensor

_REDUCTIONS = ("mean", "sum", "none")


def _reduce(per_sample: Tensor, reduction: str) -> Tensor:
    if reduction == "mean":
        return per_sample.mean()
    if reduction == "sum":
        return per_sample.sum()
    if reduction == "none":
        return per_sample
    raise ValueError(f"unknown reduction {reduction!r}; use one of: {', '.join(_REDUCTIONS)}")


def gram_matrix(features: Tensor) -> Tensor:
    """[B, C, H, W] -> [B, C, C] Gram matrices normalised by C*H*W, computed in float32."""
    b, c, h, w = features.shape
    flat = features.float().reshape(b, c, h * w)  # [B, C, HW]
    return torch.bmm(flat, flat.transpose(1, 2)) / (c * h * w)


def masked_gram_matrix(features: Tensor, mask: Tensor, eps: float = 1e-8) -> Tensor:
    """Gram matrix of ``features`` over the pixels of ``mask`` ([B, 1, H, W] weights in [0, 1]).

    Normalised by C times the mask's area, so a mask of ones gives ``gram_matrix``
    (the augmented style loss of Luan et al. 2017, eq. 4).
    """
    b, c, h, w = features.shape
    if mask.shape[-2:] != (h, w):
        raise ValueError(
            f"mask is {tuple(mask.shape[-2:])}, features are {(h, w)}: resize it first"
        )
    masked = (features.float() * mask.float()).reshape(b, c, h * w)  # [B, C, HW]
    area = mask.float().reshape(b, -1).sum(1).clamp_min(eps).view(b, 1, 1)
    return torch.bmm(masked, masked.transpose(1, 2)) / (c * area)


def content_loss(a: Tensor, b: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared difference of two feature maps, per sample, in float32."""
    diff = (a.float() - b.float()).reshape(a.shape[0], -1)
    return _reduce(diff.pow(2).mean(1), reduction)


def style_loss(gram_a: Tensor, gram_b: Tensor, reduction: str = "mean") -> Tensor:
    """Mean squared difference of two batches of Gram matrices ([B, C, C]; ``gram_b`` may be [1, C, C])."""
    diff = gram_a.float() - gram_b.float()
    return _reduce(diff.pow(2).reshape(diff.shape[0], -1).mean(1), reduction)


def masked_style_loss(
    grams_a: Sequence[Tensor],
    grams_b: Sequence[Tensor],
    segment_weights: Sequence[float],
    reduction: str = "mean",
) -> Tensor:
    """Weighted sum over segments of ``style_loss`` between matching masked Gram matrices."""
    if not (len(grams_a) == len(grams_b) == len(segment_weights)):
        raise ValueError("grams_a, grams_b and segment_weights need one entry per segment")
    if not grams_a:
        raise ValueError("masked_style_loss needs at least one segment")
    total = sum(
        w * style_loss(a, b, reduction="none")
        for a, b, w in zip(grams_a, grams_b, segment_weights, strict=True)
    )
    return _reduce(total, reduction)


def tv_loss(image: Tensor, reduction: str = "mean") -> Tensor:
    """Squared total variation of [B, C, H, W] images (mean over neighbours; smooth, unlike |.|)."""
    image = image.float()
    dy = (image[:, :, 1:, :] - image[:, :, :-1, :]).pow(2).reshape(image.shape[0], -1).mean(1)
    dx = (image[:, :, :, 1:] - image[:, :, :, :-1]).pow(2).reshape(image.shape[0], -1).mean(1)
    return _reduce(dx + dy, reduction)


class _QuadraticForm(torch.autograd.Function):
    """sum_c x_c^T L x_c in float64, with gradient 2 L x (L symmetric)."""

    @staticmethod
    def forward(ctx, x: Tensor, laplacian: Tensor) -> Tensor:  # x: [N, C]
        x64 = x.detach().double()
        lx = (
            torch.sparse.mm(laplacian, x64)
            if laplacian.layout != torch.strided
            else laplacian @ x64
        )
        ctx.save_for_backward(lx)
        ctx.dtype = x.dtype
        return (x64 * lx).sum()

    @staticmethod
    def backward(ctx, grad_out: Tensor):
        (lx,) = ctx.saved_tensors
        return (2.0 * grad_out.double() * lx).to(ctx.dtype), None


def photoreal_loss(
    image: Tensor, laplacian: Tensor | Sequence[Tensor], reduction: str = "mean"
) -> Tensor:
    """Matting-Laplacian photorealism loss sum_c x_c^T L x_c of [B, 3, H, W] images.

    ``laplacian`` is one [HW, HW] sparse (CSR) float64 tensor or one per sample. Evaluated in
    float64 so that the value of the positive semi-definite form is never negative; the result is
    float32 (float64 for float64 images) (Luan et al. 2017, eq. 2).
    """
    b, c, h, w = image.shape
    laplacians = [laplacian] * b if isinstance(laplacian, Tensor) else list(laplacian)
    if len(laplacians) != b:
        raise ValueError(f"{len(laplacians)} Laplacians for a batch of {b} images")
    per_sample = []
    for i, lap in enumerate(laplacians):
        if lap.shape != (h * w, h * w):
            raise ValueError(f"Laplacian is {tuple(lap.shape)}, the image has {h * w} pixels")
        x = image[i].reshape(c, h * w).t()  # [HW, C]
        per_sample.append(_QuadraticForm.apply(x, lap))
    dtype = torch.promote_types(image.dtype, torch.float32)  # float32, or float64 for float64
    return _reduce(torch.stack(per_sample).to(dtype), reduction)

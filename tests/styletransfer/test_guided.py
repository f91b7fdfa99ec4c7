"""Tests of local affine colour maps: box filter, guided filter, affine fits, bilateral grids."""

from __future__ import annotations

import pytest
import torch

from styletransfer.guided import (
    apply_affine,
    apply_grid,
    box_filter,
    guided_filter,
    identity_grid,
    local_affine_fit,
    local_residual_variance,
    luminance,
    slice_grid,
)


def _random_image(seed: int, h: int = 20, w: int = 24, batch: int = 1) -> torch.Tensor:
    gen = torch.Generator().manual_seed(seed)
    return torch.rand(batch, 3, h, w, generator=gen, dtype=torch.float64)


def _colour_map(seed: int) -> tuple[torch.Tensor, torch.Tensor]:
    gen = torch.Generator().manual_seed(seed)
    return torch.randn(3, 3, generator=gen, dtype=torch.float64), torch.randn(
        3, generator=gen, dtype=torch.float64
    )


def test_box_filter_is_the_window_mean_clipped_at_borders():
    x = _random_image(0)
    out = box_filter(x, 2)
    assert torch.allclose(out[0, :, 7, 9], x[0, :, 5:10, 7:12].mean((1, 2)))
    assert torch.allclose(out[0, :, 0, 0], x[0, :, :3, :3].mean((1, 2)))
    assert torch.equal(box_filter(x, 0), x)
    with pytest.raises(ValueError, match="radius"):
        box_filter(x, -1)


def test_box_filter_of_a_wide_window_is_the_clipped_mean_everywhere():
    x = _random_image(3, 9, 13)
    out = box_filter(x, 5)  # windows wider than half the picture: clipped on both sides
    for i, j in ((0, 0), (4, 6), (8, 12), (2, 11)):
        window = x[0, :, max(0, i - 5) : i + 6, max(0, j - 5) : j + 6]
        assert torch.allclose(out[0, :, i, j], window.mean((1, 2)))


def test_local_affine_fit_recovers_a_global_colour_map():
    image = _random_image(1)
    m, c = _colour_map(2)
    target = torch.einsum("ij,bjhw->bihw", m, image) + c.view(1, 3, 1, 1)
    a, b = local_affine_fit(image, target, radius=2, eps=1e-12)
    assert a.shape == (1, 3, 3, 20, 24) and b.shape == (1, 3, 20, 24)
    assert torch.allclose(a, m.view(1, 3, 3, 1, 1).expand_as(a), atol=1e-6)
    assert torch.allclose(b, c.view(1, 3, 1, 1).expand_as(b), atol=1e-6)
    assert torch.allclose(apply_affine(a, b, image), target, atol=1e-6)


def affine_residual(guide: torch.Tensor, target: torch.Tensor, radius: int = 2) -> torch.Tensor:
    """Root mean squared residual of the best affine fit of ``target`` on ``guide`` per window."""
    return local_residual_variance(guide, target, radius, eps=1e-12)[0].sqrt()


def test_affine_residual_is_zero_for_affine_maps_only():
    image = _random_image(3)
    m, c = _colour_map(4)
    affine = torch.einsum("ij,bjhw->bihw", m, image) + c.view(1, 3, 1, 1)
    assert float(affine_residual(image, affine).max()) < 1e-4
    squared = image**2 + 0.3 * torch.sin(17 * image.flip(1))
    residual = affine_residual(image, squared)
    assert residual.shape == image.shape
    assert float(residual.mean()) > 1e-2


def test_identity_grid_maps_an_image_to_itself():
    image = _random_image(8, batch=2).float()
    grid = identity_grid(2, bins=4, height=3, width=5)
    assert grid.shape == (2, 12, 4, 3, 5)
    assert torch.allclose(apply_grid(grid, image), image, atol=1e-6)


def test_slice_grid_interpolates_linearly_along_the_guide():
    grid = torch.zeros(1, 1, 5, 2, 2)
    grid[0, 0] = torch.linspace(0, 4, 5).view(5, 1, 1)  # value = 4 * guide
    guide = torch.rand(1, 1, 7, 9, generator=torch.Generator().manual_seed(9))
    assert torch.allclose(slice_grid(grid, guide), 4 * guide, atol=1e-5)


def _relative_residual(guide: torch.Tensor, out: torch.Tensor) -> float:
    """Mean affine-fit residual over mean local standard deviation, 3x3 windows."""
    spread = (box_filter(out**2, 1) - box_filter(out, 1) ** 2).clamp_min(0).sqrt()
    return float(affine_residual(guide, out, radius=1).mean() / spread.mean())


def test_apply_grid_is_nearly_affine_in_small_windows_and_differentiable():
    image = _random_image(10, 32, 32)
    gen = torch.Generator().manual_seed(11)
    grid = identity_grid(1, 4, 4, 4).double() + 0.05 * torch.randn(
        1, 12, 4, 4, 4, generator=gen, dtype=torch.float64
    )
    assert _relative_residual(image, apply_grid(grid, image)) < 0.1
    assert _relative_residual(image, torch.sin(20 * image)) > 0.5  # a non-affine map
    grid.requires_grad_(True)
    torch.autograd.gradcheck(lambda g: apply_grid(g, image[..., :6, :6]), (grid,), atol=1e-6)


def test_luminance_weights_and_shape_errors():
    image = torch.ones(1, 3, 4, 4)
    assert torch.allclose(luminance(image), torch.ones(1, 1, 4, 4))
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        luminance(torch.ones(3, 4, 4))
    with pytest.raises(ValueError, match="differ"):
        local_affine_fit(torch.ones(1, 3, 4, 4), torch.ones(1, 3, 5, 4))
    with pytest.raises(ValueError, match="cells"):
        identity_grid(1, 1, 4, 4)


def test_guided_filter_keeps_edges_that_a_box_blur_smears():
    gen = torch.Generator().manual_seed(5)
    step = torch.zeros(1, 3, 24, 24, dtype=torch.float64)
    step[..., 12:] = 1.0
    noisy = step + 0.05 * torch.randn(step.shape, generator=gen, dtype=torch.float64)
    smoothed = guided_filter(noisy, noisy, radius=3, eps=1e-2)
    edge_guided = float((smoothed[..., 13] - smoothed[..., 10]).mean())
    edge_box = float((box_filter(noisy, 3)[..., 13] - box_filter(noisy, 3)[..., 10]).mean())
    assert edge_guided > 0.9 and edge_box < 0.75
    # and it removes noise in the flat parts
    assert float(smoothed[..., :8].std()) < 0.5 * float(noisy[..., :8].std())

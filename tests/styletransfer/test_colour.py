"""Tests of styletransfer.colour: CIELAB, distribution transfer, segments."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from skimage.color import lab2rgb, rgb2lab

from styletransfer.colour import (
    auto_segments,
    lab_to_rgb,
    labels_from_masks,
    mkl_map,
    rgb_to_lab,
    sliced_transport,
    transfer_points,
    transfer_segments,
)
from styletransfer.quality import sliced_wasserstein


def _rgb(seed: int, h: int = 16, w: int = 12) -> torch.Tensor:
    return torch.rand(
        1, 3, h, w, generator=torch.Generator().manual_seed(seed), dtype=torch.float64
    )


def test_lab_matches_scikit_image_and_round_trips():
    x = _rgb(0)
    ours = rgb_to_lab(x)[0].permute(1, 2, 0).numpy()
    ref = rgb2lab(x[0].permute(1, 2, 0).numpy())
    assert np.abs(ours - ref).max() < 0.05
    back = lab_to_rgb(rgb_to_lab(x))
    assert torch.allclose(back, x, atol=1e-6)
    assert np.abs(lab2rgb(ref) - x[0].permute(1, 2, 0).numpy()).max() < 1e-4
    with pytest.raises(ValueError, match=r"\[B, 3, H, W\]"):
        rgb_to_lab(torch.zeros(3, 4, 4))


def test_mkl_map_matches_the_target_mean_and_covariance():
    rng = np.random.default_rng(0)
    source = rng.normal(size=(5000, 3)) @ np.array([[2, 0, 0], [0.5, 1, 0], [0, 0, 0.3]])
    target = rng.normal(size=(4000, 3)) @ np.array([[0.5, 0.2, 0], [0, 3, 0], [0, 1, 1]]) + 7
    mapped = mkl_map(source, target)
    assert np.allclose(mapped.mean(0), target.mean(0), atol=1e-6)
    assert np.allclose(np.cov(mapped, rowvar=False), np.cov(target, rowvar=False), atol=1e-3)


def test_sliced_transport_moves_a_non_gaussian_distribution_onto_the_target():
    rng = np.random.default_rng(1)
    source = rng.normal(size=(6000, 3)) * 10 + 50
    # Two clusters: no linear map reaches this.
    target = np.concatenate([rng.normal(size=(3000, 3)) + 20, rng.normal(size=(3000, 3)) + 80])
    linear = mkl_map(source, target)
    full = transfer_points(source, target, passes=8)
    assert sliced_wasserstein(full, target) < 0.3 * sliced_wasserstein(linear, target)
    again = sliced_transport(linear, target, passes=8, seed=0)
    assert np.array_equal(again, sliced_transport(linear, target, passes=8, seed=0))


def test_contrast_floor_keeps_a_share_of_the_lightness_spread():
    rng = np.random.default_rng(2)
    source = np.stack([rng.uniform(20, 80, 4000), rng.normal(size=4000), rng.normal(size=4000)], 1)
    flat = np.stack([np.full(4000, 5.0), np.zeros(4000), np.zeros(4000)], 1)
    flat += rng.normal(size=flat.shape) * 0.1
    plain = transfer_points(source, flat, passes=2)
    kept = transfer_points(source, flat, passes=2, contrast_floor=0.5)
    assert plain[:, 0].std() < 0.2
    assert kept[:, 0].std() == pytest.approx(0.5 * source[:, 0].std(), rel=1e-6)
    assert kept[:, 0].mean() == pytest.approx(plain[:, 0].mean(), abs=1e-6)


def test_transfer_segments_keeps_segments_apart_and_fills_unmatched_pixels():
    content = np.zeros((10, 10, 3))
    content[:, :5] = (50, 0, 0)
    content[:, 5:] = (60, 0, 0)
    content += np.random.default_rng(3).normal(size=content.shape)
    style = np.zeros((8, 8, 3))
    style[:4] = (20, 40, 0)
    style[4:] = (80, -40, 0)
    lc = np.zeros((10, 10), dtype=int)
    lc[:, 5:] = 1
    lc[0, 0] = -1  # no segment: takes the whole style's transfer
    ls = np.zeros((8, 8), dtype=int)
    ls[4:] = 1
    out = transfer_segments(content, style, lc, ls, passes=2)
    assert np.abs(out[1:, :5].reshape(-1, 3).mean(0) - (20, 40, 0)).max() < 1.0
    assert np.abs(out[:, 5:].reshape(-1, 3).mean(0) - (80, -40, 0)).max() < 1.0
    assert np.isfinite(out).all()


def test_labels_from_masks_are_hard():
    a = torch.zeros(1, 1, 4, 4)
    a[..., :2] = 1.0
    b = 1.0 - a
    b[..., 0, 0] = 0.0
    a[..., 0, 0] = 0.3  # covered by no mask by at least a half
    labels = labels_from_masks([a, b])
    assert labels[0, 0] == -1
    assert (labels[1:, :2] == 0).all() and (labels[:, 2:] == 1).all()


def test_auto_segments_match_sky_to_sky_and_ground_to_ground():
    content = np.zeros((40, 30, 3))
    content[:20] = (80, -5, -30)  # a bright blue sky
    content[20:] = (30, -20, 20)  # a dark green ground
    style = np.zeros((30, 30, 3))
    style[:10] = (60, 30, 50)  # an orange sky over a third
    style[10:] = (10, 10, -10)  # a dark ground
    lc, ls = auto_segments(content, style, k=2)
    assert lc[0, 0] == ls[0, 0] and lc[-1, -1] == ls[-1, -1]
    assert lc[0, 0] != lc[-1, -1]
    one_c, one_s = auto_segments(content, style, k=1)
    assert (one_c == 0).all() and (one_s == 0).all()

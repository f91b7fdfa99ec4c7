"""Tests of photo-fast: locally affine in the content colours, masks, styles, determinism."""

from __future__ import annotations

import numpy as np
import pytest
import torch
from PIL import Image
from skimage.metrics import structural_similarity

from styletransfer import SegmentationMasks, TransferConfig, transfer, transfer_batch
from styletransfer.guided import affine_residual, box_filter
from styletransfer.images import rgb_to_yiq, to_tensor
from styletransfer.methods.photo_fast import PhotoFastOptions

FAST = {"fit_size": 48, "grid": 6, "bins": 4}


def _config(**changes) -> TransferConfig:
    base = {"method": "photo-fast", "size": 96, "steps": 12, "device": "cpu", "extra": dict(FAST)}
    base.update(changes)
    return TransferConfig(**base)


def _relative_residual(content: Image.Image, output: Image.Image) -> float:
    """Mean residual of per-window affine fits (3x3) over the output's mean local spread."""
    guide = to_tensor(content.resize(output.size, Image.Resampling.LANCZOS)).double()
    out = to_tensor(output).double()
    spread = (box_filter(out**2, 1) - box_filter(out, 1) ** 2).clamp_min(0).sqrt()
    return float(affine_residual(guide, out, radius=1).mean() / spread.mean())


def _luma_ssim(a: Image.Image, b: Image.Image) -> float:
    ya = rgb_to_yiq(to_tensor(a))[0, 0].numpy()
    yb = rgb_to_yiq(to_tensor(b.resize(a.size, Image.Resampling.LANCZOS)))[0, 0].numpy()
    return float(structural_similarity(ya, yb, data_range=1.0))


def _halves(size: tuple[int, int], flip: bool = False) -> Image.Image:
    w, h = size
    array = np.zeros((h, w, 3), dtype=np.uint8)
    left, right = ((255, 0, 0), (0, 0, 255)) if not flip else ((0, 0, 255), (255, 0, 0))
    array[:, : w // 2] = left
    array[:, w // 2 :] = right
    return Image.fromarray(array)


@pytest.fixture(scope="module")
def stylised(astronaut, coffee, cache):
    return transfer(astronaut, coffee, _config(), cache=cache)


def test_output_is_a_local_affine_map_of_the_content(stylised, astronaut):
    assert stylised.status == "ok", stylised.error
    assert stylised.image.size == (96, 96)
    residual = _relative_residual(astronaut, stylised.image)
    # A non-affine image of similar contrast (the style photo) for scale.
    assert residual < 0.2
    assert _luma_ssim(stylised.image, astronaut) > 0.75
    # ... and the style did change the colours.
    content = to_tensor(astronaut.resize((96, 96), Image.Resampling.LANCZOS))
    assert float((to_tensor(stylised.image) - content).abs().mean()) > 0.01


def test_fit_lowers_the_style_loss_and_reports_the_record(stylised):
    first, last = stylised.curve[0], stylised.curve[-1]
    assert last["loss_style"] < 0.8 * first["loss_style"]
    assert stylised.losses["style"] <= first["loss_style"]
    assert stylised.losses["photoreal"] == 0.0
    assert set(stylised.seconds) == {"total", "prepare", "optimize", "laplacian"}
    assert stylised.seconds["laplacian"] == 0.0
    assert all(np.isfinite(row["loss_total"]) for row in stylised.curve)
    assert 1 <= stylised.steps <= 12


def test_non_affine_reference_scores_high(astronaut, coffee):
    """The residual measure used above does flag a non-affine picture."""
    assert _relative_residual(astronaut, coffee.resize((96, 96))) > 0.4


def test_deterministic_with_a_seed(astronaut, coffee, cache, stylised):
    again = transfer(astronaut, coffee, _config(), cache=cache)
    assert np.array_equal(np.asarray(again.image), np.asarray(stylised.image))


def test_masks_and_two_blended_styles(astronaut, coffee, chelsea, cache):
    masks = SegmentationMasks(
        content=_halves(astronaut.size),
        styles=[_halves(coffee.size, flip=True), _halves(chelsea.size)],
    )
    result = transfer(
        astronaut,
        [coffee, chelsea],
        _config(style_weights=(0.7, 0.3), steps=6),
        masks=masks,
        cache=cache,
    )
    assert result.status == "ok", result.error
    array = np.asarray(result.image)
    assert array.shape == (96, 96, 3) and np.isfinite(array).all()
    assert np.isfinite(result.losses["total"]) and result.losses["style"] > 0
    assert _relative_residual(astronaut, result.image) < 0.25
    with pytest.raises(ValueError, match="share no label"):
        transfer(
            astronaut,
            [coffee, chelsea],
            _config(steps=1),
            cache=cache,
            masks=SegmentationMasks(
                content=_halves(astronaut.size),
                styles=[Image.new("RGB", coffee.size, (0, 255, 0))] * 2,
            ),
        )


def test_batch_and_full_resolution_slicing(astronaut, chelsea, coffee, cache):
    results = transfer_batch([astronaut, chelsea], coffee, _config(size=128, steps=4), cache=cache)
    assert [r.status for r in results] == ["ok", "ok"]
    assert results[1].image.size == (128, 85)  # fitted at 48 px, applied at 128 px
    for content, result in zip([astronaut, chelsea], results, strict=True):
        assert _relative_residual(content, result.image) < 0.25


def test_options_are_checked_with_the_valid_keys():
    with pytest.raises(ValueError, match="fit_size, grid, bins"):
        PhotoFastOptions.from_extra((("radius", 3),))
    with pytest.raises(ValueError, match="fit_size must be >= 32"):
        PhotoFastOptions.from_extra((("fit_size", 8),))
    assert PhotoFastOptions.from_extra((("grid", "8"),)).grid == 8


def test_noise_init_and_adam_stay_finite(astronaut, coffee, cache):
    result = transfer(
        astronaut, coffee, _config(init="noise", optimizer="adam", lr=0.05, steps=5), cache=cache
    )
    assert result.status == "ok"
    assert torch.isfinite(to_tensor(result.image)).all()


def test_coarse_to_fine_fit_carries_the_grid_and_numbers_steps_on(astronaut, coffee, cache):
    result = transfer(astronaut, coffee, _config(steps=9, extra={**FAST, "levels": 2}), cache=cache)
    assert result.status == "ok", result.error
    steps = [row["step"] for row in result.curve]
    assert steps == list(range(len(steps))) and 1 <= result.steps <= 9
    assert result.curve[-1]["loss_style"] < result.curve[0]["loss_style"]
    assert _relative_residual(astronaut, result.image) < 0.25
    with pytest.raises(ValueError, match="levels must be >= 1"):
        PhotoFastOptions.from_extra((("levels", 0),))
